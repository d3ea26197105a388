#!/usr/bin/env bash
# bench/vs-redis.sh BUILD_DIR [OUT_DIR] - respoold against redis-server 7, side by side, in one run.
#
#   1. the physical floor: 4 KiB write+sync rate of the disk under the volumes (bench/syncrate.c)
#   2. redis-benchmark GET and SET, pipeline 1 and 16, 64 B and 4 KiB values, -c 50, keys preloaded, for
#        durable:  respoold --commit-mode sync   vs  redis-server --appendonly yes --appendfsync always
#        async:    respoold --commit-mode async  vs  redis-server --appendonly yes --appendfsync everysec
#      Both servers of a pair run at once and the runs alternate (respool, redis, respool, ...), so drift
#      of a shared machine hits both alike; each number is the median of BENCH_REPEATS runs of ~BENCH_SECONDS.
#   3. the table (rps, ratio, p50/p99, respool's commits per WAL flush, flush rate against the disk's
#      sync rate) in OUT_DIR/table.txt, the data in summary.tsv, raw outputs under OUT_DIR/raw,
#      and two charts: OUT_DIR/vs-redis.png (rps), OUT_DIR/vs-redis-p99.png (p99 latency), copied to
#      bench/results/.
#
# Environment: BENCH_QUICK=1 (smoke run: 1 run of ~1 s per test, 10k keys), BENCH_SECONDS, BENCH_REPEATS,
# BENCH_KEYS, BENCH_CLIENTS (50), BENCH_BUFFER_POOL (1G), BENCH_IO_THREADS (respoold --io-threads, 0 =
# one per CPU), BENCH_PAIRS ("durable async"), BENCH_SIZES ("64 4096"), BENCH_TMPDIR (scratch; default /tmp).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init vs-redis "${1:-}" "${2:-}"

: "${BENCH_PAIRS:=durable async}" "${BENCH_SIZES:=64 4096}" "${BENCH_IO_THREADS:=0}"
tests=(get:1 get:16 set:1 set:16)
read -ra pairs <<<"$BENCH_PAIRS"
read -ra sizes <<<"$BENCH_SIZES"
BENCH_TOTAL=$(( ${#pairs[@]} * ${#sizes[@]} * ${#tests[@]} * 2 * BENCH_REPEATS ))

machine_info | tee "$OUT/machine.txt" >&2
sync_probe start

for pair in "${pairs[@]}"; do
    case $pair in
        durable) mode=sync;  fsync=always ;;
        async)   mode=async; fsync=everysec ;;
        *) echo "vs-redis: unknown pair \"$pair\" (durable, async)" >&2; exit 2 ;;
    esac
    progress "$pair: starting respoold (--commit-mode $mode) and redis-server (appendfsync $fsync), fresh data"
    start_respool "respool-$mode" "$mode" "$BENCH_IO_THREADS"
    start_redis "redis-$fsync" "$fsync"
    for size in "${sizes[@]}"; do
        for name in "respool-$mode" "redis-$fsync"; do
            progress "$pair: preloading $BENCH_KEYS keys of $(size_label "$size") into $name"
            preload "$name" "$size"
        done
        compare "$pair" "respool-$mode" "redis-$fsync" "$size" "${tests[@]}"
    done
    redis-cli -p "${SRV_PORT[redis-$fsync]}" info persistence | tr -d '\r' |
        grep -E '^aof_rewrites:' | sed "s/^/redis-$fsync /" >> "$OUT/redis-aof.txt" || true
    stop_server "respool-$mode"
    stop_server "redis-$fsync"
done

sync_probe end
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the end" >> "$OUT/machine.txt"

# The runs table names servers; the summary wants "respool" and "redis" in columns a and b.
awk -F'\t' -v OFS='\t' '{ $3 = $4; print }' "$OUT/runs.tsv" > "$OUT/runs-by-kind.tsv"
summarize "$OUT/runs-by-kind.tsv" respool redis > "$OUT/summary.tsv"
rm -f "$OUT/runs-by-kind.tsv"

