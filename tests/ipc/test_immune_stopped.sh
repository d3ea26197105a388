#!/usr/bin/env bash
# tests/ipc/test_immune_stopped.sh - failure 2: a stopped leftover cannot block a restart once it is
# killed, and while it lives it is reported for what it is.
#
# PostgreSQL's version: the postmaster is killed with -9, a stopped backend keeps the SysV interlock
# segment attached, and every start fails ("pre-existing shared memory block ... is still in use") until
# someone finds and kills the backend. respoold has no such segment: the data directory interlock is an
# flock the kernel drops when the holder dies, and the volume slot an OFD lock likewise.
#
# Against ONE real respoold (the 3-instance cluster does not exist yet):
#   1. respoold A serves writes (recorded), then is stopped with SIGSTOP;
#   2. a second respoold on the same data directory fails within 5 s, naming A's PID and "stopped",
#      and never starts listening; a second one on another data directory but the same volume slot
#      fails too, naming A's PID as the volume's opener (A's data is safe while it lives);
#   3. A, still stopped, is killed with SIGKILL and reaped;
#   4. a restart on the same data directory and volume answers within 10 s (printed), every
#      acknowledged write is there, and no IPC object exists at any point.
. "$(dirname "$0")/immunity_lib.sh"
enter_private_ipc "$@"

MAX_RESTART_MS=10000
MAX_REFUSAL_MS=5000

require_no_ipc "the test"
make_volume "$TMP"
LOGF=$TMP/respoold.log
PORT=$(free_port)
ARGS=(-D "$TMP/data" --volume "$TMP/volume" --buffer-pool-size 32M)
start_respoold A "$PORT" "$LOGF" "${ARGS[@]}"
log "respoold A = $A is up on port $PORT"

"$IMMUNITY_LOAD" run "$PORT" "$TMP/model" 2 4 >"$TMP/load.out"
expect_eq "load before the stop" 0 "$?"
log "load: $(cat "$TMP/load.out")"
check_footprint "$A" "before SIGSTOP"

kill -STOP "$A"
wait_for 5 grep -q '^State:.*T' "/proc/$A/status" || die "respoold $A did not stop"
log "respoold $A is stopped: $(grep '^State:' "/proc/$A/status")"

# --- a second instance on the same data directory: refused at once, with the holder named
PORT2=$(free_port)
t0=$(now_ms)
timeout 30 "$RESPOOLD" "${ARGS[@]}" --port "$PORT2" >"$TMP/second.log" 2>&1
rc=$?
took=$(($(now_ms) - t0))
second=$(cat "$TMP/second.log")
log "second start on the same data directory: exit status $rc after $took ms"
echo "$second" | sed 's/^/    | /'
[[ $rc -ne 0 && $rc -ne 124 ]] && log "ok: the second start failed" || fail "the second start did not fail by itself (status $rc)"
((took <= MAX_REFUSAL_MS)) && log "ok: refused within $MAX_REFUSAL_MS ms" || fail "the refusal took $took ms"
expect_match "the refusal names the data directory" "could not lock data directory \"$TMP/data\"" "$second"
expect_match "the refusal names the stopped holder" "held by process $A \(respoold, stopped\)" "$second"
expect_match "the refusal says what to do" "HINT: +Stop that instance first" "$second"
"$IMMUNITY_LOAD" ping "$PORT2" 100 && fail "the refused instance answers on port $PORT2"

# --- same volume slot from another data directory: the volume's slot lock refuses it too
timeout 30 "$RESPOOLD" -D "$TMP/data2" --volume "$TMP/volume" --buffer-pool-size 32M --port "$PORT2" \
    >"$TMP/third.log" 2>&1
rc=$?
third=$(cat "$TMP/third.log")
echo "$third" | sed 's/^/    | /'
[[ $rc -ne 0 && $rc -ne 124 ]] && log "ok: a start on the same volume slot failed" || fail "a second instance took slot 0 (status $rc)"
expect_match "the slot refusal names the slot" "instance slot 0 of volume \"$TMP/volume\" is in use" "$third"
expect_match "the slot refusal names the stopped holder" "$A \(respoold\)" "$third"
check_footprint "$A" "while stopped"

# --- kill the stopped instance: nothing of it may block the restart
kill_and_reap "$A"
expect_eq "IPC objects after killing the stopped instance" "" "$(ipc_objects)"
t0=$(now_ms)
start_respoold B "$PORT" "$LOGF" "${ARGS[@]}"
took=$(($(now_ms) - t0))
log "restart after killing the stopped instance answered PING after $took ms (respoold $B)"
((took <= MAX_RESTART_MS)) || fail "the restart took $took ms (limit $MAX_RESTART_MS ms)"
verify=$("$IMMUNITY_LOAD" verify "$PORT" "$TMP/model")
expect_eq "acknowledged writes lost" 0 "$(kv mismatches "$verify")"
check_footprint "$B" "after the restart"
stop_respoold "$B" "$LOGF"
expect_eq "IPC objects left at the end" "" "$(ipc_objects)"
no_respoold_left
