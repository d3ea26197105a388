#!/usr/bin/env bash
# respoolctl_cluster.sh - `respoolctl cluster init|start|stop|status`, `respoolctl stats`, INFO cluster and
# `respoold --cluster-config`
# against real processes, including what goes wrong: refusing to overwrite, a member that fails to
# start or never answers, a member killed -9 (stale lock file), --foreground stopped by a signal and
# killed outright (its members must not outlive it), members of another host.
#
# Three members on one volume are started and stopped; nothing is written across them (cache fusion is
# not there yet). Run through ctest, which sets $RESPOOLD and $RESPOOLCTL. Every process this script
# starts is stopped by PID; the directory is removed on any exit.
set -euo pipefail
: "${RESPOOLD:?set RESPOOLD to the respoold binary (run through ctest)}"
: "${RESPOOLCTL:?set RESPOOLCTL to the respoolctl binary (run through ctest)}"

dir=$(mktemp -d "${TMPDIR:-/tmp}/respool-ctl-cluster-XXXXXX")
conf=$dir/c/cluster.conf
fg_pid=
extra_pids=()

# PIDs of live respoold processes of this directory (the program is respoold and its command line
# mentions the directory; zombies excluded)
our_respoolds() {
    local p
    for p in /proc/[0-9]*; do
        [[ -r $p/cmdline ]] || continue
        local cmd argv0 state
        cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
        argv0=${cmd%% *}
        [[ ${argv0##*/} == respoold && $cmd == *"$dir"* ]] || continue
        state=$(awk '{print $3}' "$p/stat" 2>/dev/null) || continue
        [[ $state == Z ]] && continue
        echo "${p#/proc/}"
    done
}

cleanup() {
    local status=$?
    [[ -n $fg_pid ]] && kill -9 "$fg_pid" 2>/dev/null || true
    for p in "${extra_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [[ -f $conf ]] && "$RESPOOLCTL" cluster stop --config "$conf" --timeout 20 >/dev/null 2>&1 || true
    for p in $(our_respoolds); do kill -9 "$p" 2>/dev/null || true; done
    # members are orphans once respoolctl exits; wait until init has reaped the exited ones (zombies
    # have no command line to tell whose they are), since scripts/test.sh looks for any respoold after
    # the run
    for _ in $(seq 1 100); do
        ps -eo stat=,comm= | awk '$1 ~ /^Z/ && $2 == "respoold" {found = 1} END {exit !found}' || break
        sleep 0.1
    done
    rm -rf "$dir"
    exit $status
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$dir"/c/data*/respoold.log "$dir"/out "$dir"/err; do
        [[ -f $f ]] && { echo "---- $f ----" >&2; tail -20 "$f" >&2; }
    done
    exit 1
}

# run WANT_STATUS CMD...: stdout to $dir/out, stderr to $dir/err, and the exit status must be WANT
run() {
    local want=$1 got=0
    shift
    timeout 120 "$@" >"$dir/out" 2>"$dir/err" || got=$?
    [[ $got -eq $want ]] || fail "\"$*\" exited $got, expected $want"
}
has() { grep -q -- "$2" "$dir/$1" || fail "$1 of the last command lacks \"$2\""; }
count() { grep -c -- "$2" "$dir/$1" || true; }

# two runs of three free ports below the ephemeral range (tests/lib/testport.h)
free_run() {
    local base i
    for _ in $(seq 1 200); do
        base=$((20000 + RANDOM % 12000))
        for i in 0 1 2 3; do
            (exec 3<>"/dev/tcp/127.0.0.1/$((base + i))") 2>/dev/null && continue 2
        done
        echo "$base"
        return
    done
    fail "no free ports"
}
base=$(free_run)
cbase=$(free_run)
while ((cbase < base + 4 && base < cbase + 4)); do cbase=$(free_run); done

# ---- init ---------------------------------------------------------------------------------------
run 64 "$RESPOOLCTL" cluster init --dir "$dir/c"
has err "no --instances given"
run 64 "$RESPOOLCTL" cluster init --instances 0 --dir "$dir/c"
run 64 "$RESPOOLCTL" cluster init --instances 3 --dir "$dir/c" --max-instances 2
has err "less than --instances"
run 64 "$RESPOOLCTL" cluster init --instances 2 --dir "$dir/c" --base-port 6380 --cluster-base-port 6381
has err "port 6381 is used twice on host 127.0.0.1"
[[ ! -e $dir/c/volume ]] || fail "a refused init created the volume"

init=("$RESPOOLCTL" cluster init --instances 3 --dir "$dir/c" --base-port "$base" --cluster-base-port "$cbase"
      --size 256M --wal-size 16M --max-instances 4)
run 0 "${init[@]}"
has out "initialized cluster \"respool\" in $dir/c"
[[ $(stat -c %a "$dir/c/cluster.key") == 600 ]] || fail "cluster.key is not 0600"
[[ $(stat -c %a "$conf") == 644 ]] || fail "cluster.conf is not 0644"
[[ $(tr -d '\n' <"$dir/c/cluster.key" | wc -c) -eq 64 ]] || fail "cluster.key is not 64 characters"
for i in 0 1 2; do [[ -d $dir/c/data$i ]] || fail "data$i was not created"; done
grep -q "^port         = $((base + 2))$" "$conf" || fail "instance 2's port is not $((base + 2))"
key_before=$(cat "$dir/c/cluster.key")
run 3 "${init[@]}"
has err "already exists"
has err "Pass --force"
[[ $(cat "$dir/c/cluster.key") == "$key_before" ]] || fail "a refused init changed the secret"

# ---- start, start again, status -----------------------------------------------------------------
start=("$RESPOOLCTL" cluster start --config "$conf" --respoold "$RESPOOLD" -- --buffer-pool-size 32M --io-threads 2)
run 0 "${start[@]}"
[[ $(count out " started$") -eq 3 ]] || fail "start did not report 3 members started"
[[ $(our_respoolds | wc -l) -eq 3 ]] || fail "3 respoold expected"
for i in 0 1 2; do
    grep -q "ready: listening on 127.0.0.1 port $((base + i)); instance $i " "$dir/c/data$i/respoold.log" ||
        fail "member $i did not start as instance $i on port $((base + i))"
done
run 0 "${start[@]}"
[[ $(count out "already running") -eq 3 ]] || fail "a second start did not find 3 running"
[[ $(our_respoolds | wc -l) -eq 3 ]] || fail "a second start changed the number of respoold"

run 0 "$RESPOOLCTL" cluster status --config "$conf" --json
[[ $(jq '.answering' "$dir/out") -eq 3 ]] || fail "status --json: not 3 answering"
[[ $(jq '[.members[] | select(.running == true and .ping == "PONG")] | length' "$dir/out") -eq 3 ]] ||
    fail "status --json: not 3 running and answering PONG"
pid1=$(jq '.members[1].pid' "$dir/out")
[[ $(head -1 "$dir/c/data1/respool.lock") == "$pid1" ]] || fail "status' pid is not the lock file's"

# ---- INFO cluster, respoolctl stats [--pages] ----------------------------------------------------
for i in 0 1 2; do
    [[ $(redis-cli -p $((base + i)) set "stats-key-$i" "v$i") == OK ]] || fail "SET through member $i failed"
done
[[ $(redis-cli -p "$base" get stats-key-2) == v2 ]] || fail "member 0 does not read member 2's write"
redis-cli -p $((base + 1)) info cluster | tr -d '\r' >"$dir/info"
grep -q "^cluster_enabled:1$" "$dir/info" || fail "INFO cluster lacks cluster_enabled:1: $(cat "$dir/info")"
grep -q "^cluster_members_connected:3$" "$dir/info" || fail "INFO cluster: not 3 members connected"
for f in fusion_local_hits fusion_remote_2way fusion_remote_3way fusion_x_transfers fusion_invalidations_sent \
    fusion_bytes_in fusion_waits fusion_timeouts fusion_latency_p50_us fusion_latency_p99_us \
    directory_entries directory_bytes extents_owned; do
    grep -Eq "^$f:[0-9.]+$" "$dir/info" || fail "INFO cluster lacks a number for $f"
done
# three members wrote and read each other's pages: someone received a page over the wire
moved=0
for i in 0 1 2; do
    n=$(redis-cli -p $((base + i)) info cluster | tr -d '\r' | sed -n 's/^fusion_bytes_in://p')
    moved=$((moved + n))
done
((moved > 0)) || fail "no cache-fusion bytes moved between the members"
run 0 "$RESPOOLCTL" stats --config "$conf"
[[ $(count out "^instance [012] ") -eq 3 ]] || fail "stats did not report 3 members"
has out "fusion_x_transfers:"
run 0 "$RESPOOLCTL" stats --config "$conf" --pages --instance 2
# member 2 holds the leaf it wrote last in X or S (or N if another member took it since), dirty or not
grep -Eq "^2 +[0-9]+ +[NSX] +(yes|no) +[0-9]+$" "$dir/out" || fail "stats --pages lists no page of member 2"
grep -Eq "^2 +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ [0-9]+$" "$dir/out" || fail "stats --pages lacks member 2's summary"
[[ $(grep -Ec "^[01] " "$dir/out") -eq 0 ]] || fail "stats --pages --instance 2 listed other members"
[[ $(redis-cli -p "$base" respool pages | head -1) =~ ^page=[0-9]+\ mode=[NSX]\ dirty=[01]\ lsn=[0-9]+$ ]] ||
    fail "RESPOOL PAGES does not answer page=... mode=... dirty=... lsn=... lines"
run 64 "$RESPOOLCTL" stats --config "$conf" --instance 9
run 64 "$RESPOOLCTL" stats
has err "no --config given"

# ---- stop one, start one ------------------------------------------------------------------------
run 0 "$RESPOOLCTL" cluster stop --config "$conf" --instance 1
has out "stopped in"
[[ $(count out "stopped in") -eq 1 ]] || fail "stop --instance 1 stopped more than one"
run 1 "$RESPOOLCTL" cluster status --config "$conf"
has out "2 of 3 members answering"
run 0 "$RESPOOLCTL" cluster start --config "$conf" --respoold "$RESPOOLD" --instance 1
has out " started"

# ---- a member killed -9: its lock file names a dead process -------------------------------------
pid2=$(head -1 "$dir/c/data2/respool.lock")
kill -9 "$pid2"
for _ in $(seq 1 50); do [[ -d /proc/$pid2 && $(awk '{print $3}' "/proc/$pid2/stat" 2>/dev/null) != Z ]] || break; sleep 0.1; done
run 1 "$RESPOOLCTL" cluster status --config "$conf"
has out "did not stop cleanly"
run 0 "${start[@]}"
has out " started"
[[ $(count out "already running") -eq 2 ]] || fail "start after a kill -9 did not leave the 2 others alone"
grep -q "WAL\|recover\|replay" "$dir/c/data2/respoold.log" || fail "member 2 did not recover"

# ---- stop two, then all -------------------------------------------------------------------------
run 0 "$RESPOOLCTL" cluster stop --config "$conf" --instance 0 --instance 2
[[ $(count out "stopped in") -eq 2 ]] || fail "stop --instance 0 --instance 2 did not stop two"
run 0 "$RESPOOLCTL" cluster stop --config "$conf"
[[ $(count out "stopped in") -eq 1 && $(count out "not running") -eq 2 ]] || fail "stop did not stop the third"
[[ -z $(our_respoolds) ]] || fail "respoold left after stop"
run 0 "$RESPOOLCTL" cluster stop --config "$conf"
[[ $(count out "not running") -eq 3 ]] || fail "a second stop did not find 3 stopped"
run 2 "$RESPOOLCTL" cluster status --config "$conf"
for i in 0 1 2; do grep -q "respoold stopped" "$dir/c/data$i/respoold.log" || fail "member $i did not stop cleanly"; done

# ---- a member that fails to start, and one that never answers ------------------------------------
run 3 "$RESPOOLCTL" cluster start --config "$conf" --respoold "$RESPOOLD" --instance 0 -- --no-such-key 1
has out "failed: exit status 1 during start"
has err "instance 0 did not start"
has err "unknown configuration key \"no-such-key\""
mkdir -p "$dir/bin"
printf '#!/bin/sh\necho "fake respoold: $*"\nexec sleep 300\n' >"$dir/bin/respoold"
chmod +x "$dir/bin/respoold"
run 3 "$RESPOOLCTL" cluster start --config "$conf" --respoold "$dir/bin/respoold" --instance 2 --timeout 1
has err "did not answer PING in time"
has err "fake respoold: --cluster-config $conf --instance 2"
has out "no answer to PING within 1 s (still running)"
fake=$(awk '$1 == 2 {print $5}' "$dir/out")
[[ $fake =~ ^[0-9]+$ ]] && extra_pids+=("$fake") && kill "$fake"
run 64 "$RESPOOLCTL" cluster start --config "$conf" --instance 9
has err "instance 9 is not a member"

# ---- --foreground: log lines prefixed, SIGTERM stops all cleanly ---------------------------------
"${start[@]:0:7}" --foreground -- --buffer-pool-size 32M --io-threads 2 >"$dir/fg" 2>&1 &
fg_pid=$!
for _ in $(seq 1 300); do grep -q "members running" "$dir/fg" && break; sleep 0.1; done
grep -q "3 members running; Ctrl-C stops them all" "$dir/fg" || fail "--foreground did not start 3 members: $(cat "$dir/fg")"
grep -q "^\[1\] .*ready: listening on 127.0.0.1 port $((base + 1))" "$dir/fg" || fail "--foreground does not show member 1's log prefixed"
[[ $(our_respoolds | wc -l) -eq 3 ]] || fail "--foreground: 3 respoold expected, found: $(our_respoolds | xargs -r -I{} cat /proc/{}/cmdline | tr "\0" " ")"
kill -TERM "$fg_pid"
fg_status=0
wait "$fg_pid" || fg_status=$?
fg_pid=
[[ $fg_status -eq 0 ]] || fail "--foreground exited $fg_status after SIGTERM: $(tail -20 "$dir/fg")"
[[ $(grep -c "stopped (exit status 0)" "$dir/fg") -eq 3 ]] || fail "--foreground did not report 3 clean stops"
grep -q "^\[2\] .*respoold stopped" "$dir/fg" || fail "--foreground does not show member 2's last log line"
[[ -z $(our_respoolds) ]] || fail "respoold left after --foreground's stop"

# ---- --foreground killed outright: its members follow it (PR_SET_PDEATHSIG) -----------------------
"${start[@]:0:7}" --foreground -- --buffer-pool-size 32M --io-threads 2 >"$dir/fg" 2>&1 &
fg_pid=$!
for _ in $(seq 1 300); do grep -q "members running" "$dir/fg" && break; sleep 0.1; done
[[ $(our_respoolds | wc -l) -eq 3 ]] || fail "--foreground (2): 3 respoold expected"
kill -KILL "$fg_pid"
wait "$fg_pid" 2>/dev/null || true
fg_pid=
for _ in $(seq 1 300); do [[ -z $(our_respoolds) ]] && break; sleep 0.1; done
[[ -z $(our_respoolds) ]] || fail "members outlived a killed --foreground respoolctl"

# ---- members of another host --------------------------------------------------------------------
sed 's/^host *= 127.0.0.1$/host = 198.51.100.7/' "$conf" >"$dir/c/remote.conf"
run 3 "$RESPOOLCTL" cluster start --config "$dir/c/remote.conf" --respoold "$RESPOOLD"
has err "no member of"
has out "on another host: not started here"
run 2 "$RESPOOLCTL" cluster status --config "$dir/c/remote.conf" --timeout-ms 300 --json
[[ $(jq '[.members[] | select(.local == false and .running == null)] | length' "$dir/out") -eq 3 ]] ||
    fail "status does not show 3 remote members"

# ---- respoold --cluster-config ------------------------------------------------------------------
run 1 "$RESPOOLD" --cluster-config "$conf"
has err "no instance id given"
run 1 "$RESPOOLD" --cluster-config "$dir/c/remote.conf" --instance 0
has err "is not this host"
chmod 640 "$dir/c/cluster.key"
run 1 "$RESPOOLD" --cluster-config "$conf" --instance 0
has err "Run: chmod 600 $dir/c/cluster.key"
run 3 "$RESPOOLCTL" cluster status --config "$conf"
has err "is accessible by group or others"
chmod 600 "$dir/c/cluster.key"
# An explicit setting wins over the member's section. Members 1 and 2 run meanwhile: a member that
# joins a cluster may wait for the others before it serves.
run 0 "${start[@]}"
run 0 "$RESPOOLCTL" cluster stop --config "$conf" --instance 0
oport=$(free_run)
"$RESPOOLD" --cluster-config "$conf" --instance 0 --port "$oport" --buffer-pool-size 32M --io-threads 2 \
    >"$dir/explicit.log" 2>&1 &
extra_pids+=($!)
for _ in $(seq 1 900); do grep -q "ready" "$dir/explicit.log" && break; sleep 0.1; done
grep -q "listening on 127.0.0.1 port $oport; instance 0 .*data directory \"$dir/c/data0\"" "$dir/explicit.log" ||
    fail "--port did not win over the member's port: $(cat "$dir/explicit.log")"
kill -TERM "${extra_pids[-1]}"
wait "${extra_pids[-1]}" || fail "respoold with an explicit port did not stop cleanly"

# ---- init --force: refused while members run, then replaces --------------------------------------
run 3 "${init[@]}" --force
has err "is in use"
[[ $(cat "$dir/c/cluster.key") == "$key_before" ]] || fail "init --force on a running cluster changed the secret"
run 0 "$RESPOOLCTL" cluster stop --config "$conf"
run 0 "${init[@]}" --force
[[ $(cat "$dir/c/cluster.key") != "$key_before" ]] || fail "init --force did not write a new secret"

echo "ok: respoolctl cluster init/start/stop/status and respoold --cluster-config"
