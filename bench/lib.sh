# bench/lib.sh - shared by the benchmark scripts in bench/ (sourced, not run).
#
# Offers:
#   bench_init NAME BUILD_DIR [OUT_DIR]   settings, results directory, scratch directory, EXIT trap
#   start_respool NAME MODE [IO_THREADS]  fresh volume + respoold (sync|async commit) on a free port
#   start_redis NAME FSYNC                redis-server (appendonly yes, appendfsync always|everysec)
#   stop_server NAME                      SIGTERM, wait, keep its log and INFO under $OUT/raw
#   preload NAME SIZE                     SET key:000000000000 .. key:<BENCH_KEYS-1> to SIZE-byte values
#   calibrate NAME TEST PIPE SIZE         short warm-up run; prints the -n that lasts ~BENCH_SECONDS
#   bench_run NAME TEST PIPE SIZE N TAG   one measured redis-benchmark run; prints
#                                         "rps p50_ms p99_ms seconds d_commits d_flushes d_flush_usec"
#   compare LABEL A B SIZE TEST:PIPE...   alternate A and B on each test, BENCH_REPEATS runs each,
#                                         append the runs to $OUT/runs.tsv
#   summarize RUNS_TSV LABEL_A LABEL_B    medians per (group, test) as TSV: the table's data
#   progress MSG                          "[mm:ss] [done/total] MSG" on stderr
#   wait_quiet                            wait (bounded) while other processes keep the host's CPUs busy
#   sync_probe                            build and run bench/syncrate.c in the scratch directory
#
# Every process started here is remembered by PID and stopped by PID on exit (normal, error or ^C);
# the scratch directory (volumes, redis data) is removed. Nothing else is touched.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

declare -A SRV_PID SRV_PORT SRV_KIND SRV_DIR
BENCH_STEP=0
BENCH_TOTAL=0

bench_init() {
    local name=$1 build=$2 out=${3:-}
    [[ -n "$build" ]] || { echo "usage: bench/$name.sh BUILD_DIR [OUT_DIR]" >&2; exit 2; }
    BUILD_DIR=$(cd "$build" && pwd)
    RESPOOLD=$BUILD_DIR/src/kv/respoold
    RESPOOLCTL=$BUILD_DIR/src/ctl/respoolctl
    for bin in "$RESPOOLD" "$RESPOOLCTL"; do
        [[ -x $bin ]] || { echo "$name: $bin not found: build first (make build)" >&2; exit 1; }
    done
    for tool in redis-server redis-benchmark redis-cli cc; do
        command -v "$tool" >/dev/null || { echo "$name: $tool not found: run scripts/deps.sh bench" >&2; exit 1; }
    done

    if [[ ${BENCH_QUICK:-0} == 1 ]]; then
        : "${BENCH_SECONDS:=1}" "${BENCH_REPEATS:=1}" "${BENCH_KEYS:=10000}" "${BENCH_SYNC_SECONDS:=1}"
        : "${BENCH_QUIET:=0}" "${BENCH_QUIET_BUDGET:=0}"
    else
        : "${BENCH_SECONDS:=6}" "${BENCH_REPEATS:=3}" "${BENCH_KEYS:=100000}" "${BENCH_SYNC_SECONDS:=3}"
        : "${BENCH_QUIET:=60}" "${BENCH_QUIET_BUDGET:=240}"
    fi
    : "${BENCH_QUIET_PCT:=15}"
    BENCH_QUIET_USED=0
    : "${BENCH_CLIENTS:=50}" "${BENCH_BUFFER_POOL:=1G}" "${BENCH_VOLUME_SIZE:=2G}" "${BENCH_WAL_SIZE:=256M}"
    export BENCH_SECONDS BENCH_REPEATS BENCH_KEYS BENCH_CLIENTS BENCH_BUFFER_POOL BENCH_SYNC_SECONDS

    if [[ -z "$out" ]]; then
        out=$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)
    fi
    mkdir -p "$out/raw"
    OUT=$(cd "$out" && pwd)
    # Scratch space on the filesystem of the volumes: the sync probe must measure that disk.
    SCRATCH=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/respool-bench.XXXXXX")
    BENCH_T0=$(date +%s)
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_cleanup() {
    local name
    for name in "${!SRV_PID[@]}"; do
        stop_server "$name" quiet || true
    done
    [[ -n "${SCRATCH:-}" && -d "$SCRATCH" ]] && rm -rf "$SCRATCH"
}

