// Workers: every registered worker with its host, queues, concurrency, current tasks and
// heartbeat age; dead ones (heartbeat lapsed) and stopped ones (shut down cleanly) marked, as the
// API's status says.
import {api} from './api.js';
import {badge, fmtMs, fmtTime, h, morph, replace, table} from './dom.js';

export function render(view, _params, _query, ctx) {
  const box = h('div');
  replace(view, h('h1', null, 'Workers'), box);
  ctx.every(5000, async () => {
    const {workers} = await api('/workers');
    ctx.clearError();
    // Laid over what is shown (morph): heartbeat ages change at every refresh, and a redraw
    // would lose a click on a current task's link.
    morph(box, table(
      ['worker', 'status', 'host', 'pid', 'version', 'queues', 'concurrency', 'current tasks', 'processed', 'failed', 'started', 'heartbeat'],
      workers.map((w) => h('tr', {class: w.alive ? null : 'dead', 'data-worker': w.id},
        h('td', {class: 'mono'}, w.id),
        h('td', null, badge(w.status)),
        h('td', null, w.hostname || ''), h('td', {class: 'num'}, w.pid ?? ''), h('td', null, w.version || ''),
        h('td', null, (w.queues || []).join(', ')),
        h('td', {class: 'num'}, w.concurrency),
        h('td', null, (w.current_tasks || []).map((id, i) => [i ? ', ' : '', h('a', {class: 'mono', href: `#/tasks/${encodeURIComponent(id)}`}, id)])),
        h('td', {class: 'num'}, w.tasks_processed), h('td', {class: 'num'}, w.tasks_failed),
        h('td', null, fmtTime(w.started_at)),
        h('td', null, w.heartbeat_age_ms === null ? '' : `${fmtMs(w.heartbeat_age_ms)} ago`))),
      {empty: 'no workers have registered'}));
  });
}
