// The web console in a real browser (Debian's chromium, driven by playwright-core) against a
// real stack (stack.mjs). Run by ctest (tests/browser/CMakeLists.txt) as
//   FERRY_BIN=build/default/apps/ferry/ferry FERRY_SCREENSHOTS=build/default/browser-screenshots \
//     node tests/browser/console.test.mjs
// Screenshots of every page at 1280 and 390 px go to FERRY_SCREENSHOTS (not committed).
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {createHmac} from 'node:crypto';
import {mkdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {chromium} from 'playwright-core';
import {startStack} from './stack.mjs';

const FERRY = process.env.FERRY_BIN;
const SHOTS = process.env.FERRY_SCREENSHOTS || join(process.cwd(), 'browser-screenshots');
const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
const XSS = '<img src=x onerror=alert(1)>';
const HOOK_SECRET = 'console-hook-secret';
const WAIT = 30000;

const HOOK_WORKFLOW = `
name: console-hook
description: A webhook starts it; it holds a few seconds, then greets.
inputs:
  who: {type: string, default: World}
triggers:
  webhook:
    methods: [POST]
    auth: hmac
    secret: CONSOLE_HOOK
nodes:
  hold:
    kind: delay
    duration: 6s
  greet:
    kind: shell
    needs: [hold]
    argv: [echo, "Hello, {{ inputs.who }}!"]
`;
const SLOW_WORKFLOW = `
name: console-slow
description: "${XSS}"
nodes:
  nap:
    kind: delay
    duration: 10m
  after:
    kind: shell
    needs: [nap]
    argv: [echo, done]
`;
const XSS_WORKFLOW = `
name: console-xss
inputs:
  who: {type: string, allow_leading_dash: false}
nodes:
  say:
    kind: shell
    argv: [echo, "{{ inputs.who }}"]
`;

const QUICK_WORKFLOW = `
name: console-quick
nodes:
  one:
    kind: lua
    script: "return {n = 1}"
`;
const YEARLY_WORKFLOW = `
name: console-yearly
triggers:
  cron: {schedule: "0 3 1 1 *", timezone: Asia/Tokyo}
nodes:
  one:
    kind: lua
    script: "return 1"
`;
// A start-run form with a list whose choices hold a long value, and a JSON input.
const WIDE_WORKFLOW = `
name: console-wide
inputs:
  pick: {type: string, enum: [short, ${'a-long-choice-'.repeat(6)}end]}
  obj: {type: object, default: {x: 1}}
nodes:
  one:
    kind: lua
    script: "return 1"
`;
const FAIL_WORKFLOW = `
name: console-fail
nodes:
  boom:
    kind: fail
    message: "broken on purpose ${XSS}"
`;

let stack;
let browser;
const pageErrors = [];
const dialogs = [];

assert.ok(FERRY, 'set FERRY_BIN to the ferry binary');

async function apiCall(path, {method = 'GET', body, token} = {}) {
  const res = await fetch(`${stack.serverUrl}/api/v1${path}`, {
    method,
    headers: {Authorization: `Bearer ${token || stack.token}`, 'Content-Type': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

// Polls `fn` until it returns a truthy value (conditions, not sleeps; bounded by `ms`).
async function until(what, fn, ms = WAIT) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

function watch(page) {
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('dialog', (d) => { dialogs.push(`${d.type()}: ${d.message()}`); d.dismiss().catch(() => {}); });
  // Chromium logs every 4xx answer ("Failed to load resource: ... 401"): the wrong tokens and
  // the wrong links are refused on purpose, and the page shows the API's message. Anything else
  // logged as an error (a script error, a Content-Security-Policy violation, a 5xx) counts.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d /.test(m.text())) {
      pageErrors.push(`console: ${m.text()}`);
    }
  });
}

// A page logged in on the authenticated server (the token in sessionStorage, as the login form
// leaves it), at `width` px.
async function loggedIn(width = 1280, token = stack.token) {
  const context = await browser.newContext({viewport: {width, height: 900}});
  await context.addInitScript((t) => sessionStorage.setItem('ferry.token', t), token);
  const page = await context.newPage();
  watch(page);
  return page;
}

async function shot(page, name) {
  await page.screenshot({path: join(SHOTS, `${name}.png`), fullPage: true});
}

before(async () => {
  mkdirSync(SHOTS, {recursive: true});
  stack = await startStack({ferry: FERRY, secrets: {CONSOLE_HOOK: HOOK_SECRET}});
  const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
  browser = await chromium.launch({executablePath: CHROMIUM, args});
  for (const source of [HOOK_WORKFLOW, SLOW_WORKFLOW, XSS_WORKFLOW, FAIL_WORKFLOW, QUICK_WORKFLOW, YEARLY_WORKFLOW,
                        WIDE_WORKFLOW]) {
    await apiCall('/workflows', {method: 'POST', body: {source}});
  }
});

after(async () => {
  if (browser) await browser.close();
  if (stack) {
    writeFileSync(join(SHOTS, 'stack.log'), stack.logs());
    await stack.stop();
  }
  assert.deepEqual(dialogs, [], 'no dialog may open (an alert would mean injected script ran)');
  assert.deepEqual(pageErrors, [], 'no page errors');
});

test('ferry dev serves the console at / without a login, with a strict policy', async () => {
  const res = await fetch(`${stack.devUrl}/`);
  assert.equal(res.status, 200);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self';/);
  assert.doesNotMatch(csp, /unsafe/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');

  const context = await browser.newContext({viewport: {width: 1280, height: 900}});
  const page = await context.newPage();
  watch(page);
  await page.goto(`${stack.devUrl}/`);
  await page.waitForSelector('nav a.active');
  assert.equal(await page.locator('#token').count(), 0, 'no login form in dev');
  assert.match(await page.locator('#who').textContent(), /dev \(no auth\)/);
  // The console's own POST carries its origin and is taken; another origin's (here the same
  // server named localhost, a page that is not the console's) is refused, even a text/plain
  // one the browser sends without asking first.
  const submit = (url, init) => page.evaluate(async ([u, i]) => (await fetch(u, i)).status,
                                              [url, init]);
  const body = JSON.stringify({kind: 'noop', queue: 'origin-check'});
  assert.equal(await submit('/api/v1/tasks',
                            {method: 'POST', headers: {'Content-Type': 'application/json'}, body}),
               201);
  const other = stack.devUrl.replace('127.0.0.1', 'localhost');
  await page.goto(`${other}/healthz`);
  const refused = await page.evaluate(async ([u, b]) => {
    try {
      await fetch(u, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: b});
    } catch (e) { return `threw ${e}`; }
    return 'sent';
  }, [`${stack.devUrl}/api/v1/tasks`, body]);
  assert.equal(refused, 'sent');  // opaque to the page; what counts is what the server did
  const listed = await (await fetch(`${stack.devUrl}/api/v1/tasks?queue=origin-check`)).json();
  assert.equal(listed.tasks.length, 1, 'only the console\'s own submission was taken');
  await context.close();
});

test('a wrong token is refused, a near miss too, and the right one logs in', async () => {
  const context = await browser.newContext({viewport: {width: 1280, height: 900}});
  const page = await context.newPage();
  watch(page);
  await page.goto(`${stack.serverUrl}/`);
  await page.waitForSelector('#token');
  await shot(page, 'login-1280');

  const flipped = stack.token.slice(0, -1) + (stack.token.endsWith('0') ? '1' : '0');
  let attempts = 0;
  for (const wrong of [`fy_${'0'.repeat(64)}`, flipped, 'not a token']) {
    await page.fill('#token', wrong);
    await page.click('form.login button[type=submit]');
    attempts++;
    await page.waitForSelector(`#login-error[data-attempts="${attempts}"]`);
    assert.match(await page.locator('#login-error').textContent(), /refused/);
    assert.equal(await page.locator('nav a').count(), 0, `no navigation after ${wrong}`);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('ferry.token')), null);
  }
  await shot(page, 'login-refused-1280');

  // The API refuses the same wrong token on its own, whatever the page does.
  const direct = await fetch(`${stack.serverUrl}/api/v1/runs`, {headers: {Authorization: `Bearer ${flipped}`}});
  assert.equal(direct.status, 401);

  await page.fill('#token', stack.token);
  await page.click('form.login button[type=submit]');
  await page.waitForSelector('nav a.active');
  await page.waitForSelector('text=Live workers');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('ferry.token')), stack.token);

  // Log out forgets the token.
  await page.click('#who button');
  await page.waitForSelector('#token');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('ferry.token')), null);
  await context.close();
});

