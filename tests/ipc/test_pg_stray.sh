#!/usr/bin/env bash
# tests/ipc/test_pg_stray.sh - failure 2 with a real PostgreSQL 15: a backend outlives its postmaster.
#
#   start PostgreSQL, open a session, SIGSTOP its backend, kill -9 the postmaster
#   -> pg_ctl start fails: "pre-existing shared memory block (key K, ID I) is still in use"
#   -> respoolctl ipc -D names the stopped backend's PID, K and I; --explain on the log line says who holds it
#   -> respoolctl ipc -D --fix --terminate-strays; the next pg_ctl start succeeds
# and nothing is left afterwards: no process, no segment, no /dev/shm file, no data directory.
. "$(dirname "$0")/lib.sh"

PGBIN=/usr/lib/postgresql/15/bin
[[ -x $PGBIN/postgres ]] || die "PostgreSQL 15 is not installed ($PGBIN); scripts/deps.sh test installs it"
ensure_user
make_tmp
chown "$TEST_USER" "$TMP"
DATA=$TMP/data
PORT=$((40000 + $$ % 20000)) # only names the unix socket in $TMP: no TCP listener, no port clash
cd "$TMP" || die "cd $TMP"

pg() { as_user "$PGBIN/$1" "${@:2}"; }
pg_start() {
    pg pg_ctl -D "$DATA" -l "$TMP/pg.log" -w -t 30 \
        -o "-p $PORT -k $TMP -c listen_addresses='' -c shared_buffers=16MB -c max_connections=20" start
}
psql_q() { as_user "$PGBIN/psql" -X -h "$TMP" -p "$PORT" -d postgres -Atc "$1"; }

# The trap stops whatever runs, in this order: the server, the session, any backend, then files.
cleanup_add "as_user $PGBIN/pg_ctl -D '$DATA' -m immediate -w -t 10 stop"

pg initdb -D "$DATA" -A trust -U "$TEST_USER" -N -E UTF8 --locale=C >"$TMP/initdb.log" 2>&1 ||
    { cat "$TMP/initdb.log"; die "initdb failed"; }
pg_start >"$TMP/start1.log" 2>&1 || { cat "$TMP/start1.log" "$TMP/pg.log"; die "first start failed"; }

PM=$(head -1 "$DATA/postmaster.pid")
read -r KEY SHMID < <(sed -n 7p "$DATA/postmaster.pid")
INODE=$(stat -c %i "$DATA")
log "postmaster $PM, segment key $KEY id $SHMID, data directory inode $INODE"
expect_eq "PostgreSQL 15 derives the key from the data directory's inode" "$((INODE % 4294967296))" "$KEY"

# --- a healthy server: nothing to repair
run_json out rc ipc -D "$DATA" --json
expect_eq "exit status for a running server" 0 "$rc"
expect_eq "postmaster state" alive "$(json .postmaster.state "$out")"
expect_eq "segment found by postmaster.pid" "$SHMID" "$(json '.segments[0].shmid' "$out")"
expect_eq "status line of postmaster.pid" ready "$(json .pidfile.status "$out")"

# --- failure 2
"${AS_USER[@]}" "$PGBIN/psql" -X -h "$TMP" -p "$PORT" -d postgres -c 'select pg_sleep(600)' >"$TMP/psql.out" 2>&1 &
PSQL=$!
cleanup_add "kill -KILL $PSQL"
backend_pid() { psql_q "select pid from pg_stat_activity where query like 'select pg_sleep%'" 2>/dev/null; }
has_backend() { [[ -n $(backend_pid) ]]; }
wait_for 20 has_backend || die "the session did not start"
BACKEND=$(backend_pid)
log "session backend $BACKEND"
cleanup_add "kill -KILL $BACKEND"
kill -STOP "$BACKEND"
kill -KILL "$PM"
# The other children notice the postmaster's death and exit; the stopped backend cannot.
wait_for 30 nattch_is "$SHMID" 1 ||
    die "expected only the stopped backend attached, nattch is $(shm_nattch "$SHMID")"
wait_for 10 pid_gone "$PM" || fail "postmaster $PM is still there"
expect_eq "backend state" T "$(awk '{ print $3 }' "/proc/$BACKEND/stat")"

