// Runs: a filtered, paginated list (the first page refreshes every 3 s), and a run's page whose
// DAG, steps and event log follow the run live over its Server-Sent Events stream.
import {api, follow} from './api.js';
import {badge, drawOnChange, fields, fmtMs, fmtTime, h, LEAVING, oneAtATime, pre, replace, table} from './dom.js';
import {drawGraph} from './graph.js';
import {pagerLinks} from './pager.js';

const STATUSES = ['', 'pending', 'running', 'succeeded', 'failed', 'cancelled'];
const TRIGGERS = ['', 'api', 'cli', 'webhook', 'cron', 'retry', 'remediation'];
const ENDED = new Set(['succeeded', 'failed', 'cancelled']);
const MAX_LOG = 1000;

// A run's `epoch` is its fencing token, (generation << 32) | task epoch (docs/runs.md "Fencing
// and generations"). The raw number (4294967300 after one recovery) tells an operator nothing;
// the generation is how often recovery had to submit a new task that took the run over, and the
// task epoch counts that task's claims, which `attempt` already shows. Generations stay far
// below 2^21, so the division is exact in a double.
function recovered(epoch) {
  const generation = Math.floor((Number(epoch) || 0) / 2 ** 32);
  if (!generation) return 'no';
  return `${generation === 1 ? 'once' : `${generation} times`} (a new task took the run over ` +
         'and resumed it from its finished steps)';
}

// What a run out of any worker's slot waits for (GET /runs/{id}'s `waiting`), as the CLI says it:
// "until <time>, " or "for task <id> or until <time>, "; "" when unknown.
function waitingText(w) {
  if (!w) return '';
  const tasks = w.tasks || [];
  return `${tasks.length ? `for task ${tasks.join(', ')} or ` : ''}until ${fmtTime(w.until)}, `;
}

export function render(view, _params, query, ctx) {
  const workflow = h('input', {name: 'workflow', value: query.get('workflow') || '', placeholder: 'any', size: 12});
  const status = h('select', {name: 'status'}, STATUSES.map((st) =>
    h('option', {value: st, selected: st === (query.get('status') || '')}, st || 'any')));
  const trig = h('select', {name: 'triggered_by'}, TRIGGERS.map((st) =>
    h('option', {value: st, selected: st === (query.get('triggered_by') || '')}, st || 'any')));
  const box = h('div');
  const pager = h('div', {class: 'pager'});
  const filter = (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (workflow.value.trim()) q.set('workflow', workflow.value.trim());
    if (status.value) q.set('status', status.value);
    if (trig.value) q.set('triggered_by', trig.value);
    ctx.go(`#/runs?${q}`);
  };
  replace(view, h('h1', null, 'Runs'),
    h('form', {class: 'toolbar', onsubmit: filter},
      h('label', null, 'workflow', workflow), h('label', null, 'status', status),
      h('label', null, 'triggered by', trig), h('button', {type: 'submit'}, 'Filter')),
    box, pager);

  const params = new URLSearchParams({limit: '50'});
  for (const k of ['workflow', 'status', 'triggered_by', 'cursor']) if (query.get(k)) params.set(k, query.get(k));
  const changed = drawOnChange();
  const load = async () => {
    const {runs, next_cursor: next} = await api(`/runs?${params}`);
    ctx.clearError();
    changed({runs, next}, () => drawList(runs, next));
  };
  const drawList = (runs, next) => {
    replace(box, table(['run', 'workflow', 'status', 'version', 'triggered by', 'created', 'duration', 'error'],
      runs.map((r) => h('tr', {'data-run': r.id},
        h('td', {class: 'mono'}, h('a', {href: `#/runs/${encodeURIComponent(r.id)}`}, r.id)),
        h('td', null, h('a', {href: `#/workflows/${encodeURIComponent(r.workflow)}`}, r.workflow)),
        h('td', null, badge(r.status)), h('td', {class: 'num'}, r.version),
        h('td', null, r.triggered_by), h('td', null, fmtTime(r.created_at)),
        h('td', null, fmtMs(r.duration_ms)), h('td', {class: 'wrap'}, r.error || ''))),
      {empty: 'no runs match'}));
    replace(pager, ...pagerLinks('#/runs', query, next));
  };
  // Only the newest page changes under the reader; older pages are loaded once.
  if (query.get('cursor')) load().catch((e) => ctx.error(e));
  else ctx.every(3000, load);
}

