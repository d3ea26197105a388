# tests/ipc/immunity_lib.sh - shared pieces of the IPC immunity tests (test_immune_*.sh; sourced)
# shellcheck shell=bash
#
# These tests run the real respoold, ONE instance: the 3-instance cluster of issue 4's wording does not
# exist yet. When it does, the same checks should run against every member while one of them is hit.
#
# On top of lib.sh (root, cleanup registry, "nothing left behind" check in the EXIT trap) this gives:
#   enter_private_ipc    re-runs the calling script in a private IPC and mount namespace (below)
#   start_respoold       start an instance in the background, wait for PING, register its cleanup
#   kill_and_reap PID    SIGKILL, reap, prove the process is gone (no zombie)
#   stop_respoold PID    SIGTERM, expect a clean exit
#   no_respoold_left     none of the instances started here is still there
#   ipc_objects          every SysV object, /dev/shm entry and POSIX message queue, one per line
#   check_footprint PID  respoold owns no IPC object, maps none and has none open
#   make_decoys          SysV segment, semaphore set, message queue, /dev/shm file, POSIX queue
#   remove_ipc_like_logind   what systemd-logind does with RemoveIPC=yes, for every object
#
# Why a private IPC namespace: the RemoveIPC test runs `ipcrm -a` and empties /dev/shm and the
# message queue directory. On a shared host that would also destroy objects of other programs (another
# session's PostgreSQL test, say) that appear while the test runs, and a check made once at the start
# cannot rule that out. In a new IPC namespace (`unshare --ipc`) SysV objects and POSIX queues are
# those of the namespace only, and a private mount namespace gets its own tmpfs on /dev/shm and its own
# mqueue mount, so the removal can only ever reach what the test and its respoold created. respoold does
# not know or care which namespace it is in: if it created an object, it would create it in there, and
# the removal would hit it exactly as on the host. The outer script (host namespace) still compares the
# host's objects before and after (lib.sh). Without `unshare`, or with RP_IMMUNE_HOST_IPC=1, the tests
# run in the host namespace instead; then they skip unless the host has no IPC object at all, and they
# re-check before every removal that nothing foreign appeared (and stop removing if it did).
#
# Environment (set by CMake): RESPOOLD, RESPOOLCTL, IMMUNITY_LOAD, IPC_HELPER; RESPOOLD_PLAIN (a
# respoold without sanitizers, for the overcommit test).

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${RESPOOLD:?RESPOOLD must point at the respoold binary}"
: "${IMMUNITY_LOAD:?IMMUNITY_LOAD must point at the immunity_load binary}"

# PIDs of the instances this script started and has not reaped yet
RP_PIDS=()
# the directory of the POSIX message queue file system (set by enter_private_ipc / setup_mqueue)
MQ_DIR=
# "host" or "private": where the IPC objects this test sees live
IPC_NS=host

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# enter_private_ipc: call right after sourcing. In the outer run it re-executes the script under
# `unshare --ipc --mount` and exits with its status (the EXIT trap then checks the host). In the inner
# run it mounts a private tmpfs on /dev/shm and a private mqueue file system, and returns.
enter_private_ipc() {
    if [[ -n ${RP_IMMUNE_INNER:-} ]]; then
        IPC_NS=private
        mount -t tmpfs -o size=64m,mode=1777 rp-immunity-shm /dev/shm || die "cannot mount a private /dev/shm"
        make_tmp
        setup_mqueue
        IPC_BEFORE=$(ipc_snapshot) # lib.sh's "nothing left" baseline, now for the private namespace
        log "running in a private IPC and mount namespace (own SysV objects, /dev/shm tmpfs, mqueue at $MQ_DIR)"
        return 0
    fi
    if [[ -z ${RP_IMMUNE_HOST_IPC:-} ]] && unshare --ipc --mount --propagation private true 2>/dev/null; then
        RP_IMMUNE_INNER=1 unshare --ipc --mount --propagation private /bin/bash "$0" "$@"
        local rc=$?
        # The inner run printed its own verdict; this one only adds the host check (lib.sh's trap).
        [[ $rc -ne 0 && $rc -ne 77 ]] && FAILURES=$((FAILURES + 1))
        exit "$rc"
    fi
    log "running in the HOST IPC namespace ($([[ -n ${RP_IMMUNE_HOST_IPC:-} ]] && echo "RP_IMMUNE_HOST_IPC is set" || echo "unshare --ipc --mount is not available"))"
    make_tmp
    setup_mqueue
}

