#!/usr/bin/env bash
# Installs the Debian 12 packages that Ferry needs. Idempotent: installs only what is missing,
# runs `apt-get update` at most once.
#
#   scripts/setup.sh               build + test: what scripts/build.sh and scripts/test.sh need
#   scripts/setup.sh build         only what compiling `ferry` needs (the container image's build stage)
#   scripts/setup.sh containers    build + test + podman, for deploy/docker/test.sh
#   scripts/setup.sh fuzz          build + clang 14 and its libFuzzer runtime, for scripts/fuzz.sh
set -euo pipefail

# Compiling Ferry: the toolchain and every library it links (DESIGN.md §8).
build=(
  # toolchain
  build-essential cmake pkg-config ninja-build ccache ca-certificates
  # libraries (DESIGN.md §8)
  libhiredis-dev libcpp-httplib-dev libcurl4-openssl-dev libsqlite3-dev libpq-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev liblua5.4-dev
  libhowardhinnant-date-dev tzdata prometheus-cpp-dev libssl-dev uuid-dev libexpected-dev
  libboost1.81-dev libre2-dev
)
# The test suite, the benchmarks and the format check.
test=(
  clang-format git libgtest-dev libgmock-dev libbenchmark-dev
  # servers and tools used at run time and by the tests
  redis-server redis-tools postgresql postgresql-contrib prometheus systemd procps curl
  openssl  # the Redis TLS tests make their certificates with it
  # the remediation agent's sandbox (src/remediation/sandbox.h; `ferry doctor` warns without it)
  bubblewrap
  # the web console's browser tests (tests/browser): headless Chromium, driven from Node.js
  chromium
)
# scripts/fuzz.sh: clang 14, libFuzzer and the sanitizer runtimes (libclang-rt-14-dev), and
# llvm-symbolizer (llvm-14) for readable stack traces in crash reports.
fuzz=(
  clang-14 libclang-rt-14-dev llvm-14
)
# deploy/docker/test.sh: podman with the runc runtime and netavark networking (DNS between the
# compose services), podman-compose, and debootstrap for the local base images.
containers=(
  podman runc netavark aardvark-dns iptables podman-compose debootstrap
)

case "${1:-}" in
  "") packages=("${build[@]}" "${test[@]}") ;;
  build) packages=("${build[@]}") ;;
  containers) packages=("${build[@]}" "${test[@]}" "${containers[@]}") ;;
  fuzz) packages=("${build[@]}" "${fuzz[@]}") ;;
  *)
    echo "usage: scripts/setup.sh [build|containers|fuzz]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Node.js and npm for the browser tests: Debian's, unless a node and npm are already installed
# (another Node.js package may provide both commands).
want_node=0
case "${1:-}" in "" | containers) want_node=1 ;; esac
if [ $want_node = 1 ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged servers; Ferry's harness runs its own on free ports instead.
  for svc in redis-server postgresql prometheus; do
    if dpkg-query -W -f='${Status}' "$svc" 2>/dev/null | grep -q 'install ok installed'; then
      $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
fi

# The browser tests' npm packages, exactly as locked (playwright-core; it downloads no browser:
# the tests use Debian's chromium). Reinstalled only when the lock file changed.
if [ $want_node = 1 ]; then
  browser="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
  if ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.ferry-installed-lock" 2>/dev/null; then
    echo "setup: npm ci in tests/browser"
    (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp "$browser/package-lock.json" "$browser/node_modules/.ferry-installed-lock"
  fi
fi
echo "setup: done"
