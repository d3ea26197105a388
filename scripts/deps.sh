#!/usr/bin/env bash
# scripts/deps.sh - install the Debian packages a make target needs, and only those missing.
#
# Usage: scripts/deps.sh PROFILE...   (build, test, bench, run, soak)
#
# Idempotent: a package already installed is never touched, and `apt-get update` runs at most once per
# call, only when something is missing. Debian packages only: nothing is downloaded from elsewhere.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libinih-dev libssl-dev libcurl4-openssl-dev libcjson-dev
            liburing-dev)
test_pkgs=(libcmocka-dev libhiredis-dev redis-tools procps util-linux iproute2 psmisc jq
           postgresql-15 postgresql-client-15 etcd-server etcd-client)
bench_pkgs=(redis-server redis-tools gnuplot-nox linux-perf)
run_pkgs=(redis-tools)

want=()
for profile in "$@"; do
    case "$profile" in
        build) want+=("${build_pkgs[@]}") ;;
        test|soak) want+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
        bench) want+=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
        run) want+=("${build_pkgs[@]}" "${run_pkgs[@]}") ;;
        *) echo "deps.sh: unknown profile '$profile' (build, test, soak, bench, run)" >&2; exit 2 ;;
    esac
done

missing=()
for pkg in "${want[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
# drop duplicates, keep order
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk 'NF && !seen[$0]++')
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "hint: run as root, or install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps Debian from starting redis/postgresql/etcd services on install: the tests start
# their own instances on their own ports, and a stray system service would only get in the way.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: done"
