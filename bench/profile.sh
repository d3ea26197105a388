#!/usr/bin/env bash
# bench/profile.sh BUILD_DIR [OUT_DIR] - where the CPU goes, respoold against redis-server, same load.
#
# For GET/SET, pipeline 1 and 16, 64-byte values (and SET P1/P16 with 4 KiB values), -c 50, against respoold (sync commit) and redis-server
# (appendfsync always): `perf record -g -p SERVER` (cpu-clock, 999 Hz) over one redis-benchmark run of
# ~BENCH_PROFILE_SECONDS (5), and the CPU time of server, client and host from /proc and GNU time.
# Per run, OUT_DIR/profile/<server>-<test>.txt holds:
#   - the run (rps, latency) and CPU microseconds per request of the server and of redis-benchmark
#   - the server's user/kernel split, its threads and the system calls each spends its samples in
#     (bench/syscall-split.awk), and its top symbols (self time, percent of the server's samples)
# Then, for respoold's SET P1, `perf trace -s` of its threads: how long each pwritev2(RWF_DSYNC) of the
# WAL flusher takes under load, next to the idle disk's time per sync (bench/syncrate.c).
# OUT_DIR/profile/summary.txt has one line per run. Needs root (or perf_event_paranoid <= 0) and perf.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init profile "${1:-}" "${2:-}"
: "${BENCH_PROFILE_SECONDS:=5}"
command -v perf >/dev/null || { echo "profile: perf not found: run scripts/deps.sh bench" >&2; exit 1; }
if ! perf record -o "$SCRATCH/check.data" -- true >/dev/null 2>&1; then
    echo "profile: perf cannot record system-wide here (kernel.perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)); skipped" >&2
    exit 0