# The POSIX message queue file system: /dev/mqueue when mounted, else a mount of our own (private to
# the mount namespace when there is one; in the host namespace it is unmounted by the cleanup).
setup_mqueue() {
    if [[ $IPC_NS == host ]] && findmnt -n -t mqueue /dev/mqueue >/dev/null 2>&1; then
        MQ_DIR=/dev/mqueue
        return
    fi
    if [[ $IPC_NS == private && -d /dev/mqueue ]]; then
        MQ_DIR=/dev/mqueue
    else
        MQ_DIR=$TMP/mqueue
        mkdir -p "$MQ_DIR"
    fi
    mount -t mqueue rp-immunity-mqueue "$MQ_DIR" || die "cannot mount the mqueue file system on $MQ_DIR"
    cleanup_add "umount '$MQ_DIR'"
}

# Every IPC object in view: "shm ID KEY CPID LPID", "sem ID KEY", "msg ID KEY LSPID LRPID",
# "devshm NAME", "mq NAME". Empty output means none at all.
ipc_objects() {
    awk 'NR > 1 { print "shm", $2, $1, $8, $9 }' /proc/sysvipc/shm
    awk 'NR > 1 { print "sem", $2, $1 }' /proc/sysvipc/sem
    awk 'NR > 1 { print "msg", $2, $1, $6, $7 }' /proc/sysvipc/msg
    find /dev/shm -mindepth 1 -maxdepth 1 -printf 'devshm %f\n' 2>/dev/null
    [[ -n $MQ_DIR ]] && find "$MQ_DIR" -mindepth 1 -maxdepth 1 -printf 'mq %f\n' 2>/dev/null
    return 0
}

# require_no_ipc WHY: skip (77) when any IPC object exists; in a private namespace this only proves
# the namespace starts empty.
require_no_ipc() {
    local objs
    objs=$(ipc_objects)
    if [[ -n $objs ]]; then
        if [[ $IPC_NS == private ]]; then
            die "the new IPC namespace is not empty:"$'\n'"$objs"
        fi
        echo "[$TEST_NAME] SKIP: this host has IPC objects the test did not create, and $1 would destroy them:"
        echo "$objs" | sed 's/^/    /'
        exit 77
    fi
    log "ok: no IPC object exists before the test ($IPC_NS namespace)"
}

# make_volume DIR: a small volume in DIR/volume, data directory DIR/data
make_volume() {
    mkdir -p "$1"
    "$RESPOOLCTL" volume init --volume "$1/volume" --size 256M --wal-size 16M --max-instances 2 --quiet \
        >/dev/null || die "respoolctl volume init failed"
}

free_port() { "$IMMUNITY_LOAD" port; }

# start_respoold PIDVAR PORT LOG ARGS...: starts "$RESPOOLD" ARGS... --port PORT with stderr appended to
# LOG and waits (up to 60 s) until it answers PING. Dies when it exits first or does not answer.
# Must not run in a subshell: the instance is a child of this shell, which reaps it.
start_respoold() {
    local __var=$1 port=$2 logf=$3
    shift 3
    "$RESPOOLD" "$@" --port "$port" 2>>"$logf" &
    local pid=$!
    RP_PIDS+=("$pid")
    cleanup_add "stop_quietly $pid"
    local deadline=$((SECONDS + 60))
    until "$IMMUNITY_LOAD" ping "$port" 200; do
        if pid_gone "$pid" || ((SECONDS >= deadline)); then
            tail -n 30 "$logf" | sed 's/^/    log| /' >&2
            die "respoold (PID $pid) did not come up on port $port"
        fi
    done
    printf -v "$__var" '%s' "$pid"
}