test('a run started by a signed webhook appears on the runs page and its nodes go running -> succeeded live', async () => {
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/runs`);
  await page.waitForSelector('table tbody');
  // Marks this document: a reload would lose it.
  await page.evaluate(() => { window.__noReload = true; });

  const body = JSON.stringify({who: 'Ada'});
  const ts = Math.floor(Date.now() / 1000);
  const sig = createHmac('sha256', HOOK_SECRET).update(`${ts}.${body}`).digest('hex');
  const hook = await fetch(`${stack.serverUrl}/hooks/console-hook`, {
    method: 'POST', body,
    headers: {'Content-Type': 'application/json', 'X-Ferry-Timestamp': String(ts), 'X-Ferry-Signature': `sha256=${sig}`},
  });
  assert.equal(hook.status, 202);
  const {run_id: runId} = await hook.json();

  const row = page.locator(`tr[data-run="${runId}"]`);
  await row.waitFor({timeout: WAIT});
  assert.match(await row.textContent(), /webhook/);
  await row.locator('a.mono, td.mono a').first().click();
  await page.waitForSelector(`h1:has-text("${runId}")`);

  // The delay node shows running while the run really is running, then both nodes succeed.
  await page.waitForSelector('g.node[data-node="hold"][data-status="running"]', {timeout: WAIT});
  const during = await apiCall(`/runs/${runId}`);
  assert.equal(during.run.status, 'running');
  assert.equal(await page.locator('g.node[data-node="greet"][data-status]').count(), 0, 'greet has not started');
  await shot(page, 'run-live-1280');
  await page.waitForSelector('g.node[data-node="hold"][data-status="succeeded"]', {timeout: WAIT});
  await page.waitForSelector('g.node[data-node="greet"][data-status="succeeded"]', {timeout: WAIT});
  await page.waitForSelector('.actions .badge.st-succeeded', {timeout: WAIT});
  await page.waitForSelector('tr[data-step="greet"] pre:has-text("Hello, Ada!")', {timeout: WAIT});
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  await shot(page, 'run-succeeded-1280');
  await page.context().close();
});

test('cancel from the run page stops a running delay node', async () => {
  const {run} = await apiCall('/runs', {method: 'POST', body: {workflow: 'console-slow'}});
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/runs/${run.id}`);
  await page.waitForSelector('g.node[data-node="nap"][data-status="running"]', {timeout: WAIT});
  const running = await apiCall(`/runs/${run.id}`);
  assert.equal(running.run.status, 'running');

  await page.click('button[data-action="cancel"]');
  await page.waitForSelector('.actions .badge.st-cancelled', {timeout: WAIT});
  await page.waitForSelector('button[data-action="retry"]');
  const after = await apiCall(`/runs/${run.id}`);
  assert.equal(after.run.status, 'cancelled');
  assert.ok(!after.run.steps.some((s) => s.node === 'nap' && s.status === 'succeeded'));
  // The worker let go of the run's task: the ten-minute delay was interrupted, not waited out.
  await until('the run task to leave the worker', async () => {
    const {workers} = await apiCall('/workers');
    const busy = workers.flatMap((w) => w.current_tasks || []);
    const own = (await apiCall('/tasks?limit=1000')).tasks.filter((t) => t.kind === 'ferry.run' && JSON.stringify(t.payload).includes(run.id));
    return own.length > 0 && own.every((t) => !busy.includes(t.id) && t.status !== 'running');
  });
  await page.waitForSelector('g.node[data-node="nap"][data-status="cancelled"]', {timeout: WAIT});
  assert.equal(await page.locator('g.node[data-node="after"][data-status]').count(), 0);
  await shot(page, 'run-cancelled-1280');
  await page.context().close();
});

test('a dead-lettered task is retried from the dead-letter page and succeeds', async () => {
  const flag = join(stack.dir, 'flag');
  const {id} = await apiCall('/tasks', {method: 'POST', body: {kind: 'shell', max_attempts: 1,
                                                               payload: {argv: ['test', '-e', flag]}}});
  await until('the task to be dead-lettered', async () => (await apiCall(`/tasks/${id}`)).task.status === 'failed');

  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/queues/default`);
  const row = page.locator(`tr[data-task="${id}"]`);
  await row.waitFor({timeout: WAIT});
  assert.match(await row.textContent(), /exit code 1/);
  await shot(page, 'dead-letters-1280');

  writeFileSync(flag, '');  // the cause is fixed; now the retry can succeed
  await row.locator('button[data-action="retry"]').click();
  await page.waitForSelector('[role=status]:has-text("Retried 1 task")');
  await until('the retried task to succeed', async () => (await apiCall(`/tasks/${id}`)).task.status === 'succeeded');
  await page.locator(`tr[data-task="${id}"]`).waitFor({state: 'detached', timeout: WAIT});

  await page.goto(`${stack.serverUrl}/#/tasks/${id}`);
  await page.waitForSelector('.actions .badge.st-succeeded');
  await page.context().close();
});