fi
rm -f "$SCRATCH/check.data"
P=$OUT/profile
mkdir -p "$P"
tests=(get:1:64 get:16:64 set:1:64 set:16:64 set:1:4096 set:16:4096)
BENCH_TOTAL=$(( 2 * ${#tests[@]} ))
[[ -s "$OUT/machine.txt" ]] || machine_info > "$OUT/machine.txt"

perf_q() { perf report -i "$1" --stdio "${@:2}" 2>/dev/null | grep -v '^#' | grep -v '^$' || true; }

profile_run() { # NAME TEST PIPE SIZE
    local name=$1 test=$2 pipe=$3 size=$4 n data label report perfpid res
    label="${test^^} P$pipe $(size_label "$size")"
    n=$(BENCH_SECONDS=$BENCH_PROFILE_SECONDS calibrate "$name" "$test" "$pipe" "$size")
    BENCH_STEP=$(( BENCH_STEP + 1 ))
    progress "profile: $name $label: perf record -g -p ${SRV_PID[$name]}, n=$n"
    data=$SCRATCH/perf.data
    perf record -F 999 -g -p "${SRV_PID[$name]}" -o "$data" > /dev/null 2> "$SCRATCH/perf.err" &
    perfpid=$!
    sleep 0.3
    res=$(bench_run "$name" "$test" "$pipe" "$size" "$n" profile)
    kill -INT "$perfpid" 2>/dev/null || true
    wait "$perfpid" 2>/dev/null || true
    report=$P/$name-$test-P$pipe-$size.txt
    {
        echo "== $name: redis-benchmark -c $BENCH_CLIENTS -P $pipe -d $size -t $test -n $n -r $BENCH_KEYS"
        awk -v n="$n" -v ncpu="$(nproc)" '{
                oth = $10 - $8 - $9; if (oth < 0) oth = 0
                printf "%.0f rps, p50 %s ms, p99 %s ms, %.2f s\n", $1, $2, $3, $4
                printf "server CPU: %.2f s = %.2f us per request (%.0f%% of one CPU)\n", $8, $8 / n * 1e6, 100 * $8 / $4
                printf "redis-benchmark CPU: %.2f s = %.2f us per request (%.0f%% of one CPU)\n", $9, $9 / n * 1e6, 100 * $9 / $4
                printf "other processes on the host: %.0f%% of all %d CPUs\n", 100 * oth / ($4 * ncpu), ncpu
            }' <<<"$res"
        echo
        echo "== $name: user vs kernel (percent of the server's samples)"
        perf_q "$data" --no-children --sort dso -g none | head -8
        echo
        echo "== $name: threads: share of the server's samples, and the system calls each spends them in"
        perf script -i "$data" -F comm,tid,ip,sym 2>/dev/null | awk -f "$BENCH_DIR/syscall-split.awk"
        echo
        echo "== $name: top symbols, self time (percent of the server's samples)"
        perf_q "$data" --no-children --sort pid,dso,sym -g none | head -40
    } > "$report"
    awk -v name="$name" -v t="$label" -v n="$n" -v ncpu="$(nproc)" -v OFS='\t' '{
            oth = $10 - $8 - $9; if (oth < 0) oth = 0
            print name, t, $1, $8 / n * 1e6, $9 / n * 1e6, 100 * $8 / $4, 100 * $9 / $4, 100 * oth / ($4 * ncpu) }' \
        <<<"$res" >> "$P/summary.tsv"
    rm -f "$data" "$data.old"
}

: > "$P/summary.tsv"
for server in respool redis; do
    if [[ $server == respool ]]; then
        start_respool respool-sync sync "${BENCH_IO_THREADS:-0}"; name=respool-sync
    else
        start_redis redis-always always; name=redis-always
    fi
    loaded=0
    for spec in "${tests[@]}"; do
        IFS=: read -r test pipe size <<<"$spec"
        if (( size != loaded )); then
            preload "$name" "$size"
            loaded=$size
        fi
        profile_run "$name" "$test" "$pipe" "$size"
    done
    if [[ $server == respool ]]; then
        # The WAL flusher's pwritev2(RWF_DSYNC) under load: perf trace -s over all of respoold's threads.
        preload "$name" 64
        progress "profile: respool-sync SET P1 64B: perf trace -s (syscall times per thread)"
        n=$(BENCH_SECONDS=4 calibrate "$name" set 1 64)
        redis-benchmark -h 127.0.0.1 -p "${SRV_PORT[$name]}" -c "$BENCH_CLIENTS" -n "$n" -r "$BENCH_KEYS" \
            -d 64 -t set --csv > "$SCRATCH/rb.csv" &
        rbpid=$!
        sleep 1
        timeout -s INT 2 perf trace -s -p "${SRV_PID[$name]}" > "$P/respool-set-P1-syscalls.txt" 2>&1 || true
        wait "$rbpid" || true
        before=$(info_field "$name" wal_flushes wal_avg_flush_usec)
        bench_run "$name" set 1 64 "$n" trace-free > "$SCRATCH/res"
        sync_probe profile
        {
            echo "WAL flush (pwritev2 RWF_DSYNC) time in a SET P1 run without tracing: $(awk '{printf "%.0f us per flush, %d commits per flush, %.0f flushes/s", $7, ($6 > 0 ? $5 / $6 : 0), $6 / $4}' "$SCRATCH/res")"
            echo "The same disk right after, idle, one 4 KiB write at a time: $(awk '/when=profile mode=dsync/ {print $6}' "$OUT/syncrate.txt" | sed 's/usec_per_sync=//') us per RWF_DSYNC write"
            echo "Syscall times per respoold thread under perf trace (tracing slows the calls down; compare the shape, not the absolute numbers):"
            grep -E '^ [^ ].*\([0-9]+\)|pwritev2|futex|epoll_wait|sendto|recvfrom|write |read ' "$P/respool-set-P1-syscalls.txt" | head -60
        } > "$P/wal-flush.txt"
    fi
    stop_server "$name"
done

{
    echo "CPU per request, same load (redis-benchmark -c $BENCH_CLIENTS -r $BENCH_KEYS, $(nproc) CPUs shared by server and client; /proc and GNU time)"
    printf '%-14s %-12s %9s %11s %11s %11s %11s %7s\n' server test rps "srv us/req" "cli us/req" "srv %1cpu" "cli %1cpu" other%
    awk -F'\t' '{ printf "%-14s %-12s %9.0f %11.2f %11.2f %10.0f%% %10.0f%% %6.1f%%\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$P/summary.tsv"
    echo
    [[ -f "$P/wal-flush.txt" ]] && cat "$P/wal-flush.txt"
} > "$P/summary.txt"
progress "profile done: $P"
echo
cat "$P/summary.txt"
