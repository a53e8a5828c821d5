// The web console's budget (issue 13; figures in docs/benchmarks.md "Web console"):
//   1. the overview page's first load: bytes transferred and the time until its data shows, with
//      10,000 tasks and 1,000 runs in the stack;
//   2. the run page following a run that emits about 100 events/s: how far behind the page is.
// Uses the browser tests' stack (tests/browser/stack.mjs: `ferry dev` + an authenticated
// `ferry server start`) and Debian's chromium through tests/browser's playwright-core.
//
//   node bench/console_bench.mjs [--quick]        # after ./scripts/build.sh and scripts/setup.sh
import {createRequire} from 'node:module';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(join(root, 'tests/browser/package.json'));
const {chromium} = require('playwright-core');
const {startStack} = await import(join(root, 'tests/browser/stack.mjs'));

const quick = process.argv.includes('--quick');
const TASKS = quick ? 1000 : 10000;
const RUNS = quick ? 100 : 1000;
const LOADS = 5;
const FERRY = process.env.FERRY_BIN || join(root, 'build/default/apps/ferry/ferry');

const stack = await startStack({ferry: FERRY});
const api = async (path, body) => {
  const res = await fetch(`${stack.serverUrl}/api/v1${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {Authorization: `Bearer ${stack.token}`, 'Content-Type': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
};
// `n` calls of fn(i), `width` at a time.
const parallel = async (n, width, fn) => {
  let next = 0;
  await Promise.all(Array.from({length: width}, async () => {
    while (next < n) await fn(next++);
  }));
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

try {
  await api('/workflows', {source: 'name: bench-one\nnodes:\n  one:\n    kind: lua\n    script: "return {n = 1}"\n'});
  await api('/workflows', {source: [
    'name: bench-chatty',
    'nodes:',
    '  talk:',
    '    kind: shell',
    // Ten lines, then a tenth of a second: about 100 lines/s without a process per line.
    '    argv: [sh, -c, "i=0; while [ $i -lt 90 ]; do for j in 0 1 2 3 4 5 6 7 8 9; do echo line $i$j; done; i=$((i+1)); sleep 0.1; done"]',
    '    timeout: 2m',
  ].join('\n') + '\n'});

  let t0 = Date.now();
  // Tasks on a queue no worker reads: they stay pending, as a backlog would.
  await parallel(TASKS, 16, (i) => api('/tasks', {kind: 'echo', queue: 'bench-backlog', payload: {i, note: 'x'.repeat(64)}}));
  console.error(`${TASKS} tasks submitted in ${Date.now() - t0} ms`);
  t0 = Date.now();
  const runIds = [];
  await parallel(RUNS, 8, async () => { runIds.push((await api('/runs', {workflow: 'bench-one'})).run.id); });
  for (;;) {
    const {runs} = await api('/runs?status=succeeded&limit=1000&workflow=bench-one');
    if (runs.length >= Math.min(RUNS, 1000)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  console.error(`${RUNS} runs finished in ${Date.now() - t0} ms`);

  const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
  const browser = await chromium.launch({executablePath: process.env.FERRY_CHROMIUM || '/usr/bin/chromium', args});

  // 1. Overview, cold (a new context: empty cache), LOADS times.
  const bytes = [], shown = [], requests = [];
  for (let k = 0; k < LOADS; k++) {
    const context = await browser.newContext({viewport: {width: 1280, height: 900}});
    await context.addInitScript((t) => {
      sessionStorage.setItem('ferry.token', t);
      // The moment every card of the overview holds its data.
      new MutationObserver((_, obs) => {
        const main = document.getElementById('main');
        if (main && /Live workers \(\d+\)/.test(main.textContent) && /(Of the \d+ newest runs|\d+ runs in all)/.test(main.textContent) &&
            main.querySelector('a[href="#/queues/bench-backlog"]')) {
          window.__shownAt = performance.now();
          obs.disconnect();
        }
      }).observe(document, {subtree: true, childList: true, characterData: true});
    }, stack.token);
    const page = await context.newPage();
    const sizes = [];
    page.on('requestfinished', async (req) => { sizes.push(req.sizes()); });
    await page.goto(`${stack.serverUrl}/`);
    await page.waitForFunction(() => window.__shownAt !== undefined, null, {timeout: 30000});
    shown.push(await page.evaluate(() => window.__shownAt));
    const all = await Promise.all(sizes);
    bytes.push(all.reduce((s, x) => s + x.responseHeadersSize + x.responseBodySize, 0));
    requests.push(all.length);
    await context.close();
  }
  console.log(`overview, first load (${TASKS} tasks, ${RUNS} runs; median of ${LOADS}): ` +
              `${(median(bytes) / 1024).toFixed(1)} KiB transferred in ${median(requests)} requests (uncompressed), ` +
              `data shown ${median(shown).toFixed(0)} ms after navigation start (min ${Math.min(...shown).toFixed(0)}, max ${Math.max(...shown).toFixed(0)})`);

  // 2. A run emitting ~100 log events/s, followed on its page from the start.
  const context = await browser.newContext({viewport: {width: 1280, height: 900}});
  await context.addInitScript((t) => sessionStorage.setItem('ferry.token', t), stack.token);
  const page = await context.newPage();
  const {run} = await api('/runs', {workflow: 'bench-chatty'});
  await page.goto(`${stack.serverUrl}/#/runs/${run.id}`);
  await page.waitForSelector('tbody tr[data-event]');
  await page.evaluate(() => {
    window.__lags = [];
    const body = document.querySelector('tr[data-event]').parentElement;
    new MutationObserver((records) => {
      const now = Date.now();
      for (const r of records) {
        for (const n of r.addedNodes) {
          const at = Date.parse(n.children[1] && n.children[1].dataset.at);
          if (!Number.isNaN(at)) window.__lags.push(now - at);
        }
      }
    }).observe(body, {childList: true});
  });
  await page.waitForSelector('.actions .badge.st-succeeded', {timeout: 120000});
  const lags = await page.evaluate(() => window.__lags);
  const {run: done} = await api(`/runs/${run.id}`);
  const secs = (Date.parse(done.finished_at) - Date.parse(done.started_at)) / 1000;
  const events = await page.locator('tr[data-event="node.log"]').count();
  console.log(`run page, a run logging ${(900 / secs).toFixed(0)} lines/s for ${secs.toFixed(1)} s: ` +
              `${events} log events shown; event -> on the page: p50 ${pct(lags, 0.5)} ms, p99 ${pct(lags, 0.99)} ms, max ${Math.max(...lags)} ms ` +
              `(${lags.length} measured)`);
  await context.close();
  await browser.close();
} finally {
  await stack.stop();
}
