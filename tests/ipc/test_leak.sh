#!/usr/bin/env bash
# tests/ipc/test_leak.sh - failure 3: segments abandoned by killed servers pile up until shmget fails.
#
# A helper creates segments (IPC_PRIVATE and keyed), uses them and exits without removing them, like a
# server killed with -9. Another holds a segment attached and stays alive; a third creates one, detaches
# and stays alive. The leak report must find exactly the abandoned ones, --fix must remove exactly them,
# and the held and the kept segment must survive every --fix. Once their owner dies, they are orphans
# and --fix removes them too.
. "$(dirname "$0")/lib.sh"

ensure_user
make_tmp
UID_T=$(id -u "$TEST_USER")
SIZE=$((1024 * 1024))
KEYBASE=$((0x52500000 + ($$ % 4096) * 8))

# Orphans of the test user that were there before (none on a clean machine); "exactly" means ours on top.
run_json out rc ipc --json --user "$TEST_USER"
PRE=$(json '[.shm[] | select(.class == "orphan") | .shmid] | sort | .[]' "$out")
PRE_BYTES=$(json '[.shm[] | select(.class == "orphan") | .size] | add // 0' "$out")

# --- abandon 2 private + 2 keyed segments
ABANDONED=$(as_user "$HELPER" abandon 2 2 "$KEYBASE" "$SIZE") || die "helper abandon failed"
mapfile -t OURS < <(awk '{ print $1 }' <<<"$ABANDONED" | sort -n)
for id in "${OURS[@]}"; do cleanup_add "ipcrm -m $id"; done
expect_eq "abandoned segments" 4 "${#OURS[@]}"
for id in "${OURS[@]}"; do
    expect_eq "nattch of abandoned $id" 0 "$(shm_nattch "$id")"
done

# --- a live holder (attached) and a live keeper (unattached, creator alive)
"${AS_USER[@]}" "$HELPER" hold "$SIZE" "$((KEYBASE + 100))" >"$TMP/hold.out" 2>&1 &
cleanup_add "kill -KILL $!"
"${AS_USER[@]}" "$HELPER" keep "$SIZE" >"$TMP/keep.out" 2>&1 &
cleanup_add "kill -KILL $!"
wait_for 10 grep -q ready "$TMP/hold.out" || die "hold helper did not start"
wait_for 10 grep -q ready "$TMP/keep.out" || die "keep helper did not start"
read -r HOLD_ID _ HOLD_PID < "$TMP/hold.out"
read -r KEEP_ID _ KEEP_PID < "$TMP/keep.out"
cleanup_add "ipcrm -m $HOLD_ID"
cleanup_add "ipcrm -m $KEEP_ID"
expect_eq "holder is attached" 1 "$(shm_nattch "$HOLD_ID")"

# --- the leak report
run_json out rc ipc --json --user "$TEST_USER"
expect_eq "exit status with orphans (warning)" 1 "$rc"
FOUND=$(json '[.shm[] | select(.class == "orphan") | .shmid] | sort | .[]' "$out")
EXPECTED=$(printf '%s\n' $PRE "${OURS[@]}" | sort -n | awk 'NF')
expect_eq "orphans found" "$(echo $EXPECTED)" "$(echo $FOUND)"
expect_eq "orphaned bytes" "$((PRE_BYTES + 4 * SIZE))" "$(json '.summary.orphaned_bytes' "$out")"
expect_eq "orphaned segment count" "$(wc -w <<<"$EXPECTED")" "$(json '.summary.orphaned_segments' "$out")"
expect_eq "SHMALL in the summary" "$(cat /proc/sys/kernel/shmall)" \
    "$(grep -o '"shmall_pages":[[:space:]]*[0-9]*' <<<"$out" | grep -o '[0-9]*$')"
expect_eq "SHMMNI in the summary" "$(cat /proc/sys/kernel/shmmni)" "$(json '.summary.shmmni' "$out")"
expect_eq "class of the held segment" attached "$(json ".shm[] | select(.shmid == $HOLD_ID) | .class" "$out")"
expect_eq "holder named as mapper" "$HOLD_PID" "$(json ".shm[] | select(.shmid == $HOLD_ID) | .mapped_by[0].pid" "$out")"
expect_eq "class of the kept segment" foreign "$(json ".shm[] | select(.shmid == $KEEP_ID) | .class" "$out")"
for id in "${OURS[@]}"; do
    expect_eq "owner of $id" "$UID_T" "$(json ".shm[] | select(.shmid == $id) | .uid" "$out")"
done
KEYED=$(json "[.shm[] | select(.key == $KEYBASE or .key == $((KEYBASE + 1))) | .class] | join(\",\")" "$out")
expect_eq "keyed abandoned segments are orphans" "orphan,orphan" "$KEYED"

# The text report says the same, with the leak summary against SHMALL.
run_ctl txt rc ipc --user "$TEST_USER"
expect_match "text names the held segment's mapper" "mapped by PID $HOLD_PID" "$txt"
expect_match "leak summary" "Leak summary: $(wc -w <<<"$EXPECTED") orphaned segments? hold .* of kernel.shmall" "$txt"
expect_match "dry run lists each orphan" "would remove shared memory segment .*ID ${OURS[0]}," "$txt"
for id in "${OURS[@]}" "$HOLD_ID" "$KEEP_ID"; do
    shm_exists "$id" || fail "the dry run removed segment $id"
done

# --- --fix removes exactly the orphans
run_ctl txt rc ipc --fix --user "$TEST_USER"
expect_eq "exit status after --fix" 0 "$rc"
for id in "${OURS[@]}"; do
    if shm_exists "$id"; then fail "orphan $id survived --fix"; else log "ok: orphan $id removed"; fi
    expect_match "action printed for $id" "removing shared memory segment .*ID $id," "$txt"
done
shm_exists "$HOLD_ID" && log "ok: held segment survived --fix" || fail "--fix removed the ATTACHED segment $HOLD_ID"
shm_exists "$KEEP_ID" && log "ok: kept segment survived --fix" || fail "--fix removed segment $KEEP_ID of a live creator"
expect_nomatch "no action on the held segment" "ID $HOLD_ID," "$(grep -E 'remov' <<<"$txt")"

# --- and every later --fix, too
for i in 1 2; do
    run_ctl txt rc ipc --fix --user "$TEST_USER"
    expect_eq "exit status of --fix #$((i + 1))" 0 "$rc"
    shm_exists "$HOLD_ID" || fail "--fix #$((i + 1)) removed the attached segment"
    shm_exists "$KEEP_ID" || fail "--fix #$((i + 1)) removed the kept segment"
done

# --- the holder dies (kill -9): now its segment is an orphan, and --fix takes it
kill -KILL "$HOLD_PID" "$KEEP_PID"
wait_for 10 nattch_is "$HOLD_ID" 0 ||
    fail "holder's segment still attached after kill -9"
wait_for 10 pid_gone "$KEEP_PID" || fail "keeper did not die"
run_json out rc ipc --json --user "$TEST_USER"
expect_eq "held segment after its holder died" orphan "$(json ".shm[] | select(.shmid == $HOLD_ID) | .class" "$out")"
expect_eq "kept segment after its creator died" orphan "$(json ".shm[] | select(.shmid == $KEEP_ID) | .class" "$out")"
run_ctl txt rc ipc --fix --user "$TEST_USER"
shm_exists "$HOLD_ID" && fail "orphaned segment $HOLD_ID not removed" || log "ok: $HOLD_ID removed once orphaned"
shm_exists "$KEEP_ID" && fail "orphaned segment $KEEP_ID not removed" || log "ok: $KEEP_ID removed once orphaned"