test('a running task is cancelled from its page, then retried', async () => {
  const {id} = await apiCall('/tasks', {method: 'POST', body: {kind: 'sleep', payload: {ms: 600000}, max_attempts: 1}});
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/tasks/${id}`);
  await page.waitForSelector('.actions .badge.st-running', {timeout: WAIT});
  assert.match(await page.locator('dl.fields').textContent(), /worker\S+/);
  await shot(page, 'task-running-1280');
  // The event timeline streams: submitted, running, then (after the cancel, no reload) cancelled.
  await page.waitForSelector('table.events tr[data-event="submitted"] + tr[data-event="running"]', {timeout: WAIT});
  await page.click('button[data-action="cancel"]');
  await page.waitForSelector('.actions .badge.st-cancelled', {timeout: WAIT});
  assert.equal((await apiCall(`/tasks/${id}`)).task.status, 'cancelled');
  await page.waitForSelector('table.events tr[data-event="cancelled"]', {timeout: WAIT});
  await page.waitForSelector('#events-state:has-text("(ended)")', {timeout: WAIT});
  // The worker let go of it: the ten-minute sleep was stopped.
  await until('the worker to drop the task', async () =>
    !(await apiCall('/workers')).workers.some((w) => (w.current_tasks || []).includes(id)));

  await page.click('button[data-action="retry"]');
  await page.waitForSelector('.actions .badge.st-running, .actions .badge.st-pending', {timeout: WAIT});
  await apiCall(`/tasks/${id}/cancel`, {method: 'POST'});  // leave the worker free for the next tests
  await page.waitForSelector('.actions .badge.st-cancelled', {timeout: WAIT});
  await page.context().close();
});

test('a read-only token sees everything and is told why it may not cancel', async () => {
  const reader = stack.createToken('console-reader', 'read');
  const {id} = await apiCall('/tasks', {method: 'POST', body: {kind: 'sleep', payload: {ms: 600000}, max_attempts: 1}});
  const page = await loggedIn(1280, reader);
  await page.goto(`${stack.serverUrl}/#/tasks/${id}`);
  await page.waitForSelector('.actions .badge.st-running', {timeout: WAIT});
  await page.click('button[data-action="cancel"]');
  const alert = page.locator('[role=status] [role=alert]');
  await alert.waitFor();
  assert.match(await alert.textContent(), /^cancel refused: .*needs a token with the run scope; this one has: read$/);
  // It stays when the page next refreshes the task (every 2 s).
  const next = await page.waitForResponse((r) => r.url().endsWith(`/api/v1/tasks/${id}`) && r.request().method() === 'GET');
  await next.finished();
  await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));  // the answer is drawn
  assert.equal(await alert.count(), 1);
  assert.equal((await apiCall(`/tasks/${id}`)).task.status, 'running');
  assert.equal(await page.locator('#token').count(), 0, 'a 403 does not log out');
  await apiCall(`/tasks/${id}/cancel`, {method: 'POST'});
  await page.context().close();
});

test('"retry all" asks first, then retries every dead letter', async () => {
  const flag = join(stack.dir, 'flag-all');
  const ids = [];
  for (let i = 0; i < 2; i++) {
    ids.push((await apiCall('/tasks', {method: 'POST', body: {kind: 'shell', max_attempts: 1,
                                                              payload: {argv: ['test', '-e', flag]}}})).id);
  }
  await until('both tasks to be dead-lettered', async () => {
    const st = await Promise.all(ids.map(async (id) => (await apiCall(`/tasks/${id}`)).task.status));
    return st.every((x) => x === 'failed');
  });
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/queues/default`);
  for (const id of ids) await page.locator(`tr[data-task="${id}"]`).waitFor({timeout: WAIT});
  writeFileSync(flag, '');

  // "No" leaves everything as it was.
  await page.click('button[data-action="retry-all"]');
  await page.waitForSelector('.confirm .question');
  await shot(page, 'dead-letters-confirm-1280');
  await page.click('.confirm button:has-text("No")');
  await page.waitForSelector('button[data-action="retry-all"]');
  for (const id of ids) assert.equal((await apiCall(`/tasks/${id}`)).task.status, 'failed');

  await page.click('button[data-action="retry-all"]');
  await page.click('button[data-confirm="yes"]');
  await page.waitForSelector('[role=status]:has-text("Retried 2 tasks")');
  await until('both retried tasks to succeed', async () => {
    const st = await Promise.all(ids.map(async (id) => (await apiCall(`/tasks/${id}`)).task.status));
    return st.every((x) => x === 'succeeded');
  });
  await page.context().close();
});

test('"retry all" retries every dead letter of the queue, not only the 200 listed, and says so', async () => {
  // 205 tasks no worker has a handler for: each is dead-lettered at its first attempt.
  const tasks = Array.from({length: 205}, (_, i) => ({kind: 'console-no-handler', max_attempts: 1, payload: {i}}));
  await apiCall('/tasks/batch', {method: 'POST', body: {tasks}});
  const requeued = async () => (await apiCall('/queues/default')).queue.counters.requeued || 0;
  await until('the 205 tasks to be dead-lettered', async () => (await apiCall('/queues/default')).queue.dead === 205);
  const before = await requeued();

  const page = await loggedIn();
  const retries = [];
  page.on('request', (r) => { if (r.method() === 'POST' && /\/retry$/.test(r.url())) retries.push(new URL(r.url()).pathname); });
  await page.goto(`${stack.serverUrl}/#/queues/default`);
  await page.waitForSelector('button[data-action="retry-all"]:has-text("Retry all 205")', {timeout: WAIT});
  assert.equal(await page.locator('tr[data-task]').count(), 200);
  assert.match(await page.locator('[data-note="limit"]').textContent(), /^Showing the newest 200 of 205 dead letters/);
  await page.click('button[data-action="retry-all"]');
  assert.equal(await page.locator('.confirm .question').textContent(), 'Retry all 205 dead tasks of default?');
  await page.click('button[data-confirm="yes"]');
  const notice = page.locator('[role=status]:has-text("Retried")');
  await notice.waitFor({timeout: WAIT});
  // They fail again at once (still no handler): the notice says what is dead now.
  assert.match(await notice.textContent(), /^Retried 205 tasks\. (\d+ dead now \(failed again, or dead-lettered meanwhile\)|None is dead now)\.$/);
  assert.equal(await requeued() - before, 205, 'every dead letter was retried once');
  assert.deepEqual(retries, ['/api/v1/queues/default/dead/retry'], 'one request retries them all');
  await page.context().close();
  await until('the retried tasks to be dead again', async () => (await apiCall('/queues/default')).queue.dead === 205);
  await apiCall('/queues/default/dead/purge', {method: 'POST'});  // leave the queue as it was
});