export async function renderRun(view, [id], _query, ctx) {
  const head = h('div');
  const actions = h('div', {class: 'actions'});
  const notice = h('p', {class: 'muted', role: 'status'});
  const graphBox = h('div', {class: 'graph-wrap'});
  const stepsBox = h('div');
  const ioBox = h('div', {class: 'grid'});
  const log = h('tbody');
  const live = h('span', {class: 'muted', 'data-live': 'connecting'}, 'connecting…');
  replace(view, h('h1', null, 'Run ', h('span', {class: 'mono'}, id)), actions, notice, head,
    h('h2', null, 'Graph'), graphBox, h('h2', null, 'Steps'), stepsBox, ioBox,
    h('h2', null, 'Events ', live),
    h('div', {class: 'table-wrap events'}, h('table', null,
      h('thead', null, h('tr', null, ['seq', 'at', 'event', 'node', 'detail'].map((x) => h('th', null, x)))), log)));

  let graph = null;
  const nodeStatus = new Map();
  const setNode = (node, status) => {
    nodeStatus.set(node, status);
    if (graph) graph.setStatus(node, status);
  };

  // Cancel and retry send once (oneAtATime), and the refresh that draws the outcome is part of
  // the action. A retry moves to the new run.
  const send = oneAtATime(async (what) => {
    try {
      const r = await api(`/runs/${encodeURIComponent(id)}/${what}`, {method: 'POST'});
      if (what === 'retry') {
        ctx.go(`#/runs/${encodeURIComponent(r.run.id)}`);
        return LEAVING;
      }
      replace(notice, `${what}: run is ${r.run.status}`);
    } catch (e) {
      // Here, not in the refresh's error box: the next refresh would clear it.
      replace(notice, h('span', {class: 'error', role: 'alert'}, `${what} refused: ${e.message}`));
    }
    try { await refresh(); } catch (e) { ctx.error(e); }
    return true;
  });

  // The buttons are redrawn only when the status changes: a button replaced between a click's
  // press and release would lose the click.
  let drawnStatus = null;
  const detailsChanged = drawOnChange();
  const draw = (r) => {
    if (r.status !== drawnStatus) {
      drawnStatus = r.status;
      replace(actions, badge(r.status),
        ENDED.has(r.status) ? null : send.button({class: 'danger', 'data-action': 'cancel',
                                                  onclick: (ev) => send(ev.currentTarget, 'cancel')}, 'Cancel run'),
        (r.status === 'failed' || r.status === 'cancelled')
          ? send.button({'data-action': 'retry', onclick: (ev) => send(ev.currentTarget, 'retry')}, 'Retry run') : null);
    }
    // The rest also only when the run changed: a redraw would lose a click on a link in it and
    // a selection being copied.
    detailsChanged(r, () => drawDetails(r));
  };
  const drawDetails = (r) => {
    replace(head, h('div', {class: 'card'}, fields([
      ['workflow', h('a', {href: `#/workflows/${encodeURIComponent(r.workflow)}`}, r.workflow)],
      ['version', `v${r.version}`],
      ['status', r.status],
      ['triggered by', r.triggered_by],
      r.retry_of ? ['retry of', h('a', {class: 'mono', href: `#/runs/${encodeURIComponent(r.retry_of)}`}, r.retry_of)] : null,
      ['attempt', String(r.attempt)],
      ['recovered', recovered(r.epoch)],
      // A running run held by no worker was released to wait (for a delay, or a task).
      ['worker', r.worker || (r.status === 'running' ? `none: waiting ${waitingText(r.waiting)}out of any worker's slot` : '')],
      ['created', fmtTime(r.created_at)],
      ['started', fmtTime(r.started_at)],
      ['finished', fmtTime(r.finished_at)],
      ['duration', fmtMs(r.duration_ms)],
      r.failed_node ? ['failed node', r.failed_node] : null,
      r.error ? ['error', h('span', {class: 'error'}, r.error)] : null,
    ])));
    const steps = r.steps || [];
    // A "waiting" step is a delay node's stored deadline: on the graph the node is running; an
    // "interrupted" one is such a wait that the run's end cut short.
    const onGraph = {waiting: 'running', interrupted: 'cancelled'};
    for (const st of steps) setNode(st.node, onGraph[st.status] || st.status);
    // A node still shown running when the run has ended was stopped with it (cancel, or a
    // sibling's failure) and was not saved as a step.
    if (ENDED.has(r.status)) {
      for (const [node, st] of nodeStatus) if (st === 'running' || st === 'retrying') setNode(node, 'cancelled');
    }
    replace(stepsBox, table(['node', 'status', 'attempt', 'duration', 'output', 'error'],
      steps.map((st) => h('tr', {'data-step': st.node},
        h('td', null, st.node), h('td', null, badge(st.status)), h('td', {class: 'num'}, st.attempt),
        h('td', null, fmtMs(st.duration_ms)),
        h('td', {class: 'wrap'}, st.output === null ? '' : pre(st.output, 'output')),
        h('td', {class: 'wrap error'}, st.error || ''))),
      {empty: 'no step has finished yet'}));
    replace(ioBox,
      h('div', {class: 'card'}, h('h2', null, 'Inputs'), pre(r.inputs, 'inputs')),
      h('div', {class: 'card'}, h('h2', null, 'Output'), r.output === null ? h('p', {class: 'muted'}, 'none yet') : pre(r.output, 'output')));
  };

  const refresh = async () => {
    const r = (await api(`/runs/${encodeURIComponent(id)}`)).run;
    draw(r);
    return r;
  };

  // Coalesces refreshes: a burst of events costs one GET.
  let pending = null;
  const refreshSoon = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      try { await refresh(); } catch (e) { ctx.error(e); }
    }, 300);
  };
  ctx.onLeave(() => clearTimeout(pending));

  const r = await refresh();
  try {
    const v = await api(`/workflows/${encodeURIComponent(r.workflow)}/versions/${r.version}`);
    graph = drawGraph(v.version.graph);
    replace(graphBox, graph.el);
    for (const [node, st] of nodeStatus) graph.setStatus(node, st);
  } catch (e) {
    replace(graphBox, h('p', {class: 'muted'}, `No graph: ${e.message}`));
  }

  // Left while the run or its graph was loading: open no stream (onLeave would close it at
  // once anyway, but not opening it saves the request).
  if (ctx.left) return;
  const stop = follow(`/runs/${encodeURIComponent(id)}/events`, ({data}) => {
    live.dataset.live = 'open';
    replace(live, 'live');
    const d = (data && data.data) || {};
    const type = data.type || '';
    if (type === 'node.started') setNode(d.node, 'running');
    else if (type === 'node.retrying') setNode(d.node, 'retrying');
    else if (type === 'node.waiting') setNode(d.node, 'running');  // as its stored "waiting" step draws
    else if (type === 'node.finished') { setNode(d.node, d.status === 'interrupted' ? 'cancelled' : d.status); refreshSoon(); }
    else if (type.startsWith('run.')) refreshSoon();
    const until = d.deadline_ms || d.until_ms;
    const forTasks = d.task ? [d.task] : (d.tasks || []);
    const detail = type === 'node.log' ? d.message
      : forTasks.length ? `for task ${forTasks.join(', ')}${until ? ` or until ${fmtTime(until)}` : ''}`
      : until ? `until ${fmtTime(until)}` : (d.error || d.status || '');
    log.append(h('tr', {'data-event': type},
      h('td', {class: 'num'}, data.seq), h('td', {'data-at': data.at}, fmtTime(data.at)), h('td', null, type),
      h('td', null, d.node || ''), h('td', {class: 'wrap'}, typeof detail === 'string' ? detail : JSON.stringify(detail))));
    while (log.childElementCount > MAX_LOG) log.firstElementChild.remove();
  }, {
    onEnd: () => { live.dataset.live = 'ended'; replace(live, 'run ended'); refreshSoon(); },
    onError: (e) => { live.dataset.live = 'retrying'; replace(live, `reconnecting (${e.message})`); },
  });
  ctx.onLeave(stop);
}
