#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine with Node 20: installs what is missing (apt
# packages, npm dependencies), builds, then runs what was asked:
#   ./setup.sh up     a lab (hosts as network namespaces, an agent each, a gateway and the
#                     outside, the server with the API on 127.0.0.1:8082) and the demo
#                     topology; extra arguments go to `cirrus lab up`
#   ./setup.sh test   the test suite (exit status is the suite's)
#   ./setup.sh build  only install and build
#   ./setup.sh bench  also the benchmarks' tools (iperf, ethtool, Open vSwitch), then the
#                     benchmark report (npm run bench); extra arguments go to it
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(iproute2 util-linux nftables libnftables1 conntrack iputils-ping iperf3 curl python3 make g++ ca-certificates isc-dhcp-client udhcpc dnsutils python3-scapy)
# The benchmarks' comparisons only (`./setup.sh bench`): kept off machines that only run Cirrus or
# its tests, since installing Open vSwitch starts its system service where systemd runs (the
# benchmark starts its own daemons per namespace and never uses that service).
BENCH_APT_PACKAGES=(iperf ethtool openvswitch-switch)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing apt packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

check_node() {
  command -v node >/dev/null || { echo "setup.sh: Node.js 20 or newer is required (https://nodejs.org)" >&2; exit 1; }
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || { echo "setup.sh: Node.js 20 or newer is required (found $(node -v))" >&2; exit 1; }
}

install_npm() {
  # Reinstall when the lockfile changed since the last install (or nothing is installed).
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing npm dependencies"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

build() {
  say "building"
  rm -rf dist
  npm run --silent build
}

cmd="${1:-up}"
[ $# -gt 0 ] && shift
case "$cmd" in
  up | test | build | bench) ;;
  *) echo "usage: ./setup.sh up|test|build|bench [args]" >&2; exit 2 ;;
esac

check_node
install_apt "${APT_PACKAGES[@]}"
[ "$cmd" = bench ] && install_apt "${BENCH_APT_PACKAGES[@]}"
install_npm
build

case "$cmd" in
  up) exec bin/cirrus lab up --hosts 2 --gateway --demo "$@" ;;
  test) exec npm test --silent ;;
  bench) exec npm run --silent bench -- "$@" ;;
  build) ;;
esac