test('"purge" asks first, needs an admin token, and deletes the dead letters for good', async () => {
  const ids = [];
  for (let i = 0; i < 2; i++) {
    ids.push((await apiCall('/tasks', {method: 'POST', body: {kind: 'shell', max_attempts: 1,
                                                              payload: {argv: ['false']}}})).id);
  }
  await until('both tasks to be dead-lettered', async () => {
    const st = await Promise.all(ids.map(async (id) => (await apiCall(`/tasks/${id}`)).task.status));
    return st.every((x) => x === 'failed');
  });
  const stillThere = async () => {
    for (const id of ids) assert.equal((await apiCall(`/tasks/${id}`)).task.status, 'failed');
  };

  // An apply token, one level below admin, is refused and nothing is deleted.
  const applyPage = await loggedIn(1280, stack.createToken('purge-apply', 'apply'));
  await applyPage.goto(`${stack.serverUrl}/#/queues/default`);
  for (const id of ids) await applyPage.locator(`tr[data-task="${id}"]`).waitFor({timeout: WAIT});
  await applyPage.click('button[data-action="purge"]');
  await applyPage.click('button[data-confirm="yes"]');
  await applyPage.waitForSelector('[role=status]:has-text("Not purged")');
  assert.match(await applyPage.locator('[role=status]').textContent(), /admin/);
  await stillThere();
  await applyPage.context().close();

  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/queues/default`);
  for (const id of ids) await page.locator(`tr[data-task="${id}"]`).waitFor({timeout: WAIT});
  // "No" leaves everything as it was.
  await page.click('button[data-action="purge"]');
  assert.match(await page.locator('.confirm .question').textContent(), /for good/);
  await shot(page, 'dead-letters-purge-confirm-1280');
  await page.click('.confirm button:has-text("No")');
  await page.waitForSelector('button[data-action="purge"]');
  await stillThere();

  await page.click('button[data-action="purge"]');
  await page.click('button[data-confirm="yes"]');
  await page.waitForSelector('[role=status]:has-text("Purged")');
  const purged = Number((await page.locator('[role=status]').textContent()).match(/Purged (\d+) task/)[1]);
  assert.ok(purged >= 2, `purged ${purged}`);
  for (const id of ids) await assert.rejects(apiCall(`/tasks/${id}`), /404/);
  assert.equal((await apiCall('/queues/default')).queue.dead, 0);
  await page.waitForSelector('td:has-text("no dead letters")');
  assert.equal(await page.locator('button[data-action="purge"]').count(), 0);
  await page.context().close();
});

test('an empty queue is deleted after a confirmation; a busy one offers no delete', async () => {
  // A queue no worker serves: its one task waits, so the page offers no delete.
  const {id} = await apiCall('/tasks', {method: 'POST', body: {kind: 'echo', queue: 'console-spare'}});
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/queues/console-spare`);
  await page.waitForSelector('.stat:has-text("pending") b:has-text("1")');
  assert.equal(await page.locator('button[data-action="delete-queue"]').count(), 0);
  // Cancelled, it is empty: the button appears with the next refresh; "No" keeps the queue.
  await apiCall(`/tasks/${id}/cancel`, {method: 'POST'});
  await page.waitForSelector('button[data-action="delete-queue"]', {timeout: WAIT});
  await page.click('button[data-action="delete-queue"]');
  assert.match(await page.locator('.confirm .question').textContent(), /Forget queue console-spare/);
  await page.click('.confirm button:has-text("No")');
  assert.ok((await apiCall('/queues')).queues.some((q) => q.queue === 'console-spare'));
  await page.click('button[data-action="delete-queue"]');
  await page.click('button[data-confirm="yes"]');
  await page.waitForURL(/#\/queues$/);
  await page.waitForSelector('h1:has-text("Queues")');
  assert.ok(!(await apiCall('/queues')).queues.some((q) => q.queue === 'console-spare'));
  await page.context().close();
});

test('user data renders as text: markup in inputs, payloads and descriptions never runs', async () => {
  const {run} = await apiCall('/runs', {method: 'POST', body: {workflow: 'console-xss', inputs: {who: XSS}}});
  const {id: taskId} = await apiCall('/tasks', {method: 'POST', body: {kind: 'echo', payload: {note: XSS}}});
  await until('the xss run to finish', async () => (await apiCall(`/runs/${run.id}`)).run.status === 'succeeded');

  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/runs/${run.id}`);
  await page.waitForSelector('tr[data-step="say"] pre');
  assert.ok((await page.locator('pre.inputs').textContent()).includes(XSS));
  assert.ok((await page.locator('tr[data-step="say"] pre').textContent()).includes(XSS));

  await page.goto(`${stack.serverUrl}/#/tasks/${taskId}`);
  await page.waitForSelector('pre.payload');
  assert.ok((await page.locator('pre.payload').textContent()).includes(XSS));

  await page.goto(`${stack.serverUrl}/#/tasks`);
  await page.waitForSelector(`tr[data-task="${taskId}"]`);
  assert.ok((await page.locator(`tr[data-task="${taskId}"]`).textContent()).includes(XSS));

  await page.goto(`${stack.serverUrl}/#/workflows`);
  await page.waitForSelector('text=console-slow');
  assert.ok((await page.locator('main').textContent()).includes(XSS));

  await page.goto(`${stack.serverUrl}/#/workflows/console-xss`);
  await page.waitForSelector('form[data-form="start-run"]');
  await page.fill('#in-who', XSS);
  await page.click('form[data-form="start-run"] button[type=submit]');
  await page.waitForSelector('pre.inputs');
  assert.ok((await page.locator('pre.inputs').textContent()).includes(XSS));

  assert.equal(await page.locator('main img').count(), 0, 'no <img> element was made from data');
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
  await page.context().close();
});

test('bidi control characters in data are shown as marked placeholders, not applied', async () => {
  const spoof = 'abc\u202Egnp.exe\u202C tail';
  const controls = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;
  const {run} = await apiCall('/runs', {method: 'POST', body: {workflow: 'console-xss', inputs: {who: spoof}}});
  const {id: taskId} = await apiCall('/tasks', {method: 'POST', body: {kind: 'echo', payload: {note: '\u2067x\u2069 \u200F'}}});
  await until('the run to finish', async () => (await apiCall(`/runs/${run.id}`)).run.status === 'succeeded');

  const page = await loggedIn();
  const noRawControls = async (where) => {
    assert.doesNotMatch(await page.locator('main').textContent(), controls, `${where}: a raw bidi control is in the page`);
  };
  await page.goto(`${stack.serverUrl}/#/runs/${run.id}`);
  await page.waitForSelector('tr[data-step="say"] pre');
  assert.ok((await page.locator('pre.inputs').textContent()).includes('abc⟨U+202E⟩gnp.exe⟨U+202C⟩ tail'));
  assert.ok((await page.locator('tr[data-step="say"] pre').textContent()).includes('abc⟨U+202E⟩gnp.exe⟨U+202C⟩ tail'));
  assert.ok(await page.locator('pre.inputs .bidi-control').count() >= 2, 'the placeholders are marked');
  await noRawControls('run page');

  await page.goto(`${stack.serverUrl}/#/tasks/${taskId}`);
  await page.waitForSelector('pre.payload');
  assert.ok((await page.locator('pre.payload').textContent()).includes('⟨U+2067⟩x⟨U+2069⟩ ⟨U+200F⟩'));
  await noRawControls('task page');
  await page.goto(`${stack.serverUrl}/#/tasks`);
  await page.waitForSelector(`tr[data-task="${taskId}"]`);
  await noRawControls('tasks page');
  await page.context().close();
});