forget_pid() {
    local p keep=()
    for p in "${RP_PIDS[@]}"; do [[ $p != "$1" ]] && keep+=("$p"); done
    RP_PIDS=("${keep[@]}")
}

# For the cleanup: whatever state it is in, end it (it may be stopped) and reap it.
stop_quietly() {
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
    kill -TERM "$1" 2>/dev/null
    kill -CONT "$1" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do
        pid_gone "$1" && break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# kill_and_reap PID: SIGKILL, reap (we are its parent), and prove nothing of the process is left: not
# running, not a zombie, no /proc entry.
kill_and_reap() {
    kill -KILL "$1" || fail "kill -KILL $1 failed"
    wait "$1" 2>/dev/null
    local status=$?
    forget_pid "$1"
    expect_eq "exit status of the SIGKILLed respoold $1 (128 + 9)" 137 "$status"
    if [[ -e /proc/$1 ]]; then
        fail "process $1 still exists after SIGKILL and wait: $(awk '{ print "state " $3 }' "/proc/$1/stat" 2>/dev/null)"
    else
        log "ok: process $1 is gone and reaped (no /proc/$1, no zombie)"
    fi
}

# stop_respoold PID LOG: SIGTERM and a clean exit (status 0) within 30 s
stop_respoold() {
    kill -TERM "$1"
    local i
    for ((i = 0; i < 300; i++)); do
        pid_gone "$1" && break
        sleep 0.1
    done
    pid_gone "$1" || { kill -KILL "$1"; fail "respoold $1 did not stop within 30 s of SIGTERM"; }
    wait "$1" 2>/dev/null
    local status=$?
    forget_pid "$1"
    if [[ $status -ne 0 ]]; then
        tail -n 20 "$2" | sed 's/^/    log| /' >&2
        fail "respoold $1 exited with status $status on SIGTERM"
    else
        log "ok: respoold $1 stopped cleanly"
    fi
}

# check_footprint PID WHEN: respoold (PID) owns no IPC object:
#   - no SysV segment or queue names PID as creator or last user (ipcs -p);
#   - no IPC object exists at all except the test's own decoys (DECOYS); semaphore sets record no PID,
#     so this is how they are covered;
#   - /proc/PID/maps has no SysV (/SYSV...), /dev/shm or /dev/mqueue mapping;
#   - no fd of PID is a /dev/shm file, a SysV segment or a POSIX message queue (file system type mqueue).
check_footprint() {
    local pid=$1 when=$2
    local bad=0 line
    [[ -d /proc/$pid ]] || { fail "footprint $when: respoold $pid is not running"; return; }
    while read -r line; do
        [[ -z $line ]] && continue
        set -- $line
        if [[ $1 == shm && ($4 == "$pid" || $5 == "$pid") ]] || [[ $1 == msg && ($4 == "$pid" || $5 == "$pid") ]]; then
            fail "footprint $when: respoold $pid is creator or last user of SysV $1 $2 (key $3)"
            bad=1
        fi
    done < <(ipc_objects)
    local allowed
    allowed=$(printf '%s\n' "${DECOYS[@]}" | sort -u)
    local unexpected
    unexpected=$(ipc_objects | awk '{ print $1, $2 }' | sort | comm -23 - <(echo "$allowed") | sed '/^$/d')
    if [[ -n $unexpected ]]; then
        fail "footprint $when: IPC objects the test did not create exist while respoold $pid runs:"
        echo "$unexpected" | sed 's/^/    /' >&2
        bad=1
    fi
    local maps
    maps=$(grep -E '/SYSV[0-9a-fA-F]{8}|/dev/shm/|/dev/mqueue|mqueue' "/proc/$pid/maps" 2>/dev/null)
    if [[ -n $maps ]]; then
        fail "footprint $when: respoold $pid maps IPC memory:"
        echo "$maps" | sed 's/^/    /' >&2
        bad=1
    fi
    local fd target fstype nfd=0
    for fd in /proc/"$pid"/fd/*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        nfd=$((nfd + 1))
        fstype=$(stat -L -f -c %T "$fd" 2>/dev/null)
        if [[ $target == /dev/shm/* || $target == /SYSV* || $target == /dev/mqueue/* || $fstype == mqueue ]]; then
            fail "footprint $when: respoold $pid has IPC fd ${fd##*/} -> $target ($fstype)"
            bad=1
        fi
    done
    ((bad == 0)) && log "ok: footprint $when: respoold $pid owns, maps and opens no IPC object ($nfd fds, $(wc -l <"/proc/$pid/maps" 2>/dev/null) mappings checked)"
}

