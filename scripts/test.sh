#!/usr/bin/env bash
# scripts/test.sh BUILD_DIR [ctest arguments...] - run every test of a build, then prove the run left
# nothing behind: no respoold process, and no SysV IPC object or /dev/shm entry that was not there
# before. respool creates no IPC object at all; a test that starts PostgreSQL must clean up after
# itself. Soak tests (label soak) run only through `make soak`.
set -euo pipefail
build=${1:?usage: scripts/test.sh BUILD_DIR [ctest args...]}
shift

snapshot() {
    { ipcs -m -s -q 2>/dev/null | awk '/^0x/ {print "ipc", $1, $2}'; ls -1 /dev/shm 2>/dev/null | sed 's/^/shm /'; } | sort
}

before=$(snapshot)
start=$(date +%s)
args=("$@")
if [[ ${#args[@]} -eq 0 ]]; then
    args=(-LE soak)
fi
status=0
ctest --test-dir "$build" --output-on-failure --timeout 1200 -j "$(nproc)" "${args[@]}" || status=$?

leftover=0
if pgrep -x respoold >/dev/null; then
    echo "test.sh: respoold processes are still running after the tests:" >&2
    pgrep -a -x respoold >&2
    leftover=1
fi
after=$(snapshot)
new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
if [[ -n "$new" ]]; then
    echo "test.sh: the tests left IPC objects or /dev/shm entries behind:" >&2
    echo "$new" >&2
    leftover=1
fi
echo "test.sh: $(( $(date +%s) - start )) s; ctest exit status $status; leftovers: $([[ $leftover -eq 0 ]] && echo none || echo FOUND)"
[[ $status -eq 0 && $leftover -eq 0 ]]