# ---- the table ---------------------------------------------------------------------------------------
{
    echo "respool vs redis - $(date '+%Y-%m-%d %H:%M:%S %Z')"
    cat "$OUT/machine.txt"
    echo
    echo "Disk floor (bench/syncrate.c: 4 KiB writes to a preallocated file, one at a time), at the start and the end:"
    awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           d = v["mode"] == "buffered" ? "pwrite + fdatasync" : v["mode"] == "direct" ? "O_DIRECT pwrite + fdatasync" : "O_DIRECT pwritev2(RWF_DSYNC) (respool WAL)"
           printf "  %-5s %-44s %8.0f syncs/s %7.1f us/sync (p50 %s us, p99 %s us)\n", v["when"], d, v["syncs_per_sec"], v["usec_per_sync"], v["p50_usec"], v["p99_usec"] }' \
        "$OUT/syncrate.txt"
    [[ -s "$OUT/redis-aof.txt" ]] && echo "  redis AOF rewrites during the runs: $(awk '{ sub(/aof_rewrites:/, "", $2); printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' "$OUT/redis-aof.txt")"
    echo
    echo "durable = respoold --commit-mode sync vs redis appendfsync always;  async = respoold --commit-mode async vs redis appendfsync everysec"
    echo "rps: requests/s, median of the runs; ratio = respool/redis;  p50/p99: latency in ms (median of the runs' percentiles)"
    echo "cpu us/rq: server CPU time per request (all threads; /proc), median;  other%: CPU used by other processes on the host"
    echo "  during these runs (% of all CPUs; anything above a few % makes the numbers noisy)"
    echo "WAL (respool SET runs): com/fl = wal_commits/wal_flushes; flush/s; us/fl = mean time of one WAL write+sync;"
    echo "  %disk = respool's flushes per second / the best RWF_DSYNC rate of the disk above ($(printf '%.0f' "${SYNC_DSYNC_RATE:-0}")/s)"
    echo "respool, summed over the measured runs: ckpt = checkpoints, fullw = writes that waited because the WAL ring was"
    echo "  full (back-pressure until a checkpoint), rd/1k = buffer pool misses read from the volume per 1000 requests"
    echo
    awk -F'\t' -v rate="${SYNC_DSYNC_RATE:-0}" '
        BEGIN {
            printf "%-7s %-12s %8s %8s %6s | %6s %6s | %6s %6s | %5s %5s | %6s | %6s %7s %5s %5s | %4s %5s %5s\n", "", "",
                "respool", "redis", "ratio", "p50", "p50", "p99", "p99", "cpu", "cpu", "", "WAL", "", "", "",
                "", "", ""
            printf "%-7s %-12s %8s %8s %6s | %6s %6s | %6s %6s | %5s %5s | %6s | %6s %7s %5s %5s | %4s %5s %5s\n", "pair",
                "test", "rps", "rps", "", "rp", "rd", "rp", "rd", "us/rq", "us/rq", "other%", "com/fl", "flush/s",
                "us/fl", "%disk", "ckpt", "fullw", "rd/1k"
            printf "%s\n", "---------------------------------------------------------------------------------------------------------------------------------------"
        }
        {
            if ($2 ~ /^SET/ && $12 + 0 > 0)
                w = sprintf("%6.1f %7.0f %5.0f %4.0f%%", $10, $11, $12, (rate > 0 ? 100 * $11 / rate : 0))
            else
                w = sprintf("%6s %7s %5s %5s", "-", "-", "-", "-")
            printf "%-7s %-12s %8.0f %8.0f %5.2fx | %6.3f %6.3f | %6.2f %6.2f | %5.1f %5.1f | %5.1f%% | %s | %4d %5d %5.1f\n",
                $1, $2, $3, $4, $5, $6, $7, $8, $9, $13, $14, $15, w, $17, $16, $18
        }' "$OUT/summary.tsv"
} > "$OUT/table.txt"

