#!/usr/bin/env bash
# tests/ipc/test_explain.sh - `respoolctl ipc --explain` on every message it knows, judged against this
# host's state, and `respoolctl ipc -D` on the lock-file cases that need no running server: a PID reused
# by another program, a zombie postmaster, a dead one, and an openGauss-style (7-line) postmaster.pid
# whose segment a surviving process still maps.
. "$(dirname "$0")/lib.sh"

ensure_user
make_tmp
NOW=$(date +%s)

# mkdatadir NAME: an empty data directory owned by the test user
mkdatadir() {
    mkdir -p "$TMP/$1" && echo 15 >"$TMP/$1/PG_VERSION" && chown -R "$TEST_USER" "$TMP/$1" && chmod 700 "$TMP/$1"
    echo "$TMP/$1"
}

# --- lock file: the PID now belongs to another program of the same user
D1=$(mkdatadir reused)
"${AS_USER[@]}" sleep 300 </dev/null >/dev/null 2>&1 &
SPID=$!
cleanup_add "kill -KILL $SPID"
printf '%s\n%s\n%s\n5432\n/tmp\n\n' "$SPID" "$D1" "$((NOW - 3600))" >"$D1/postmaster.pid"
LOCK="FATAL:  lock file \"postmaster.pid\" already exists
HINT:  Is another postmaster (PID $SPID) running in data directory \"$D1\"?"
run_ctl txt rc ipc --explain "$LOCK"
expect_eq "explain: reused PID (critical)" 2 "$rc"
expect_match "explain: names the other program" "PID $SPID of postmaster.pid now belongs to another program \(PID $SPID is now [^ ]*/sleep" "$txt"
run_ctl txt rc ipc -D "$D1"
expect_eq "ipc -D: reused PID" 2 "$rc"
expect_match "dry run would remove the stale file" "would remove stale $D1/postmaster.pid" "$txt"
[[ -e $D1/postmaster.pid ]] || fail "the dry run removed postmaster.pid"
run_ctl txt rc ipc -D "$D1" --fix
expect_eq "ipc -D --fix: reused PID" 0 "$rc"
expect_match "fix prints the action" "removing stale $D1/postmaster.pid" "$txt"
[[ -e $D1/postmaster.pid ]] && fail "--fix left the stale postmaster.pid" || log "ok: stale postmaster.pid removed"
kill -0 "$SPID" 2>/dev/null && log "ok: the other program was not touched" || fail "--fix signalled an unrelated process"

# --- lock file: the postmaster is a zombie its parent does not reap
D2=$(mkdatadir zombie)
"${AS_USER[@]}" "$HELPER" zombie </dev/null >"$TMP/zombie.out" 2>&1 &
ZPARENT=$!
cleanup_add "kill -KILL $ZPARENT"
wait_for 10 grep -q ready "$TMP/zombie.out" || die "zombie helper did not start"
ZPID=$(head -1 "$TMP/zombie.out")
wait_for 10 pid_gone "$ZPID" || die "PID $ZPID did not become a zombie"
printf '%s\n%s\n%s\n5432\n/tmp\n\n' "$ZPID" "$D2" "$NOW" >"$D2/postmaster.pid"
run_ctl txt rc ipc -D "$D2"
expect_eq "ipc -D: zombie postmaster" 2 "$rc"
expect_match "zombie diagnosis" "Postmaster PID $ZPID has exited but its parent PID $ZPARENT .* has not reaped it" "$txt"
expect_match "zombie remedy" "kill -CHLD $ZPARENT" "$txt"
run_ctl txt rc ipc --explain "$LOCK" -D "$D2"
expect_eq "explain with -D: zombie" 2 "$rc"