test('the run page says whether a run was recovered instead of showing its raw fencing value', async () => {
  const {runs: [done]} = await apiCall('/runs?workflow=console-xss&status=succeeded&limit=1');
  const page = await loggedIn();
  // A run recovered once and claimed 4 times by its second task: fencing (1 << 32) | 4.
  await page.route(`**/api/v1/runs/${done.id}`, async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    body.run.epoch = 4294967300;
    await route.fulfill({response: res, json: body});
  });
  await page.goto(`${stack.serverUrl}/#/runs/${done.id}`);
  await page.waitForSelector('dl.fields dt:has-text("recovered")');
  const fieldsText = await page.locator('dl.fields').textContent();
  assert.doesNotMatch(fieldsText, /4294967300/);
  assert.match(fieldsText, /recoveredonce \(a new task took the run over/);
  // Waits for a handler still answering a refresh of the page: unrouted while it ran, its
  // fulfill then met a request the reload had ended ("Route is already handled").
  await page.unrouteAll({behavior: 'wait'});
  await page.reload();
  await page.waitForSelector('dl.fields dt:has-text("recovered")');
  assert.match(await page.locator('dl.fields').textContent(), /recoveredno/);
  await page.context().close();
});

test('a workflow page draws the graph, diffs two versions and starts a run from its form', async () => {
  const v2 = XSS_WORKFLOW.replace('argv: [echo, "{{ inputs.who }}"]', 'argv: [printf, "%s\\n", "{{ inputs.who }}"]');
  const applied = await apiCall('/workflows', {method: 'POST', body: {source: v2}});
  assert.equal(applied.version.version, 2);
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/workflows/console-xss`);
  await page.waitForSelector('svg.graph g.node[data-node="say"]');
  await page.waitForSelector('.diff .add');
  assert.match(await page.locator('.diff .del').first().textContent(), /^- .*argv: \[echo, "\{\{ inputs\.who \}\}"\]$/);
  assert.match(await page.locator('.diff .add').first().textContent(), /^\+ .*argv: \[printf/);
  assert.equal(await page.locator('.diff .add').count(), 1);
  assert.equal(await page.locator('.diff .del').count(), 1);
  await shot(page, 'workflow-diff-1280');

  await page.fill('#in-who', 'Grace');
  await page.click('form[data-form="start-run"] button[type=submit]');
  await page.waitForSelector('.actions .badge.st-succeeded', {timeout: WAIT});
  await page.waitForSelector('tr[data-step="say"] pre:has-text("Grace")');
  assert.match(await page.locator('main').textContent(), /v2/);
  await page.context().close();
});

test('a remediation candidate is shown as text, dismissed with a reason and re-opened', async () => {
  const {run} = await apiCall('/runs', {method: 'POST', body: {workflow: 'console-fail'}});
  await until('the run to fail', async () => (await apiCall(`/runs/${run.id}`)).run.status === 'failed');
  const m = await until('its remediation candidate', async () =>
    (await apiCall('/remediations?workflow=console-fail')).remediations.find((x) => x.run_id === run.id));

  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/remediation`);
  await page.locator(`a:has-text("${m.id}")`).click();
  await page.waitForSelector('.actions .badge.st-pending');
  assert.ok((await page.locator('pre.error').textContent()).includes(`broken on purpose ${XSS}`));
  await page.fill('input[name=reason]', 'a test failure');
  await page.click('button[data-action="dismiss"]');
  await page.waitForSelector('.actions .badge.st-dismissed');
  await page.waitForSelector('dd:has-text("a test failure")');
  assert.equal((await apiCall(`/remediations/${m.id}`)).remediation.status, 'dismissed');
  await shot(page, 'remediation-candidate-1280');

  await page.click('button[data-action="reopen"]');
  await page.waitForSelector('.actions .badge.st-pending');
  assert.equal((await apiCall(`/remediations/${m.id}`)).remediation.status, 'pending');

  // The run page offers a retry for the failed run and follows the new one.
  await page.goto(`${stack.serverUrl}/#/runs/${run.id}`);
  await page.waitForSelector('g.node[data-node="boom"][data-status="failed"]');
  await page.click('button[data-action="retry"]');
  await page.waitForFunction((id) => location.hash.startsWith('#/runs/') && !location.hash.includes(id), run.id);
  await page.waitForSelector('.actions .badge.st-failed', {timeout: WAIT});
  assert.match(await page.locator('dl.fields').textContent(), new RegExp(`retry of${run.id}`));
  await page.context().close();
});

test('the runs page filters on the server and pages with the cursor: 50, then the rest', async () => {
  const ids = [];
  for (let i = 0; i < 53; i++) ids.push((await apiCall('/runs', {method: 'POST', body: {workflow: 'console-quick'}})).run.id);
  await until('53 runs to succeed', async () =>
    (await apiCall('/runs?workflow=console-quick&status=succeeded&limit=100')).runs.length === 53, 60000);

  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/runs`);
  await page.fill('input[name=workflow]', 'console-quick');
  await page.selectOption('select[name=status]', 'succeeded');
  await page.click('form.toolbar button[type=submit]');
  await page.waitForFunction(() => location.hash === '#/runs?workflow=console-quick&status=succeeded');
  await page.waitForFunction(() => document.querySelectorAll('tr[data-run]').length === 50);
  const first = await page.locator('tr[data-run]').evaluateAll((rows) => rows.map((r) => r.dataset.run));
  await page.click('a[data-action="older"]');
  await page.waitForFunction(() => document.querySelectorAll('tr[data-run]').length === 3);
  const second = await page.locator('tr[data-run]').evaluateAll((rows) => rows.map((r) => r.dataset.run));
  // Two pages, no run twice, none missing.
  assert.deepEqual([...first, ...second].sort(), [...ids].sort());
  assert.equal(await page.locator('a[data-action="older"]').count(), 0, 'no page after the last');
  await page.click('a[data-action="newer"]');
  await page.waitForFunction(() => location.hash === '#/runs?workflow=console-quick&status=succeeded');
  await page.waitForFunction(() => document.querySelectorAll('tr[data-run]').length === 50);

  // A filter that matches nothing says so.
  await page.selectOption('select[name=status]', 'failed');
  await page.click('form.toolbar button[type=submit]');
  await page.waitForSelector('td.empty:has-text("no runs match")');
  await page.context().close();
});

test('the tasks page filters by kind on the server and pages past the newest 200', async () => {
  // The 3 oldest tasks of the queue are the only needles, behind 200 newer ones (no worker serves
  // the queue: they stay pending).
  const tasks = [...Array.from({length: 3}, (_, i) => ({kind: 'console-needle', queue: 'console-bulk', payload: {i}})),
                 ...Array.from({length: 200}, (_, i) => ({kind: 'console-hay', queue: 'console-bulk', payload: {i}}))];
  const {tasks: made} = await apiCall('/tasks/batch', {method: 'POST', body: {tasks}});
  const needles = made.slice(0, 3).map((t) => t.id);

  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/tasks?queue=console-bulk&kind=console-needle`);
  await page.waitForFunction(() => document.querySelectorAll('tr[data-task]').length === 3, null, {timeout: WAIT});
  const shown = await page.locator('tr[data-task]').evaluateAll((rows) => rows.map((r) => r.dataset.task));
  assert.deepEqual([...shown].sort(), [...needles].sort());
  assert.equal(await page.locator('a[data-action="older"]').count(), 0, 'every match is on the one page');

  // 203 tasks: 200 on the first page, the 3 oldest behind "Older →", each listed once.
  await page.goto(`${stack.serverUrl}/#/tasks?queue=console-bulk`);
  await page.waitForFunction(() => document.querySelectorAll('tr[data-task]').length === 200, null, {timeout: WAIT});
  const first = await page.locator('tr[data-task]').evaluateAll((rows) => rows.map((r) => r.dataset.task));
  await page.click('a[data-action="older"]');
  await page.waitForFunction(() => document.querySelectorAll('tr[data-task]').length === 3, null, {timeout: WAIT});
  const second = await page.locator('tr[data-task]').evaluateAll((rows) => rows.map((r) => r.dataset.task));
  assert.deepEqual([...second].sort(), [...needles].sort());
  assert.deepEqual([...first, ...second].sort(), made.map((t) => t.id).sort());
  assert.equal(await page.locator('a[data-action="older"]').count(), 0, 'no page after the last');
  await page.click('a[data-action="newer"]');
  await page.waitForFunction(() => location.hash === '#/tasks?queue=console-bulk');
  await page.waitForFunction(() => document.querySelectorAll('tr[data-task]').length === 200, null, {timeout: WAIT});
  for (const id of made.map((t) => t.id)) await apiCall(`/tasks/${id}/cancel`, {method: 'POST'});
  await page.context().close();
});

