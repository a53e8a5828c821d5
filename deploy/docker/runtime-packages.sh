#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries BINARY loads (ldd: the whole closure,
# the dynamic loader included; and the libraries it loads on first use, which ldd cannot see and
# `BINARY --json version` lists as loads_on_demand), one per line, sorted. The image's build stage runs it on the built
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

# Libraries loaded on first use (dlopen), which ldd cannot see: looked for in the directory the
# binary's own libc comes from (this architecture's library directory).
if ! version=$("$bin" --json version 2>&1); then
  echo "runtime-packages: $bin --json version failed: $version" >&2
  exit 1
fi
on_demand=$(sed -n 's/^ *"library": "\([^"]*\)",\{0,1\}$/\1/p' <<<"$version")
libc=$(awk '$1 ~ /^libc\.so/ && $3 ~ /^\// {print $3}' <<<"$listing")
if [ -z "$libc" ]; then
  echo "runtime-packages: ldd $bin shows no libc" >&2
  exit 1
fi
for lib in $on_demand; do
  path="$(dirname "$libc")/$lib"
  if [ ! -e "$path" ]; then
    echo "runtime-packages: $bin loads $lib on demand, and $path is not there" >&2
    exit 1
  fi
  paths+=$'\n'"$path"
done

# dpkg records each file under the path its package ships (/lib/... or /usr/lib/...), while ldd
# and readlink may print the other spelling of a merged-/usr system: ask for every spelling, in
# one dpkg-query call (each call reads the whole package database).
spellings() {
  local real c
  real=$(readlink -f "$1")
  for c in "$1" "$real"; do
    echo "$c"
    case "$c" in
      /usr/*) echo "${c#/usr}" ;;
      *) echo "/usr$c" ;;
    esac
  done
}
declare -A owner_of
all=()
for p in $paths; do mapfile -t -O ${#all[@]} all < <(spellings "$p"); done
# "libfoo1:amd64: /usr/lib/x86_64-linux-gnu/libfoo.so.1"; paths no package owns are left out
# (dpkg-query then exits 1); "diversion by ..." lines are skipped.
while IFS= read -r line; do
  case "$line" in diversion*) continue ;; esac
  pkg=${line%%: *}
  owner_of[${line#*: }]=${pkg%%:*}
done < <(dpkg-query -S "${all[@]}" 2>/dev/null || true)

packages=()
orphans=()
for p in $paths; do
  pkg=""
  while IFS= read -r c; do
    if [ -n "${owner_of[$c]:-}" ]; then
      pkg=${owner_of[$c]}
      break
    fi
  done < <(spellings "$p")
  if [ -n "$pkg" ]; then packages+=("$pkg"); else orphans+=("$p"); fi
done
if [ ${#orphans[@]} -gt 0 ]; then
  echo "runtime-packages: no installed Debian package owns:" "${orphans[@]}" >&2
  exit 1
fi
printf '%s\n' "${packages[@]}" | sort -u
