#!/usr/bin/env bash
# redis_cli.sh - respoold driven by the real redis-cli and redis-benchmark
#
# What people see: replies as redis-cli prints them (--no-raw, and the raw form of a piped session),
# mass insertion with --pipe, --scan, -x, COMMAND DOCS (which interactive redis-cli asks at start), and
# redis-benchmark (which asks CONFIG GET save/appendonly first). Every client call has a time limit, so
# a server that stops answering fails the test instead of hanging it.
# A fresh volume in a temporary directory; the server is stopped with SIGTERM and must exit 0 and leave
# no process behind. Run through ctest, which sets $RESPOOLD and $RESPOOLCTL.
set -euo pipefail
: "${RESPOOLD:?set RESPOOLD to the respoold binary (run through ctest)}"
: "${RESPOOLCTL:?set RESPOOLCTL to the respoolctl binary (run through ctest)}"

dir=$(mktemp -d "${TMPDIR:-/tmp}/respool-cli-XXXXXX")
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "---- respoold log ----" >&2
    tail -40 "$dir/log" >&2 || true
    exit 1
}

# every client call is bounded in time
cli_bin=$(type -P redis-cli) || fail "redis-cli is not installed (scripts/deps.sh test)"
bench_bin=$(type -P redis-benchmark || true)
redis-cli() { timeout 120 "$cli_bin" "$@"; }

"$RESPOOLCTL" volume init --volume "$dir/volume" --size 256M --wal-size 16M --max-instances 4 >>"$dir/log" 2>&1 ||
    fail "respoolctl volume init"

# a port nobody listens on
for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 12000)) # below the ephemeral range: see tests/lib/testport.h
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
done

"$RESPOOLD" -D "$dir/data" --volume "$dir/volume" --port "$port" --buffer-pool-size 32M --io-threads 2 \
    >>"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "respoold exited during start"
    sleep 0.1
done
grep -q "ready: listening on 127.0.0.1 port $port" "$dir/log" || fail "no start line in the log"

checks=0
# expect WANT ARGS...: redis-cli's formatted output of one command
expect() {
    local want=$1
    shift
    local got
    got=$(redis-cli -p "$port" --no-raw "$@" 2>&1) || true
    [[ $got == "$want" ]] || fail "redis-cli $*: expected [$want], got [$got]"
    checks=$((checks + 1))
}

expect "PONG" ping
expect '"hello"' ping hello
expect '"a b"' echo "a b"
expect "OK" set foo bar
expect '"bar"' get foo
expect "(nil)" get nosuch
expect "(nil)" set foo baz nx
expect '"bar"' set foo baz get
expect "OK" set foo bar xx
expect "OK" set t v ex 100
expect "(integer) 100" ttl t
expect "(integer) -1" ttl foo
expect "(integer) -2" ttl nosuch
expect "(integer) 1" persist t
expect "(integer) 1" pexpire t 50000
expect "(integer) 50" ttl t
expect "(integer) 1" incr n
expect "(integer) 11" incrby n 10
expect "(integer) 10" decr n
expect "(integer) 0" decrby n 10
expect "(error) ERR value is not an integer or out of range" incr foo
expect "(integer) 9223372036854775807" incrby n 9223372036854775807
expect "(error) ERR increment or decrement would overflow" incr n
expect "(integer) 6" append foo "!!!"
expect '"bar!!!"' get foo
expect "(integer) 6" strlen foo
expect "OK" mset a 1 b 2 c 3
expect $'1) "1"\n2) "2"\n3) (nil)\n4) "3"' mget a b d c
expect "(integer) 3" exists a b c d
expect "(integer) 2" del a b d
expect "string" type c
expect "none" type a
expect "OK" select 0
expect "(error) ERR DB index is out of range" select 1
expect "(error) ERR wrong number of arguments for 'get' command" get
expect "(error) ERR unknown command 'nosuchcmd', with args beginning with: 'x' " nosuchcmd x
expect "(error) ERR syntax error" set k v nx xx
expect $'1) "save"\n2) ""' config get save
expect $'1) "appendonly"\n2) "yes"' config get appendonly
expect $'1) "databases"\n2) "1"' config get databases
expect "(empty array)" command docs

# a piped session (raw output, as scripts see it)
got=$(printf 'set s1 v1\nget s1\nincr s2\nget nosuch\nclient setname cli-test\nclient getname\n' | redis-cli -p "$port")
[[ $got == $'OK\nv1\n1\n\nOK\ncli-test' ]] || fail "piped session: got [$got]"
checks=$((checks + 1))

# -x: the last argument from standard input
printf 'from stdin' | redis-cli -p "$port" -x set xkey >/dev/null
expect '"from stdin"' get xkey

# mass insertion with --pipe: 10 000 SETs in RESP, then --scan finds them all
for i in $(seq 1 10000); do
    printf '*3\r\n$3\r\nSET\r\n$%d\r\npipe:%d\r\n$1\r\nv\r\n' $((5 + ${#i})) "$i"
done >"$dir/mass.resp"
out=$(redis-cli -p "$port" --pipe <"$dir/mass.resp" 2>&1) || fail "--pipe: $out"
grep -q "errors: 0, replies: 10000" <<<"$out" || fail "--pipe: $out"
n=$(redis-cli -p "$port" --scan --pattern 'pipe:*' | sort -u | wc -l)
[[ $n -eq 10000 ]] || fail "--scan found $n of 10000 keys"
n=$(redis-cli -p "$port" --scan --pattern 'pipe:1?' | wc -l)
[[ $n -eq 10 ]] || fail "--scan with '?' found $n keys instead of 10"
expect "(integer) $(redis-cli -p "$port" dbsize)" dbsize
redis-cli -p "$port" info keyspace | grep -q "^db0:keys=$(redis-cli -p "$port" dbsize),expires=0,avg_ttl=0" ||
    fail "INFO keyspace"
checks=$((checks + 3))

# redis-benchmark: its start-up CONFIG GET works, and it completes GET and SET, plain and pipelined
if [[ -n $bench_bin ]]; then
    for p in 1 16; do
        # progress lines end in CR: one result per line after tr
        out=$(timeout 300 "$bench_bin" -p "$port" -n 5000 -c 20 -P "$p" -t set,get -q 2>&1 | tr '\r' '\n') ||
            fail "redis-benchmark: $out"
        grep -q "^ *SET: [0-9.]* requests per second" <<<"$out" && grep -q "^ *GET: [0-9.]* requests per second" <<<"$out" ||
            fail "redis-benchmark -P $p: $out"
        ! grep -qi "could not fetch\|error" <<<"$out" || fail "redis-benchmark -P $p: $out"
    done
    checks=$((checks + 1))
fi

# a clean stop: status 0, the last log line, nothing left running
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[[ $status -eq 0 ]] || fail "respoold exited with status $status after SIGTERM"
grep -q "respoold stopped" "$dir/log" || fail "no 'respoold stopped' in the log"
for p in /proc/[0-9]*; do
    if grep -qa -- "$dir" "$p/cmdline" 2>/dev/null && grep -qa respoold "$p/cmdline" 2>/dev/null; then
        fail "a respoold of $dir is still running (${p#/proc/})"
    fi
done
echo "redis_cli.sh: $checks checks passed"
