#!/usr/bin/env bash
# bench/fusion.sh BUILD_DIR [OUT_DIR] - cache fusion between instances on one volume, in one run (~2 min):
#
#   1. the physical floor: the loopback TCP round trip of an 8 KiB message (bench/net-rtt's "tcp" line),
#      measured before and after part 2; the ratios use the mean of the two p50s
#   2. the latency of one page acquisition (bench/fusion-latency: three instances in one process, each
#      with its own data directory, slot, pool, WAL and transport, talking over loopback TCP): remote S
#      read 2-way (the master owns the page) and 3-way, X transfer of a clean and of a dirty page, and a
#      local hit; p50/p99 and p50 / round trip, against the target of issue 3: remote S read p50 <= 2x RTT
#   3. throughput, 1 instance vs 3 on one volume (respoold --commit-mode sync, 64-byte values, keys
#      preloaded): read-mostly (~95 % GET) and write-only (SET), each on uniform keys (-r BENCH_KEYS) and
#      hot keys (-r 10); ops/s and server CPU per operation, 1 vs 3, and what cache fusion did per op
#
# How part 3 loads the servers. redis-benchmark cannot mix commands in one run, so every run has three
# client groups, each of two redis-benchmark processes started together: GET with BENCH_FUSION_GET_CLIENTS
# (16) connections and SET with BENCH_FUSION_SET_CLIENTS (1) (the read-mostly mix), or SET alone with
# both counts (write). With 3 instances group g talks to instance g; with 1 instance all three groups
# talk to it: the same clients either way, only the servers differ. The clients run with a huge -n; after
# 1 s of warm-up the script samples every member's INFO, the time and the member's /proc/PID/stat, again
# after BENCH_SECONDS, then stops the clients. Each member's rate is its change of
# total_commands_processed over its own two samples (taken when its INFO reply arrives: under contention
# INFO can wait seconds for an I/O thread), and the rates are summed. The GET share, from keyspace_hits +
# keyspace_misses, is printed: the mix is set by connection counts, so it is about 95 %, not exactly.
# CPU per op = utime + stime of the respoold processes per command. One window per configuration and
# workload (1 and 3 alternate), so read a difference of ~10 % as noise.
# The single-instance case is a 1-member cluster made by `respoolctl cluster init --instances 1`: the same
# code path (a directory, every page mastered locally), so 3/1 isolates what the other members cost.
# Keys are preloaded through instance 0 of each cluster: with 3 instances it owns every page at the start.
#
# Writes OUT_DIR/fusion.txt (the table, also printed), fusion-latency.txt, net-rtt-before.txt,
# net-rtt-after.txt, fusion-runs.tsv (one row per throughput run) and raw/fusion-* (server logs, final
# INFO). Environment as for the other scripts (BENCH_QUICK, BENCH_SECONDS, BENCH_KEYS, BENCH_BUFFER_POOL,
# BENCH_VOLUME_SIZE, BENCH_WAL_SIZE, BENCH_TMPDIR), plus BENCH_FUSION_ITER (timed acquisitions per kind,
# 5000; quick 1000), BENCH_FUSION_RTT (round trips per net-rtt run, 10000; quick 3000),
# BENCH_FUSION_GET_CLIENTS and BENCH_FUSION_SET_CLIENTS (per client group, 16 and 1).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init fusion "${1:-}" "${2:-}"

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    : "${BENCH_FUSION_ITER:=1000}" "${BENCH_FUSION_RTT:=3000}"
else
    : "${BENCH_FUSION_ITER:=5000}" "${BENCH_FUSION_RTT:=10000}"
fi
: "${BENCH_FUSION_GET_CLIENTS:=16}" "${BENCH_FUSION_SET_CLIENTS:=1}"
NET_RTT=$BUILD_DIR/bench/net-rtt
FUSION_LATENCY=$BUILD_DIR/bench/fusion-latency
for bin in "$NET_RTT" "$FUSION_LATENCY"; do
    [[ -x $bin ]] || { echo "fusion: $bin not found: build first (make build)" >&2; exit 1; }