# The test's own objects, as "kind id" (or "devshm NAME", "mq NAME"); check_footprint allows them.
DECOYS=()

# make_decoys TAG: one of each kind of IPC object RemoveIPC removes, created by the test
make_decoys() {
    local id
    id=$(ipcmk -M 65536 | grep -o '[0-9]*$') || die "ipcmk -M failed"
    DECOYS+=("shm $id")
    id=$(ipcmk -S 4 | grep -o '[0-9]*$') || die "ipcmk -S failed"
    DECOYS+=("sem $id")
    id=$(ipcmk -Q | grep -o '[0-9]*$') || die "ipcmk -Q failed"
    DECOYS+=("msg $id")
    head -c 65536 /dev/zero >"/dev/shm/rp-immunity-$1" || die "cannot create /dev/shm/rp-immunity-$1"
    DECOYS+=("devshm rp-immunity-$1")
    "$IMMUNITY_LOAD" mqueue "/rp-immunity-$1" || die "cannot create POSIX message queue /rp-immunity-$1"
    DECOYS+=("mq rp-immunity-$1")
    # what a PostgreSQL would have: a segment with a creator, a semaphore set, a DSM file, and they exist
    local have
    have=$(ipc_objects | awk '{ print $1, $2 }' | sort)
    local d
    for d in "${DECOYS[@]}"; do
        grep -qxF "$d" <<<"$have" || die "decoy $d was not created"
    done
}

# remove_ipc_like_logind: systemd-logind (RemoveIPC=yes, src/login/logind-user.c -> clean_ipc())
# removes the user's SysV segments, semaphore sets and message queues with IPC_RMID and unlinks the
# user's /dev/shm entries and POSIX message queues. The test's objects and respoold's (if it had any)
# belong to root here, so "every object" is the same set. Returns the number of objects removed.
REMOVED_TOTAL=0
remove_ipc_like_logind() {
    local before
    before=$(ipc_objects)
    if [[ $IPC_NS == host ]]; then
        # never destroy what the test did not create
        local allowed foreign
        allowed=$(printf '%s\n' "${DECOYS[@]}" | sort -u)
        foreign=$(awk '{ print $1, $2 }' <<<"$before" | sed '/^$/d' | sort | comm -23 - <(echo "$allowed"))
        if [[ -n $foreign ]]; then
            echo "[$TEST_NAME] SKIP: IPC objects the test did not create appeared on the host; not removing them:" >&2
            echo "$foreign" | sed 's/^/    /' >&2
            exit 77
        fi
    fi
    ipcrm -a || fail "ipcrm -a failed"
    find /dev/shm -mindepth 1 -maxdepth 1 -exec rm -rf {} + || fail "could not empty /dev/shm"
    find "$MQ_DIR" -mindepth 1 -maxdepth 1 -exec rm -f {} + || fail "could not unlink the POSIX message queues"
    local n
    n=$(sed '/^$/d' <<<"$before" | wc -l)
    REMOVED_TOTAL=$((REMOVED_TOTAL + n))
    DECOYS=()
    local left
    left=$(ipc_objects)
    [[ -z $left ]] || fail "objects survived the removal: $left"
}

# no_respoold_left: every instance this test started has been stopped or killed, and reaped
no_respoold_left() {
    local p left=()
    for p in "${RP_PIDS[@]}"; do
        [[ -e /proc/$p ]] && left+=("$p")
    done
    expect_eq "respoold processes of this test still running" "" "${left[*]}"
}

# kv VAR TEXT: value of "VAR=value" in TEXT (the load tool's summary line)
kv() { grep -o "$1=[0-9]*" <<<"$2" | cut -d= -f2; }
