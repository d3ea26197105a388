#!/usr/bin/env bash
# scripts/run.sh BUILD_DIR - `make run`: create a volume under ./var on first use and run respoold in the
# foreground. Ctrl-C stops it cleanly (final checkpoint); running it again finds every key.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
var="$root/var"
volume="$var/volume"
port=${RESPOOL_PORT:-6380}
mkdir -p "$var"
if [[ ! -e "$volume" ]]; then
    "$build/src/ctl/respoolctl" volume init --volume "$volume" --size "${RESPOOL_VOLUME_SIZE:-2G}" \
        --wal-size 64M --max-instances 4 --label "make run"
fi
cat <<MSG

  respool is starting: one instance on $volume
  connect with:   redis-cli -p $port
  benchmark:      redis-benchmark -p $port -t set,get -n 100000 -q
  stop with:      Ctrl-C (a clean shutdown; data stays in ./var)

MSG
exec "$build/src/kv/respoold" -D "$var/data0" --volume "$volume" --port "$port"
