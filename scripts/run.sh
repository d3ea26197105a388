#!/usr/bin/env bash
# scripts/run.sh BUILD_DIR - `make run`: create a volume under ./var on first use and run respool in the
# foreground. Ctrl-C stops it cleanly (final checkpoint); running it again finds every key.
#
# Three instances on one volume by default: `respoolctl cluster init --instances 3 --dir var` the first
# time, then `respoolctl cluster start --config var/cluster.conf --foreground`, which prints the members'
# log lines prefixed with their id and stops them all on Ctrl-C. Any instance serves any key (cache
# fusion). RESPOOL_INSTANCES=1 runs one respoold on var/volume instead; a var/ made that way (a volume
# and no cluster.conf) keeps running as one instance: nothing is converted or deleted for you.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
var="$root/var"
volume="$var/volume"
port=${RESPOOL_PORT:-6380}
ctl="$build/src/ctl/respoolctl"
mkdir -p "$var"

conf="$var/cluster.conf"
instances=${RESPOOL_INSTANCES:-3}
if ! [[ $instances =~ ^[0-9]+$ ]] || ((instances < 1 || instances > 16)); then
    echo "run.sh: RESPOOL_INSTANCES=$instances: give 1 to 16" >&2
    exit 1
fi
if [[ $instances == 1 && -e $conf ]]; then
    echo "run.sh: var/ holds a cluster ($conf): its members run together." >&2
    echo "hint: run \`make run\` without RESPOOL_INSTANCES=1, or move var/ away for a single instance." >&2
    exit 1
fi
if [[ $instances != 1 && ! -e $conf && -e $volume ]]; then
    echo "run.sh: $volume was made by a single-instance \`make run\` (there is no $conf): running it as one instance." >&2
    echo "hint: move var/ away to start a three-instance cluster there; nothing is converted or deleted for you." >&2
    instances=1
fi

if [[ $instances != 1 ]]; then
    if [[ ! -e $conf ]]; then
        "$ctl" cluster init --instances "$instances" --dir "$var" --base-port "$port" --cluster-base-port $((port + 10000)) \
            --size "${RESPOOL_VOLUME_SIZE:-2G}" --wal-size 64M --name make-run
    fi
    cat <<MSG

  respool is starting: $instances instances on one volume, $volume ($conf)
  connect with:   redis-cli -p $port   (instance i: -p $port + i; any instance serves any key)
  status:         $ctl cluster status --config $conf
  counters:       redis-cli -p $port info cluster;  $ctl stats --config $conf [--pages]
  stop with:      Ctrl-C (a clean shutdown of every instance; data stays in ./var)

MSG
    exec "$ctl" cluster start --config "$conf" --foreground
fi

if [[ ! -e "$volume" ]]; then
    "$ctl" volume init --volume "$volume" --size "${RESPOOL_VOLUME_SIZE:-2G}" \
        --wal-size 64M --max-instances 4 --label "make run"
fi
cat <<MSG

  respool is starting: one instance on $volume
  connect with:   redis-cli -p $port
  benchmark:      redis-benchmark -p $port -t set,get -n 100000 -q
  stop with:      Ctrl-C (a clean shutdown; data stays in ./var)

MSG
exec "$build/src/kv/respoold" -D "$var/data0" --volume "$volume" --port "$port"