progress() {
    local el=$(( $(date +%s) - BENCH_T0 ))
    if (( BENCH_TOTAL > 0 )); then
        printf '[%02d:%02d] [%d/%d] %s\n' $((el / 60)) $((el % 60)) "$BENCH_STEP" "$BENCH_TOTAL" "$*" >&2
    else
        printf '[%02d:%02d] %s\n' $((el / 60)) $((el % 60)) "$*" >&2
    fi
}

host_busy_pct() { # percent of all CPUs busy over the next second (everything: ours and others)
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]
                                     printf "%.0f\n", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

# wait_quiet - between runs nothing of ours is busy, so what keeps the CPUs busy is someone else (tests of
# other work on a shared machine). Wait while that is above BENCH_QUIET_PCT (15) % of all CPUs: at most
# BENCH_QUIET seconds each time (60; 0 = never wait), at most BENCH_QUIET_BUDGET seconds per script (240).
# The other% column of the tables shows what was left.
wait_quiet() {
    local busy start=$SECONDS said=0
    (( BENCH_QUIET > 0 && BENCH_QUIET_USED < BENCH_QUIET_BUDGET )) || return 0
    while :; do
        busy=$(host_busy_pct)
        (( busy < BENCH_QUIET_PCT )) && break
        if (( SECONDS - start >= BENCH_QUIET || BENCH_QUIET_USED + SECONDS - start >= BENCH_QUIET_BUDGET )); then
            progress "the host is still busy ($busy% of the CPUs used by other processes): going on"
            break
        fi
        (( said )) || progress "waiting for the host to calm down: other processes use $busy% of the CPUs"
        said=1
        sleep 2
    done
    BENCH_QUIET_USED=$(( BENCH_QUIET_USED + SECONDS - start ))
}

free_port() {
    # Below the ephemeral range (ip_local_port_range starts at 32768): redis-benchmark's 50 connections
    # take local ports from there, and one of them can hold a port picked above it (it happened: a server
    # failed with "Address already in use"). Any socket on the port counts, not only listeners.
    local p
    while :; do
        p=$(( 20000 + RANDOM % 12000 ))
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q . ; then
            echo "$p"
            return
        fi
    done
}

wait_ping() { # NAME: wait until the server answers PING (10 s)
    local name=$1 i
    for i in $(seq 100); do
        if [[ $(redis-cli -p "${SRV_PORT[$name]}" ping 2>/dev/null) == PONG ]]; then
            return 0
        fi
        if ! kill -0 "${SRV_PID[$name]}" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "bench: server $name did not come up; its log:" >&2
    tail -20 "${SRV_DIR[$name]}/log" >&2 || true
    return 1
}

start_respool() { # NAME MODE [IO_THREADS]
    local name=$1 mode=$2 threads=${3:-0}
    local dir=$SCRATCH/$name port
    rm -rf "$dir"; mkdir -p "$dir"
    "$RESPOOLCTL" volume init --volume "$dir/volume" --size "$BENCH_VOLUME_SIZE" --wal-size "$BENCH_WAL_SIZE" \
        --max-instances 2 --quiet
    port=$(free_port)
    "$RESPOOLD" -D "$dir/data" --volume "$dir/volume" --port "$port" --commit-mode "$mode" \
        --io-threads "$threads" --buffer-pool-size "$BENCH_BUFFER_POOL" --log-file "$dir/log" ${BENCH_RESPOOLD_ARGS:-} &
    SRV_PID[$name]=$!
    SRV_PORT[$name]=$port
    SRV_KIND[$name]=respool
    SRV_DIR[$name]=$dir
    wait_ping "$name"
    echo "$name: respoold --commit-mode $mode --io-threads $threads --buffer-pool-size $BENCH_BUFFER_POOL ${BENCH_RESPOOLD_ARGS:-}" \
        "(pid ${SRV_PID[$name]}, port $port)" >> "$OUT/servers.txt"
}

