#!/usr/bin/env bash
# tests/ipc/test_immune_overcommit.sh - failure 4: a memory limit too small for the buffer pool stops
# start-up at once, with an error that names vm.overcommit_memory, CommitLimit, Committed_AS and the size
# asked for, never a crash or an anonymous "Cannot allocate memory" later.
#
# Against ONE real respoold (the 3-instance cluster does not exist yet), WITHOUT sanitizers: ASan maps
# terabytes of shadow memory before main(), which vm.overcommit_memory=2 and RLIMIT_AS/RLIMIT_DATA
# refuse, so the sanitized test binary could not even start. RESPOOLD_PLAIN is that binary: in a
# sanitized tree tests/ipc/CMakeLists.txt builds it at build time (ExternalProject respoold_plain,
# release flags, into <build>/tests/ipc/immunity-plain); in an unsanitized tree it is the tree's own
# respoold. The test refuses to run a sanitized one.
#
#   A. Strict overcommit (skipped, with the reason, where vm.overcommit_memory cannot be written or the
#      host is too small for a safe window). Changing the mode changes it for every process on the
#      host, so: CommitLimit stays generous (vm.overcommit_ratio is raised to 100 if the room under it
#      would be below 4 GiB; nothing else is starved), mode 2 is switched on only around one respoold
#      start (bounded by `timeout`, well under a second in practice), the original mode is written back
#      right after it, and again by the EXIT trap whatever happens; this test runs alone (RUN_SERIAL).
#        - control, mode unchanged: buffer-pool-size = CommitLimit + 1 GiB (more than mode 2 can ever
#          grant, whatever Committed_AS does meanwhile) starts (when that is below MemTotal +
#          SwapTotal, which the heuristic mode allows);
#        - mode 2, the same size: start-up fails within 3 s, before mapping the pool, with the message;
#        - mode 2, a pool that fits (64M): respoold starts; its huge page attempt fails (no pages
#          configured) and it falls back to normal pages without failing: PostgreSQL's failure 4.
#   B. Process limits, always: RLIMIT_AS (ulimit -v) and RLIMIT_DATA (ulimit -d) below the pool fail the
#      same way (the message names the limit, vm.overcommit_memory, CommitLimit, Committed_AS and the
#      size), and the same limits with a pool that fits start.
. "$(dirname "$0")/immunity_lib.sh"
make_tmp

PLAIN=${RESPOOLD_PLAIN:-}
[[ -x $PLAIN ]] || die "RESPOOLD_PLAIN ('$PLAIN') is not an executable; build the respoold_plain target"
if ldd "$PLAIN" | grep -qE 'libasan|libtsan|libmsan'; then
    die "RESPOOLD_PLAIN ($PLAIN) is built with sanitizers; it could not start under the limits tested here"
fi
RESPOOLD=$PLAIN # start_respoold runs $RESPOOLD
log "respoold without sanitizers: $PLAIN"

make_volume "$TMP"
PORT=$(free_port)
ARGS=(-D "$TMP/data" --volume "$TMP/volume" --port "$PORT")
LOGF=$TMP/respoold.log

MODE=/proc/sys/vm/overcommit_memory
RATIO=/proc/sys/vm/overcommit_ratio
ORIG_MODE=$(cat "$MODE")
ORIG_RATIO=$(cat "$RATIO")
restore_overcommit() {
    echo "$ORIG_MODE" >"$MODE" 2>/dev/null
    echo "$ORIG_RATIO" >"$RATIO" 2>/dev/null
}
cleanup_add restore_overcommit
log "vm.overcommit_memory = $ORIG_MODE, vm.overcommit_ratio = $ORIG_RATIO, vm.overcommit_kbytes = $(cat /proc/sys/vm/overcommit_kbytes) (restored at exit)"

meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
# fmt_size BYTES: the way respoold prints sizes (rp_format_size)
fmt_size() {
    awk -v b="$1" 'BEGIN { split("KiB MiB GiB TiB", u, " "); if (b < 1024) { printf "%d bytes", b; exit }
                           v = b / 1024; i = 1; while (v >= 1024 && i < 4) { v /= 1024; i++ } printf "%.1f %s", v, u[i] }'
}
re_escape() { sed 's/[.[\()*+?^$|]/\\&/g' <<<"$1"; }
SIZE_RE='[0-9]+\.[0-9] (KiB|MiB|GiB|TiB)'

