// Overview: per-queue depths, throughput over the last minutes, live workers, firing alerts and
// runs by status. One refresh every 5 s (four small GETs); the throughput chart is built in the
// page from the queues' cumulative counters, so no history is kept on the server.
import {api} from './api.js';
import {badge, fmtMs, h, morph, replace, s, table} from './dom.js';

const REFRESH_MS = 5000;
const WINDOW_MS = 10 * 60 * 1000;
const COLORS = ['#2457c5', '#1a7f37', '#b26a00', '#8e24aa', '#c62828', '#00838f'];

// Samples of {at, done: {queue: tasks succeeded + dead-lettered so far}} kept while the page is
// open.
const samples = [];

function completed(q) {
  const c = q.counters || {};
  return (Number(c.succeeded) || 0) + (Number(c.dead_lettered) || 0);
}

function chart(queues) {
  const now = Date.now();
  while (samples.length && now - samples[0].at > WINDOW_MS) samples.shift();
  const series = queues.map((q, i) => {
    const pts = [];
    for (let k = 1; k < samples.length; k++) {
      const a = samples[k - 1], b = samples[k];
      if (!(q.queue in a.done) || !(q.queue in b.done)) continue;
      const perMin = Math.max(0, b.done[q.queue] - a.done[q.queue]) * 60000 / Math.max(1, b.at - a.at);
      pts.push({t: b.at, v: perMin});
    }
    return {name: q.queue, color: COLORS[i % COLORS.length], pts};
  });
  const W = 600, H = 160, L = 40, B = 18;
  const max = Math.max(1, ...series.flatMap((x) => x.pts.map((p) => p.v)));
  // The axis spans what has been sampled (at least a minute, at most the window), so the line
  // fills the chart from the first minutes on.
  const span = Math.min(WINDOW_MS, Math.max(60000, samples.length ? now - samples[0].at : 0));
  const X = (t) => L + (W - L) * (1 - (now - t) / span);
  const Y = (v) => (H - B) - (H - B - 8) * (v / max);
  const lines = series.filter((x) => x.pts.length >= 2).map((x) =>
    s('polyline', {fill: 'none', stroke: x.color, 'stroke-width': 2,
                   points: x.pts.map((p) => `${X(p.t).toFixed(1)},${Y(p.v).toFixed(1)}`).join(' ')}));
  const svgEl = s('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`,
                          role: 'img', 'aria-label': 'tasks finished per minute, by queue'},
    s('line', {class: 'axis', x1: L, y1: H - B, x2: W, y2: H - B}),
    s('line', {class: 'axis', x1: L, y1: 8, x2: L, y2: H - B}),
    s('text', {x: 2, y: 14}, max.toFixed(max < 10 ? 1 : 0)),
    s('text', {x: 2, y: H - B}, '0'),
    s('text', {x: L, y: H - 2}, `-${fmtMs(Math.round(span / 1000) * 1000)}`),
    s('text', {x: W - 28, y: H - 2}, 'now'),
    lines);
  return h('div', null,
    samples.length < 3 ? h('p', {class: 'muted'}, 'Tasks finished per minute over the last 10 minutes; the chart fills while this page stays open.')
                       : h('p', {class: 'muted'}, 'Tasks finished per minute'),
    svgEl,
    h('div', {class: 'legend'}, series.map((x) => h('span', null, h('i', {'data-color': x.color}), x.name))));
}

export function render(view, _params, _query, ctx) {
  const queuesBox = h('div', {class: 'card'}, h('h2', null, 'Queues'));
  const chartBox = h('div', {class: 'card'}, h('h2', null, 'Throughput'));
  const workersBox = h('div', {class: 'card'}, h('h2', null, 'Live workers'));
  const alertsBox = h('div', {class: 'card'}, h('h2', null, 'Alerts'));
  const runsBox = h('div', {class: 'card'}, h('h2', null, 'Runs by status'));
  replace(view, h('h1', null, 'Overview'),
          h('div', {class: 'grid'}, queuesBox, chartBox, workersBox, alertsBox, runsBox));

  ctx.every(REFRESH_MS, async () => {
    const [queues, workers, alerts, runs] = await Promise.all([
      api('/queues'), api('/workers'),
      api('/alerts').catch((e) => ({unavailable: e.message})),
      api('/runs/counts'),
    ]);
    ctx.clearError();
    const qs = queues.queues || [];
    samples.push({at: Date.now(), done: Object.fromEntries(qs.map((q) => [q.queue, completed(q)]))});

    // Laid over what is shown (morph): the numbers change at every refresh, and a redraw would
    // lose a click on a link.
    morph(queuesBox, h('h2', null, 'Queues'), table(
      ['queue', 'pending', 'running', 'scheduled', 'dead', 'oldest pending'],
      qs.map((q) => h('tr', null,
        h('td', null, h('a', {href: `#/queues/${encodeURIComponent(q.queue)}`}, q.queue)),
        h('td', {class: 'num'}, q.pending), h('td', {class: 'num'}, q.running),
        h('td', {class: 'num'}, q.scheduled),
        h('td', {class: 'num'}, q.dead ? h('a', {href: `#/queues/${encodeURIComponent(q.queue)}`}, String(q.dead)) : '0'),
        h('td', null, fmtMs(q.oldest_pending_age_ms)))),
      {empty: 'no queues yet'}));

    morph(chartBox, h('h2', null, 'Throughput'), chart(qs));
    // The legend's colour swatches: set from script (the CSP allows no inline style attributes).
    for (const i of chartBox.querySelectorAll('i[data-color]')) i.style.background = i.dataset.color;

    const live = (workers.workers || []).filter((w) => w.alive);
    morph(workersBox, h('h2', null, `Live workers (${live.length})`), table(
      ['worker', 'status', 'queues', 'tasks', 'heartbeat'],
      live.map((w) => h('tr', null, h('td', {class: 'mono'}, w.id), h('td', null, badge(w.status)),
                        h('td', null, (w.queues || []).join(', ')),
                        h('td', {class: 'num'}, `${(w.current_tasks || []).length}/${w.concurrency}`),
                        h('td', null, `${fmtMs(w.heartbeat_age_ms)} ago`))),
      {empty: 'no live workers'}));

    if (alerts.unavailable) {
      morph(alertsBox, h('h2', null, 'Alerts'), h('p', {class: 'muted'}, alerts.unavailable));
    } else {
      const firing = alerts.firing || [];
      morph(alertsBox, h('h2', null, `Alerts firing (${firing.length})`),
        firing.length ? h('ul', null, firing.map((a) => h('li', null, badge('firing'), ' ',
                                                        h('b', null, a.name || a.alert || ''), ' ',
                                                        a.message || a.summary || '')))
                      : h('p', {class: 'muted'}, 'Nothing fires.'));
    }

    const counts = runs.counts || {};
    const order = ['pending', 'running', 'succeeded', 'failed', 'cancelled'];
    morph(runsBox, h('h2', null, 'Runs by status'),
      h('p', {class: 'muted'}, `${runs.total} runs in all`),
      h('div', {class: 'stats'}, order.map((st) => h('a', {class: 'stat', href: `#/runs?status=${st}`},
        h('b', null, String(counts[st] || 0)), badge(st)))));
  });
}