start_redis() { # NAME FSYNC
    local name=$1 fsync=$2
    local dir=$SCRATCH/$name port
    rm -rf "$dir"; mkdir -p "$dir"
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --dir "$dir" --appendonly yes \
        --appendfsync "$fsync" --daemonize no --logfile "$dir/log" &
    SRV_PID[$name]=$!
    SRV_PORT[$name]=$port
    SRV_KIND[$name]=redis
    SRV_DIR[$name]=$dir
    wait_ping "$name"
    echo "$name: $(redis-server --version | awk '{print $1, $2, $3}') --appendonly yes --appendfsync $fsync" \
        "--save '' (pid ${SRV_PID[$name]}, port $port)" >> "$OUT/servers.txt"
}

stop_server() { # NAME [quiet]
    local name=$1 pid=${SRV_PID[$1]:-} i
    [[ -n "$pid" ]] || return 0
    if [[ -z "${2:-}" ]] && kill -0 "$pid" 2>/dev/null; then
        redis-cli -p "${SRV_PORT[$name]}" info > "$OUT/raw/info-$name.txt" 2>/dev/null || true
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "bench: $name (pid $pid) did not stop in 30 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    [[ -f "${SRV_DIR[$name]}/log" ]] && cp "${SRV_DIR[$name]}/log" "$OUT/raw/log-$name.txt"
    rm -rf "${SRV_DIR[$name]}"
    unset "SRV_PID[$name]"
}

info_field() { # NAME FIELD...: values of INFO fields, in the order asked
    local name=$1; shift
    redis-cli -p "${SRV_PORT[$name]}" info 2>/dev/null | tr -d '\r' | awk -F: -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        { v[$1] = $2 }
        END { for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? " " : ""), (w[i] in v ? v[w[i]] : 0); print "" }'
}

preload() { # NAME SIZE
    local name=$1 size=$2 out
    out=$(awk -v n="$BENCH_KEYS" -v d="$size" 'BEGIN {
            v = sprintf("%*s", d, ""); gsub(/ /, "x", v)
            for (i = 0; i < n; i++) {
                k = sprintf("key:%012d", i)
                printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, d, v
            }
        }' | redis-cli -p "${SRV_PORT[$name]}" --pipe 2>&1)
    echo "# preload $name $BENCH_KEYS keys of $size bytes"$'\n'"$out" >> "$OUT/raw/preload.log"
    if ! grep -q "errors: 0, replies: $BENCH_KEYS" <<<"$out"; then
        echo "bench: preload of $name failed: $out" >&2
        return 1
    fi
    local keys
    keys=$(redis-cli -p "${SRV_PORT[$name]}" dbsize)
    if [[ "$keys" != "$BENCH_KEYS" ]]; then
        echo "bench: $name holds $keys keys after the preload, expected $BENCH_KEYS" >&2
        return 1
    fi
}

# One redis-benchmark run; the raw CSV goes to $OUT/raw/redis-benchmark.log. RB_TIME, when set, names a
# file that receives the client's CPU seconds "user sys" (GNU time).
rb() { # NAME TEST PIPE SIZE N
    local name=$1 test=$2 pipe=$3 size=$4 n=$5
    local limit=$(( BENCH_SECONDS * 20 + 120 ))
    local timer=()
    [[ -n "${RB_TIME:-}" ]] && timer=(/usr/bin/time -f '%U %S' -o "$RB_TIME")
    timeout "$limit" "${timer[@]}" redis-benchmark -h 127.0.0.1 -p "${SRV_PORT[$name]}" -c "$BENCH_CLIENTS" \
        -n "$n" -r "$BENCH_KEYS" -d "$size" -P "$pipe" -t "$test" --csv
}