# refused WHAT OUTPUT STATUS MS POOL: the start-up refusal every case must produce
refused() {
    local what=$1 out=$2 rc=$3 ms=$4 pool=$5
    echo "$out" | grep -E 'FATAL|DETAIL|HINT' | sed 's/^/    | /'
    [[ $rc -ne 0 && $rc -lt 124 ]] && log "ok: $what: start-up failed with status $rc" ||
        fail "$what: status $rc (expected a plain failure, not success, a timeout or a signal)"
    ((ms <= 3000)) && log "ok: $what: failed at once ($ms ms)" || fail "$what: took $ms ms to fail"
    expect_match "$what: names the instance and the buffer pool size configured" \
        "FATAL .*for the instance \(buffer-pool-size = $(re_escape "$(fmt_size "$pool")"), wal-buffers = " "$out"
    expect_match "$what: names vm.overcommit_memory" 'vm\.overcommit_memory = [0-2]' "$out"
    expect_match "$what: names CommitLimit" "CommitLimit (is )?$SIZE_RE" "$out"
    expect_match "$what: names Committed_AS" "Committed_AS (is )?$SIZE_RE" "$out"
    expect_match "$what: names the size asked for" "$SIZE_RE was asked for" "$out"
    expect_match "$what: says what to do" 'HINT: ' "$out"
    expect_nomatch "$what: refused before mapping the pool" 'uses (normal|huge) pages' "$out"
    expect_nomatch "$what: no crash" 'AddressSanitizer|Segmentation|core dumped|Aborted|PANIC' "$out"
}

# started WHAT PID: respoold PID answered PING; it must stop cleanly
started() {
    local what=$1 pid=$2
    log "ok: $what: respoold $pid started"
    stop_respoold "$pid" "$LOGF"
}

# --- A. strict overcommit
partA=run
commit_room_kb() { echo $(($(meminfo CommitLimit) - $(meminfo Committed_AS))); }
if ! echo "$ORIG_MODE" >"$MODE" 2>/dev/null; then
    partA="skipped: cannot write $MODE here"
elif (($(commit_room_kb) < 4 * 1024 * 1024)) && [[ $(cat /proc/sys/vm/overcommit_kbytes) == 0 ]]; then
    echo 100 >"$RATIO" 2>/dev/null
    log "A: raised vm.overcommit_ratio to $(cat "$RATIO") so that mode 2 leaves room for the rest of the host"
fi
if [[ $partA == run ]] && (($(commit_room_kb) < 4 * 1024 * 1024)); then
    partA="skipped: CommitLimit - Committed_AS is only $(($(commit_room_kb) / 1024)) MiB even at vm.overcommit_ratio=$(cat "$RATIO"); strict mode would starve this host"
