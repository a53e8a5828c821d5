#!/usr/bin/env bash
# Installs every Debian 12 package that Ferry's build, tests and runtime need.
# Idempotent: installs only what is missing, runs `apt-get update` at most once.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config ninja-build ccache clang-format git ca-certificates
  # libraries (DESIGN.md §8)
  libhiredis-dev libcpp-httplib-dev libcurl4-openssl-dev libsqlite3-dev libpq-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev liblua5.4-dev
  libhowardhinnant-date-dev tzdata prometheus-cpp-dev libssl-dev uuid-dev libexpected-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # servers and tools used at run time and by the tests
  redis-server redis-tools postgresql postgresql-contrib prometheus systemd procps curl
  openssl  # the Redis TLS tests make their certificates with it
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged servers; Ferry's harness runs its own on free ports instead.
for svc in redis-server postgresql prometheus; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "setup: done"