test('"← Newer" on a bookmarked older page of runs stays in the console and shows the newer runs', async () => {
  const {next_cursor: cursor} = await apiCall('/runs?workflow=console-quick&status=succeeded&limit=50');
  assert.ok(cursor);
  // The older page is the first page this tab opens: there is no history to go back to.
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/runs?workflow=console-quick&status=succeeded&cursor=${cursor}`);
  await page.waitForFunction(() => document.querySelectorAll('tr[data-run]').length === 3);
  await page.click('a[data-action="newer"]');
  await page.waitForFunction(() => location.hash === '#/runs?workflow=console-quick&status=succeeded');
  assert.equal(new URL(page.url()).origin, stack.serverUrl);
  await page.waitForFunction(() => document.querySelectorAll('tr[data-run]').length === 50);
  await page.context().close();
});

test('leaving a run page while it is still loading closes its event stream', async () => {
  const {run} = await apiCall('/runs', {method: 'POST', body: {workflow: 'console-slow'}});
  const page = await loggedIn();
  // Keeps the abort signal of every event stream the page opens.
  await page.addInitScript(() => {
    window.__streams = [];
    const f = window.fetch;
    window.fetch = (url, init) => {
      if (String(url).includes('/events') && init && init.signal) window.__streams.push(init.signal);
      return f(url, init);
    };
  });
  await page.goto(`${stack.serverUrl}/#/queues`);
  await page.waitForSelector('h1:has-text("Queues")');
  // The run's answer is held until the operator has moved on to another page.
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route(`**/api/v1/runs/${run.id}`, async (route) => { await held; await route.continue(); });
  const asked = page.waitForRequest((r) => r.url().endsWith(`/api/v1/runs/${run.id}`));
  await page.evaluate((id) => { location.hash = `#/runs/${id}`; }, run.id);
  await asked;
  await page.evaluate(() => { location.hash = '#/queues'; });
  await page.waitForSelector('h1:has-text("Queues")');
  // The run page goes on loading (its graph) after the answer: then it would open its stream.
  const graph = page.waitForResponse((r) => r.url().includes('/api/v1/workflows/console-slow/versions/'));
  release();
  await (await graph).finished();
  await page.evaluate(() => new Promise((r) => setTimeout(r, 200)));  // the graph is drawn
  assert.equal(await page.evaluate(() => location.hash), '#/queues');
  assert.equal(await page.evaluate(() => window.__streams.filter((s) => !s.aborted).length), 0,
               'no event stream of the run page is left open on the queues page');
  await apiCall(`/runs/${run.id}/cancel`, {method: 'POST'});
  await page.context().close();
});

test('hostile or wrong links show an error in the page, never a script error', async () => {
  const page = await loggedIn();
  const cases = [
    ['#/runs/%E0%A4%A', /malformed run id '%E0%A4%A'/],
    [`#/runs/${encodeURIComponent(XSS)}`, /malformed run id '<img src=x onerror=alert\(1\)>'/],
    [`#/tasks/${XSS}`, /malformed task id/],
    ['#/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV', /no task 01ARZ3NDEKTSV4RRFFQ69G5FAV/],
    ['#/tasks?status=bogus', /unknown status 'bogus'/],
    ['#/runs?status=%00', /malformed percent-escape/],  // a NUL byte is refused by the API
    [`#/workflows/${'a'.repeat(5000)}`, /no workflow/],
    ['#/queues/bad%20queue%7B', /queue/],
    ['#/queues/nosuch', /^no queue nosuch$/],
    ['#/remediation/not-an-id', /./],
  ];
  for (const [hash, message] of cases) {
    await page.goto(`${stack.serverUrl}/${hash}`);
    const alert = page.locator('#error [role=alert]');
    await alert.waitFor({timeout: WAIT});
    assert.match(await alert.textContent(), message, hash.slice(0, 80));
    // A queue that does not exist is not offered for deletion as if it were an empty one.
    assert.equal(await page.locator('button[data-action="delete-queue"]').count(), 0, hash.slice(0, 80));
  }
  // An unknown page is the overview.
  await page.goto(`${stack.serverUrl}/#/no-such-page`);
  await page.waitForSelector('text=Live workers (');
  assert.equal(await page.locator('main img').count(), 0);
  await page.context().close();
});

