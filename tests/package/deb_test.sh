#!/usr/bin/env bash
# The Debian package end to end. Builds it with cpack from a finished build directory, then
#   - inspects it with dpkg-deb: control fields, the conffile, the maintainer scripts, every file
#     the package promises, the binary (`ferry version`), the completions (the same bytes the
#     binary prints), and `systemd-analyze verify` on its units;
#   - with FERRY_PACKAGE_INSTALL_TEST=1 (root, a machine where the package is not installed):
#     installs it with dpkg -i, checks the `ferry` user, /etc/ferry/ferry.env's owner and mode,
#     `ferry version` from /usr/bin, `systemd-analyze verify` on the installed units and the bash
#     completion, then removes it with dpkg --purge (and the user, when this test created it).
#
#   tests/package/deb_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d)
installed_here=""
user_created=""
cleanup() {
  if [ -n "$installed_here" ]; then dpkg --purge ferry >/dev/null 2>&1 || true; fi
  if [ -n "$user_created" ] && getent passwd ferry >/dev/null; then
    userdel ferry >/dev/null 2>&1 || true
    groupdel ferry >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

failures=0
passed=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@" >"$work/last.out" 2>&1; then
    passed=$((passed + 1))
  else
    failures=$((failures + 1))
    echo "FAIL: $what" >&2
    sed 's/^/  /' "$work/last.out" >&2
  fi
}

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; exit 1; }
deb=$(ls "$work"/out/ferry_*.deb)
version=$("$build/apps/ferry/ferry" version | head -1)

# --- the package as a file ---
dpkg-deb --field "$deb" Package Version Depends >"$work/fields"
check "Package: ferry" grep -qx 'Package: ferry' "$work/fields"
check "Depends names passwd (postinst runs useradd)" grep -q '^Depends: .*passwd' "$work/fields"
# Libraries loaded on first use are invisible to dpkg-shlibdeps: Depends must name their packages.
on_demand=$("$build/apps/ferry/ferry" --json version | sed -n 's/^ *"package": "\([^"]*\)",\{0,1\}$/\1/p')
check "the binary lists the libraries it loads on demand" test -n "$on_demand"
for pkg in $on_demand; do
  check "Depends names $pkg (loaded on demand)" grep -qE "^Depends: (.*[ ,])?$pkg([ ,(]|\$)" "$work/fields"
done
check "the package version is the binary's ($version)" \
  grep -qF -- "$(dpkg-deb --field "$deb" Version)" <<<"$version"
dpkg-deb -e "$deb" "$work/control"
check "conffiles is exactly /etc/ferry/ferry.env" diff <(printf '/etc/ferry/ferry.env\n') "$work/control/conffiles"
for s in postinst prerm postrm; do
  check "$s is an executable sh script" sh -n "$work/control/$s"
  check "$s mode" test -x "$work/control/$s"
done
check "postinst creates the ferry system user" grep -q 'useradd --system' "$work/control/postinst"

root="$work/root"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/ferry etc/ferry/ferry.env \
  usr/lib/systemd/system/ferry-server.service usr/lib/systemd/system/ferry-scheduler.service \
  usr/lib/systemd/system/ferry-worker@.service \
  usr/share/bash-completion/completions/ferry usr/share/zsh/vendor-completions/_ferry \
  usr/share/doc/ferry/help-all.txt usr/share/doc/ferry/README.md usr/share/doc/ferry/api.md \
  usr/share/doc/ferry/openapi.json; do
  check "the package has /$f" test -s "$root/$f"
done
check "ferry.env is root-only in the archive (postinst opens it to the ferry group)" \
  sh -c "dpkg-deb -c '$deb' | grep -q '^-rw------- root/root .* ./etc/ferry/ferry.env$'"
check "the binary is stripped" sh -c "! file -b '$root/usr/bin/ferry' | grep -q 'not stripped'"
check "\`ferry version\` runs from the package" "$root/usr/bin/ferry" version
check "bash completion is what the binary prints" \
  cmp "$root/usr/share/bash-completion/completions/ferry" <("$root/usr/bin/ferry" completion bash)
check "zsh completion is what the binary prints" \
  cmp "$root/usr/share/zsh/vendor-completions/_ferry" <("$root/usr/bin/ferry" completion zsh)
check "help-all.txt has every command's options" grep -q -- '--batch' "$root/usr/share/doc/ferry/help-all.txt"
for u in ferry-server.service ferry-scheduler.service ferry-worker@.service; do
  f="$root/usr/lib/systemd/system/$u"
  check "$u runs /usr/bin/ferry" grep -q '^ExecStart=/usr/bin/ferry ' "$f"
  check "$u runs as the ferry user" grep -qx 'User=ferry' "$f"
  check "$u has no DynamicUser" sh -c "! grep -q '^DynamicUser' '$f'"
done
# systemd-analyze verify needs ExecStart to exist: point copies at the extracted binary.
mkdir -p "$work/units"
for u in ferry-server.service ferry-scheduler.service ferry-worker@.service; do
  out=${u/@./@1.}
  sed "s|/usr/bin/ferry|$root/usr/bin/ferry|g" "$root/usr/lib/systemd/system/$u" >"$work/units/$out"
done
check "systemd-analyze verify on the package's units is silent" \
  sh -c "out=\$(systemd-analyze verify '$work'/units/*.service 2>&1) && [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"

# --- installed into this machine (opt-in) ---
if [ "${FERRY_PACKAGE_INSTALL_TEST:-}" = 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "FERRY_PACKAGE_INSTALL_TEST=1 needs root" >&2; exit 1; fi
  if dpkg-query -W -f='${Status}' ferry 2>/dev/null | grep -q 'installed'; then
    echo "a ferry package is already installed here; this test will not replace it" >&2
    exit 1
  fi
  getent passwd ferry >/dev/null || user_created=1
  installed_here=1
  check "dpkg -i installs it" dpkg -i "$deb"
  check "the ferry system user exists" sh -c "getent passwd ferry | grep -q ':/var/lib/ferry:/usr/sbin/nologin$'"
  check "ferry is a system account" sh -c "[ \$(id -u ferry) -lt 1000 ]"
  check "/etc/ferry/ferry.env is root:ferry 0640" sh -c "[ \"\$(stat -c '%U:%G %a' /etc/ferry/ferry.env)\" = 'root:ferry 640' ]"
  check "\`ferry version\` from /usr/bin" sh -c "[ \"\$(command -v ferry)\" = /usr/bin/ferry ] || [ -x /usr/bin/ferry ]; /usr/bin/ferry version"
  check "systemd-analyze verify on the installed units is silent" \
    sh -c "out=\$(systemd-analyze verify ferry-server.service ferry-scheduler.service ferry-worker@1.service 2>&1) && [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"
  check "the installed bash completion completes" \
    bash -c 'source /usr/share/bash-completion/completions/ferry && COMP_WORDS=(ferry task su) COMP_CWORD=2 && _ferry && [ "${COMPREPLY[*]}" = submit ]'
  check "dpkg --purge removes it" dpkg --purge ferry
  installed_here=""
  check "no /usr/bin/ferry after purge" test ! -e /usr/bin/ferry
  check "no /etc/ferry after purge" test ! -e /etc/ferry
  check "no units after purge" test ! -e /usr/lib/systemd/system/ferry-server.service
fi

echo "deb_test: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