# --- lock file: the PID is simply dead
D3=$(mkdatadir dead)
"${AS_USER[@]}" true &
DEAD=$!
wait "$DEAD"
printf '%s\n%s\n%s\n5432\n/tmp\n\n' "$DEAD" "$D3" "$NOW" >"$D3/postmaster.pid"
run_ctl txt rc ipc -D "$D3"
expect_eq "ipc -D: dead postmaster, nothing left" 0 "$rc"
expect_match "dead diagnosis" "Postmaster PID $DEAD .* is dead and left nothing behind" "$txt"
run_ctl txt rc ipc --explain "FATAL:  lock file \"$D3/postmaster.pid\" already exists"
expect_eq "explain: PID gone since" 0 "$rc"
expect_match "explain: says it exited" "has exited since" "$txt"

# --- openGauss layout (7 lines, no status), a surviving process maps the named segment
D4=$(mkdatadir opengauss)
KEY=$((26000 * 1000 + 1)) # openGauss keys: port * 1000 + 1
(cd "$TMP" && exec setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --init-groups -- "$HELPER" hold 65536 "$KEY") \
    >"$TMP/hold.out" &
HPID=$!
cleanup_add "kill -KILL $HPID"
wait_for 10 grep -q ready "$TMP/hold.out" || die "hold helper did not start"
read -r HID _ _ <"$TMP/hold.out"
cleanup_add "ipcrm -m $HID"
printf -- '-%s\n%s\n%s\n26000\n/tmp\n*\n%9lu %9lu\n' "$DEAD" "$D4" "$NOW" "$KEY" "$HID" >"$D4/postmaster.pid"
run_json out rc ipc -D "$D4" --json
expect_eq "openGauss layout: exit status" 2 "$rc"
expect_eq "openGauss layout: lines" 7 "$(json .pidfile.lines "$out")"
expect_eq "openGauss layout: standalone flag" true "$(json .pidfile.standalone "$out")"
expect_eq "openGauss layout: key from line 7" "$KEY" "$(json .pidfile.key "$out")"
expect_eq "openGauss layout: stray" "$HPID" "$(json '.strays[0].pid' "$out")"
run_ctl txt rc ipc -D "$D4" --terminate-strays --fix --grace 1s
expect_eq "openGauss layout: repaired" 0 "$rc"
pid_gone "$HPID" && log "ok: stray terminated" || fail "stray $HPID still alive"
shm_exists "$HID" && fail "segment $HID not removed" || log "ok: segment $HID removed"

# --- RemoveIPC symptoms
run_json chk rc check --json --user "$TEST_USER"
EFFECTIVE=$(json '.findings[] | select(.id == "removeipc") | .data.effective' "$chk")
run_ctl txt rc ipc --explain "2024-05-01 10:00:00 UTC [4242] FATAL:  semop(id=123456789) failed: Identifier removed" -D "$D1"
expect_match "semop: looked the set up" "No semaphore set with ID 123456789 exists now" "$txt"
expect_match "semop: RemoveIPC state" "logind's RemoveIPC is (yes|no) in the configuration" "$txt"
expect_match "semop: the database user from the data directory" "database user $TEST_USER \(uid" "$txt"
if [[ $EFFECTIVE == true ]]; then
    expect_eq "semop: critical under RemoveIPC=yes for a regular user" 2 "$rc"
    expect_match "semop: cause" "systemd-logind removed the semaphore set" "$txt"
    expect_match "semop: remedy" "RemoveIPC=no" "$txt"
else
    expect_eq "semop: warning with RemoveIPC=no" 1 "$rc"
    expect_match "semop: cause" "Something other than logind removed" "$txt"
fi
run_ctl txt rc ipc --explain 'ERROR:  could not open shared memory segment "/PostgreSQL.1883086488": No such file or directory'
expect_match "dsm: looked the file up" "/dev/shm/PostgreSQL.1883086488 does not exist now" "$txt"

# --- shmget failures: numbers from this host
SHMMNI=$(cat /proc/sys/kernel/shmmni)
run_json out rc ipc --json
ORPHANS=$(json .summary.orphaned_segments "$out")
run_ctl txt rc ipc --explain "FATAL:  could not create shared memory segment: No space left on device
DETAIL:  Failed system call was shmget(key=5432001, size=56, 03600)."
if [[ $ORPHANS == 0 ]]; then
    expect_eq "shmget ENOSPC on a host with room and no leak (info)" 0 "$rc"
