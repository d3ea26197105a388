#!/usr/bin/env bash
# corruption.sh RESPOOLD RESPOOLCTL - damaged storage gives the documented behaviour, through respoold:
#   1. a flipped byte in a data page: the page is never served; GET answers an error naming the volume,
#      the page and both checksums; `respoolctl volume check` reports the page and exits 2
#   2. a torn WAL tail: the next start replays up to the last valid record, logs where and why it
#      stopped, and serves every earlier write
#   3. a damaged superblock copy (either one): the other copy is used, the damage is logged with its
#      offset, the copy is rewritten, and the volume checks clean afterwards
set -euo pipefail
respoold=$1
respoolctl=$2
dir=$(mktemp -d /tmp/rp-corrupt-XXXXXX)
volume=$dir/volume
data=$dir/data
log=$dir/respoold.log
port=$(( 20000 + RANDOM % 12000 )) # below the ephemeral range: see tests/lib/testport.h
pid=

cleanup() {
    [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- respoold log:" >&2; tail -n 30 "$log" >&2 || true; exit 1; }
cli() { redis-cli -p "$port" "$@"; }

start() {
    "$respoold" -D "$data" --volume "$volume" --port "$port" >>"$log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        [[ "$(cli ping 2>/dev/null)" == PONG ]] && return 0
        kill -0 "$pid" 2>/dev/null || fail "respoold exited during start-up"
        sleep 0.05
    done
    fail "respoold did not answer"
}
stop() { kill -TERM "$pid"; wait "$pid" || fail "respoold did not exit cleanly"; pid=; }
crash() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
geometry() { "$respoolctl" volume check --volume "$volume" --json 2>/dev/null | jq -r "$1"; }
# flip_byte OFFSET: xor one byte of the volume with 0xff
flip_byte() {
    local off=$1 b
    b=$(od -An -tu1 -j "$off" -N1 "$volume" | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ 255 )))" | dd of="$volume" bs=1 seek="$off" conv=notrunc status=none
}

"$respoolctl" volume init --volume "$volume" --size 256M --wal-size 16M --max-instances 2 --quiet >/dev/null

echo "== 1. a flipped byte in a data page"
start
for i in $(seq 1 20); do cli set "key:$i" "value-$i" >/dev/null; done
stop
page_size=$(geometry .page_size)
data_offset=$(geometry .data_offset)
leaf=$(( $(geometry .root_page) + 1 )) # the first page the store allocates: its first leaf
off=$(( data_offset + leaf * page_size + 300 ))
flip_byte "$off"
"$respoolctl" volume check --volume "$volume" >"$dir/check.out" 2>&1 && fail "volume check passed a damaged page"
rc=$?
grep -q "page $leaf" "$dir/check.out" || fail "volume check does not name page $leaf: $(cat "$dir/check.out")"
start
reply=$(cli get key:1 2>&1 || true)
echo "   GET key:1 -> $reply"
[[ "$reply" == *"page $leaf of volume"* && "$reply" == *"checksum"* ]] || fail "GET on a damaged page answered: $reply"
[[ "$reply" == *"0x"* ]] || fail "the error does not give the checksums: $reply"
stop
flip_byte "$off" # restore
"$respoolctl" volume check --volume "$volume" --quiet >/dev/null || fail "volume not clean after restoring the byte"
echo "   ok: volume check exit $rc names page $leaf; GET refuses to serve it"

echo "== 2. a torn WAL tail"
start
for i in $(seq 1 50); do cli set "wal:$i" "v$i" >/dev/null; done
crash
ring=$(( $(geometry .wal_size) - $(geometry .wal_ring_offset) ))
end=$(( $(geometry '.slots[0].redo_pos') + $(geometry '.slots[0].recovery_bytes') ))
# the last record is SET wal:50; damage a byte inside it (records are at least 36 bytes)
pos=$(( end - 24 ))
flip_byte $(( $(geometry .wal_offset) + $(geometry .wal_ring_offset) + pos % ring ))
start
grep -q "WAL replay of slot 0 stopped at position" "$log" || fail "no log line about where replay stopped"
grep -q "fails its checksum" "$log" || fail "the log does not say why replay stopped"
for i in $(seq 1 49); do
    [[ "$(cli get "wal:$i")" == "v$i" ]] || fail "wal:$i lost after a torn tail"
done
[[ -z "$(cli get wal:50)" ]] || fail "the damaged record was applied"
echo "   ok: $(grep -o 'WAL replay of slot 0 stopped at position [0-9]*' "$log" | tail -1); writes before it intact"
stop

for copy in 0 1; do
    echo "== 3.$copy a damaged superblock copy $copy"
    sb_off=$(( copy == 0 ? 0 : 65536 ))
    flip_byte $(( sb_off + 100 ))
    "$respoolctl" volume check --volume "$volume" >"$dir/check.out" 2>&1 && fail "check passed a damaged superblock"
    [[ $? -eq 1 ]] || fail "a damaged superblock copy should be a warning (exit 1)"
    start
    grep -q "superblock copy $copy at offset $sb_off of volume \"$volume\" is damaged" "$log" || fail "no log line for copy $copy"
    grep -q "superblock copy $copy of volume \"$volume\" rewritten" "$log" || fail "copy $copy was not repaired"
    [[ "$(cli get wal:1)" == "v1" ]] || fail "data unreadable after superblock fallback"
    stop
    "$respoolctl" volume check --volume "$volume" --quiet >/dev/null || fail "volume not clean after repair"
    echo "   ok: copy $((1 - copy)) used, copy $copy repaired, volume clean"
done
echo "corruption.sh: all cases behave as documented"
