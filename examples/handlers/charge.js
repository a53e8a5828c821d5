// A Ferry http handler (docs/handlers.md): checks the signature and the fencing epoch, answers
// 2xx with the result, 4xx to fail without retry, 5xx (with Retry-After) to be retried.
//   FERRY_HANDLER_SECRET=... node charge.js      (listens on 127.0.0.1:8787, or $PORT)
'use strict';
const http = require('http');
const crypto = require('crypto');

const secret = process.env.FERRY_HANDLER_SECRET;
if (!secret) throw new Error('set FERRY_HANDLER_SECRET (the same value as the worker)');
const highestEpoch = new Map();  // task id -> highest epoch seen; use your database in production

function signatureOk(req, body) {
  const ts = req.headers['x-ferry-timestamp'] || '';
  const given = Buffer.from(req.headers['x-ferry-signature'] || '');
  const want = Buffer.from('sha256=' +
    crypto.createHmac('sha256', secret).update(ts + '.' + body).digest('hex'));
  const fresh = Math.abs(Date.now() / 1000 - Number(ts)) <= 300;  // refuse old replays
  return fresh && given.length === want.length && crypto.timingSafeEqual(given, want);
}

function reply(res, status, value) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(value));
}

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (!signatureOk(req, body)) return reply(res, 401, { error: 'bad signature' });
    const task = JSON.parse(body);
    // A delivery older than one already seen comes from a worker that lost the task.
    if (task.epoch < (highestEpoch.get(task.id) || 0)) return reply(res, 409, { error: 'stale' });
    highestEpoch.set(task.id, task.epoch);
    const { amount } = task.payload;
    if (!Number.isInteger(amount) || amount <= 0) {
      return reply(res, 422, { error: 'payload.amount must be a positive integer' });
    }
    reply(res, 200, { charged: amount, attempt: task.attempt });
  });
}).listen(Number(process.env.PORT || 8787), '127.0.0.1');