done
HOT_KEYS=10
GROUPS_N=3
BENCH_TOTAL=$(( 3 + 4 * 2 ))
[[ -s "$OUT/machine.txt" ]] || machine_info > "$OUT/machine.txt"

# ---- clusters and clients, each stopped by what started it (and by PID as a last resort) ----------------

declare -A CL_CONF CL_PIDS CL_PORTS   # cluster name -> its cluster.conf, respoold PIDs, RESP ports
CLIENT_PIDS=()

fusion_cleanup() {
    local name pid
    for pid in "${CLIENT_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for name in "${!CL_CONF[@]}"; do
        stop_cluster "$name" quiet || true
    done
    bench_cleanup
}
trap fusion_cleanup EXIT

# free_port_range N: the first of N consecutive ports that nothing uses (lib.sh's free_port, for a run:
# `cluster init` gives instance i base + i).
free_port_range() {
    local n=$1 base p ok
    while :; do
        base=$(( 20000 + RANDOM % (12000 - n) ))
        ok=1
        for (( p = base; p < base + n; p++ )); do
            if ss -Htan "sport = :$p" 2>/dev/null | grep -q . ; then ok=0; break; fi
        done
        (( ok )) && { echo "$base"; return; }
    done
}

# init_cluster NAME N: a fresh N-member cluster under $SCRATCH/NAME (not started).
init_cluster() {
    local name=$1 n=$2 dir=$SCRATCH/$1 port cport
    port=$(free_port_range "$n")
    cport=$(free_port_range "$n")
    while (( cport < port + n && port < cport + n )); do cport=$(free_port_range "$n"); done
    "$RESPOOLCTL" cluster init --instances "$n" --dir "$dir" --base-port "$port" --cluster-base-port "$cport" \
        --size "$BENCH_VOLUME_SIZE" --wal-size "$BENCH_WAL_SIZE" --max-instances 4 --quiet
    CL_CONF[$name]=$dir/cluster.conf
    CL_PORTS[$name]=$(seq -s ' ' "$port" $(( port + n - 1 )))
}

# start_cluster NAME N: init and start; the PIDs come from each member's data-directory lock file.
start_cluster() {
    local name=$1 n=$2 i pids=""
    init_cluster "$name" "$n"
    "$RESPOOLCTL" cluster start --config "${CL_CONF[$name]}" -- --buffer-pool-size "$BENCH_BUFFER_POOL" \
        >> "$OUT/raw/fusion-cluster-start.txt"
    for (( i = 0; i < n; i++ )); do
        pids+="$(head -1 "$SCRATCH/$name/data$i/respool.lock") "
    done
    CL_PIDS[$name]=${pids% }
    echo "$name: $n member(s), respoold --cluster-config ... --buffer-pool-size $BENCH_BUFFER_POOL (pids ${CL_PIDS[$name]}," \
        "ports ${CL_PORTS[$name]})" >> "$OUT/servers.txt"
}

# stop_cluster NAME [quiet]: `cluster stop`, then SIGKILL for a member of ours that is still there; keeps
# the members' logs and final INFO under raw/.
stop_cluster() {
    local name=$1 quiet=${2:-} conf=${CL_CONF[$1]} port pid i=0
    if [[ -z $quiet ]]; then
        for port in ${CL_PORTS[$name]}; do
            redis-cli -p "$port" info > "$OUT/raw/fusion-info-$name-$i.txt" 2>/dev/null || true
            i=$(( i + 1 ))
        done
    fi
    "$RESPOOLCTL" cluster stop --config "$conf" --timeout 30 >> "$OUT/raw/fusion-cluster-stop.txt" 2>&1 || true
    for pid in ${CL_PIDS[$name]:-}; do
        # still a respoold of ours, and not a zombie waiting for init to reap it (that one has exited)
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == respoold && $(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1) != Z ]]; then
            echo "fusion: respoold $pid of $name did not stop; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for (( i = 0; i < 4; i++ )); do
        [[ -f "$SCRATCH/$name/data$i/respoold.log" ]] && cp "$SCRATCH/$name/data$i/respoold.log" "$OUT/raw/fusion-log-$name-$i.txt"
    done
    rm -rf "${SCRATCH:?}/$name"
    unset "CL_CONF[$name]" "CL_PIDS[$name]"
}

