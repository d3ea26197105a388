#!/usr/bin/env bash
# scripts/run.sh BUILD_DIR - `make run`: create a volume under ./var on first use and run respool in the
# foreground. Ctrl-C stops it cleanly (final checkpoint); running it again finds every key.
#
# Two paths; RESPOOL_CLUSTER selects one:
#   (unset, 0)  one respoold on var/volume (today's default)
#   1           three instances on one volume: `respoolctl cluster init --instances 3 --dir var` the
#               first time, then `respoolctl cluster start --config var/cluster.conf --foreground`, which
#               prints the members' log lines prefixed with their id and stops them all on Ctrl-C.
#               The lead makes this the default once cache fusion lands (until then the three
#               instances do not coordinate: write through one of them only).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
var="$root/var"
volume="$var/volume"
port=${RESPOOL_PORT:-6380}
ctl="$build/src/ctl/respoolctl"
mkdir -p "$var"

if [[ ${RESPOOL_CLUSTER:-0} == 1 ]]; then
    conf="$var/cluster.conf"
    if [[ ! -e $conf ]]; then
        if [[ -e $volume ]]; then
            echo "run.sh: $volume exists but $conf does not: it is the volume of the single-instance \`make run\`." >&2
            echo "hint: move var/ away (or remove it) to create a three-instance cluster there; nothing is deleted for you." >&2
            exit 1
        fi
        "$ctl" cluster init --instances 3 --dir "$var" --base-port "$port" --cluster-base-port $((port + 10000)) \
            --size "${RESPOOL_VOLUME_SIZE:-2G}" --wal-size 64M --name make-run
    fi
    cat <<MSG

  respool is starting: three instances on $volume ($conf)
  connect with:   redis-cli -p $port   (instances 1 and 2: -p $((port + 1)), -p $((port + 2)))
  status:         $ctl cluster status --config $conf
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
