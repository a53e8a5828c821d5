// Tasks: a filtered, paginated list (queue, status and kind, all on the server; LIMIT a page, the
// first page refreshing every 5 s), and a task's detail (payload, result or error, attempts,
// epoch, reclaims, worker) with cancel and retry.
// The detail refreshes every 2 s until the task has ended; its event timeline (submitted,
// running, progress, logs, retries, the end) streams live over GET /api/v1/tasks/{id}/events.
import {api, follow} from './api.js';
import {badge, drawOnChange, fields, fmtMs, fmtTime, h, oneAtATime, pre, replace, table} from './dom.js';
import {pagerLinks} from './pager.js';

const STATUSES = ['', 'pending', 'scheduled', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'];
const ENDED = new Set(['succeeded', 'failed', 'cancelled']);
// A page holds this many matching tasks.
const LIMIT = 200;
// With a status or kind, a page of the API searches each queue's next this many tasks
// (docs/api.md, GET /api/v1/tasks).
const SEARCHED = 5000;

export function render(view, _params, query, ctx) {
  const queue = h('input', {name: 'queue', value: query.get('queue') || '', placeholder: 'any', size: 12});
  const status = h('select', {name: 'status'}, STATUSES.map((st) =>
    h('option', {value: st, selected: st === (query.get('status') || '')}, st || 'any')));
  const kind = h('input', {name: 'kind', value: query.get('kind') || '', placeholder: 'any', size: 12});
  const box = h('div');
  const note = h('p', {class: 'muted', 'data-note': 'limit'});
  const pager = h('div', {class: 'pager'});
  const apply = (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (queue.value.trim()) q.set('queue', queue.value.trim());
    if (status.value) q.set('status', status.value);
    if (kind.value.trim()) q.set('kind', kind.value.trim());
    ctx.go(`#/tasks?${q}`);
  };
  replace(view, h('h1', null, 'Tasks'),
    h('form', {class: 'toolbar', onsubmit: apply},
      h('label', null, 'queue', queue), h('label', null, 'status', status), h('label', null, 'kind', kind),
      h('button', {type: 'submit'}, 'Filter')),
    box, note, pager);
  const params = new URLSearchParams({limit: String(LIMIT)});
  for (const k of ['queue', 'status', 'kind', 'cursor']) if (query.get(k)) params.set(k, query.get(k));
  // A status or kind is searched for among each queue's next SEARCHED tasks (dead letters for
  // status failed): a short page that has a next says where it looked.
  const scanned = Boolean(query.get('kind') || query.get('status'));
  const changed = drawOnChange();
  const load = async () => {
    const {tasks, next_cursor: next} = await api(`/tasks?${params}`);
    ctx.clearError();
    changed({tasks, next}, () => drawList(tasks, next));
  };
  const drawList = (tasks, next) => {
    replace(note, next && scanned && tasks.length < LIMIT
      ? `This page searched each queue's next ${SEARCHED.toLocaleString('en')} tasks: "Older →" searches on.` : '');
    replace(pager, ...pagerLinks('#/tasks', query, next));
    replace(box, table(['task', 'queue', 'kind', 'status', 'attempts', 'worker', 'created', 'payload'],
      tasks.map((t) => h('tr', {'data-task': t.id},
        h('td', {class: 'mono'}, h('a', {href: `#/tasks/${encodeURIComponent(t.id)}`}, t.id)),
        h('td', null, t.queue), h('td', null, t.kind), h('td', null, badge(t.status)),
        h('td', {class: 'num'}, `${t.attempts}/${t.max_attempts}`),
        h('td', {class: 'mono'}, t.worker || ''),
        h('td', null, fmtTime(t.created_at)),
        h('td', {class: 'wrap mono'}, JSON.stringify(t.payload).slice(0, 120)))),
      {empty: next ? 'none on this page' : 'no tasks match'}));
  };
  // Only the newest page changes under the reader; older pages are loaded once.
  if (query.get('cursor')) load().catch((e) => ctx.error(e));
  else ctx.every(5000, load);
}

export function renderTask(view, [id], _query, ctx) {
  const actions = h('div', {class: 'actions'});
  let drawnStatus = null;
  const bodyChanged = drawOnChange();
  const body = h('div');
  const notice = h('p', {class: 'muted', role: 'status'});
  const timeline = h('tbody');
  const seen = new Set();
  const streamState = h('span', {class: 'muted', id: 'events-state'});
  replace(view, h('h1', null, 'Task ', h('span', {class: 'mono'}, id)), actions, notice, body,
    h('div', {class: 'card'}, h('h2', null, 'Events ', streamState),
      h('div', {class: 'table-wrap'}, h('table', {class: 'events'},
        h('thead', null, h('tr', null, ['time', 'type', 'data'].map((x) => h('th', null, x)))),
        timeline))));
  // The stream ends when the task does; a retry starts it again (events already shown are kept).
  let stopStream = null;
  const followEvents = () => {
    if (stopStream) stopStream();
    // A retry answered after the operator left: no new stream for a page no longer shown.
    if (ctx.left) return;
    replace(streamState, '(live)');
    stopStream = follow(`/tasks/${encodeURIComponent(id)}/events`, ({data: e}) => {
      if (!e || seen.has(e.id)) return;
      seen.add(e.id);
      timeline.append(h('tr', {'data-event': e.type},
        h('td', {class: 'mono'}, fmtTime(e.at)),
        h('td', null, badge(e.type)),
        h('td', {class: 'wrap mono'}, e.data === null || e.data === undefined ? '' : JSON.stringify(e.data))));
    }, {onEnd: () => replace(streamState, '(ended)'), onError: (e) => replace(streamState, `(${e.message || e})`)});
  };
  followEvents();
  ctx.onLeave(() => { if (stopStream) stopStream(); });
  let ended = false;
  // Cancel and retry send once (oneAtATime), and the refresh that draws the outcome is part of
  // the action.
  const send = oneAtATime(async (what) => {
    try {
      const r = await api(`/tasks/${encodeURIComponent(id)}/${what}`, {method: 'POST'});
      replace(notice, `${what}: ${r.status}`);
      if (what === 'retry') followEvents();
    } catch (e) {
      // Here, not in the refresh's error box: the next refresh would clear it.
      replace(notice, h('span', {class: 'error', role: 'alert'}, `${what} refused: ${e.message}`));
    }
    ended = false;
    try { await refresh(); } catch (e) { ctx.error(e); }
    return true;
  });
  const refresh = async () => {
    if (ended) return;
    const {task: t} = await api(`/tasks/${encodeURIComponent(id)}`);
    ctx.clearError();
    ended = ENDED.has(t.status);
    // The buttons are redrawn only when the status changes: a button replaced between a
    // click's press and release would lose the click.
    if (t.status !== drawnStatus) {
      drawnStatus = t.status;
      replace(actions, badge(t.status),
        ENDED.has(t.status) ? null : send.button({class: 'danger', 'data-action': 'cancel',
                                                  onclick: (ev) => send(ev.currentTarget, 'cancel')}, 'Cancel'),
        (t.status === 'failed' || t.status === 'cancelled')
          ? send.button({'data-action': 'retry', onclick: (ev) => send(ev.currentTarget, 'retry')}, 'Retry') : null);
    }
    // Also only when it changed: a redraw every refresh would lose a click on the queue's link
    // and a selection in the payload being copied.
    bodyChanged(t, () => replace(body, h('div', {class: 'grid'},
      h('div', {class: 'card'}, fields([
        ['queue', h('a', {href: `#/queues/${encodeURIComponent(t.queue)}`}, t.queue)],
        ['kind', t.kind],
        ['attempts', `${t.attempts} of ${t.max_attempts}`],
        ['epoch', String(t.epoch)],
        ['reclaims', String(t.reclaims)],
        ['worker', t.worker || ''],
        ['timeout', t.timeout_ms ? fmtMs(t.timeout_ms) : 'none'],
        ['unique key', t.unique_key || ''],
        ['created', fmtTime(t.created_at)],
        ['eta', fmtTime(t.eta_at)],
        ['started', fmtTime(t.started_at)],
        ['finished', fmtTime(t.finished_at)],
        ['cancel requested', t.cancel_requested ? 'yes' : 'no'],
      ])),
      h('div', {class: 'card'}, h('h2', null, 'Payload'), pre(t.payload, 'payload'),
        t.error ? [h('h2', null, 'Error'), h('pre', {class: 'json error'}, t.error)]
          : t.last_error ? [h('h2', null, 'Last error (an earlier attempt)'), h('pre', {class: 'json'}, t.last_error)] : null,
        t.result !== null && t.result !== undefined ? [h('h2', null, 'Result'), pre(t.result, 'result')] : null))));
  };
  ctx.every(2000, refresh);
}
