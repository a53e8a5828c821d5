// Queues and their dead letters: the list of queues, and per queue its counters and the newest
// dead-lettered tasks (status failed), each retried on its own, or every one of them (not only
// those listed) retried or purged (deleted for good; admin tokens only), each "all" after a
// confirmation. A queue that holds no task can be deleted (admin tokens only; the server also
// refuses one a live worker serves).
import {api} from './api.js';
import {confirmButton, drawOnChange, fmtMs, fmtTime, h, LEAVING, oneAtATime, replace, table} from './dom.js';

const REFRESH_MS = 5000;
// The page lists the newest this many dead letters.
const LISTED = 200;

export function render(view, _params, _query, ctx) {
  const box = h('div');
  replace(view, h('h1', null, 'Queues'), box);
  const changed = drawOnChange();
  ctx.every(REFRESH_MS, async () => {
    const {queues} = await api('/queues');
    ctx.clearError();
    changed(queues, () => replace(box, table(['queue', 'pending', 'running', 'scheduled', 'dead', 'oldest pending', 'succeeded', 'dead-lettered'],
      queues.map((q) => h('tr', null,
        h('td', null, h('a', {href: `#/queues/${encodeURIComponent(q.queue)}`}, q.queue)),
        h('td', {class: 'num'}, q.pending), h('td', {class: 'num'}, q.running),
        h('td', {class: 'num'}, q.scheduled), h('td', {class: 'num'}, q.dead),
        h('td', null, fmtMs(q.oldest_pending_age_ms)),
        h('td', {class: 'num'}, (q.counters || {}).succeeded ?? ''),
        h('td', {class: 'num'}, (q.counters || {}).dead_lettered ?? ''))),
      {empty: 'no queues yet: submit a task'})));
  });
}

export function renderQueue(view, [name], _query, ctx) {
  const stats = h('div', {class: 'stats'});
  const manage = h('div', {class: 'actions'});
  const dead = h('div');
  const notice = h('p', {class: 'muted', role: 'status'});
  replace(view, h('h1', null, 'Queue ', name), stats, manage, h('h2', null, 'Dead letters'), notice, dead);
  const path = `/queues/${encodeURIComponent(name)}`;
  // Redrawn only when the queue becomes empty or stops being so, so a refresh does not close
  // a question the user is answering.
  let shownEmpty = null;
  // One change to the queue at a time (a retry, retry all, purge or delete), and the refresh
  // that shows its outcome: until both are done the page's action buttons are disabled and
  // ignore clicks, so a double click sends one request and the notice tells one outcome.
  const change = oneAtATime(async (work) => {
    if (await work() === LEAVING) return LEAVING;
    try { await refresh(); } catch (e) { ctx.error(e); }
    return true;
  });

  const deleteQueue = async () => {
    try {
      await api(`${path}/delete`, {method: 'POST'});
      ctx.go('#/queues');
      return LEAVING;
    } catch (e) {
      replace(notice, `Not deleted: ${e.message}`);
    }
  };

  const retryOne = async (id) => {
    try {
      await api(`/tasks/${encodeURIComponent(id)}/retry`, {method: 'POST'});
      replace(notice, 'Retried 1 task.');
    } catch (e) {
      replace(notice, `Not retried: ${id}: ${e.message}`);
    }
  };

  // Retries every dead letter, not only the LISTED on the page, in one request: the server
  // retries what was dead-lettered up to the moment it is asked (a task that fails again at once
  // stays dead). The notice says how many were retried and how many are dead now.
  const retryAll = async () => {
    try {
      const {retried} = await api(`${path}/dead/retry`, {method: 'POST'});
      const {queue} = await api(path);
      replace(notice, `Retried ${retried} task${retried === 1 ? '' : 's'}.`,
              queue.dead ? ` ${queue.dead} dead now (failed again, or dead-lettered meanwhile).` : ' None is dead now.');
    } catch (e) {
      replace(notice, h('span', {class: 'error', role: 'alert'}, `Not retried: ${e.message}`));
    }
  };

  // The server deletes what was dead-lettered up to the moment it is asked: the question counts
  // the queue's whole dead set.
  const purge = async () => {
    try {
      const {purged} = await api(`${path}/dead/purge`, {method: 'POST'});
      replace(notice, `Purged ${purged} task${purged === 1 ? '' : 's'}.`);
    } catch (e) {
      replace(notice, `Not purged: ${e.message}`);
    }
  };

  // Redrawn when the dead letters change, so a refresh does not close a "Sure?" question.
  const deadChanged = drawOnChange();
  const refresh = async () => {
    const [{queue}, {tasks}] = await Promise.all([
      api(path),
      api(`/tasks?queue=${encodeURIComponent(name)}&status=failed&limit=${LISTED}`),
    ]);
    ctx.clearError();
    replace(stats, ['pending', 'running', 'scheduled', 'dead'].map((k) =>
      h('div', {class: 'stat'}, h('b', null, String(queue[k])), k)));
    const empty = queue.pending + queue.running + queue.scheduled + queue.dead === 0;
    if (empty !== shownEmpty) {
      shownEmpty = empty;
      replace(manage, empty ? confirmButton('Delete queue',
                                            `Forget queue ${name}? Its finished tasks will no longer be listed.`,
                                            change, {class: 'danger', 'data-action': 'delete-queue'}, deleteQueue)
                            : null);
    }
    const n = queue.dead;
    deadChanged({n, tasks}, () => replace(dead,
      h('div', {class: 'actions'},
        n > 0 ? confirmButton(`Retry all ${n}`, `Retry all ${n} dead tasks of ${name}?`,
                              change, {class: 'secondary', 'data-action': 'retry-all'}, retryAll)
              : null,
        n > 0 ? ' ' : null,
        n > 0 ? confirmButton(`Purge all ${n}`, `Delete the ${n} dead tasks of ${name} for good? This cannot be undone.`,
                              change, {class: 'danger', 'data-action': 'purge'}, purge)
              : null),
      tasks.length < n ? h('p', {class: 'muted', 'data-note': 'limit'},
                           `Showing the newest ${tasks.length} of ${n} dead letters; "Retry all" and "Purge all" act on all ${n}.`)
                       : null,
      table(['task', 'kind', 'attempts', 'error', 'finished', ''],
        tasks.map((t) => h('tr', {'data-task': t.id},
          h('td', {class: 'mono'}, h('a', {href: `#/tasks/${encodeURIComponent(t.id)}`}, t.id)),
          h('td', null, t.kind),
          h('td', {class: 'num'}, `${t.attempts}/${t.max_attempts}`),
          h('td', {class: 'wrap'}, t.error || ''),
          h('td', null, fmtTime(t.finished_at)),
          h('td', null, change.button({class: 'secondary', 'data-action': 'retry',
                                      onclick: (ev) => change(ev.currentTarget, () => retryOne(t.id))}, 'Retry')))),
        {empty: 'no dead letters'})));
    return tasks;
  };
  ctx.every(REFRESH_MS, refresh);
}
