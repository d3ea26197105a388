#!/usr/bin/env bash
# tests/ipc/test_immune_removeipc.sh - failure 1 (systemd-logind RemoveIPC=yes) cannot hurt respoold.
#
# Against ONE real respoold (the 3-instance cluster does not exist yet; when it does, run this against
# every member): while several clients write with sync commit for ~10 s, recording every acknowledged
# reply, the test repeatedly does what logind does when a user's last session ends: removes every SysV
# segment, semaphore set and message queue (`ipcrm -a`) and unlinks every /dev/shm entry and POSIX
# message queue. To make each removal real, every round first creates decoys of each kind (a SysV
# segment, semaphore set, message queue, a /dev/shm file, a POSIX queue) and proves they are gone after.
#
# Asserts: zero client errors (every reply right, no broken connection), zero lost writes (every
# acknowledged value read back exactly, from the live server and again after a clean restart), and
# respoold's IPC footprint is zero before, during and after: no SysV object with its PID as creator or
# last user, no IPC object at all besides the decoys, no /SYSV, /dev/shm or mqueue mapping, no such fd.
#
# Safety: runs in a private IPC + mount namespace (see immunity_lib.sh), so `ipcrm -a` cannot reach
# anything outside the test; without one it runs on the host only if the host has no IPC object at all.
. "$(dirname "$0")/immunity_lib.sh"
enter_private_ipc "$@"

LOAD_SECONDS=${RP_IMMUNE_LOAD_SECONDS:-10}
CLIENTS=6

require_no_ipc "ipcrm -a"
make_volume "$TMP"
PORT=$(free_port)
LOGF=$TMP/respoold.log
start_respoold PID "$PORT" "$LOGF" -D "$TMP/data" --volume "$TMP/volume" --buffer-pool-size 32M
log "respoold $PID is up on port $PORT"
check_footprint "$PID" "before the load"

make_decoys r0
log "decoys: ${DECOYS[*]}"
check_footprint "$PID" "with the decoys present"

"$IMMUNITY_LOAD" run "$PORT" "$TMP/model" "$LOAD_SECONDS" "$CLIENTS" >"$TMP/load.out" &
LOAD_PID=$!
cleanup_add "kill -KILL $LOAD_PID"

rounds=0
while ! pid_gone "$LOAD_PID"; do
    sleep 0.3
    ((rounds > 0)) && make_decoys "r$rounds"
    remove_ipc_like_logind
    rounds=$((rounds + 1))
    check_footprint "$PID" "after removal round $rounds"
    if pid_gone "$PID"; then
        tail -n 5 "$LOGF" | sed 's/^/    log| /' >&2
        die "respoold $PID died during removal round $rounds"
    fi
done
wait "$LOAD_PID"
load_rc=$?
summary=$(cat "$TMP/load.out")
log "load: $summary; $rounds removal rounds removed $REMOVED_TOTAL IPC objects"
expect_eq "load exit status" 0 "$load_rc"
expect_eq "client errors" 0 "$(kv errors "$summary")"
expect_eq "broken connections" 0 "$(kv disconnects "$summary")"
acked=$(kv acked "$summary")
((acked >= 100)) && log "ok: $acked acknowledged writes under removal" || fail "only '$acked' acknowledged writes: the load did not run"
((rounds >= 5)) && log "ok: $rounds removal rounds during the load" || fail "only $rounds removal rounds ran during the load"
((REMOVED_TOTAL >= 5 * rounds)) && log "ok: every round removed the decoys ($REMOVED_TOTAL objects)" ||
    fail "the removal rounds removed only $REMOVED_TOTAL objects; the decoys were not there to remove"

# every acknowledged write, read back from the server that lived through the removals
verify=$("$IMMUNITY_LOAD" verify "$PORT" "$TMP/model")
expect_eq "lost writes (live server)" 0 "$(kv mismatches "$verify")"
check_footprint "$PID" "after the load"
expect_nomatch "respoold logged no error or warning" ' (ERROR|FATAL|PANIC|WARNING) ' "$(cat "$LOGF")"

# ...and from the volume: a clean stop, a restart, the same values
stop_respoold "$PID" "$LOGF"
start_respoold PID "$PORT" "$LOGF" -D "$TMP/data" --volume "$TMP/volume" --buffer-pool-size 32M
verify=$("$IMMUNITY_LOAD" verify "$PORT" "$TMP/model")
expect_eq "lost writes (after a clean restart)" 0 "$(kv mismatches "$verify")"
check_footprint "$PID" "after the restart"
stop_respoold "$PID" "$LOGF"

expect_eq "IPC objects left at the end" "" "$(ipc_objects)"
no_respoold_left
