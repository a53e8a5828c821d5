// DOM helpers. Everything that comes from the API is put in the page as text (text nodes,
// textContent, attribute values), never parsed as HTML: a payload holding markup shows as
// markup, it does not run.

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
    return;
  }
  el.append(child instanceof Node ? child : document.createTextNode(String(child)));
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (k === 'value' && 'value' in el) {
      el.value = v;
    } else if (k === 'checked' || k === 'disabled' || k === 'selected') {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

// h('a', {href: '#/runs'}, 'Runs'): an element with attributes and children (strings become
// text nodes).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// "2026-12-03T05:30:00.123Z" -> local "2026-12-03 06:30:00"; null -> "".
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
         `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// 1234 -> "1.2s", 93000 -> "1m33s"; null -> "".
export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${ms}ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(1)}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m${String(Math.floor(sec % 60)).padStart(2, '0')}s`;
  const hr = Math.floor(m / 60);
  return `${hr}h${String(m % 60).padStart(2, '0')}m`;
}

export function fmtJson(v) {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

// A status word with its colour class.
export function badge(status) {
  return h('span', {class: ['badge', `st-${String(status || 'none').replace(/[^a-z_]/g, '')}`]},
           status || '—');
}

export function table(headers, rows, opts = {}) {
  return h('div', {class: 'table-wrap'},
           h('table', {class: opts.class},
             h('thead', null, h('tr', null, headers.map((x) => h('th', null, x)))),
             h('tbody', null,
               rows.length ? rows
                           : h('tr', null, h('td', {colspan: headers.length, class: 'empty'},
                                             opts.empty || 'nothing here')))));
}

export function pre(value, cls) {
  return h('pre', {class: ['json', cls]}, fmtJson(value));
}

// A definition list of [label, value] pairs; values may be nodes.
export function fields(pairs) {
  return h('dl', {class: 'fields'},
           pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v ?? '')]));
}

// A button that asks for confirmation in the page (no window.confirm): the first click shows
// "Sure? Yes / No", Yes runs the action.
export function confirmButton(label, question, action, attrs = {}) {
  const box = h('span', {class: 'confirm'});
  const start = h('button', {...attrs, type: 'button', onclick: () => {
    replace(box, h('span', {class: 'question'}, question), ' ',
            h('button', {type: 'button', class: 'danger', 'data-confirm': 'yes',
                         onclick: async () => { replace(box, start); await action(); }}, 'Yes'),
            ' ',
            h('button', {type: 'button', onclick: () => replace(box, start)}, 'No'));
  }}, label);
  box.append(start);
  return box;
}