# While postmaster.pid still names the dead postmaster:
run_ctl txt rc ipc -D "$DATA"
expect_eq "exit status with a stray backend (critical)" 2 "$rc"
expect_match "diagnosis names the postmaster as dead" "Postmaster PID $PM .* is dead" "$txt"
expect_match "diagnosis names the stopped backend" "PID $BACKEND \(postgres: .*T \(stopped\)" "$txt"
expect_match "diagnosis names key and ID" "key $KEY, ID $SHMID" "$txt"
expect_match "one-sentence diagnosis" "^diagnosis: [^.]*\"pre-existing shared memory block \(key $KEY, ID $SHMID\) is still in use\"\.$" "$txt"
expect_match "remedy" "remedy: .*--terminate-strays --fix" "$txt"
expect_match "dry run shows the signal" "would terminate PID $BACKEND .*SIGTERM and SIGCONT" "$txt"
kill -0 "$BACKEND" 2>/dev/null && log "ok: dry run left the backend alone" || fail "dry run killed the backend"

# The listing attributes the segment to the data directory and names the backend.
run_json out rc ipc --json
expect_eq "listing: class" attached "$(json ".shm[] | select(.shmid == $SHMID) | .class" "$out")"
expect_eq "listing: data directory" "$(realpath "$DATA")" "$(json ".shm[] | select(.shmid == $SHMID) | .datadir" "$out")"
expect_eq "listing: mapper" "$BACKEND" "$(json ".shm[] | select(.shmid == $SHMID) | .mapped_by[0].pid" "$out")"
expect_eq "listing: mapper state" "T (stopped)" "$(json ".shm[] | select(.shmid == $SHMID) | .mapped_by[0].state" "$out")"

# --- the next start fails the way operators know
pg_start >"$TMP/start2.log" 2>&1 && die "pg_ctl start succeeded although a backend holds the segment"
LINE=$(grep -A1 'pre-existing shared memory block' "$TMP/pg.log")
expect_match "PostgreSQL's message" "pre-existing shared memory block \(key $KEY, ID $SHMID\) is still in use" "$LINE"

# The failed start removed postmaster.pid on its way out; the doctor still finds segment and backend.
[[ -e $DATA/postmaster.pid ]] && log "note: postmaster.pid still present" || log "postmaster.pid is gone, as expected"
run_ctl txt rc ipc -D "$DATA"
expect_eq "exit status without postmaster.pid" 2 "$rc"
expect_match "still names the backend" "PID $BACKEND \(postgres: .*T \(stopped\)" "$txt"
expect_match "still names key and ID" "key $KEY, ID $SHMID" "$txt"

run_ctl txt rc ipc --explain "$LINE"
expect_eq "explain exit status (critical)" 2 "$rc"
expect_match "explain says who holds it now" "mapped by PID $BACKEND .*T \(stopped\)" "$txt"
expect_match "explain names the data directory" "belongs to data directory $(realpath "$DATA")" "$txt"

# --- the repair
run_ctl txt rc ipc -D "$DATA" --fix --terminate-strays --grace 2s
echo "$txt" | sed 's/^/    | /'
expect_eq "exit status after the repair" 0 "$rc"
expect_match "action printed before it is done" "terminating PID $BACKEND " "$txt"
expect_match "segment removed" "removing shared memory segment .*ID $SHMID," "$txt"
shm_exists "$SHMID" && fail "segment $SHMID still exists" || log "ok: segment $SHMID removed"
pid_gone "$BACKEND" && log "ok: backend $BACKEND terminated" || fail "backend $BACKEND survived"

pg_start >"$TMP/start3.log" 2>&1 || { cat "$TMP/start3.log"; tail -5 "$TMP/pg.log"; fail "pg_ctl start after the repair failed"; }
expect_eq "the server answers" 1 "$(psql_q 'select 1')"
run_ctl txt rc ipc --explain "$LINE"
expect_eq "explain after the repair" 0 "$rc"
pg pg_ctl -D "$DATA" -m fast -w -t 30 stop >/dev/null || fail "pg_ctl stop failed"
wait_for 10 pid_gone "$PSQL" || kill -KILL "$PSQL"