test('the overview draws throughput from the queue counters while it stays open', async () => {
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/`);
  await page.waitForSelector('text=Live workers (');
  // Runs by status counts every run (GET /runs/counts): the figures add up to the total shown.
  const total = Number((await page.locator('text=/^\\d+ runs in all$/').textContent()).split(' ')[0]);
  const byStatus = (await page.locator('.stats .stat b').allTextContents()).map(Number);
  assert.equal(byStatus.length, 5);
  assert.ok(total > 0);
  assert.equal(byStatus.reduce((a, b) => a + b, 0), total);
  // Tasks finish between the page's samples (every 5 s); a line needs three samples.
  const submitted = [];
  await until('a throughput line', async () => {
    submitted.push((await apiCall('/tasks', {method: 'POST', body: {kind: 'echo', payload: {n: submitted.length}}})).id);
    return (await page.locator('svg.chart polyline').count()) > 0;
  });
  const points = (await page.locator('svg.chart polyline').first().getAttribute('points')).trim().split(' ');
  assert.ok(points.length >= 2);
  for (const p of points) assert.match(p, /^\d+(\.\d)?,\d+(\.\d)?$/);
  await shot(page, 'overview-throughput-1280');
  await page.context().close();
});

test('schedules show the next fire times in their zone and are paused and resumed', async () => {
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/schedules`);
  const row = page.locator('tr[data-workflow="console-yearly"]');
  await row.waitFor({timeout: WAIT});
  assert.equal(await row.locator('td').nth(3).textContent(), 'Asia/Tokyo');
  assert.match(await row.locator('td.next').textContent(), /^\d{4}-01-01T03:00:00\+09:00/);
  await row.locator('button[data-action="pause"]').click();
  await row.locator('.badge.st-paused').waitFor({timeout: WAIT});
  assert.equal((await apiCall('/schedules')).schedules.find((x) => x.workflow === 'console-yearly').paused, true);
  await row.locator('button[data-action="resume"]').click();
  await row.locator('.badge.st-active').waitFor({timeout: WAIT});
  assert.equal((await apiCall('/schedules')).schedules.find((x) => x.workflow === 'console-yearly').paused, false);
  // An occurrence held for the run before it (overlap: queue) comes first, marked. The server's
  // answer is the real one with that field set, as a held trigger's would be.
  await page.route('**/api/v1/schedules', async (route) => {
    const real = await route.fetch();
    const body = await real.json();
    body.schedules.find((x) => x.workflow === 'console-yearly').waiting_fire_at = '2026-01-01T03:00:00+09:00';
    await route.fulfill({response: real, json: body});
  });
  await page.reload();
  await row.waitFor({timeout: WAIT});
  assert.match(await row.locator('td.next').textContent(),
               /^2026-01-01T03:00:00\+09:00 \(waiting\)\d{4}-01-01T03:00:00\+09:00/);
  await page.unrouteAll({behavior: 'wait'});
  await page.context().close();
});

test('a token is created with its secret shown once, works, and is revoked after a confirmation', async () => {
  const page = await loggedIn();
  await page.goto(`${stack.serverUrl}/#/tokens`);
  await page.fill('#token-name', `made-in-console ${XSS}`);
  await page.fill('#token-scopes', 'read');
  await page.click('form.inline button[type=submit]');
  const secret = (await page.locator('#new-secret').textContent({timeout: WAIT})).trim();
  assert.match(secret, /^fy_[0-9a-f]{64}$/);
  // The new token reads and may do nothing more.
  assert.ok(Array.isArray((await apiCall('/workers', {token: secret})).workers));
  await assert.rejects(apiCall('/tasks', {method: 'POST', body: {kind: 'noop'}, token: secret}), /403/);
  // Its name is shown as text; the list never holds the secret.
  const row = page.locator('tr', {hasText: `made-in-console ${XSS}`});
  await row.waitFor();
  assert.ok(!(await page.locator('table').textContent()).includes(secret));
  // A bad scope is refused with the server's message.
  await page.fill('#token-name', 'bad-scope');
  await page.fill('#token-scopes', 'root');
  await page.click('form.inline button[type=submit]');
  assert.match(await page.locator('[role=status] [role=alert]').textContent({timeout: WAIT}), /unknown scope 'root'/);
  await row.locator('button[data-action="revoke"]').click();
  await row.locator('button[data-confirm="yes"]').click();
  await row.locator('.badge.st-revoked').waitFor({timeout: WAIT});
  await until('the revoked token to be refused', async () => {
    try { await apiCall('/workers', {token: secret}); return false; } catch (e) { return /401/.test(e.message); }
  });
  await page.context().close();
});