# ---- the charts ---------------------------------------------------------------------------------------
if command -v gnuplot >/dev/null; then
    awk -F'\t' -v OFS='\t' '{ print $1 " " $2, $3, $4, $5, $8, $9 }' "$OUT/summary.tsv" > "$OUT/plot.tsv"
    ntests=$(wc -l < "$OUT/plot.tsv")
    ndurable=$(grep -c '^durable' "$OUT/plot.tsv" || true)
    # explicit ranges: log-scale autoscaling would round up to the next decade and squash the bars
    yr=$(awk -F'\t' 'NR == 1 { lo = hi = $2 + 0 } { for (i = 2; i <= 3; i++) { if ($i < lo) lo = $i; if ($i > hi) hi = $i } }
                      END { printf "%g:%g", lo / 2, hi * 2 }' "$OUT/plot.tsv")
    pr=$(awk -F'\t' 'NR == 1 { lo = hi = $5 + 0 } { for (i = 5; i <= 6; i++) { if ($i < lo) lo = $i; if ($i > hi) hi = $i } }
                      END { if (lo <= 0) lo = 0.01; printf "%g:%g", lo / 2, hi * 2 }' "$OUT/plot.tsv")
    sep=""
    if (( ndurable > 0 && ndurable < ntests )); then
        sep="set arrow 1 from $ndurable - 0.5, graph 0 to $ndurable - 0.5, graph 1 nohead dt 2 lc rgb '#777777'"
    fi
    gnuplot <<GP
set terminal pngcairo size 1600,760 font "DejaVu Sans,11"
set datafile separator "\t"
set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set grid ytics
set xtics rotate by 40 right nomirror
set xrange [-0.6:${ntests}-0.4]
set logscale y
set format y "%.0s%c"
set lmargin 14
set rmargin 4
set bmargin 9
$sep

set output "$OUT/vs-redis.png"
set title "respool vs redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'): throughput (requests/s, log scale, median of $BENCH_REPEATS; label: respool/redis)\ndurable = sync commit vs appendfsync always, async = async commit vs appendfsync everysec; -c $BENCH_CLIENTS, $(nproc) CPUs shared with the client"
set ylabel "requests / s"
set yrange [$yr]
set ytics add (2e3, 5e3, 2e4, 5e4, 2e5, 5e5, 2e6, 5e6)
plot "$OUT/plot.tsv" using 2:xtic(1) title "respool" lc rgb "#2b7bba", \
     "" using 3 title "redis" lc rgb "#d62728", \
     "" using 0:((\$2 > \$3 ? \$2 : \$3) * 1.25):(sprintf("%.2fx", \$4)) with labels notitle font ",10"

set output "$OUT/vs-redis-p99.png"
set title "respool vs redis-server: p99 latency (ms, log scale, lower is better; median of $BENCH_REPEATS)\ndurable = sync commit vs appendfsync always, async = async commit vs appendfsync everysec; -c $BENCH_CLIENTS"
set ylabel "p99 latency (ms)"
set yrange [$pr]
set ytics add (0.02, 0.05, 0.2, 0.5, 2, 5, 20, 50, 200, 500, 2000, 5000)
set format y "%g"
plot "$OUT/plot.tsv" using 5:xtic(1) title "respool" lc rgb "#2b7bba", \
     "" using 6 title "redis" lc rgb "#d62728"
GP
    rm -f "$OUT/plot.tsv"
    mkdir -p "$BENCH_DIR/results"
    cp "$OUT/vs-redis.png" "$OUT/vs-redis-p99.png" "$BENCH_DIR/results/"
else
    echo "vs-redis: gnuplot not found: no charts (scripts/deps.sh bench installs gnuplot-nox)" >&2
fi

progress "vs-redis done: $OUT"
echo
cat "$OUT/table.txt"