csv_row() { # the data line of a redis-benchmark --csv output -> "rps p50 p99"
    awk -F, 'NR == 2 { gsub(/"/, ""); print $2, $5, $7 }'
}

cpu_ticks() { # NAME -> "host_busy server": clock ticks (USER_HZ) used by the whole host and by the server
    local pid=${SRV_PID[$1]}
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat | tr '\n' ' '
    sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'
}

calibrate() { # NAME TEST PIPE SIZE -> prints N for a run of ~BENCH_SECONDS
    local name=$1 test=$2 pipe=$3 size=$4 n0 csv rps n
    n0=$(( pipe > 1 ? 100000 : 20000 ))
    [[ ${BENCH_QUICK:-0} == 1 ]] && n0=$(( n0 / 4 ))
    csv=$(rb "$name" "$test" "$pipe" "$size" "$n0") || { echo "bench: calibration run failed on $name" >&2; return 1; }
    { echo "# calibrate $name $test P$pipe ${size}B n=$n0"; echo "$csv"; } >> "$OUT/raw/redis-benchmark.log"
    rps=$(csv_row <<<"$csv" | awk '{print $1}')
    n=$(awk -v r="$rps" -v s="$BENCH_SECONDS" -v m="$n0" 'BEGIN {
            n = int(r * s / 1000 + 0.5) * 1000; if (n < m) n = m; print n }')
    echo "$n"
}

# bench_run NAME TEST PIPE SIZE N TAG - one measured run. Prints:
#   rps p50_ms p99_ms seconds d_commits d_flushes flush_usec srv_cpu_s cli_cpu_s host_busy_s
#   d_full_waits d_checkpoints d_pool_reads
# d_*: respool's INFO counters wal_commits, wal_flushes, wal_full_waits (writes that waited for a
# checkpoint because the WAL ring was full), checkpoints and pool_reads (buffer pool misses read from the
# volume) during the run; flush_usec: the mean time of the run's flushes (from the running mean
# wal_avg_flush_usec); CPU seconds from /proc and GNU time. All d_* are 0 for redis.
bench_run() {
    local name=$1 test=$2 pipe=$3 size=$4 n=$5 tag=$6 wb="0 0 0 0 0 0" wa="0 0 0 0 0 0" cb ca t0 t1 csv row cli
    local fields="wal_commits wal_flushes wal_avg_flush_usec wal_full_waits checkpoints pool_reads"
    [[ ${SRV_KIND[$name]} == respool ]] && wb=$(info_field "$name" $fields)
    cb=$(cpu_ticks "$name")
    t0=$(date +%s%N)
    csv=$(RB_TIME=$SCRATCH/rb.time rb "$name" "$test" "$pipe" "$size" "$n") ||
        { echo "bench: redis-benchmark failed on $name" >&2; return 1; }
    t1=$(date +%s%N)
    ca=$(cpu_ticks "$name")
    cli=$(cat "$SCRATCH/rb.time")
    [[ ${SRV_KIND[$name]} == respool ]] && wa=$(info_field "$name" $fields)
    { echo "# $tag $name $test P$pipe ${size}B n=$n (client CPU user/sys: $cli)"; echo "$csv"; } \
        >> "$OUT/raw/redis-benchmark.log"
    row=$(csv_row <<<"$csv")
    [[ -n "$row" ]] || { echo "bench: no result from redis-benchmark on $name: $csv" >&2; return 1; }
    awk -v row="$row" -v b="$wb" -v a="$wa" -v t0="$t0" -v t1="$t1" -v cb="$cb" -v ca="$ca" -v cli="$cli" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN {
            split(b, x, " "); split(a, y, " "); split(cb, p, " "); split(ca, q, " "); split(cli, c, " ")
            df = y[2] - x[2]
            fu = df > 0 ? (y[3] * y[2] - x[3] * x[2]) / df : 0
            printf "%s %.3f %d %d %.0f %.2f %.2f %.2f %d %d %d\n", row, (t1 - t0) / 1e9, y[1] - x[1], df, fu,
                (q[2] - p[2]) / hz, c[1] + c[2], (q[1] - p[1]) / hz, y[4] - x[4], y[5] - x[5], y[6] - x[6] }'
}

