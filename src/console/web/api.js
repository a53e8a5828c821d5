// The JSON API client: every request goes to /api/v1 on this origin with the token the operator
// logged in with (sessionStorage: gone when the tab closes), as Authorization: Bearer.

const TOKEN_KEY = 'ferry.token';

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) { sessionStorage.setItem(TOKEN_KEY, t); }
export function clearToken() { sessionStorage.removeItem(TOKEN_KEY); }

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  const out = {Accept: 'application/json', ...extra};
  const t = token();
  if (t) out.Authorization = `Bearer ${t}`;
  return out;
}

// Handlers for a 401 (the app shows the login form).
const unauthenticated = new Set();
export function onUnauthenticated(fn) { unauthenticated.add(fn); }

async function fail(res) {
  let code = 'error';
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch { /* not JSON: keep the status line */ }
  if (res.status === 401) for (const fn of unauthenticated) fn(message);
  return new ApiError(res.status, code, message);
}

// api('/runs?status=failed') -> the parsed JSON answer; throws ApiError.
export async function api(path, {method = 'GET', body, signal} = {}) {
  const init = {method, headers: headers(body === undefined ? {} : {'Content-Type': 'application/json'}),
                signal, cache: 'no-store'};
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(`/api/v1${path}`, init);
  if (!res.ok) throw await fail(res);
  return res.status === 204 ? null : res.json();
}

// Asks without redirecting to the login form: 'open' (no token given, and none needed: `ferry
// dev`), 'ok' (the given token works) or 'refused' (401), else throws.
export async function probe(candidate) {
  const h = {Accept: 'application/json'};
  if (candidate) h.Authorization = `Bearer ${candidate}`;
  const res = await fetch('/api/v1/workflows', {headers: h, cache: 'no-store'});
  if (res.ok) return candidate ? 'ok' : 'open';
  if (res.status === 401) return 'refused';
  throw new ApiError(res.status, 'error', `${res.status} ${res.statusText}`);
}

// Follows a Server-Sent Events route with the bearer token (EventSource cannot send one), and
// reconnects from the last event id when the connection drops. onEvent({id, event, data}) gets
// each event with data parsed as JSON. Returns a function that stops it.
export function follow(path, onEvent, {onEnd, onError} = {}) {
  const ctl = new AbortController();
  let lastId = '';
  let stopped = false;
  const run = async () => {
    let delay = 1000;
    while (!stopped) {
      try {
        const h = headers({Accept: 'text/event-stream'});
        if (lastId) h['Last-Event-ID'] = lastId;
        const res = await fetch(`/api/v1${path}`, {headers: h, signal: ctl.signal, cache: 'no-store'});
        if (!res.ok) throw await fail(res);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const ev = {id: '', event: 'message', data: ''};
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              let val = colon < 0 ? '' : line.slice(colon + 1);
              if (val.startsWith(' ')) val = val.slice(1);
              if (field === 'id') ev.id = val;
              else if (field === 'event') ev.event = val;
              else if (field === 'data') ev.data += (ev.data ? '\n' : '') + val;
              else if (field === 'retry' && /^\d+$/.test(val)) delay = Number(val);
            }
            if (!ev.data) continue;
            if (ev.id) lastId = ev.id;
            try { ev.data = JSON.parse(ev.data); } catch { /* keep the text */ }
            onEvent(ev);
          }
        }
        // The server ends the stream once the run has finished: done.
        if (!stopped && onEnd) onEnd();
        return;
      } catch (e) {
        if (stopped) return;
        if (e instanceof ApiError && e.status < 500) { if (onError) onError(e); return; }
        if (onError) onError(e);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };
  run();
  return () => { stopped = true; ctl.abort(); };
}