# ---- 1. and 2.: the floor and the latencies ------------------------------------------------------------

rtt() { # WHEN
    BENCH_STEP=$(( BENCH_STEP + 1 ))
    progress "floor: loopback round trips of 8 KiB, $BENCH_FUSION_RTT after $(( BENCH_FUSION_RTT / 10 )) warm-up ($1)"
    "$NET_RTT" -n "$BENCH_FUSION_RTT" -w $(( BENCH_FUSION_RTT / 10 )) -s 8192 > "$OUT/net-rtt-$1.txt"
    progress "  $(awk '$1 == "tcp" { printf "tcp p50 %s us, p99 %s us", $2, $3 }' "$OUT/net-rtt-$1.txt")"
}

wait_quiet
rtt before
BENCH_STEP=$(( BENCH_STEP + 1 ))
progress "latency: 3 instances in one process, $BENCH_FUSION_ITER timed acquisitions per kind"
init_cluster lat 3
"$FUSION_LATENCY" -c "${CL_CONF[lat]}" -n "$BENCH_FUSION_ITER" -w 200 > "$OUT/fusion-latency.txt"
rm -rf "${SCRATCH:?}/lat"
unset "CL_CONF[lat]"
while read -r line; do progress "  $line"; done < <(grep -v '^#' "$OUT/fusion-latency.txt")
rtt after

# ---- 3.: throughput, 1 vs 3 instances --------------------------------------------------------------------

progress "throughput: starting a 1-member and a 3-member cluster, preloading $BENCH_KEYS keys of 64 B into each"
start_cluster one 1
start_cluster three 3
for name in one three; do
    SRV_PORT[$name]=${CL_PORTS[$name]%% *}   # lib.sh's preload talks to SRV_PORT: instance 0
    preload "$name" 64
done

proc_ticks() { # PID -> user + system clock ticks of the process, all threads (0 once it is gone)
    local t
    t=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }') || true
    echo "${t:-0}"
}

# sample_member PORT PID: "t_ns info_ms commands gets errors ticks waits shipped dirty timeouts" of one member.
# The time and the CPU are taken when INFO's reply arrives, i.e. right after the member read its
# counters: under a contended load INFO itself can wait seconds for an I/O thread (every command of that
# thread waits while one of them waits for a page), and a time taken before asking would not match.
sample_member() {
    local port=$1 pid=$2 t0 info t ticks
    t0=$(date +%s%N)
    # only these sections: the default INFO also counts the keys (a walk over every leaf of the tree,
    # which in a cluster pulls each leaf from its owner) and would disturb what it measures
    info=$(redis-cli -p "$port" info stats cluster 2>/dev/null | tr -d '\r')
    t=$(date +%s%N)
    ticks=$(proc_ticks "$pid")
    awk -F: -v t="$t" -v ms="$(( (t - t0) / 1000000 ))" -v ticks="$ticks" '
        $1 == "total_commands_processed" { c = $2 }
        $1 == "keyspace_hits" || $1 == "keyspace_misses" { g += $2 }
        $1 == "total_error_replies" { e = $2 }
        $1 == "fusion_waits" { w = $2 }
        $1 == "fusion_remote_3way" { s = $2 }
        $1 == "fusion_dirty_writes" { d = $2 }
        $1 == "fusion_timeouts" { o = $2 }
        END { printf "%s %d %d %d %d %d %d %d %d %d\n", t, ms, c, g, e, ticks, w, s, d, o }' <<<"$info"
}

