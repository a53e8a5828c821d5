// Schedules: every cron trigger with its next fire times in the schedule's own zone (as the
// server computes them), and pause / resume per workflow (the apply scope).
import {api} from './api.js';
import {badge, drawOnChange, h, oneAtATime, replace, table} from './dom.js';

const REFRESH_MS = 10000;

// The fire times cell: an occurrence still waiting for the run before it (overlap: queue) first,
// marked, then the coming ones; "ended" when there are none.
function nextFires(s) {
  const times = (s.waiting_fire_at ? [`${s.waiting_fire_at} (waiting)`] : []).concat(s.next_fire_times);
  return times.length ? times.map((t, i) => [i ? h('br') : null, t]) : 'ended';
}

export function render(view, _params, _query, ctx) {
  const box = h('div');
  const notice = h('p', {class: 'muted', role: 'status'});
  replace(view, h('h1', null, 'Schedules'), notice, box);
  // Pause and resume send once at a time (oneAtATime), and the list's redraw is part of it.
  const send = oneAtATime(async (s) => {
    const verb = s.paused ? 'resume' : 'pause';
    try {
      const done = await api(`/workflows/${encodeURIComponent(s.workflow)}/${verb}`, {method: 'POST'});
      replace(notice, `${done.workflow}: schedules ${done.paused ? 'paused' : 'resumed (occurrences passed while paused are not run)'}.`);
    } catch (e) {
      replace(notice, h('span', {role: 'alert', class: 'error'}, `${verb} refused: ${e.message}`));
    }
    try { await refresh(); } catch (e) { ctx.error(e); }
    return true;
  });
  const changed = drawOnChange();
  const refresh = async () => {
    const {schedules} = await api('/schedules');
    ctx.clearError();
    changed(schedules, () => replace(box, table(['workflow', 'trigger', 'schedule', 'time zone', 'next fire times', 'last fire', 'misfire', 'overlap', 'status', ''],
      schedules.map((s) => h('tr', {'data-workflow': s.workflow, 'data-trigger': s.trigger},
        h('td', null, h('a', {href: `#/workflows/${encodeURIComponent(s.workflow)}`}, s.workflow)),
        h('td', null, s.trigger),
        s.error
          ? h('td', {class: 'wrap error', colspan: 8}, s.error)
          : [h('td', {class: 'mono'}, s.schedule),
             h('td', null, s.timezone),
             h('td', {class: 'mono next'}, nextFires(s)),
             h('td', {class: 'mono'}, s.last_fire_at || '—'),
             h('td', null, s.misfire === 'catch_up' ? `catch_up (max ${s.catch_up_max})` : s.misfire),
             h('td', null, s.overlap),
             h('td', null, badge(s.paused ? 'paused' : 'active')),
             h('td', null, send.button({class: 'secondary', 'data-action': s.paused ? 'resume' : 'pause',
                                        onclick: (ev) => send(ev.currentTarget, s)}, s.paused ? 'Resume' : 'Pause'))])),
      {empty: 'no schedules: declare one under triggers.cron in a workflow'})));
  };
  ctx.every(REFRESH_MS, refresh);
}
