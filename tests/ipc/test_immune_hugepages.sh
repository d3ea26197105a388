#!/usr/bin/env bash
# tests/ipc/test_immune_hugepages.sh - huge pages: used when there are some, a clean fallback (said once,
# with the reason) when there are none; never a start-up failure under huge-pages = try.
#
# Against ONE real respoold (the 3-instance cluster does not exist yet), buffer pool 16 MiB:
#   A. vm.nr_hugepages = 0 (set for the test if needed): respoold starts, and its log has exactly one
#      line about the buffer pool's pages, saying it uses normal pages because none are configured; no
#      mapping of the process has a huge kernel page size.
#   B. if the test can set vm.nr_hugepages (writing /proc/sys/vm/nr_hugepages; the kernel may give
#      fewer pages than asked when memory is fragmented): enough 2 MiB pages for the pool plus slack,
#      huge-pages = on: respoold starts, its one line says huge pages, /proc/PID/smaps shows a
#      hugetlb mapping (KernelPageSize 2048 kB) of the pool's size, and /proc/meminfo shows the pages
#      taken (HugePages_Total - HugePages_Free + HugePages_Rsvd grows by at least the pool's pages).
#   C. too few pages (2): huge-pages = try falls back to normal pages and the line says how many were
#      needed and available; huge-pages = on fails at once naming vm.nr_hugepages.
# The original vm.nr_hugepages and vm.nr_overcommit_hugepages are restored in the EXIT trap, whatever
# happens. This test runs alone (RUN_SERIAL): another respoold starting meanwhile would take the pages.
. "$(dirname "$0")/immunity_lib.sh"
make_tmp

POOL_MB=16
NR=/proc/sys/vm/nr_hugepages
NR_OVER=/proc/sys/vm/nr_overcommit_hugepages
ORIG_NR=$(cat "$NR")
ORIG_OVER=$(cat "$NR_OVER")
restore_hugepages() {
    echo "$ORIG_OVER" >"$NR_OVER" 2>/dev/null
    echo "$ORIG_NR" >"$NR" 2>/dev/null
    # the kernel may not be able to give back the original count at once (pages in use): report it
    [[ $(cat "$NR") == "$ORIG_NR" ]] || echo "[$TEST_NAME] WARNING: vm.nr_hugepages is $(cat "$NR"), was $ORIG_NR" >&2
}
cleanup_add restore_hugepages
log "vm.nr_hugepages = $ORIG_NR, vm.nr_overcommit_hugepages = $ORIG_OVER (restored at exit)"

meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
HSIZE_KB=$(meminfo Hugepagesize)
[[ -n $HSIZE_KB ]] || { echo "[$TEST_NAME] SKIP: this kernel has no huge page support (no Hugepagesize in /proc/meminfo)"; exit 77; }
NEED=$(((POOL_MB * 1024 + HSIZE_KB - 1) / HSIZE_KB))

make_volume "$TMP"
PORT=$(free_port)
ARGS=(-D "$TMP/data" --volume "$TMP/volume" --buffer-pool-size "${POOL_MB}M")

# pages_line LOG: the log lines about the buffer pool's pages
pages_lines() { grep -E 'buffer pool of .* uses (normal|huge) pages' "$1"; }
# hugetlb_kb PID: total size of the process's mappings backed by huge pages
hugetlb_kb() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { size = 0 } /^Size:/ { size = $2 } /^KernelPageSize:/ && $2 > 4 { total += size }
         END { print total + 0 }' "/proc/$1/smaps"
}
huge_taken() { echo $(($(meminfo HugePages_Total) - $(meminfo HugePages_Free) + $(meminfo HugePages_Rsvd))); }

# --- A. no huge pages configured
partA=run
if [[ $ORIG_NR != 0 || $ORIG_OVER != 0 ]]; then
    if [[ $(meminfo HugePages_Total) != $(meminfo HugePages_Free) ]]; then
        partA="skipped: vm.nr_hugepages is $ORIG_NR and some are in use by other processes; the test does not take them away"
    elif ! { echo 0 >"$NR_OVER" && echo 0 >"$NR"; } 2>/dev/null || [[ $(cat "$NR") != 0 ]]; then
        partA="skipped: vm.nr_hugepages is $ORIG_NR and cannot be set to 0 here"
    fi
fi
if [[ $partA == run ]]; then
    LOGA=$TMP/a.log
    start_respoold PID "$PORT" "$LOGA" "${ARGS[@]}"
    lines=$(pages_lines "$LOGA")
    echo "$lines" | sed 's/^/    | /'
    expect_eq "A: log lines about the pool's pages" 1 "$(grep -c . <<<"$lines")"
    expect_match "A: normal pages, and why" \
        "buffer pool of ${POOL_MB}\.0 MiB uses normal pages: no huge pages are configured \(vm\.nr_hugepages = 0\)" "$lines"
    expect_eq "A: hugetlb mappings of respoold (kB)" 0 "$(hugetlb_kb "$PID")"
    stop_respoold "$PID" "$LOGA"
