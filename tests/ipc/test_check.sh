#!/usr/bin/env bash
# tests/ipc/test_check.sh - `respoolctl check` on this machine: every value it reports is compared with
# what /proc, /sys and the shell say, the exit status with the worst severity, and the memory verdict
# with a request this host cannot grant.
. "$(dirname "$0")/lib.sh"

ensure_user

meminfo() { awk -v k="$1:" '$1 == k { printf "%.0f\n", $2 * 1024 }' /proc/meminfo; }
# raw FINDING FIELD: the number as printed in the JSON text, since jq 1.6 rounds 64-bit limits to doubles.
# Each finding starts with its "id" line, so the field is the first one after that line.
raw() {
    awk -v id="\"$1\"" -v f="\"$2\":" '
        $1 == "\"id\":" { inside = ($2 == id "," || $2 == id) }
        inside && $1 == f && $2 ~ /^-?[0-9]/ { v = $2; sub(/,$/, "", v); print v; exit }' <<<"$out"
}
sev() { json ".findings[] | select(.id == \"$1\") | .severity" "$out"; }

C_BEFORE=$(meminfo Committed_AS)
run_json out rc check --json --user "$TEST_USER"
C_AFTER=$(meminfo Committed_AS)
[[ -n $out ]] || die "no JSON output"

# --- every finding is there, with a severity, a value and a meaning
for id in removeipc db-user overcommit hugepages shmmax shmall shmmni sem max-map-count core nofile thp container \
    ipc-namespace pid-namespace dev-shm; do
    s=$(sev "$id")
    [[ $s =~ ^(ok|info|warning|critical)$ ]] && log "ok: finding $id ($s)" || fail "finding $id missing or bad severity '$s'"
    [[ -n $(json ".findings[] | select(.id == \"$id\") | .meaning" "$out") ]] || fail "finding $id has no meaning"
    if [[ $s == warning || $s == critical ]]; then
        [[ -n $(json ".findings[] | select(.id == \"$id\") | .fix" "$out") ]] || fail "finding $id ($s) has no fix"
    fi
done

# --- the exit status is the worst severity
WORST=$(json .summary.worst "$out")
case $WORST in
    ok | info) expect_eq "exit status for worst=$WORST" 0 "$rc" ;;
    warning) expect_eq "exit status for worst=warning" 1 "$rc" ;;
    critical) expect_eq "exit status for worst=critical" 2 "$rc" ;;
esac

# --- values against /proc
expect_eq "vm.overcommit_memory" "$(cat /proc/sys/vm/overcommit_memory)" "$(raw overcommit mode)"
expect_eq "vm.overcommit_ratio" "$(cat /proc/sys/vm/overcommit_ratio)" "$(raw overcommit ratio)"
expect_eq "vm.overcommit_kbytes" "$(cat /proc/sys/vm/overcommit_kbytes)" "$(raw overcommit kbytes)"
expect_eq "CommitLimit" "$(meminfo CommitLimit)" "$(raw overcommit commit_limit)"
expect_eq "MemTotal" "$(meminfo MemTotal)" "$(raw overcommit mem_total)"
# Committed_AS moves with every process on the host (tests run in parallel: it doubled between two
# readings once), so check's reading must lie between /proc's just before and just after it, give or
# take 512 MiB: close enough to rule out any other field (CommitLimit and MemTotal are gigabytes here).
C_CHECK=$(raw overcommit committed_as)
C_LO=$((C_BEFORE < C_AFTER ? C_BEFORE : C_AFTER))
C_HI=$((C_BEFORE > C_AFTER ? C_BEFORE : C_AFTER))
if ((C_CHECK >= C_LO - 536870912 && C_CHECK <= C_HI + 536870912)); then
    log "ok: Committed_AS $C_CHECK within /proc's $C_BEFORE .. $C_AFTER"
else
    fail "Committed_AS $C_CHECK outside /proc's $C_BEFORE .. $C_AFTER (512 MiB tolerance)"
fi
expect_eq "headroom = CommitLimit - Committed_AS" "$(($(raw overcommit commit_limit) - C_CHECK))" "$(raw overcommit headroom)"
expect_eq "HugePages_Total" "$(awk '$1 == "HugePages_Total:" { print $2 }' /proc/meminfo)" "$(raw hugepages total)"
expect_eq "Hugepagesize" "$(meminfo Hugepagesize)" "$(raw hugepages size)"
expect_eq "kernel.shmmax" "$(cat /proc/sys/kernel/shmmax)" "$(raw shmmax shmmax)"
expect_eq "kernel.shmall" "$(cat /proc/sys/kernel/shmall)" "$(raw shmall shmall)"
expect_eq "kernel.shmmni" "$(cat /proc/sys/kernel/shmmni)" "$(raw shmmni shmmni)"
expect_eq "segments counted" "$(($(wc -l </proc/sysvipc/shm) - 1))" "$(raw shmmni segments)"
expect_eq "page size" "$(getconf PAGESIZE)" "$(raw shmall page_size)"
read -r SEMMSL SEMMNS SEMOPM SEMMNI </proc/sys/kernel/sem
expect_eq "SEMMSL" "$SEMMSL" "$(raw sem semmsl)"
expect_eq "SEMMNS" "$SEMMNS" "$(raw sem semmns)"
expect_eq "SEMOPM" "$SEMOPM" "$(raw sem semopm)"
expect_eq "SEMMNI" "$SEMMNI" "$(raw sem semmni)"
expect_eq "semaphore sets counted" "$(($(wc -l </proc/sysvipc/sem) - 1))" "$(raw sem sets)"
expect_eq "vm.max_map_count" "$(cat /proc/sys/vm/max_map_count)" "$(raw max-map-count value)"
expect_eq "kernel.core_pattern" "$(cat /proc/sys/kernel/core_pattern)" \
    "$(json '.findings[] | select(.id == "core") | .data.core_pattern' "$out")"
