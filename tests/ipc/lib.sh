# tests/ipc/lib.sh - shared pieces of the IPC doctor tests (sourced, not run)
#
# Every test:
#   - needs root (it creates users, runs PostgreSQL as another user, removes IPC objects); without root
#     it exits 77, which ctest reports as skipped;
#   - snapshots the host's SysV objects and /dev/shm before it starts, and at the end (in the EXIT trap,
#     after its own cleanup) fails if anything it created is still there;
#   - registers what it creates (cleanup_add) so the trap removes it even when an assertion fails.
#
# Environment: RESPOOLCTL (the binary), IPC_HELPER (tests/ipc/ipc_helper), set by CMake.

set -uo pipefail

: "${RESPOOLCTL:?RESPOOLCTL must point at the respoolctl binary}"
: "${IPC_HELPER:?IPC_HELPER must point at the ipc_helper binary}"

TEST_NAME=$(basename "$0" .sh)
FAILURES=0
CLEANUP=()

if [[ $(id -u) -ne 0 ]]; then
    echo "$TEST_NAME: SKIP: needs root (creates users, runs PostgreSQL as another user, removes IPC objects)"
    exit 77
fi

log() { echo "[$TEST_NAME] $*"; }
fail() {
    echo "[$TEST_NAME] FAIL: $*" >&2
    FAILURES=$((FAILURES + 1))
}
# Fatal: stop here (the trap still cleans up).
die() {
    echo "[$TEST_NAME] FATAL: $*" >&2
    FAILURES=$((FAILURES + 1))
    exit 1
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [[ "$2" == "$3" ]]; then
        log "ok: $1 = $3"
    else
        fail "$1: expected '$2', got '$3'"
    fi
}

# expect_match WHAT REGEX TEXT
expect_match() {
    if grep -Eq -- "$2" <<<"$3"; then
        log "ok: $1"
    else
        fail "$1: /$2/ not found in:"
        echo "$3" | sed 's/^/    | /' >&2
    fi
}

expect_nomatch() {
    if grep -Eq -- "$2" <<<"$3"; then
        fail "$1: /$2/ found in:"
        echo "$3" | sed 's/^/    | /' >&2
    else
        log "ok: $1"
    fi
}

# run_ctl OUTVAR RCVAR ARGS...: runs respoolctl, keeps stdout+stderr and the exit status
run_ctl() {
    local __out=$1 __rc=$2
    shift 2
    local __text __status
    __text=$("$RESPOOLCTL" "$@" 2>&1)
    __status=$?
    printf -v "$__out" '%s' "$__text"
    printf -v "$__rc" '%s' "$__status"
}

# run_json OUTVAR RCVAR ARGS...: like run_ctl, stdout only (the JSON document), stderr to the log
run_json() {
    local __out=$1 __rc=$2
    shift 2
    local __text __status
    __text=$("$RESPOOLCTL" "$@" 2> >(sed 's/^/    stderr| /' >&2))
    __status=$?
    printf -v "$__out" '%s' "$__text"
    printf -v "$__rc" '%s' "$__status"
}

cleanup_add() { CLEANUP+=("$1"); }

# IDs of every SysV object and the names in /dev/shm, one per line, sorted
ipc_snapshot() {
    {
        awk 'NR > 1 { print "shm " $2 }' /proc/sysvipc/shm
        awk 'NR > 1 { print "sem " $2 }' /proc/sysvipc/sem
        awk 'NR > 1 { print "msg " $2 }' /proc/sysvipc/msg
        find /dev/shm -mindepth 1 -maxdepth 1 -printf 'devshm %f\n' 2>/dev/null
    } | sort
}

IPC_BEFORE=$(ipc_snapshot)

finish() {
    local rc=$?
    set +e
    local i
    for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUP[$i]}" >/dev/null 2>&1
    done
    local after left
    after=$(ipc_snapshot)
    left=$(comm -13 <(echo "$IPC_BEFORE") <(echo "$after"))
    if [[ -n "$left" ]]; then
        echo "[$TEST_NAME] FAIL: IPC objects left behind by the test:" >&2
        echo "$left" | sed 's/^/    /' >&2
        ipcs >&2
        # remove them so one failure does not spoil the next test
        while read -r kind id; do
            case "$kind" in
                shm) ipcrm -m "$id" ;;
                sem) ipcrm -s "$id" ;;
                msg) ipcrm -q "$id" ;;
                devshm) rm -rf "/dev/shm/$id" ;;
            esac
        done <<<"$left"
        FAILURES=$((FAILURES + 1))
    fi
    if [[ $FAILURES -gt 0 ]]; then
        echo "[$TEST_NAME] $FAILURES failure(s)" >&2
        exit 1
    fi
    if [[ $rc -ne 0 ]]; then
        exit "$rc"
    fi
    echo "[$TEST_NAME] PASS"
    exit 0
}
trap finish EXIT

# wait_for SECONDS COMMAND...: polls every 0.1 s until COMMAND succeeds; returns 1 on timeout
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    while ! "$@"; do
        ((SECONDS >= deadline)) && return 1
        sleep 0.1
    done
    return 0
}

# shm_exists SHMID
shm_exists() { awk -v id="$1" 'NR > 1 && $2 == id { found = 1 } END { exit !found }' /proc/sysvipc/shm; }
# shm_nattch SHMID
shm_nattch() { awk -v id="$1" 'NR > 1 && $2 == id { print $7 }' /proc/sysvipc/shm; }

nattch_is() { [[ $(shm_nattch "$1") == "$2" ]]; }
# pid_gone PID: the process exited (a zombie counts as gone: it holds no memory any more)
pid_gone() { [[ ! -e /proc/$1 ]] || [[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) == Z ]]; }

# json QUERY DOCUMENT: jq -r
json() { jq -r "$1" <<<"$2"; }

# The unprivileged user the tests run PostgreSQL and helpers as (PostgreSQL refuses root). A regular
# (non-system) user, like the database users RemoveIPC hurts. Created once and kept: other runs reuse it.
TEST_USER=rptest
ensure_user() {
    if ! id "$TEST_USER" >/dev/null 2>&1; then
        useradd --no-create-home --shell /bin/sh "$TEST_USER" 2>/dev/null || id "$TEST_USER" >/dev/null 2>&1 ||
            die "could not create user $TEST_USER"
    fi
}

# as_user CMD...: run as the test user without a PAM session (setpriv execs, no extra process).
# For background jobs use "${AS_USER[@]}" CMD &, so that $! is the command's own PID (a function run
# in the background would be a subshell).
AS_USER=(setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --init-groups --)
as_user() { "${AS_USER[@]}" "$@"; }

# A private temporary directory the test user can use; removed by the trap.
make_tmp() {
    TMP=$(mktemp -d "/tmp/rp-$TEST_NAME.XXXXXX") || die "mktemp failed"
    cleanup_add "rm -rf '$TMP'"
    chmod 755 "$TMP"
    # the helper may sit in a build tree the test user cannot reach
    cp "$IPC_HELPER" "$TMP/ipc_helper" && chmod 755 "$TMP/ipc_helper"
    HELPER="$TMP/ipc_helper"
}
