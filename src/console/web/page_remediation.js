// Remediation candidates (docs/remediation.md): the list by status, and a candidate's page with
// its error, the agent's note and classification, the proposed or applied source diff, the
// version it created and the retry run; dismiss and re-open.
import {api} from './api.js';
import {badge, drawOnChange, fields, fmtMs, fmtTime, h, oneAtATime, pre, replace, table} from './dom.js';

const STATUSES = ['', 'pending', 'claimed', 'fixed', 'note_only', 'failed', 'dismissed'];

export function render(view, _params, query, ctx) {
  const status = h('select', {name: 'status'}, STATUSES.map((st) =>
    h('option', {value: st, selected: st === (query.get('status') || '')}, st || 'any')));
  const box = h('div');
  replace(view, h('h1', null, 'Remediation'),
    h('form', {class: 'toolbar', onsubmit: (ev) => {
      ev.preventDefault();
      ctx.go(status.value ? `#/remediation?status=${encodeURIComponent(status.value)}` : '#/remediation');
    }}, h('label', null, 'status', status), h('button', {type: 'submit'}, 'Filter')),
    box);
  const params = new URLSearchParams({limit: '100'});
  if (query.get('status')) params.set('status', query.get('status'));
  const changed = drawOnChange();
  ctx.every(10000, async () => {
    const {remediations} = await api(`/remediations?${params}`);
    ctx.clearError();
    changed(remediations, () => replace(box, table(['candidate', 'status', 'workflow', 'failed node', 'error', 'classification', 'occurrences', 'last seen'],
      remediations.map((m) => h('tr', null,
        h('td', {class: 'mono'}, h('a', {href: `#/remediation/${encodeURIComponent(m.id)}`}, m.id)),
        h('td', null, badge(m.status)),
        h('td', null, h('a', {href: `#/workflows/${encodeURIComponent(m.workflow)}`}, m.workflow)),
        h('td', null, m.failed_node || ''), h('td', {class: 'wrap'}, m.error || ''),
        h('td', null, m.classification || ''), h('td', {class: 'num'}, m.occurrences),
        h('td', null, fmtTime(m.last_seen_at)))),
      {empty: 'no candidates'})));
  });
}

export async function renderCandidate(view, [id], _query, ctx) {
  const notice = h('p', {class: 'muted', role: 'status'});
  const body = h('div');
  replace(view, h('h1', null, 'Remediation ', h('span', {class: 'mono'}, id)), notice, body);
  const reason = h('input', {name: 'reason', placeholder: 'reason (optional)', size: 30});
  // Dismiss and re-open send once (oneAtATime), and the page's redraw is part of it.
  const send = oneAtATime(async (what) => {
    try {
      const r = await api(`/remediations/${encodeURIComponent(id)}/${what}`,
                          {method: 'POST', body: what === 'dismiss' && reason.value ? {reason: reason.value} : undefined});
      replace(notice, `${what}: now ${r.remediation.status}`);
    } catch (e) {
      replace(notice, h('span', {class: 'error', role: 'alert'}, `${what} refused: ${e.message}`));
    }
    try { await load(); } catch (e) { ctx.error(e); }
    return true;
  });
  const load = async () => {
    const {remediation: m} = await api(`/remediations/${encodeURIComponent(id)}`);
    let diff = null;
    if (m.has_proposed_source || m.fixed_version) {
      diff = await api(`/remediations/${encodeURIComponent(id)}/diff`).catch(() => null);
    }
    const canDismiss = ['pending', 'claimed', 'failed'].includes(m.status);
    const canReopen = ['dismissed', 'failed', 'note_only'].includes(m.status);
    replace(body,
      h('div', {class: 'actions'}, badge(m.status),
        canDismiss ? [reason, send.button({class: 'danger', 'data-action': 'dismiss',
                                           onclick: (ev) => send(ev.currentTarget, 'dismiss')}, 'Dismiss')] : null,
        canReopen ? send.button({'data-action': 'reopen', onclick: (ev) => send(ev.currentTarget, 'reopen')}, 'Re-open') : null),
      h('div', {class: 'grid'},
        h('div', {class: 'card'}, fields([
          ['workflow', h('a', {href: `#/workflows/${encodeURIComponent(m.workflow)}`}, `${m.workflow} v${m.version}`)],
          ['failed run', h('a', {class: 'mono', href: `#/runs/${encodeURIComponent(m.run_id)}`}, m.run_id)],
          m.last_run_id && m.last_run_id !== m.run_id ? ['last run', h('a', {class: 'mono', href: `#/runs/${encodeURIComponent(m.last_run_id)}`}, m.last_run_id)] : null,
          ['failed node', m.failed_node || ''],
          ['occurrences', String(m.occurrences)],
          ['classification', m.classification || ''],
          ['confidence', m.confidence === null || m.confidence === undefined ? '' : String(m.confidence)],
          ['attempts', String(m.attempts)],
          ['fixed version', m.fixed_version ? `v${m.fixed_version}` : ''],
          ['retry run', m.retry_run_id ? h('a', {class: 'mono', href: `#/runs/${encodeURIComponent(m.retry_run_id)}`}, m.retry_run_id) : ''],
          m.retry_error ? ['retry error', m.retry_error] : null,
          m.reason ? ['reason', m.reason] : null,
          ['first seen', fmtTime(m.first_seen_at)],
          ['last seen', fmtTime(m.last_seen_at)],
        ])),
        h('div', {class: 'card'},
          h('h2', null, 'Error'), h('pre', {class: 'json error'}, m.error || ''),
          h('h2', null, "Agent's note"), m.summary || m.note ? pre(m.note || m.summary, 'note') : h('p', {class: 'muted'}, 'none yet'))),
      h('h2', null, 'Proposed change'),
      diff ? h('pre', {class: 'json diff-text'}, diff.diff || '') : h('p', {class: 'muted'}, 'No proposal.'),
      h('h2', null, 'Attempts'),
      table(['attempt', 'owner', 'outcome', 'detail', 'agent', 'started', 'finished'], (m.attempt_history || []).map((a) => h('tr', null,
        h('td', {class: 'num'}, a.attempt), h('td', null, a.owner || ''), h('td', null, a.outcome || ''),
        h('td', {class: 'wrap'}, a.detail || ''), h('td', null, fmtMs(a.agent_ms)),
        h('td', null, fmtTime(a.started_at)), h('td', null, fmtTime(a.finished_at)))), {empty: 'no attempts'}));
  };
  await load();
}
