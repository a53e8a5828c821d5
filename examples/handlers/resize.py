#!/usr/bin/env python3
"""A Ferry exec handler (docs/handlers.md): the task envelope arrives as JSON on stdin, the result
leaves as JSON on stdout, progress goes as JSON lines to descriptor FERRY_EVENTS_FD."""
import json
import os
import sys

task = json.load(sys.stdin)  # {"id", "kind", "queue", "attempt", "epoch", "payload", ...}
events = os.fdopen(int(os.environ["FERRY_EVENTS_FD"]), "w", buffering=1)

width = task["payload"].get("width")
if not isinstance(width, int) or width <= 0:
    print("payload.width must be a positive integer", file=sys.stderr)
    sys.exit(65)  # permanent: retrying the same payload cannot help

for percent in (25, 50, 75, 100):
    events.write(json.dumps({"type": "progress", "data": {"percent": percent}}) + "\n")

print("resized to", width, file=sys.stderr)  # stderr lines become "log" events
json.dump({"width": width, "height": width * 3 // 4, "attempt": task["attempt"]}, sys.stdout)
