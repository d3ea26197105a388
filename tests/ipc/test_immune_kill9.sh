#!/usr/bin/env bash
# tests/ipc/test_immune_kill9.sh - failures 2 and 3: kill -9 leaves nothing behind and never blocks a
# restart (PostgreSQL leaks its SysV segment on every kill -9, and refuses to start while a stray still
# has it attached).
#
# Against ONE real respoold (the 3-instance cluster does not exist yet). Three rounds: clients write
# with sync commit; respoold is killed with SIGKILL in the middle of the load; then
#   - the process is gone and reaped (status 137, no zombie, no /proc entry);
#   - no SysV object, /dev/shm entry or POSIX message queue exists (repeated kills accumulate nothing),
#     and the private /dev/shm tmpfs holds no bytes;
#   - a restart on the same data directory and volume answers PING within 10 s (the time is printed),
#     with no manual step, and every acknowledged write is there (the one write in flight at the kill
#     may or may not be);
# after the last round a clean stop and `respoolctl volume check` must find the volume clean.
#
# Runs in a private IPC + mount namespace (immunity_lib.sh) so "no object at all" is exact even while
# other programs use IPC on the host.
. "$(dirname "$0")/immunity_lib.sh"
enter_private_ipc "$@"

ROUNDS=3
CLIENTS=4
MAX_RESTART_MS=10000

require_no_ipc "the test"
make_volume "$TMP"
LOGF=$TMP/respoold.log
PORT=$(free_port)
ARGS=(-D "$TMP/data" --volume "$TMP/volume" --buffer-pool-size 32M)
start_respoold PID "$PORT" "$LOGF" "${ARGS[@]}"
log "respoold $PID is up on port $PORT"

for ((round = 1; round <= ROUNDS; round++)); do
    check_footprint "$PID" "round $round, before the load"
    "$IMMUNITY_LOAD" run "$PORT" "$TMP/model.$round" 60 "$CLIENTS" --until-killed >"$TMP/load.$round" &
    LOAD_PID=$!
    cleanup_add "kill -KILL $LOAD_PID"
    sleep 1.5
    pid_gone "$LOAD_PID" && die "round $round: the load ended before the kill: $(cat "$TMP/load.$round")"
    check_footprint "$PID" "round $round, under load"
    log "round $round: SIGKILL to respoold $PID under load"
    kill_and_reap "$PID"

    wait "$LOAD_PID"
    load_rc=$?
    summary=$(cat "$TMP/load.$round")
    log "round $round: load: $summary"
    expect_eq "round $round: load exit status (no error reply before the kill)" 0 "$load_rc"
    expect_eq "round $round: clients cut off by the kill" "$CLIENTS" "$(kv disconnects "$summary")"
    acked=$(kv acked "$summary")
    ((acked >= 50)) && log "ok: round $round: $acked acknowledged writes before the kill" ||
        fail "round $round: only '$acked' acknowledged writes before the kill"

    expect_eq "round $round: IPC objects after kill -9" "" "$(ipc_objects)"
    if [[ $IPC_NS == private ]]; then
        expect_eq "round $round: bytes in the private /dev/shm after kill -9" 0 "$(df --output=used -B1 /dev/shm | tail -n 1 | tr -d ' ')"
    fi
    holders=$(fuser "$TMP/data/respool.lock" "$TMP/volume" 2>/dev/null | tr -s ' ' '\n' | sed '/^$/d' | sort -u | xargs)
    expect_eq "round $round: processes holding the data directory or volume after kill -9" "" "$holders"

    t0=$(now_ms)
    start_respoold PID "$PORT" "$LOGF" "${ARGS[@]}"
    took=$(($(now_ms) - t0))
    log "round $round: restart on the same data directory and volume answered PING after $took ms"
    ((took <= MAX_RESTART_MS)) || fail "round $round: restart took $took ms (limit $MAX_RESTART_MS ms)"
    verify=$("$IMMUNITY_LOAD" verify "$PORT" "$TMP/model.$round")
    expect_eq "round $round: acknowledged writes lost across kill -9" 0 "$(kv mismatches "$verify")"
done

check_footprint "$PID" "after $ROUNDS kills"
stop_respoold "$PID" "$LOGF"
"$RESPOOLCTL" volume check --volume "$TMP/volume" --quiet >"$TMP/check.out" 2>&1
expect_eq "respoolctl volume check after $ROUNDS kills" 0 "$?"
expect_eq "IPC objects left at the end" "" "$(ipc_objects)"
no_respoold_left
