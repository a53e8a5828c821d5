// Queues and their dead letters: the list of queues, and per queue its counters and the
// dead-lettered tasks (status failed), each retried on its own or all at once, or all purged
// (deleted for good; admin tokens only), each "all" after a confirmation. A queue that holds no
// task can be deleted (admin tokens only; the server also refuses one a live worker serves).
import {api} from './api.js';
import {confirmButton, fmtMs, fmtTime, h, replace, table} from './dom.js';

const REFRESH_MS = 5000;

export function render(view, _params, _query, ctx) {
  const box = h('div');
  replace(view, h('h1', null, 'Queues'), box);
  ctx.every(REFRESH_MS, async () => {
    const {queues} = await api('/queues');
    ctx.clearError();
    replace(box, table(['queue', 'pending', 'running', 'scheduled', 'dead', 'oldest pending', 'succeeded', 'dead-lettered'],
      queues.map((q) => h('tr', null,
        h('td', null, h('a', {href: `#/queues/${encodeURIComponent(q.queue)}`}, q.queue)),
        h('td', {class: 'num'}, q.pending), h('td', {class: 'num'}, q.running),
        h('td', {class: 'num'}, q.scheduled), h('td', {class: 'num'}, q.dead),
        h('td', null, fmtMs(q.oldest_pending_age_ms)),
        h('td', {class: 'num'}, (q.counters || {}).succeeded ?? ''),
        h('td', {class: 'num'}, (q.counters || {}).dead_lettered ?? ''))),
      {empty: 'no queues yet: submit a task'}));
  });
}

export function renderQueue(view, [name], _query, ctx) {
  const stats = h('div', {class: 'stats'});
  const manage = h('div', {class: 'actions'});
  const dead = h('div');
  const notice = h('p', {class: 'muted', role: 'status'});
  replace(view, h('h1', null, 'Queue ', name), stats, manage, h('h2', null, 'Dead letters'), notice, dead);
  // Redrawn only when the queue becomes empty or stops being so, so a refresh does not close
  // a question the user is answering.
  let shownEmpty = null;
  const deleteQueue = async () => {
    try {
      await api(`/queues/${encodeURIComponent(name)}/delete`, {method: 'POST'});
      ctx.go('#/queues');
    } catch (e) {
      replace(notice, `Not deleted: ${e.message}`);
    }
  };

  const refresh = async () => {
    const [{queue}, {tasks}] = await Promise.all([
      api(`/queues/${encodeURIComponent(name)}`),
      api(`/tasks?queue=${encodeURIComponent(name)}&status=failed&limit=200`),
    ]);
    ctx.clearError();
    replace(stats, ['pending', 'running', 'scheduled', 'dead'].map((k) =>
      h('div', {class: 'stat'}, h('b', null, String(queue[k])), k)));
    const empty = queue.pending + queue.running + queue.scheduled + queue.dead === 0;
    if (empty !== shownEmpty) {
      shownEmpty = empty;
      replace(manage, empty ? confirmButton('Delete queue',
                                            `Forget queue ${name}? Its finished tasks will no longer be listed.`,
                                            deleteQueue, {class: 'danger', 'data-action': 'delete-queue'})
                            : null);
    }
    const retry = async (ids) => {
      let ok = 0;
      const failed = [];
      for (const id of ids) {
        try { await api(`/tasks/${encodeURIComponent(id)}/retry`, {method: 'POST'}); ok++; }
        catch (e) { failed.push(`${id}: ${e.message}`); }
      }
      replace(notice, `Retried ${ok} task${ok === 1 ? '' : 's'}.`, failed.length ? ` Not retried: ${failed.join('; ')}` : '');
      await refresh();
    };
    // The server deletes what was dead-lettered up to the moment it is asked, which may be more
    // than the 200 listed here: the question counts the queue's whole dead set.
    const purge = async () => {
      try {
        const {purged} = await api(`/queues/${encodeURIComponent(name)}/dead/purge`, {method: 'POST'});
        replace(notice, `Purged ${purged} task${purged === 1 ? '' : 's'}.`);
      } catch (e) {
        replace(notice, `Not purged: ${e.message}`);
      }
      await refresh();
    };
    replace(dead,
      h('div', {class: 'actions'},
        tasks.length ? confirmButton(`Retry all ${tasks.length}`, `Retry all ${tasks.length} dead tasks of ${name}?`,
                                     () => retry(tasks.map((t) => t.id)), {class: 'secondary', 'data-action': 'retry-all'})
                     : null,
        queue.dead > 0 ? ' ' : null,
        queue.dead > 0 ? confirmButton(`Purge all ${queue.dead}`,
                                       `Delete the ${queue.dead} dead tasks of ${name} for good? This cannot be undone.`,
                                       purge, {class: 'danger', 'data-action': 'purge'})
                       : null),
      table(['task', 'kind', 'attempts', 'error', 'finished', ''],
        tasks.map((t) => h('tr', {'data-task': t.id},
          h('td', {class: 'mono'}, h('a', {href: `#/tasks/${encodeURIComponent(t.id)}`}, t.id)),
          h('td', null, t.kind),
          h('td', {class: 'num'}, `${t.attempts}/${t.max_attempts}`),
          h('td', {class: 'wrap'}, t.error || ''),
          h('td', null, fmtTime(t.finished_at)),
          h('td', null, h('button', {type: 'button', class: 'secondary', 'data-action': 'retry',
                                     onclick: () => retry([t.id])}, 'Retry')))),
        {empty: 'no dead letters'}));
    return tasks;
  };
  ctx.every(REFRESH_MS, refresh);
}
