#!/bin/bash
# webhook_stall.sh: what senders and other clients wait while Redis does not answer. Starts a
# private redis-server and `ferry server` (SQLite store in a temporary directory, 8 handler
# threads), applies examples/hello.yaml, pauses Redis for 8 s (CLIENT PAUSE ALL), sends 40 signed
# webhooks at once and, 1 s in, one GET /api/v1/workflows/hello (unauthenticated: a 401 needs a
# handler thread too), and prints the webhooks' answer codes and times and that GET's time.
#   bench/webhook_stall.sh [FERRY_BINARY]   (default: build/default/apps/ferry/ferry)
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
FERRY=${1:-$HERE/build/default/apps/ferry/ferry}
[ -x "$FERRY" ] || { echo "no ferry binary at $FERRY" >&2; exit 2; }
DIR=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  [ -f "$DIR/redis.pid" ] && kill "$(cat "$DIR/redis.pid")" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
HTTP_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$DIR/redis.pid" --dir "$DIR" >/dev/null
export FERRY_REDIS_URL=redis://127.0.0.1:$REDIS_PORT FERRY_STORE=$DIR/ferry.db
export FERRY_SECRET_HELLO_WEBHOOK=bench-secret
"$FERRY" server start --listen "127.0.0.1:$HTTP_PORT" --threads 8 >"$DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" && break
  sleep 0.1
done
"$FERRY" workflow apply "$HERE/examples/hello.yaml" >/dev/null
python3 - "$HTTP_PORT" "$REDIS_PORT" <<'PY'
import hashlib, hmac, subprocess, sys, threading, time, urllib.error, urllib.request
http_port, redis_port = sys.argv[1], sys.argv[2]
base = 'http://127.0.0.1:%s' % http_port

def timed(request):
    t = time.time()
    try:
        code = urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:  # a timeout or a refused connection: named, not counted as an answer
        code = type(e).__name__
    return time.time() - t, code

def webhook(i, out):
    body = ('{"who": "w%d"}' % i).encode()
    ts = str(int(time.time()))
    sig = hmac.new(b'bench-secret', ts.encode() + b'.' + body, hashlib.sha256).hexdigest()
    out.append(timed(urllib.request.Request(base + '/hooks/hello', data=body, headers={
        'X-Ferry-Timestamp': ts, 'X-Ferry-Signature': 'sha256=' + sig,
        'Content-Type': 'application/json'})))

subprocess.run(['redis-cli', '-p', redis_port, 'CLIENT', 'PAUSE', '8000', 'ALL'], check=True,
               capture_output=True)
answers = []
senders = [threading.Thread(target=webhook, args=(i, answers)) for i in range(40)]
for s in senders:
    s.start()
time.sleep(1)
other = timed(base + '/api/v1/workflows/hello')
for s in senders:
    s.join()
seconds = sorted(a[0] for a in answers)
codes = {}
for _, code in answers:
    codes[code] = codes.get(code, 0) + 1
print('40 webhooks during an 8 s Redis pause: answers %s, p50 %.3f s, max %.3f s; '
      'GET /api/v1/workflows/hello 1 s in: %s in %.3f s' %
      (codes, seconds[len(seconds) // 2], seconds[-1], other[1], other[0]))
PY