fi
if [[ $partA == run ]]; then
    # 1 GiB more than the whole CommitLimit: too much whatever Committed_AS does meanwhile
    ASK_MB=$(($(meminfo CommitLimit) / 1024 + 1024))
    ASK=$((ASK_MB * 1024 * 1024))
    LIMIT_NOW=$(fmt_size $(($(meminfo CommitLimit) * 1024)))
    log "A: CommitLimit $LIMIT_NOW, Committed_AS $(fmt_size $(($(meminfo Committed_AS) * 1024))); asking for buffer-pool-size = ${ASK_MB}M ($(fmt_size "$ASK"))"

    # control: the same request passes the start-up check in the current mode (heuristic allows up to
    # MemTotal + SwapTotal per request), so what refuses it below is strict mode and nothing else
    if ((ORIG_MODE != 2 && ASK / 1024 < $(meminfo MemTotal) + $(meminfo SwapTotal) - 1024 * 1024)); then
        start_respoold PID "$PORT" "$LOGF" -D "$TMP/data" --volume "$TMP/volume" --buffer-pool-size "${ASK_MB}M" --huge-pages off
        started "A (control, vm.overcommit_memory = $ORIG_MODE, ${ASK_MB}M)" "$PID"
    else
        log "A: no control run (the heuristic mode would refuse ${ASK_MB}M as well, or mode 2 is the host's own)"
    fi

    echo 2 >"$MODE"
    t0=$(now_ms)
    out=$(timeout 10 "$PLAIN" "${ARGS[@]}" --buffer-pool-size "${ASK_MB}M" 2>&1)
    rc=$?
    took=$(($(now_ms) - t0))
    echo "$ORIG_MODE" >"$MODE"
    log "A: vm.overcommit_memory was 2 for $(($(now_ms) - t0)) ms"
    refused "A (mode 2)" "$out" "$rc" "$took" "$ASK"
    expect_match "A: the strict mode is named" 'vm\.overcommit_memory = 2 \(strict\)' "$out"
    expect_match "A: CommitLimit as /proc/meminfo shows it" "CommitLimit is $(re_escape "$LIMIT_NOW")" "$out"
    expect_match "A: the room left is named" "so only $SIZE_RE can still be committed" "$out"
    expect_match "A: the hint names the sysctl" 'vm\.overcommit_(ratio|kbytes)=' "$out"

    # the fallback of failure 4: under mode 2 the huge page attempt fails, normal pages follow, start-up works
    echo 2 >"$MODE"
    t0=$(now_ms)
    : >"$LOGF"
    "$PLAIN" "${ARGS[@]}" --buffer-pool-size 64M --huge-pages try 2>>"$LOGF" &
    PID=$!
    RP_PIDS+=("$PID")
    cleanup_add "stop_quietly $PID"
    # no ASan program may run while mode 2 is on (immunity_load is sanitized): wait on the log instead
    up=no
    for ((i = 0; i < 200; i++)); do
        grep -q 'ready: listening' "$LOGF" && { up=yes; break; }
        pid_gone "$PID" && break
        sleep 0.05
    done
    echo "$ORIG_MODE" >"$MODE"
    log "A: vm.overcommit_memory was 2 for $(($(now_ms) - t0)) ms"
    sed -n '/buffer pool/p;/FATAL/,+2p' "$LOGF" | sed 's/^/    | /'
    if [[ $up == yes ]]; then
        log "ok: A (mode 2, 64M, huge-pages = try): respoold started"
        expect_match "A: fell back to normal pages and said why" 'buffer pool of 64\.0 MiB uses normal pages: ' "$(cat "$LOGF")"
        stop_respoold "$PID" "$LOGF"
    else
        fail "A (mode 2, 64M, huge-pages = try): respoold did not start"
        stop_quietly "$PID"
        forget_pid "$PID"
    fi
else
    echo "[$TEST_NAME] part A (strict overcommit) $partA"
fi
restore_overcommit
expect_eq "vm.overcommit_memory restored" "$ORIG_MODE" "$(cat "$MODE")"
expect_eq "vm.overcommit_ratio restored" "$ORIG_RATIO" "$(cat "$RATIO")"

# --- B. process limits: RLIMIT_AS and RLIMIT_DATA, which rp_host_check_commit checks in every mode
for lim in "v 786432 1024 AS" "d 262144 512 DATA"; do
    set -- $lim
    flag=$1 kb=$2 pool_mb=$3 name=$4
    t0=$(now_ms)
    out=$(ulimit -S -"$flag" "$kb" && exec timeout 10 "$PLAIN" "${ARGS[@]}" --buffer-pool-size "${pool_mb}M" 2>&1)
    rc=$?
    took=$(($(now_ms) - t0))
    refused "B (ulimit -$flag $kb, ${pool_mb}M)" "$out" "$rc" "$took" $((pool_mb * 1024 * 1024))
    expect_match "B: names RLIMIT_$name and the limit" \
        "RLIMIT_$name \(ulimit -$flag\) is $(re_escape "$(fmt_size $((kb * 1024)))")" "$out"
    # the same limit with a pool that fits: starts
    (
        ulimit -S -"$flag" "$kb"
        exec "$PLAIN" "${ARGS[@]}" --buffer-pool-size 64M 2>>"$LOGF"
    ) &
    PID=$!
    RP_PIDS+=("$PID")
    cleanup_add "stop_quietly $PID"
    wait_for 30 "$IMMUNITY_LOAD" ping "$PORT" 100 && started "B (ulimit -$flag $kb, 64M)" "$PID" ||
        { tail -n 5 "$LOGF" >&2; fail "B (ulimit -$flag $kb, 64M): respoold did not start"; stop_quietly "$PID"; forget_pid "$PID"; }
done
no_respoold_left
