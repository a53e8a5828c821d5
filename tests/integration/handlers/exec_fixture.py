#!/usr/bin/env python3
"""exec handler for the handler integration tests: behaves as the payload's "mode" says."""
import json
import os
import subprocess
import sys
import time

envelope = json.load(sys.stdin)
payload = envelope["payload"]
mode = payload.get("mode", "ok")
events = os.fdopen(int(os.environ["FERRY_EVENTS_FD"]), "w", buffering=1)


def event(type_, data):
    events.write(json.dumps({"type": type_, "data": data}) + "\n")


if mode == "ok":
    event("progress", {"percent": 50})
    print("halfway", file=sys.stderr, flush=True)
    event("progress", {"percent": 100})
    json.dump({"envelope": envelope, "env": sorted(os.environ)}, sys.stdout)
elif mode == "flaky":
    # Fails its first attempt (retryable), succeeds on the next.
    if envelope["attempt"] == 1:
        print("transient trouble", file=sys.stderr)
        sys.exit(1)
    json.dump({"attempt": envelope["attempt"], "epoch": envelope["epoch"]}, sys.stdout)
elif mode == "exit":
    print("exiting with %d" % payload["code"], file=sys.stderr)
    sys.exit(payload["code"])
elif mode == "hang":
    # A child in the same process group, then wait: timeout and cancel must end both.
    child = subprocess.Popen(["sleep", "300"])
    with open(payload["pidfile"], "w") as f:
        f.write("%d %d\n" % (os.getpid(), child.pid))
    time.sleep(300)
elif mode == "stdout":
    sys.stdout.write(payload["text"])
elif mode == "string":
    # A JSON string of exactly payload["bytes"] bytes on stdout.
    sys.stdout.write('"' + "a" * (payload["bytes"] - 2) + '"')
elif mode == "event":
    events.write(payload["line"])
    events.flush()
    print("null")
elif mode == "events":
    for i in range(payload["count"]):
        event("progress", {"i": i})
    print("null")
elif mode == "flood":
    # As much as the protocol lets one attempt write: 1000 stderr lines of 64 KiB, 1000 events of
    # nearly 16 KiB.
    line = "e" * (64 << 10)
    for i in range(1000):
        print(line, file=sys.stderr)
    data = "d" * ((16 << 10) - 40)
    for i in range(1000):
        event("blob", data)
    print("null")
