#!/usr/bin/env bash
# Fails when a C++ file of the repository (tracked, or new and not ignored: checked before it is
# committed) is not clang-formatted (.clang-format at the root).
set -euo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r -d '' f; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done < <(git ls-files -z --cached --others --exclude-standard -- '*.cc' '*.h')
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: not clang-formatted (run clang-format -i on them):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: ok"
