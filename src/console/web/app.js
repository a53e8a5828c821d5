// The console's shell: the login, the navigation and a router over the location hash
// (#/runs/ID), so the server serves one page and every view is a bookmarkable link.
import {api, clearToken, onUnauthenticated, probe, setToken, token} from './api.js';
import {h, replace} from './dom.js';

// Each page's module is fetched when the page is first shown, so a first load waits only for the
// shell and the page it opens on (index.html preloads the overview's); `list` and `item` name
// the module's functions for #/page and #/page/ID.
const PAGES = [
  {name: 'overview', label: 'Overview', path: '', load: () => import('./page_overview.js'),
   list: 'render'},
  {name: 'queues', label: 'Queues', path: 'queues', load: () => import('./page_queues.js'),
   list: 'render', item: 'renderQueue'},
  {name: 'tasks', label: 'Tasks', path: 'tasks', load: () => import('./page_tasks.js'),
   list: 'render', item: 'renderTask'},
  {name: 'workers', label: 'Workers', path: 'workers', load: () => import('./page_workers.js'),
   list: 'render'},
  {name: 'workflows', label: 'Workflows', path: 'workflows',
   load: () => import('./page_workflows.js'), list: 'render', item: 'renderWorkflow'},
  {name: 'runs', label: 'Runs', path: 'runs', load: () => import('./page_runs.js'),
   list: 'render', item: 'renderRun'},
  {name: 'schedules', label: 'Schedules', path: 'schedules',
   load: () => import('./page_schedules.js'), list: 'render'},
  {name: 'remediation', label: 'Remediation', path: 'remediation',
   load: () => import('./page_remediation.js'), list: 'render', item: 'renderCandidate'},
  {name: 'tokens', label: 'Tokens', path: 'tokens', load: () => import('./page_tokens.js'),
   list: 'render'},
];
// After the first page has had time to show its data, the other pages' modules are fetched too,
// so moving between pages waits for no file.
const PREFETCH_AFTER_MS = 3000;

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let mode = 'unknown';  // 'open' (ferry dev: no auth) or 'token'
// The page on screen: its context's leave() ends what the page started.
let current = null;

// What a page gets: where to draw, the query, and timers/streams that end when it is left.
// A page that registers something after an await may already have been left: onLeave then
// runs the function at once, and every() starts nothing, so a stream or timer opened late
// (a run page left while it was still loading) does not outlive its page.
function context() {
  const leaving = [];
  let left = false;
  const ctx = {
    // Runs fn now and every `ms` while this page is shown and the tab is visible, and no
    // confirmation question is open (a refresh would redraw it away).
    every(ms, fn) {
      if (left) return;
      let timer = null;
      const tick = async () => {
        if (!document.hidden && !document.querySelector('.confirm .question')) {
          try { await fn(); } catch (e) { ctx.error(e); }
        }
        // Left while fn was waiting for its answer: schedule nothing more.
        if (!left) timer = setTimeout(tick, ms);
      };
      tick();
      leaving.push(() => clearTimeout(timer));
    },
    onLeave(fn) {
      if (left) fn();
      else leaving.push(fn);
    },
    get left() { return left; },
    leave() {
      left = true;
      for (const fn of leaving.splice(0)) fn();
    },
    error(e) {
      if (left || (e && e.name === 'AbortError')) return;
      const box = document.getElementById('error');
      if (box) replace(box, h('p', {class: 'error', role: 'alert'}, String(e.message || e)));
    },
    clearError() {
      if (left) return;
      const box = document.getElementById('error');
      if (box) box.replaceChildren();
    },
    go(hash) { location.hash = hash; },
  };
  return ctx;
}

function leavePage() {
  if (current) current.leave();
  current = null;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart = ''] = raw.split('?');
  // A malformed escape (%E0%A4%A) stays as typed: the API refuses it as a malformed id.
  const decode = (x) => { try { return decodeURIComponent(x); } catch { return x; } };
  const parts = pathPart.split('/').filter(Boolean).map(decode);
  return {parts, query: new URLSearchParams(queryPart)};
}