else
    echo "[$TEST_NAME] part A $partA"
fi

# --- B. enough huge pages, huge-pages = on
WANT=$((NEED + 4))
partB=run
if ! echo "$WANT" >"$NR" 2>/dev/null; then
    partB="skipped: cannot write $NR (not allowed in this container or kernel)"
elif (($(cat "$NR") < WANT)); then
    partB="skipped: asked the kernel for $WANT huge pages of $HSIZE_KB kB, it gave $(cat "$NR") (memory too fragmented)"
elif (($(meminfo HugePages_Free) - $(meminfo HugePages_Rsvd) < NEED)); then
    partB="skipped: only $(($(meminfo HugePages_Free) - $(meminfo HugePages_Rsvd))) of $WANT huge pages are free: another process took them"
fi
if [[ $partB == run ]]; then
    log "B: vm.nr_hugepages = $(cat "$NR") ($NEED needed for ${POOL_MB} MiB)"
    before=$(huge_taken)
    LOGB=$TMP/b.log
    start_respoold PID "$PORT" "$LOGB" "${ARGS[@]}" --huge-pages on
    lines=$(pages_lines "$LOGB")
    echo "$lines" | sed 's/^/    | /'
    expect_eq "B: log lines about the pool's pages" 1 "$(grep -c . <<<"$lines")"
    expect_match "B: huge pages" "buffer pool of ${POOL_MB}\.0 MiB uses huge pages \($NEED of " "$lines"
    kb=$(hugetlb_kb "$PID")
    ((kb >= POOL_MB * 1024)) && log "ok: B: respoold maps $kb kB in huge pages (smaps)" ||
        fail "B: respoold maps only $kb kB in huge pages; its pool is $((POOL_MB * 1024)) kB"
    after=$(huge_taken)
    log "B: huge pages taken (Total - Free + Rsvd): $before before, $after with respoold running"
    ((after - before >= NEED)) && log "ok: B: meminfo shows the pool's $NEED pages taken" ||
        fail "B: meminfo shows $((after - before)) more huge pages taken, expected at least $NEED"
    # the pages serve real data: a short load and its read-back
    "$IMMUNITY_LOAD" run "$PORT" "$TMP/model" 1 2 >/dev/null || fail "B: load on huge pages failed"
    verify=$("$IMMUNITY_LOAD" verify "$PORT" "$TMP/model")
    expect_eq "B: writes lost on huge pages" 0 "$(kv mismatches "$verify")"
    stop_respoold "$PID" "$LOGB"
    back=$(($(huge_taken) - after))
    ((back <= -NEED)) && log "ok: B: the stop gave the $NEED pages back" ||
        fail "B: after the stop $((-back)) huge pages were given back, expected $NEED"
else
    echo "[$TEST_NAME] part B $partB"
fi

# --- C. too few huge pages: the fallback names the shortage; "on" refuses at once
partC=run
if ! echo 2 >"$NR" 2>/dev/null || [[ $(cat "$NR") != 2 ]]; then
    partC="skipped: cannot set vm.nr_hugepages to 2"
fi
if [[ $partC == run ]]; then
    LOGC=$TMP/c.log
    start_respoold PID "$PORT" "$LOGC" "${ARGS[@]}" --huge-pages try
    lines=$(pages_lines "$LOGC")
    echo "$lines" | sed 's/^/    | /'
    expect_eq "C: log lines about the pool's pages" 1 "$(grep -c . <<<"$lines")"
    expect_match "C: normal pages, and why" "uses normal pages: $NEED huge pages needed, [0-9]+ available" "$lines"
    expect_eq "C: hugetlb mappings of respoold (kB)" 0 "$(hugetlb_kb "$PID")"
    stop_respoold "$PID" "$LOGC"
    t0=$(now_ms)
    out=$(timeout 30 "$RESPOOLD" "${ARGS[@]}" --port "$PORT" --huge-pages on 2>&1)
    rc=$?
    took=$(($(now_ms) - t0))
    echo "$out" | grep -E 'FATAL|DETAIL|HINT' | sed 's/^/    | /'
    [[ $rc -ne 0 && $rc -ne 124 && $took -le 5000 ]] && log "ok: C: huge-pages = on without enough pages fails at once ($took ms)" ||
        fail "C: huge-pages = on without enough pages: status $rc after $took ms"
    expect_match "C: the refusal names vm.nr_hugepages" "Raise vm\.nr_hugepages to at least" "$out"
else
    echo "[$TEST_NAME] part C $partC"
fi

restore_hugepages
expect_eq "vm.nr_hugepages restored" "$ORIG_NR" "$(cat "$NR")"
no_respoold_left
