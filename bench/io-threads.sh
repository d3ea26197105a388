#!/usr/bin/env bash
# bench/io-threads.sh BUILD_DIR [OUT_DIR] - which respoold --io-threads suits this machine: 1 against 2
# (BENCH_IO_A / BENCH_IO_B), side by side, runs alternating, 64-byte values, -c 50:
#   sync commit:   GET P1, GET P16, SET P1, SET P16
#   async commit:  SET P1, SET P16   (GET does not depend on the commit mode)
# Writes OUT_DIR/io-threads.txt (the table), io-threads.tsv (medians) and runs-io-threads.tsv (every run).
# Environment as for vs-redis.sh (BENCH_QUICK, BENCH_SECONDS, BENCH_REPEATS, BENCH_KEYS, ...).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init io-threads "${1:-}" "${2:-}"

: "${BENCH_IO_A:=1}" "${BENCH_IO_B:=2}"
a=io$BENCH_IO_A b=io$BENCH_IO_B
BENCH_TOTAL=$(( 6 * 2 * BENCH_REPEATS ))
[[ -s "$OUT/machine.txt" ]] || machine_info > "$OUT/machine.txt"

runs=$OUT/runs-io-threads.tsv
: > "$runs"
for mode in sync async; do
    if [[ $mode == sync ]]; then tests=(get:1 get:16 set:1 set:16); else tests=(set:1 set:16); fi
    progress "io-threads: respoold --commit-mode $mode with --io-threads $BENCH_IO_A and $BENCH_IO_B"
    start_respool "$a-$mode" "$mode" "$BENCH_IO_A"
    start_respool "$b-$mode" "$mode" "$BENCH_IO_B"
    for name in "$a-$mode" "$b-$mode"; do
        progress "io-threads: preloading $BENCH_KEYS keys of 64B into $name"
        preload "$name" 64
    done
    BENCH_RUNS=$SCRATCH/runs-$mode.tsv compare "$mode" "$a-$mode" "$b-$mode" 64 "${tests[@]}"
    # one name per setting across both commit modes: io1-sync -> io1
    awk -F'\t' -v OFS='\t' '{ sub(/-(sync|async)$/, "", $3); print }' "$SCRATCH/runs-$mode.tsv" >> "$runs"
    stop_server "$a-$mode"
    stop_server "$b-$mode"
done

summarize "$runs" "$a" "$b" > "$OUT/io-threads.tsv"
{
    echo "respoold --io-threads $BENCH_IO_A vs $BENCH_IO_B on $(nproc) CPUs (redis-benchmark on the same CPUs), 64-byte values, -c $BENCH_CLIENTS, median of $BENCH_REPEATS"
    echo
    awk -F'\t' -v A="$BENCH_IO_A" -v B="$BENCH_IO_B" '
        BEGIN {
            printf "%-6s %-12s %10s %10s %7s | %7s %7s | %7s %7s | %7s %7s | %6s\n", "commit", "test", "io=" A " rps",
                "io=" B " rps", B "/" A, "p50 " A, "p50 " B, "p99 " A, "p99 " B, "us/rq " A, "us/rq " B, "other%"
            printf "%s\n", "----------------------------------------------------------------------------------------------------------"
        }
        { printf "%-6s %-12s %10.0f %10.0f %6.2fx | %7.3f %7.3f | %7.2f %7.2f | %7.1f %7.1f | %5.1f%%\n", $1, $2, $3, $4,
              ($5 > 0 ? 1 / $5 : 0), $6, $7, $8, $9, $13, $14, $15 }' "$OUT/io-threads.tsv"
    echo
    echo "p50/p99: latency in ms; us/rq: respoold CPU time per request; other%: CPU used by other processes on the host"
} > "$OUT/io-threads.txt"
progress "io-threads done: $OUT/io-threads.txt"
echo
cat "$OUT/io-threads.txt"