test('a double click on an action button sends one request and shows its one outcome', async () => {
  const page = await loggedIn();
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST') posts.push(new URL(r.url()).pathname); });

  await page.goto(`${stack.serverUrl}/#/workflows/console-slow`);
  await page.waitForSelector('form[data-form="start-run"] button[type=submit]');
  await page.dblclick('form[data-form="start-run"] button[type=submit]');
  await page.waitForFunction(() => /^#\/runs\/\w+$/.test(location.hash));
  const runId = (await page.evaluate(() => location.hash)).split('/').pop();
  assert.deepEqual(posts, ['/api/v1/runs'], 'one run started');

  posts.length = 0;
  await page.waitForSelector('button[data-action="cancel"]:enabled');
  await page.dblclick('button[data-action="cancel"]');
  const notice = page.locator('[role=status]:has-text("cancel")');
  try {
    await notice.waitFor({timeout: WAIT});
  } catch (e) {
    const runs = (await apiCall('/runs?workflow=console-slow&limit=20')).runs.map((r) => `${r.id}:${r.status}`);
    throw new Error(`no cancel notice: posts ${JSON.stringify(posts)}, hash ${await page.evaluate(() => location.hash)}, ` +
                    `main ${(await page.locator('main').innerHTML()).slice(0, 600)}, runs ${runs.join(' ')}`);
  }
  await page.waitForSelector('.actions .badge.st-cancelled', {timeout: WAIT});
  assert.deepEqual(posts, [`/api/v1/runs/${runId}/cancel`], 'one cancel sent');
  assert.match(await notice.textContent(), /^cancel: run is (cancelled|running)$/);

  posts.length = 0;
  await page.goto(`${stack.serverUrl}/#/tokens`);
  await page.fill('#token-name', 'double-click');
  await page.dblclick('form.inline button[type=submit]');
  await page.locator('#new-secret').waitFor({timeout: WAIT});
  await page.waitForSelector('tr[data-token] td:text-is("double-click")');
  assert.deepEqual(posts, ['/api/v1/tokens'], 'one token created');
  assert.equal((await apiCall('/tokens')).tokens.filter((t) => t.name === 'double-click').length, 1);
  await page.context().close();
});

// A second click that comes after the first request was answered but before the page has drawn
// the outcome (a slow machine) is still the same click's twin: it must send nothing.
test('a click between an answer and the page drawing it sends nothing more', async () => {
  const page = await loggedIn();
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST') posts.push(new URL(r.url()).pathname); });
  // Every request the page sent before this marker's has been seen by then (they are reported in
  // the order the page sends them).
  const settled = async () => {
    const marker = `/api/v1/workers?marker=${Math.random()}`;
    await Promise.all([page.waitForRequest((r) => r.url().endsWith(marker)), page.evaluate((m) => fetch(m), marker)]);
  };

  // The start answered and moved to the run's address, but the run's page is not drawn yet:
  // the move is held (a listener registered before the app's keeps it from hearing it).
  await page.addInitScript(() => window.addEventListener('hashchange', (e) => {
    if (window.holdMoves) e.stopImmediatePropagation();
  }));
  await page.goto(`${stack.serverUrl}/#/workflows/console-slow`);
  const submit = 'form[data-form="start-run"] button[type=submit]';
  await page.waitForSelector(submit);
  await page.evaluate(() => { window.holdMoves = true; });
  await page.click(submit);
  await page.waitForFunction(() => /^#\/runs\/\w+$/.test(location.hash));
  const runId = (await page.evaluate(() => location.hash)).split('/').pop();
  await page.click(submit, {force: true});
  await settled();
  assert.deepEqual(posts, ['/api/v1/runs'], 'one run started');
  assert.equal(await page.$eval(submit, (b) => b.disabled), true);

  // The cancel answered, and the refresh that draws its outcome is held.
  posts.length = 0;
  // The run's page, drawn by a fresh document without the hold.
  await page.evaluate(() => { window.holdMoves = false; });
  await page.reload();
  await page.waitForSelector('button[data-action="cancel"]:enabled');
  let release;
  const gate = new Promise((r) => { release = r; });
  await page.route(`**/api/v1/runs/${runId}`, async (route) => { await gate; await route.continue(); });
  await page.click('button[data-action="cancel"]');
  const notice = page.locator('[role=status]');
  await page.waitForSelector('[role=status]:has-text("cancel: run is")', {timeout: WAIT});
  await page.click('button[data-action="cancel"]', {force: true});
  await settled();
  release();
  await page.waitForSelector('.actions .badge.st-cancelled', {timeout: WAIT});
  assert.deepEqual(posts, [`/api/v1/runs/${runId}/cancel`], 'one cancel sent');
  assert.match(await notice.textContent(), /^cancel: run is cancelled$/);
  // Once the outcome is drawn, the run's buttons work again.
  await page.waitForSelector('button[data-action="retry"]:enabled', {timeout: WAIT});
  await page.context().close();
});

// A refresh that brings what is already shown leaves the page as it is: a redraw would replace the
// link under a pressed mouse button (the click is lost) and end a selection being copied.
test('a refresh that brings the same data keeps the elements shown', async () => {
  // No worker serves this queue: the task stays pending, as it is.
  const {id} = await apiCall('/tasks', {method: 'POST', body: {kind: 'noop', queue: 'same-data'}});
  const page = await loggedIn();
  // Waits until the page has asked for `path` `n` more times and had the answers.
  const refreshes = async (path, n) => {
    for (let i = 0; i < n; i++) {
      await page.waitForResponse((r) => new URL(r.url()).pathname === `/api/v1${path}`, {timeout: WAIT});
    }
    await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));  // the answer drawn
  };
  const mark = (selector) => page.$eval(selector, (el) => { window.marked = el; });
  const stillShown = () => page.evaluate(() => window.marked.isConnected);

  await page.goto(`${stack.serverUrl}/#/tasks/${id}`);
  await page.waitForSelector('a[href="#/queues/same-data"]');
  await mark('a[href="#/queues/same-data"]');
  await refreshes(`/tasks/${id}`, 2);
  assert.equal(await stillShown(), true, 'the task page redrew an unchanged task');

  await page.goto(`${stack.serverUrl}/#/tasks?queue=same-data`);
  await page.waitForSelector(`tr[data-task="${id}"] a`);
  await mark(`tr[data-task="${id}"] a`);
  await refreshes('/tasks', 2);
  assert.equal(await stillShown(), true, 'the tasks list redrew unchanged tasks');

  // The near miss: data that changed is drawn.
  const {id: second} = await apiCall('/tasks', {method: 'POST', body: {kind: 'noop', queue: 'same-data'}});
  await page.waitForSelector(`tr[data-task="${second}"]`, {timeout: WAIT});
  assert.equal(await stillShown(), false);
  await page.context().close();
});

test('the overview and workers pages update their numbers in place, keeping their links', async () => {
  // No worker serves this queue: its tasks stay pending, and its row's count is what changes.
  await apiCall('/tasks', {method: 'POST', body: {kind: 'noop', queue: 'in-place'}});
  const page = await loggedIn();
  const link = 'a[href="#/queues/in-place"]';
  await page.goto(`${stack.serverUrl}/#/`);
  await page.waitForSelector(link);
  await page.$eval(link, (el) => { window.marked = el; });
  // A second task: the queue's pending count changes at the next refresh, and the link stays.
  await apiCall('/tasks', {method: 'POST', body: {kind: 'noop', queue: 'in-place'}});
  await page.waitForFunction((sel) => document.querySelector(sel)?.closest('tr').children[1].textContent === '2',
                              link, {timeout: WAIT});
  assert.equal(await page.evaluate(() => window.marked.isConnected), true, 'the overview redrew its queues');

  // The workers page: a task the stack's worker runs changes its row's processed count.
  await page.goto(`${stack.serverUrl}/#/workers`);
  await page.waitForSelector('tr[data-worker]');
  await page.$eval('tr[data-worker] td.mono', (el) => { window.marked = el; });
  const processed = await page.$$eval('tr[data-worker] td:nth-child(9)', (tds) => tds.map((td) => td.textContent).join(','));
  await apiCall('/tasks', {method: 'POST', body: {kind: 'noop'}});
  await page.waitForFunction((was) => [...document.querySelectorAll('tr[data-worker] td:nth-child(9)')]
    .map((td) => td.textContent).join(',') !== was, processed, {timeout: WAIT});
  assert.equal(await page.evaluate(() => window.marked.isConnected), true, 'the workers page redrew its rows');
  await page.context().close();
});

test('every page lays out at 1280 px and at 390 px wide (screenshots saved)', async () => {
  const {runs} = await apiCall('/runs?limit=1&workflow=console-hook');
  const {tasks} = await apiCall('/tasks?limit=1');
  const pages = {
    overview: '#/',
    queues: '#/queues',
    queue: '#/queues/default',
    tasks: '#/tasks',
    task: `#/tasks/${tasks[0].id}`,
    workers: '#/workers',
    workflows: '#/workflows',
    workflow: '#/workflows/console-hook',
    'workflow-long-choice': '#/workflows/console-wide',
    runs: '#/runs',
    run: `#/runs/${runs[0].id}`,
    remediation: '#/remediation',
    schedules: '#/schedules',
    tokens: '#/tokens',
    candidate: `#/remediation/${(await apiCall('/remediations?workflow=console-fail')).remediations[0].id}`,
  };
  for (const width of [1280, 390]) {
    const page = await loggedIn(width);
    for (const [name, hash] of Object.entries(pages)) {
      await page.goto(`${stack.serverUrl}/${hash}`);
      await page.waitForSelector('main section.view h1');
      await page.waitForFunction(() => !document.querySelector('main table') || document.querySelector('main tbody tr'));
      if (name === 'overview') await page.waitForSelector('text=Live workers (');
      if (['run', 'workflow', 'workflow-long-choice'].includes(name)) await page.waitForSelector('svg.graph g.node');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${name} at ${width} px overflows the window by ${overflow} px`);
      assert.ok(await page.locator('nav a').first().isVisible(), `${name} at ${width} px: navigation visible`);
      await shot(page, `${name}-${width}`);
    }
    await page.context().close();
  }
});
