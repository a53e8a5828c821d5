#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries BINARY loads (ldd: the whole closure,
# the dynamic loader included), one per line, sorted. The image's build stage runs it on the built
# `ferry` and its runtime stage installs exactly these, so a library added to the build (through
# scripts/setup.sh) reaches the runtime image without a second list to keep in step.
#
# Fails, naming the library, when ldd cannot resolve one or no installed package owns it.
#   deploy/docker/runtime-packages.sh build/default/apps/ferry/ferry
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BINARY" >&2
  exit 2
fi
bin=$1
if [ ! -f "$bin" ]; then
  echo "runtime-packages: no such file: $bin" >&2
  exit 2
fi

if ! listing=$(ldd "$bin" 2>&1); then
  echo "runtime-packages: ldd $bin failed: $listing" >&2
  exit 1
fi
unresolved=$(awk '/=> not found/ {print $1}' <<<"$listing")
if [ -n "$unresolved" ]; then
  echo "runtime-packages: $bin needs libraries that are not installed:" $unresolved >&2
  exit 1
fi

# "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
# linux-vdso has no file.
paths=$(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$listing")

# dpkg records each file under the path its package ships (/lib/... or /usr/lib/...), while ldd
# and readlink may print the other spelling of a merged-/usr system: try each.
owner() {
  local path=$1 real candidates c pkg
  real=$(readlink -f "$path")
  candidates=("$path" "$real")
  for c in "$path" "$real"; do
    case "$c" in
      /usr/*) candidates+=("${c#/usr}") ;;
      *) candidates+=("/usr$c") ;;
    esac
  done
  for c in "${candidates[@]}"; do
    # "libfoo1:amd64: /usr/lib/x86_64-linux-gnu/libfoo.so.1"; "diversion by ..." lines are skipped.
    pkg=$(dpkg-query -S "$c" 2>/dev/null | awk -F': ' '!/^diversion/ {print $1; exit}') || true
    if [ -n "$pkg" ]; then
      echo "${pkg%%:*}"
      return 0
    fi
  done
  return 1
}

packages=()
orphans=()
for p in $paths; do
  if pkg=$(owner "$p"); then
    packages+=("$pkg")
  else
    orphans+=("$p")
  fi
done
if [ ${#orphans[@]} -gt 0 ]; then
  echo "runtime-packages: no installed Debian package owns:" "${orphans[@]}" >&2
  exit 1
fi
printf '%s\n' "${packages[@]}" | sort -u
