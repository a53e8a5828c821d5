#!/bin/sh
# A deterministic remediation agent for Ferry: no network, no model. It reads the workspace that
# Ferry prepared (instructions.md states the contract) and
#   - fixes a misspelled program name in a shell node (the error says "program 'ehco' not found"
#     and a known program has the same letters): workflow_fixable, with the edited workflow;
#   - classifies a refused or failed connection as external_dependency (a note only);
#   - classifies anything else as unknown (a note only).
#
#   ferry scheduler start --remediation-enabled yes --remediation-dry-run no \
#     --remediation-agent 'examples/remediation/agent.sh {workspace}'
set -eu

ws="${1:-${FERRY_REMEDIATION_WORKSPACE:?the workspace is the first argument}}"
cd "$ws"
wf=workflow.yaml
[ -f workflow.json ] && wf=workflow.json

# failure.json is indented JSON: the error is on its own line.
error=$(sed -n 's/^  "error": "\(.*\)",\{0,1\}$/\1/p' failure.json | head -n 1)
node=$(sed -n 's/^  "failed_node": "\(.*\)",\{0,1\}$/\1/p' failure.json | head -n 1)

letters() { printf '%s' "$1" | fold -w1 | sort | tr -d '\n'; }

classify() {  # classification summary confidence
  printf '{"classification": "%s", "summary": "%s", "confidence": %s}\n' "$1" "$2" "$3" \
    >classification.json
}

missing=$(printf '%s\n' "$error" | sed -n "s/.*program '\([A-Za-z0-9_.-]*\)' not found.*/\1/p")
if [ -n "$missing" ]; then
  want=$(letters "$missing")
  for known in echo printf cat true false date sleep env grep sed sort head tail tr wc; do
    if [ "$known" != "$missing" ] && [ "$(letters "$known")" = "$want" ]; then
      sed "/argv/s/\([[ ,\"'-]\)$missing\([] ,\"']\|$\)/\1$known\2/g" "$wf" >"$wf.new"
      cat "$wf.new" >"$wf"
      rm -f "$wf.new"
      classify workflow_fixable \
        "Node $node runs '$missing', which does not exist; the program is '$known'." 0.9
      cat >developer_note.md <<NOTE
# $node runs a program that does not exist

The shell node \`$node\` failed with:

    $error

\`$missing\` is not installed on the worker, and its letters spell \`$known\`, a program that
is. The workflow now runs \`$known\` in its place. If \`$missing\` was meant, install it on
every worker instead and dismiss this fix.
NOTE
      exit 0
    fi
  done
fi

case "$error" in
  *"Connection refused"* | *"connection refused"* | *"Couldn't connect"* | *"Failed to connect"* | *"Could not resolve"*)
    classify external_dependency \
      "Node $node could not reach the service it calls; the workflow itself looks right." 0.8
    cat >developer_note.md <<NOTE
# $node could not reach its service

The node \`$node\` failed with:

    $error

The service did not accept the connection. Check that it is running and reachable from the
workers (address, port, firewall, DNS); nothing in the workflow needs to change.
NOTE
    ;;
  *)
    classify unknown "The failure of node $node does not match a known pattern." 0.2
    cat >developer_note.md <<NOTE
# Unclassified failure of $node

    $error

This agent recognises misspelled programs and refused connections only; a person should look.
NOTE
    ;;
esac
