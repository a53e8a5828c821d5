#!/usr/bin/env bash
# Installs the Debian 12 packages that Ferry needs, and (build + test) the npm packages of the
# API contract checks in tests/contract. Idempotent: installs only what is missing, runs
# `apt-get update` at most once.
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
  # the API contract checks (tests/contract: an OpenAPI validator and ajv from npm, below)
  nodejs
  # `ferry completion zsh` is run by a real zsh in the CLI tests
  zsh
  # the Debian package test (tests/package: cpack -G DEB needs dpkg-dev's dpkg-shlibdeps)
  dpkg-dev file
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

# scripts/stress.sh: the integration suites under a CPU hog.
stress=(
  stress-ng
)

case "${1:-}" in
  "") packages=("${build[@]}" "${test[@]}") ;;
  stress) packages=("${build[@]}" "${test[@]}" "${stress[@]}") ;;
  build) packages=("${build[@]}") ;;
  containers) packages=("${build[@]}" "${test[@]}" "${containers[@]}") ;;
  fuzz) packages=("${build[@]}" "${fuzz[@]}") ;;
  *)
    echo "usage: scripts/setup.sh [build|containers|fuzz|stress]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# The npm packages of the contract checks (tests/contract: an OpenAPI validator, ajv) and of the
# browser tests (tests/browser: playwright-core, which downloads no browser: the tests use
# Debian's chromium), pinned by their package-lock.json files (npm ci installs exactly those,
# and only when a lock file changed since the last install).
npm_ci() {
  cd "$(dirname "$0")/.."
  # Debian's nodejs leaves npm to its own package; some nodejs builds bring npm and conflict
  # with it. Install it only when the command is missing.
  if ! command -v npm >/dev/null; then
    if [ -z "$updated" ]; then $SUDO apt-get update -qq; fi
    $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  local dir
  for dir in tests/contract tests/browser; do
    if [ -f "$dir/node_modules/.package-lock.json" ] &&
      cmp -s "$dir/package-lock.json" "$dir/node_modules/.setup-lock"; then
      continue
    fi
    echo "setup: npm ci in $dir"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund \
      --loglevel=error >/dev/null
    cp "$dir/package-lock.json" "$dir/node_modules/.setup-lock"
  done
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
updated=""

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  if [ -z "${1:-}" ] || [ "${1:-}" = containers ] || [ "${1:-}" = stress ]; then (npm_ci); fi
  exit 0
fi

echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
updated=1
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged servers; Ferry's harness runs its own on free ports instead.
for svc in redis-server postgresql prometheus; do
  if dpkg-query -W -f='${Status}' "$svc" 2>/dev/null | grep -q 'install ok installed'; then
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  fi
done
if [ -z "${1:-}" ] || [ "${1:-}" = containers ] || [ "${1:-}" = stress ]; then (npm_ci); fi
echo "setup: done"