# sample NAME: one sample_member line per member, asked in parallel (one slow member does not shift the
# others' samples).
sample() {
    local name=$1 ports pids i n askers=()
    read -ra ports <<<"${CL_PORTS[$name]}"
    read -ra pids <<<"${CL_PIDS[$name]}"
    n=${#ports[@]}
    for (( i = 0; i < n; i++ )); do
        sample_member "${ports[$i]}" "${pids[$i]}" > "$SCRATCH/sample.$i" &
        askers+=($!)
    done
    wait "${askers[@]}"
    for (( i = 0; i < n; i++ )); do cat "$SCRATCH/sample.$i"; done
}

# window NAME WORKLOAD KEYS -> appends a row to fusion-runs.tsv:
#   1 workload  2 keys  3 instances  4 seconds  5 ops  6 ops_per_s  7 get_pct  8 errors  9 srv_us_per_op
#   10 waits  11 shipped  12 dirty  13 timeouts (per 1000 ops)  14 slowest INFO (ms)
#   15 each member's share of the ops/s, "a/b/c" in %
# Rates are per member (its own two samples), then summed.
window() {
    local name=$1 workload=$2 keys=$3 ports n g port a b pid
    read -ra ports <<<"${CL_PORTS[$name]}"
    n=${#ports[@]}
    CLIENT_PIDS=()
    for (( g = 0; g < GROUPS_N; g++ )); do
        port=${ports[$(( g % n ))]}
        local common=(-h 127.0.0.1 -p "$port" -n 2000000000 -r "$keys" -d 64 -q)
        if [[ $workload == read-mostly ]]; then
            redis-benchmark "${common[@]}" -c "$BENCH_FUSION_GET_CLIENTS" -t get > /dev/null 2>&1 &
            CLIENT_PIDS+=($!)
            redis-benchmark "${common[@]}" -c "$BENCH_FUSION_SET_CLIENTS" -t set > /dev/null 2>&1 &
            CLIENT_PIDS+=($!)
        else
            redis-benchmark "${common[@]}" -c $(( BENCH_FUSION_GET_CLIENTS + BENCH_FUSION_SET_CLIENTS )) \
                -t set > /dev/null 2>&1 &
            CLIENT_PIDS+=($!)
        fi
    done
    sleep 1
    a=$(sample "$name")
    sleep "$BENCH_SECONDS"
    b=$(sample "$name")
    for pid in "${CLIENT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${CLIENT_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    CLIENT_PIDS=()
    paste -d' ' <(echo "$a") <(echo "$b") | awk -v w="$workload" -v k="$keys" -v hz="$(getconf CLK_TCK)" '
        # $1..$10: the first sample of a member, $11..$20: the second
        {
            m++; s = ($11 - $1) / 1e9; secs += s
            rate[m] = ($13 - $3) / s; ops += $13 - $3; r += rate[m]; cpu += ($16 - $6) / hz / s
            gets += $14 - $4; errs += $15 - $5; wt += $17 - $7; sh += $18 - $8; dt += $19 - $9; to += $20 - $10
            if ($2 > info) info = $2
            if ($12 > info) info = $12
        }
        END {
            if (ops < 1) ops = 1
            shares = ""
            for (i = 1; i <= m; i++) shares = shares (i > 1 ? "/" : "") sprintf("%.0f", r > 0 ? 100 * rate[i] / r : 0)
            printf "%s\t%s\t%d\t%.2f\t%d\t%.0f\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\n", w, k, m, secs / m, ops, r,
                100 * gets / ops, errs, (r > 0 ? cpu / r * 1e6 : 0), 1000 * wt / ops, 1000 * sh / ops, 1000 * dt / ops,
                1000 * to / ops, info, shares
        }' >> "$OUT/fusion-runs.tsv"
}

: > "$OUT/fusion-runs.tsv"
for workload in read-mostly write; do
    for keys in "$BENCH_KEYS" "$HOT_KEYS"; do
        wait_quiet
        for name in one three; do
            BENCH_STEP=$(( BENCH_STEP + 1 ))
            progress "throughput: $workload, -r $keys, $( [[ $name == one ]] && echo 1 instance || echo 3 instances ), ${BENCH_SECONDS}s"
            window "$name" "$workload" "$keys"
            progress "  $(tail -1 "$OUT/fusion-runs.tsv" | awk -F'\t' '{ printf "%.0f ops/s (per instance %s %%), %.1f us CPU/op, GET %.1f%%, %d errors, slowest INFO %d ms", $6, $15, $9, $7, $8, $14 }')"
        done
    done
done
stop_cluster one
stop_cluster three
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ---------------------------------------------------------------------------------------------

rtt_p50() { awk '$1 == "tcp" { print $2 }' "$OUT/net-rtt-$1.txt"; }
floor=$(awk -v a="$(rtt_p50 before)" -v b="$(rtt_p50 after)" 'BEGIN { printf "%.1f", (a + b) / 2 }')
{
    echo "cache fusion: latency against the loopback round trip, throughput of 1 vs 3 instances - $(date '+%Y-%m-%d %H:%M:%S %Z')"
    grep -E '^(host|disk|load|commit):' "$OUT/machine.txt"
    echo "load:      $load_end (1/5/15 min) at the end"
    echo "           $(nproc) CPUs for everything: up to 3 instances (each with its I/O, network, worker, WAL and"
    echo "           checkpoint threads) and every client run on them; nothing here has a core of its own"
    echo
    echo "1. The floor: loopback TCP round trip, 8 KiB one way (bench/net-rtt, $BENCH_FUSION_RTT round trips each run)"
    echo
    printf "   %-44s %8s %8s\n" "" "p50 us" "p99 us"
    for when in before after; do
        awk -v w="$when" '$1 == "tcp" { printf "   %-44s %8.1f %8.1f\n", "tcp, blocking read/write (" w ")", $2, $3 }
                          $1 == "tcp-poll" { tp = sprintf("   %-44s %8.1f %8.1f\n", "  tcp, requester polls (" w ")", $2, $3) }
                          $1 == "call" { c = sprintf("   %-44s %8.1f %8.1f\n", "  rp_net_call 16 B -> 8 KiB (" w ")", $2, $3) }
                          END { printf "%s%s", tp, c }' "$OUT/net-rtt-$when.txt"
    done
    echo "   RTT = mean of the two blocking-tcp p50s = $floor us: the denominator of the ratios below"
    echo
    echo "2. Cache fusion: one rp_mtr_get() between 3 instances (bench/fusion-latency, $BENCH_FUSION_ITER timed per kind"
    echo "   after 200 warm-up; each kind rotates over 3 pages, one mastered by each instance)"
    echo
    awk -v rtt="$floor" '
        BEGIN {
            label["s-2way"] = "remote S read, 2-way (R -> M=owner -> R)"
            label["s-3way"] = "remote S read, 3-way (R -> M -> O -> R)"
            label["x-clean"] = "X transfer, clean page (R -> M -> O -> R)"
            label["x-dirty"] = "X transfer, dirty page (O writes it first)"
            label["local"] = "local hit (global mode held, no message)"
            printf "   %-44s %8s %8s %8s %8s | %s\n", "kind", "p50 us", "p99 us", "p50/RTT", "p99/RTT",
                "per acquisition: waits shipped xfer dirty"
            printf "   %s\n", "--------------------------------------------------------------------------------------------------------------"
        }
        /^#/ { next }
        {
            for (i = 6; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "   %-44s %8.2f %8.2f %7.2fx %7.2fx |  %5.2f  %7.2f %4.2f %5.2f\n", label[$1], $2, $3, $2 / rtt, $3 / rtt,
                v["waits"], v["shipped"], v["xfer"], v["dirty"]
            p50[$1] = $2
        }
        END {
            printf "\n   Target (issue 3): remote S read p50 <= 2x round trip (%.1f us):\n", 2 * rtt
            for (k = 0; k < 2; k++) {
                n = k ? "s-3way" : "s-2way"
                printf "     %-6s %8.1f us = %.2fx RTT   %s\n", n, p50[n], p50[n] / rtt, p50[n] <= 2 * rtt ? "MET" : "NOT MET"
            }
        }' "$OUT/fusion-latency.txt"
    echo
    echo "3. Throughput, 1 vs 3 instances on one volume: respoold --commit-mode sync --buffer-pool-size $BENCH_BUFFER_POOL,"
    echo "   $BENCH_KEYS keys of 64 B preloaded through instance 0; 3 client groups (GET -c $BENCH_FUSION_GET_CLIENTS + SET -c $BENCH_FUSION_SET_CLIENTS"
    echo "   each for read-mostly, SET -c $(( BENCH_FUSION_GET_CLIENTS + BENCH_FUSION_SET_CLIENTS )) each for write), one per instance (all on the one"
    echo "   instance for 1), redis-benchmark P1; one ${BENCH_SECONDS}s window each after 1 s of warm-up, 1 and 3 alternating"
    echo
    awk -F'\t' '
        BEGIN {
            printf "   %-27s %8s %8s %6s | %6s %6s %6s | %5s %5s | %6s %7s %6s | %-8s | %s\n", "workload", "ops/s 1",
                "ops/s 3", "3/1", "cpu 1", "cpu 3", "3/1", "GET%1", "GET%3", "waits", "shipped", "dirty", "split 3",
                "errors 1/3"
            printf "   %-27s %8s %8s %6s | %6s %6s %6s | %5s %5s | %-21s | %-8s |\n", "", "", "", "", "us/op", "us/op", "",
                "", "", "per 1k ops, 3 inst.", "% of ops"
            printf "   %s\n", "------------------------------------------------------------------------------------------------------------------------------"
        }
        {
            k = $1 SUBSEP $2
            if (!(k in seen)) { seen[k] = 1; order[++nk] = k; wl[k] = $1; keys[k] = $2 }
            ops[k, $3] = $6; cpu[k, $3] = $9; get[k, $3] = $7; err[k, $3] = $8
            if ($3 == 3) { waits[k] = $10; shipped[k] = $11; dirty[k] = $12; share[k] = $15 }
        }
        END {
            for (i = 1; i <= nk; i++) {
                k = order[i]
                name = (wl[k] == "read-mostly" ? "read-mostly" : "write (SET)") " " (keys[k] <= 10 ? "hot -r " : "uniform -r ") keys[k]
                printf "   %-27s %8.0f %8.0f %5.2fx | %6.1f %6.1f %5.2fx | %5.1f %5.1f | %6.1f %7.1f %6.1f | %-8s | %d / %d\n",
                    name, ops[k, 1], ops[k, 3], (ops[k, 1] > 0 ? ops[k, 3] / ops[k, 1] : 0), cpu[k, 1], cpu[k, 3],
                    (cpu[k, 1] > 0 ? cpu[k, 3] / cpu[k, 1] : 0), get[k, 1], get[k, 3], waits[k], shipped[k], dirty[k],
                    share[k], err[k, 1], err[k, 3]
            }
        }' "$OUT/fusion-runs.tsv"
    echo
    echo "   ops/s: commands served by all instances together (INFO total_commands_processed, each member's rate over"
    echo "   its own two samples, summed); cpu us/op: CPU time of the respoold processes (all threads, /proc) per"
    echo "   command; GET%: the read share the mix actually had; waits: page acquisitions that waited for a message"
    echo "   (fusion_waits); shipped: pages sent by their owner (fusion_remote_3way); dirty: pages written to the"
    echo "   volume before moving in X; split 3: each instance's share of the 3-instance ops/s (the clients are the"
    echo "   same on each); errors: error replies (TRYAGAIN when a page request passes request-timeout)"
} > "$OUT/fusion.txt"
progress "fusion done: $OUT/fusion.txt"
echo
cat "$OUT/fusion.txt"
