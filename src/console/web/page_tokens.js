// API tokens (the admin scope): the list with last use, a form that creates one and shows its
// secret this once, and revoke after a confirmation.
import {api} from './api.js';
import {badge, confirmButton, drawOnChange, fmtTime, h, oneAtATime, replace, table} from './dom.js';

export function render(view, _params, _query, ctx) {
  const box = h('div');
  const notice = h('div', {role: 'status'});
  const name = h('input', {id: 'token-name', name: 'name', required: true, maxlength: 200, placeholder: 'ci-deploy', autocomplete: 'off'});
  const scopes = h('input', {id: 'token-scopes', name: 'scopes', value: 'run', placeholder: 'read,run', autocomplete: 'off', spellcheck: 'false'});
  const submit = h('button', {type: 'submit'}, 'Create token');
  // One token per click: a second token made by a double click would be active, and its secret
  // never shown to anyone.
  const create = oneAtATime(async () => {
    try {
      const made = await api('/tokens', {method: 'POST', body: {name: name.value, scopes: scopes.value}});
      // The secret is shown this once: the server keeps only its SHA-256.
      replace(notice, h('div', {class: 'secret-once'},
        h('p', null, `Token ${made.id} (${made.name}, scopes: ${made.scopes.join(' ')}) created. Copy its secret now: it is not shown again.`),
        h('pre', {class: 'mono', id: 'new-secret'}, made.token)));
      name.value = '';
    } catch (e) {
      replace(notice, h('p', {class: 'error', role: 'alert'}, `not created: ${e.message}`));
      return;
    }
    // Apart from the create: a failed refresh of the list must not read "not created".
    try { await refresh(); } catch (e) { ctx.error(e); }
  });
  // One revoke at a time, and the list's redraw is part of it.
  const revoke = oneAtATime(async (t) => {
    try {
      await api(`/tokens/${encodeURIComponent(t.id)}/revoke`, {method: 'POST'});
      replace(notice, h('p', {class: 'muted'}, `Token ${t.name} revoked.`));
    } catch (e) {
      replace(notice, h('p', {class: 'error', role: 'alert'}, `not revoked: ${e.message}`));
    }
    try { await refresh(); } catch (e) { ctx.error(e); }
  });
  const form = h('form', {class: 'inline', onsubmit: (ev) => {
    ev.preventDefault();
    create(submit);
  }},
  h('label', {for: 'token-name'}, 'Name'), name,
  h('label', {for: 'token-scopes'}, 'Scopes'), scopes,
  submit);
  replace(view, h('h1', null, 'Tokens'), form, notice, box);

  const changed = drawOnChange();
  async function refresh() {
    const {tokens} = await api('/tokens');
    ctx.clearError();
    changed(tokens, () => drawList(tokens));
  }
  function drawList(tokens) {
    replace(box, table(['id', 'name', 'scopes', 'created', 'last used', 'status', ''],
      tokens.map((t) => h('tr', {'data-token': t.id},
        h('td', {class: 'mono'}, t.id),
        h('td', null, t.name),
        h('td', null, t.scopes.join(' ')),
        h('td', null, fmtTime(t.created_at)),
        h('td', null, t.last_used_at ? fmtTime(t.last_used_at) : 'never'),
        h('td', null, badge(t.revoked ? 'revoked' : 'active')),
        h('td', null, t.revoked ? null : confirmButton('Revoke', `Revoke ${t.name}? Requests with it get 401 within a second.`,
                                                       revoke, {class: 'secondary', 'data-action': 'revoke'}, t)))),
      {empty: 'no tokens'}));
  }
  ctx.every(15000, refresh);
}
