// http handler for the handler integration tests: verifies Ferry's signature, rejects stale
// epochs, and behaves as the payload's "mode" says. Prints "listening PORT" once ready.
// GET /stats returns what it saw: connections, deliveries (with raw headers and body), aborts,
// rejections, and the gate's state.
//
// The gate is a second port that holds every byte sent to it until POST /gate/release, then
// forwards each held connection to the service: a delivery that reaches the service late, as one
// from a worker that stalled after claiming would.
'use strict';
const http = require('http');
const net = require('net');
const crypto = require('crypto');

const secret = process.env.HANDLER_SECRET;
const stats = {
  connections: 0, deliveries: [], aborted: [], rejected: [],
  gate: { connections: 0, complete_requests: 0, released: false },
};
const highestEpoch = new Map();  // task id -> highest epoch seen

function verify(req, body) {
  const ts = req.headers['x-ferry-timestamp'] || '';
  const sig = req.headers['x-ferry-signature'] || '';
  const want = 'sha256=' + crypto.createHmac('sha256', secret).update(ts + '.' + body).digest('hex');
  if (sig.length !== want.length) return false;
  if (!crypto.timingSafeEqual(Buffer.from(sig), Buffer.from(want))) return false;
  return Math.abs(Date.now() / 1000 - Number(ts)) <= 300;
}

function send(res, status, value, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(value === undefined ? '' : JSON.stringify(value));
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return send(res, 200, stats);
  if (req.method === 'POST' && req.url === '/gate/release') {
    releaseGate();
    return send(res, 200, { released: held.length });
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (!verify(req, body)) return send(res, 401, { error: 'bad signature' });
    const task = JSON.parse(body);
    const epoch = Number(req.headers['x-ferry-epoch']);
    if (epoch !== task.epoch) return send(res, 400, { error: 'epoch header and body differ' });
    if (epoch < (highestEpoch.get(task.id) || 0)) {
      stats.rejected.push({ id: task.id, epoch, reason: 'stale epoch' });
      return send(res, 409, { error: 'stale epoch' });
    }
    highestEpoch.set(task.id, epoch);
    stats.deliveries.push({
      id: task.id, attempt: task.attempt, epoch, socket: req.socket.ferryId, headers: req.headers, body,
    });
    const mode = task.payload.mode || 'ok';
    if (mode === 'ok') return send(res, 200, { echo: task.payload, epoch, attempt: task.attempt });
    if (mode === 'flaky') {
      if (task.attempt === 1) return send(res, 503, { error: 'busy' }, { 'Retry-After': '1' });
      return send(res, 200, { attempt: task.attempt });
    }
    if (mode === 'status') return send(res, task.payload.status, { error: 'status ' + task.payload.status });
    if (mode === 'not-json') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      return res.end('this is not json');
    }
    if (mode === 'hang') {
      // Never answers; the worker must abort the request on timeout or cancel.
      res.on('close', () => { if (!res.writableEnded) stats.aborted.push(task.id); });
      return;
    }
    send(res, 400, { error: 'unknown mode' });
  });
});
server.keepAliveTimeout = 60000;
server.on('connection', (socket) => {
  stats.connections += 1;
  socket.ferryId = stats.connections;  // which connection carried each delivery
});
// The gate: holds each connection's bytes until released, then pipes it to the service.
const held = [];  // { socket, chunks }
function completeRequests(buffer) {
  // Requests whose head and Content-Length body are all held.
  let count = 0;
  let text = buffer.toString('latin1');
  for (;;) {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return count;
    const m = /content-length:\s*(\d+)/i.exec(text.slice(0, end));
    const total = end + 4 + (m ? Number(m[1]) : 0);
    if (text.length < total) return count;
    count += 1;
    text = text.slice(total);
  }
}
function releaseGate() {
  stats.gate.released = true;
  for (const h of held) forward(h);
}
function forward(h) {
  const upstream = net.connect(server.address().port, '127.0.0.1', () => {
    for (const c of h.chunks) upstream.write(c);
    h.chunks = [];
    h.piped = true;
    h.socket.pipe(upstream);
    upstream.pipe(h.socket);
  });
  upstream.on('error', () => h.socket.destroy());
}
const gate = net.createServer((socket) => {
  stats.gate.connections += 1;
  const h = { socket, chunks: [], piped: false };
  held.push(h);
  socket.on('data', (c) => {
    if (h.piped) return;  // pipe() carries it
    h.chunks.push(c);
    stats.gate.complete_requests = held.reduce(
      (n, x) => n + completeRequests(Buffer.concat(x.chunks)), 0);
  });
  socket.on('error', () => {});
  if (stats.gate.released) forward(h);
});

server.listen(0, '127.0.0.1', () => {
  gate.listen(0, '127.0.0.1', () => {
    console.log('listening ' + server.address().port + ' gate ' + gate.address().port);
  });
});