size_label() { # 64 -> 64B, 4096 -> 4KiB
    if (( $1 >= 1024 && $1 % 1024 == 0 )); then echo "$(( $1 / 1024 ))KiB"; else echo "${1}B"; fi
}

# compare GROUP A B SIZE TEST:PIPE... - for each test: calibrate A and B, then BENCH_REPEATS rounds of
# (A, B), so slow drifts of the machine hit both servers alike. Rows of $BENCH_RUNS ($OUT/runs.tsv):
#   group test server kind rep n rps p50_ms p99_ms seconds d_commits d_flushes flush_usec srv_cpu cli_cpu host_busy
#   d_full_waits d_checkpoints d_pool_reads
compare() {
    local group=$1 a=$2 b=$3 size=$4; shift 4
    local spec test pipe label name n rep res
    local -A nreq
    for spec in "$@"; do
        test=${spec%%:*}; pipe=${spec##*:}
        label="${test^^} P$pipe $(size_label "$size")"
        for name in "$a" "$b"; do
            progress "$group: $label: $name warm-up"
            nreq[$name]=$(calibrate "$name" "$test" "$pipe" "$size")
        done
        for rep in $(seq "$BENCH_REPEATS"); do
            wait_quiet
            for name in "$a" "$b"; do
                BENCH_STEP=$(( BENCH_STEP + 1 ))
                progress "$group: $label: $name run $rep/$BENCH_REPEATS (n=${nreq[$name]})"
                res=$(bench_run "$name" "$test" "$pipe" "$size" "${nreq[$name]}" "run$rep")
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$label" "$name" "${SRV_KIND[$name]}" "$rep" \
                    "${nreq[$name]}" "$(tr ' ' '\t' <<<"$res")" >> "${BENCH_RUNS:-$OUT/runs.tsv}"
                progress "$group: $label: $name run $rep/$BENCH_REPEATS: $(awk '{printf "%.0f rps, p50 %s ms, p99 %s ms", $1, $2, $3}' <<<"$res")"
            done
        done
    done
}

# summarize RUNS_TSV A B - one row per (group, test), in first-seen order, medians over the repeats:
#   1 group  2 test  3 a_rps  4 b_rps  5 ratio a/b  6 a_p50  7 b_p50  8 a_p99  9 b_p99
#   10 commits_per_flush  11 flushes_per_s  12 flush_usec   (server A's WAL counters summed over its runs;
#                                                            0 when A made no flush)
#   13 a_cpu_us_per_req  14 b_cpu_us_per_req  (server CPU per request, median)
#   15 other_pct  (CPU used by anything but the server and redis-benchmark during the runs, % of all CPUs)
#   16 a_full_waits  17 a_checkpoints  18 a_pool_reads_per_1k_requests  (server A, summed over its runs)
summarize() {
    local runs=$1 a=$2 b=$3
    awk -F'\t' -v A="$a" -v B="$b" -v ncpu="$(nproc)" '
        function median(list,   v, n, i, j, t) {
            n = split(list, v, " ")
            for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j] + 0 < v[j-1] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        {
            k = $1 SUBSEP $2
            if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
            s = ($3 == A) ? "a" : ($3 == B) ? "b" : ""
            if (s == "") next
            rps[k, s] = rps[k, s] " " $7; p50[k, s] = p50[k, s] " " $8; p99[k, s] = p99[k, s] " " $9
            cpu[k, s] = cpu[k, s] " " ($6 > 0 ? $14 / $6 * 1e6 : 0)
            oth = $16 - $14 - $15; if (oth < 0) oth = 0
            other[k] += oth; wall[k] += $10 * ncpu
            if (s == "a") { secs[k] += $10; com[k] += $11; fl[k] += $12; fu[k] += $12 * $13
                            fw[k] += $17; ck[k] += $18; pr[k] += $19; reqs[k] += $6 }
        }
        END {
            for (i = 1; i <= nk; i++) {
                k = order[i]; split(k, g, SUBSEP)
                ra = median(rps[k, "a"]); rb = median(rps[k, "b"])
                printf("%s\t%s\t%.0f\t%.0f\t%.2f\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.0f\t%.0f\t%.2f\t%.2f\t%.1f\t%d\t%d\t%.1f\n", g[1], g[2],
                    ra, rb, (rb > 0 ? ra / rb : 0), median(p50[k, "a"]), median(p50[k, "b"]), median(p99[k, "a"]),
                    median(p99[k, "b"]), (fl[k] > 0 ? com[k] / fl[k] : 0), (secs[k] > 0 ? fl[k] / secs[k] : 0),
                    (fl[k] > 0 ? fu[k] / fl[k] : 0), median(cpu[k, "a"]), median(cpu[k, "b"]),
                    (wall[k] > 0 ? 100 * other[k] / wall[k] : 0), fw[k], ck[k], (reqs[k] > 0 ? 1000 * pr[k] / reqs[k] : 0))
            }
        }' "$runs"
}

# sync_probe WHEN - the write+sync rate of the scratch filesystem (bench/syncrate.c); appends lines
# "when=WHEN mode=... syncs_per_sec=..." to $OUT/syncrate.txt and sets SYNC_DSYNC_RATE to the best
# RWF_DSYNC rate measured so far in this run.
sync_probe() {
    local when=${1:-start} bin=$SCRATCH/syncrate
    cc -O2 -std=c11 -Wall -Wextra -Werror -o "$bin" "$BENCH_DIR/syncrate.c"
    progress "fdatasync probe ($when): 4 KiB writes in $(df --output=source,target "$SCRATCH" | tail -1 | tr -s ' '), ${BENCH_SYNC_SECONDS}s per mode"
    "$bin" "$SCRATCH/syncrate.scratch" "$BENCH_SYNC_SECONDS" | sed "s/^/when=$when /" > "$SCRATCH/syncrate.out"
    rm -f "$bin"
    while read -r line; do progress "  $line"; done < "$SCRATCH/syncrate.out"
    cat "$SCRATCH/syncrate.out" >> "$OUT/syncrate.txt"
    SYNC_DSYNC_RATE=$(awk '/mode=dsync/ { for (i = 1; i <= NF; i++) if ($i ~ /^syncs_per_sec=/) { sub(/.*=/, "", $i); if ($i + 0 > best) best = $i + 0 } }
                           END { print best + 0 }' "$OUT/syncrate.txt")
}

machine_info() {
    echo "host:      $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
    echo "disk:      $(df --output=source,fstype,target "$SCRATCH" | tail -1 | tr -s ' ')"
    echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the start"
    echo "servers:   $("$RESPOOLD" --version 2>/dev/null | head -1), $(redis-server --version | awk '{print $1, $2, $3}')"
    echo "client:    redis-benchmark -c $BENCH_CLIENTS -r $BENCH_KEYS (single-threaded), ~${BENCH_SECONDS}s per run, median of $BENCH_REPEATS"
    local dirty=""
    [[ -n "$(git -C "$REPO_DIR" status --porcelain -- src include CMakeLists.txt 2>/dev/null)" ]] &&
        dirty=" (plus uncommitted changes under src/, include/ or CMakeLists.txt)"
    echo "commit:    $(git -C "$REPO_DIR" log -1 --format='%h %s' 2>/dev/null)$dirty"
}