CORE=$(ulimit -S -c)
expect_eq "core ulimit" "$CORE" "$(json '.findings[] | select(.id == "core") | .data.rlimit_core_soft' "$out")"
expect_eq "open files soft limit" "$(ulimit -S -n)" "$(raw nofile soft)"
expect_eq "open files hard limit" "$(ulimit -H -n)" "$(raw nofile hard)"
if [[ -r /sys/kernel/mm/transparent_hugepage/enabled ]]; then
    expect_eq "THP mode" "$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled)" \
        "$(json '.findings[] | select(.id == "thp") | .data.enabled' "$out")"
fi
expect_eq "/dev/shm size" "$(df -B1 --output=size /dev/shm | tail -1 | tr -d ' ')" "$(raw dev-shm size)"
IPCNS_SELF=$(readlink /proc/self/ns/ipc)
if IPCNS_INIT=$(readlink /proc/1/ns/ipc 2>/dev/null); then
    expect_eq "IPC namespace comparison" "$([[ $IPCNS_SELF == "$IPCNS_INIT" ]] && echo true || echo false)" \
        "$(json '.findings[] | select(.id == "ipc-namespace") | .data.same_as_init' "$out")"
else
    expect_eq "IPC namespace not comparable" null "$(json '.findings[] | select(.id == "ipc-namespace") | .data.same_as_init' "$out")"
    expect_match "says why it could not compare" "could not compare" "$(json '.findings[] | select(.id == "ipc-namespace") | .value' "$out")"
fi

# --- the database user and RemoveIPC
expect_eq "db user" "$TEST_USER" "$(json '.findings[] | select(.id == "db-user") | .data.user' "$out")"
expect_eq "db user uid" "$(id -u "$TEST_USER")" "$(raw db-user uid)"
SYSMAX=$(awk '$1 == "SYS_UID_MAX" { v = $2 } END { print v ? v : 999 }' /etc/login.defs 2>/dev/null)
expect_eq "SYS_UID_MAX" "$SYSMAX" "$(raw db-user sys_uid_max)"
IS_SYSTEM=$([[ $(id -u "$TEST_USER") -le $SYSMAX ]] && echo true || echo false)
expect_eq "system user?" "$IS_SYSTEM" "$(json '.findings[] | select(.id == "db-user") | .data.system' "$out")"
EFFECTIVE=$(json '.findings[] | select(.id == "removeipc") | .data.effective' "$out")
if [[ $EFFECTIVE == true && $IS_SYSTEM == false ]]; then
    expect_eq "RemoveIPC=yes with a regular database user is critical" critical "$(sev removeipc)"
    expect_match "the fix turns it off" "RemoveIPC=no" "$(json '.findings[] | select(.id == "removeipc") | .fix' "$out")"
fi
if ! busctl --timeout=3 get-property org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager \
    RemoveIPC >/dev/null 2>&1; then
    expect_eq "running logind unreadable here" null "$(json '.findings[] | select(.id == "removeipc") | .data.running' "$out")"
    expect_match "says it could not be read" "could not be read" "$(json '.findings[] | select(.id == "removeipc") | .value' "$out")"
fi
run_json sys rc check --json --user root
expect_eq "root is a system user" true "$(json '.findings[] | select(.id == "db-user") | .data.system' "$sys")"
expect_nomatch "RemoveIPC is never critical for a system user" critical \
    "$(json '.findings[] | select(.id == "removeipc") | .severity' "$sys")"

# --- memory needed: PostgreSQL's estimate, and a request this host cannot grant
run_json out rc check --json --shared-buffers 128MB
expect_eq "shared_buffers 128MB needs 128 + 2 + 16 MiB" $((146 * 1024 * 1024)) "$(json .need "$out")"
MODE=$(cat /proc/sys/vm/overcommit_memory)
TOOBIG=$(awk '/^MemTotal:|^SwapTotal:/ { s += $2 } END { printf "%.0f", s * 1024 * 2 }' /proc/meminfo)
run_json out rc check --json --memory "$TOOBIG"
if [[ $MODE == 1 ]]; then
    expect_eq "mode 1 grants even $TOOBIG" ok "$(sev overcommit)"
else
    expect_eq "overcommit verdict for $TOOBIG bytes in mode $MODE" critical "$(sev overcommit)"
    expect_eq "exit status with a critical finding" 2 "$rc"
    M=$(json '.findings[] | select(.id == "overcommit") | .meaning' "$out")
    expect_match "names what was asked" "cannot commit .* for the database's memory" "$M"
    expect_match "names the setting" "vm.overcommit_memory = $MODE" "$M"
    expect_match "names CommitLimit and Committed_AS" "CommitLimit .*Committed_AS" "$M"
fi

# --- text output and usage errors
run_ctl txt rc check
expect_match "text lists findings" "^\[(ok|info|warning|critical)\] +overcommit +vm.overcommit_memory = $MODE" "$txt"
expect_match "text summary" "^summary: [0-9]+ ok, [0-9]+ info, [0-9]+ warning, [0-9]+ critical$" "$txt"
run_ctl txt rc check --user no-such-user-rp
expect_eq "unknown user is a usage error" 64 "$rc"
run_ctl txt rc check --memory lots
expect_eq "bad size is a usage error" 64 "$rc"
