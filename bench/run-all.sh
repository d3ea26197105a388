#!/usr/bin/env bash
# bench/run-all.sh BUILD_DIR - `make bench`: every benchmark in bench/, results in one directory,
# bench/results/<timestamp>/ (bench/results/latest points at it), tables printed at the end.
#
#   vs-redis.sh    respoold vs redis-server 7, durable and async, GET/SET, P1/P16, 64 B/4 KiB (~11-13 min)
#   io-threads.sh  respoold --io-threads 1 vs 2 (~4 min)
#   fusion.sh      cache fusion: page acquisition latency against the loopback round trip, 1 vs 3 instances (~2 min)
#   profile.sh     perf profiles of respoold and redis-server under the same load (~2 min)
#
# BENCH_QUICK=1: a ~3 minute smoke run (one ~2 s run per test, 10k keys, no profile unless BENCH_PROFILE=1).
# See bench/README.md for every knob and how to read the output.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
stamp=$(date +%Y%m%d-%H%M%S)
out=$here/results/$stamp
mkdir -p "$out"
exec > >(tee -a "$out/console.log") 2>&1

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    : "${BENCH_PROFILE:=0}" "${BENCH_SECONDS:=2}"
    export BENCH_SECONDS
fi
: "${BENCH_PROFILE:=1}"
t0=$(date +%s)
echo "bench: results in $out"
read -r load1 _ < /proc/loadavg
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    echo "bench: warning: the host is busy (load average $load1) before the benchmark starts; other processes"
    echo "       compete with the servers and the client for the same CPUs and disk (see other% in the tables)"
fi

"$here/vs-redis.sh" "$build" "$out"
"$here/io-threads.sh" "$build" "$out"
"$here/fusion.sh" "$build" "$out"
if [[ $BENCH_PROFILE == 1 ]]; then
    "$here/profile.sh" "$build" "$out"
fi
ln -sfn "$stamp" "$here/results/latest"

el=$(( $(date +%s) - t0 ))
echo
echo "================================================================================================"
echo "bench: all done in $((el / 60))m$((el % 60))s; results in $out"
echo "================================================================================================"
cat "$out/table.txt"
echo
cat "$out/io-threads.txt"
echo
cat "$out/fusion.txt"
if [[ -f "$out/profile/summary.txt" ]]; then
    echo
    cat "$out/profile/summary.txt"
fi
echo
echo "charts: $here/results/vs-redis.png, $here/results/vs-redis-p99.png"