else
    expect_eq "shmget ENOSPC on a host with room and $ORPHANS leaked segments (warning)" 1 "$rc"
fi
expect_match "shmget ENOSPC: SHMMNI from /proc" "kernel.shmmni = $SHMMNI\)" "$txt"
expect_match "shmget ENOSPC: not about disks" "not about disks" "$txt"
run_ctl txt rc ipc --explain "FATAL:  could not create shared memory segment: Cannot allocate memory
DETAIL:  Failed system call was shmget(key=5432001, size=1048576, 03600)."
expect_eq "shmget ENOMEM for 1 MiB fits now" 0 "$rc"
expect_match "shmget ENOMEM: overcommit mode" "vm.overcommit_memory = $(cat /proc/sys/vm/overcommit_memory)" "$txt"
run_ctl txt rc ipc --explain "FATAL:  could not create shared memory segment: Invalid argument
DETAIL:  Failed system call was shmget(key=5432001, size=1048576, 03600)."
expect_match "shmget EINVAL: SHMMAX" "kernel.shmmax" "$txt"

# --- could not map anonymous shared memory: more than the kernel would ever grant here
MODE=$(cat /proc/sys/vm/overcommit_memory)
TOOBIG=$(awk '/^MemTotal:|^SwapTotal:/ { s += $2 } END { printf "%.0f", s * 1024 * 2 }' /proc/meminfo)
run_ctl txt rc ipc --explain "FATAL:  could not map anonymous shared memory: Cannot allocate memory
HINT:  This error usually means that PostgreSQL's request for a shared memory segment exceeded available memory, swap space, or huge pages. To reduce the request size (currently $TOOBIG bytes), reduce PostgreSQL's shared memory usage, perhaps by reducing shared_buffers or max_connections."
expect_match "mmap: overcommit state from /proc" "vm.overcommit_memory = $MODE; CommitLimit" "$txt"
if [[ $MODE == 1 ]]; then
    expect_eq "mmap: mode 1 grants anything" 0 "$rc"
else
    expect_eq "mmap: request above what mode $MODE allows (critical)" 2 "$rc"
    expect_match "mmap: names the setting" "vm.overcommit_memory = $MODE" "$txt"
fi
run_ctl txt rc ipc --explain "LOG:  could not fork new process for connection: Cannot allocate memory"
expect_match "fork: recognised" "fork\(\) charges" "$txt"
run_ctl txt rc ipc --explain 'ERROR:  could not resize shared memory segment "/PostgreSQL.1234" to 1 bytes: No space left on device'
expect_match "dsm resize: /dev/shm state" "/dev/shm is .* used" "$txt"
expect_eq "dsm resize of 1 byte fits (info)" 0 "$rc"

# --- several lines from stdin, JSON, and a line it does not know
run_json out rc ipc --json --explain - <<EOF
2024-05-01 10:00:00 UTC [1] LOG:  database system is ready to accept connections
2024-05-01 10:00:01 UTC [2] FATAL:  semop(id=42) failed: Identifier removed
2024-05-01 10:00:02 UTC [3] FATAL:  could not create shared memory segment: No space left on device
2024-05-01 10:00:02 UTC [3] DETAIL:  Failed system call was shmget(key=5432001, size=56, 03600).
EOF
expect_eq "stdin: kinds" "sem_removed shmget_enospc" "$(json '[.[].kind] | join(" ")' "$out")"
expect_eq "stdin: DETAIL numbers picked up" 56 "$(json '.[1].size' "$out")"
run_ctl txt rc ipc --explain "LOG:  checkpoint starting: time"
expect_eq "unknown message" 3 "$rc"
expect_match "unknown message report" "not a message respoolctl knows" "$txt"
run_ctl txt rc ipc --explain x --fix
expect_eq "--explain with --fix is a usage error" 64 "$rc"
