#!/bin/sh
# The package's /usr/share/doc/ferry/help-all.txt: `ferry --help-all` (every command), then the
# full --help of each command in turn. The command paths come from the binary's own command
# table, as its bash completion lists them (the `_ferry_subcommands` case labels).
#
#   deploy/debian/help-all.sh path/to/ferry > help-all.txt
set -eu
ferry=$1
"$ferry" --help-all
"$ferry" completion bash |
  sed -n "/^_ferry_subcommands()/,/^}/s/^    '\([a-z][a-z -]*\)') .*/\1/p" |
  while IFS= read -r path; do
    printf '\n\n==== ferry %s ====\n\n' "$path"
    # shellcheck disable=SC2086 # the path is words: "task submit"
    "$ferry" $path --help
  done