function drawNav(active) {
  replace(nav, PAGES.map((p) => h('a', {href: `#/${p.path}`, class: p.name === active ? 'active' : null,
                                        'aria-current': p.name === active ? 'page' : null}, p.label)));
  if (mode === 'token') {
    replace(who, h('button', {type: 'button', class: 'link', onclick: logout}, 'Log out'));
  } else if (mode === 'open') {
    replace(who, h('span', {class: 'muted', title: 'ferry dev serves the API without authentication'},
                   'dev (no auth)'));
  } else {
    who.replaceChildren();
  }
}

// Counts the pages shown, so a page whose module arrives after the operator moved on is not drawn.
let shown = 0;

function route() {
  leavePage();
  if (mode === 'login') return;
  const seq = ++shown;
  const {parts, query} = parseHash();
  const page = PAGES.find((p) => p.path === (parts[0] || '')) || PAGES[0];
  drawNav(page.name);
  const ctx = context();
  current = ctx;
  const errorBox = h('div', {id: 'error'});
  const view = h('section', {class: 'view'});
  replace(main, errorBox, view);
  const fn = parts.length > 1 && page.item ? page.item : page.list;
  page.load()
    .then((mod) => (seq === shown ? mod[fn](view, parts.slice(1), query, ctx) : undefined))
    .catch((e) => ctx.error(e));
}

function showLogin(message) {
  leavePage();
  mode = 'login';
  nav.replaceChildren();
  who.replaceChildren();
  const input = h('input', {type: 'password', id: 'token', name: 'token', autocomplete: 'off',
                            placeholder: 'fy_…', required: true, spellcheck: 'false'});
  // data-attempts counts the answered attempts, so a reader (or a test) can tell a new refusal
  // from the previous one.
  const status = h('p', {id: 'login-error', class: 'error', role: 'alert', 'data-attempts': 0}, message || '');
  const answered = (text) => {
    status.dataset.attempts = String(Number(status.dataset.attempts) + 1);
    replace(status, text);
  };
  const form = h('form', {class: 'login', onsubmit: async (ev) => {
    ev.preventDefault();
    const candidate = input.value.trim();
    replace(status, 'Checking…');
    try {
      // The token is kept only once the API has accepted it.
      if (await probe(candidate) === 'ok') {
        setToken(candidate);
        mode = 'token';
        route();
      } else {
        answered('This token was refused (unknown, revoked or mistyped).');
        input.select();
      }
    } catch (e) {
      answered(String(e.message || e));
    }
  }},
  h('h1', null, 'Ferry'),
  h('label', {for: 'token'}, 'API token'),
  input,
  h('button', {type: 'submit'}, 'Log in'),
  status,
  h('p', {class: 'muted'}, 'Create one with ', h('code', null, 'ferry token create NAME --scopes run'),
    '. It is kept in this tab only (sessionStorage) and sent as a bearer token.'));
  replace(main, form);
  input.focus();
}

function logout() {
  clearToken();
  showLogin('Logged out.');
}

async function start() {
  onUnauthenticated((message) => {
    if (mode === 'open') return;
    clearToken();
    showLogin(`Your token was refused: ${message}`);
  });
  // With a token from earlier in this tab, show the page at once: a refused token brings the
  // login form back (onUnauthenticated), so no probe has to come first.
  if (token()) {
    mode = 'token';
    route();
    return;
  }
  try {
    if (await probe('') === 'open') {
      mode = 'open';
    } else {
      clearToken();
      showLogin('');
      return;
    }
  } catch (e) {
    replace(main, h('p', {class: 'error', role: 'alert'}, `The API does not answer: ${e.message || e}`));
    return;
  }
  route();
}

window.addEventListener('hashchange', () => { if (mode !== 'login') route(); });
start();
setTimeout(() => { for (const p of PAGES) p.load().catch(() => {}); }, PREFETCH_AFTER_MS);

export {api};
