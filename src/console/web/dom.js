// DOM helpers. Everything that comes from the API is put in the page as text (text nodes,
// textContent, attribute values), never parsed as HTML: a payload holding markup shows as
// markup, it does not run.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Unicode's bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)
// reorder the text around them without showing themselves: "abc\u202Egnp.exe" reads
// "abcexe.png". In the page each is replaced by a marked placeholder, ⟨U+202E⟩, so what is
// shown is what is stored. Every string put in the page by h(), s() and replace() passes here.
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
const HAS_BIDI_CONTROL = new RegExp(BIDI_CONTROLS.source);

function controlName(c) {
  return `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`;
}

// The text with each bidi control spelled out (for attribute values and SVG text).
export function showControls(text) {
  return String(text).replace(BIDI_CONTROLS, controlName);
}

function appendText(el, text) {
  if (!HAS_BIDI_CONTROL.test(text)) {
    el.append(document.createTextNode(text));
    return;
  }
  // SVG text cannot hold an HTML span: the placeholder is plain text there.
  if (el.namespaceURI === SVG_NS) {
    el.append(document.createTextNode(showControls(text)));
    return;
  }
  let at = 0;
  for (const m of text.matchAll(BIDI_CONTROLS)) {
    if (m.index > at) el.append(document.createTextNode(text.slice(at, m.index)));
    const mark = document.createElement('span');
    mark.className = 'bidi-control';
    mark.title = 'a Unicode bidirectional control character, shown instead of applied';
    mark.textContent = controlName(m[0]);
    el.append(mark);
    at = m.index + m[0].length;
  }
  if (at < text.length) el.append(document.createTextNode(text.slice(at)));
}

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
    return;
  }
  if (child instanceof Node) el.append(child);
  else appendText(el, String(child));
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

// replace() for a region redrawn at each refresh whose data always changes a little (heartbeat
// ages, counts): the new content is laid over the old one node by node, so an element drawn the
// same stays the same element and only what changed is rewritten. A link being clicked (pressed
// on one element, released on its fresh copy, the click is lost) and a selection stay. For
// content without event listeners, which this cannot compare: text, tables, links, figures.
export function morph(el, ...children) {
  const fresh = el.cloneNode(false);
  append(fresh, children);
  morphChildren(el, fresh);
}

function morphChildren(from, to) {
  const old = [...from.childNodes];
  const next = [...to.childNodes];
  next.forEach((node, i) => (i < old.length ? morphNode(old[i], node) : from.append(node)));
  for (const node of old.slice(next.length)) node.remove();
}

function morphNode(from, to) {
  if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName ||
      from.namespaceURI !== to.namespaceURI ||
      (from.nodeType !== Node.TEXT_NODE && from.nodeType !== Node.ELEMENT_NODE)) {
    from.replaceWith(to);
    return;
  }
  if (from.nodeType === Node.TEXT_NODE) {
    if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
    return;
  }
  for (const {name} of [...from.attributes]) if (!to.hasAttribute(name)) from.removeAttribute(name);
  for (const {name, value} of [...to.attributes]) {
    if (from.getAttribute(name) !== value) from.setAttribute(name, value);
  }
  morphChildren(from, to);
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

// A region redrawn by a periodic refresh: drawn only when what it shows has changed. Most
// refreshes bring the same data, and a redraw replaces the elements under the pointer (a click
// pressed on a link and released on its copy is lost) and closes what the user opened in them
// (a "Sure?" question). changed(data, draw) calls draw() when data (JSON) differs from the last.
export function drawOnChange() {
  let last = null;
  return (data, draw) => {
    const key = JSON.stringify(data);
    if (key === last) return;
    last = key;
    draw();
  };
}

// Returned by an action whose page is going away (it moved to another page): its buttons stay
// disabled and further calls stay ignored, so a second click in the moment before the new
// page is drawn sends nothing.
export const LEAVING = Symbol('leaving');

// An action that sends a request runs one at a time: while it is in flight the button that
// started it is disabled and further calls are ignored (they return undefined at once), so a
// double click, a second Enter or a click on a copy of the button that a refresh drew meanwhile
// sends nothing more, and the page shows the one outcome. run(button, ...args) calls
// action(...args) and returns what it returns.
//
// The action includes the refresh that draws its outcome: were the buttons enabled between the
// answer and that refresh, a second click would send the request again (a second cancel,
// answered "already ended"). So buttons drawn by run.button() while an action is in flight are
// drawn disabled, and enabled when it ends.
export function oneAtATime(action) {
  let busy = false;
  const drawnBusy = new Set();
  const run = async (button, ...args) => {
    if (busy) return undefined;
    busy = true;
    if (button) {
      button.disabled = true;
      drawnBusy.add(button);
    }
    let result;
    try {
      result = await action(...args);
    } finally {
      if (result !== LEAVING) {
        busy = false;
        for (const b of drawnBusy) b.disabled = false;
        drawnBusy.clear();
      }
    }
    return result;
  };
  // A button of this action: h('button', attrs, ...children), disabled while one is in flight.
  run.button = (attrs, ...children) => {
    const b = h('button', {type: 'button', ...attrs, disabled: busy}, ...children);
    if (busy) drawnBusy.add(b);
    return b;
  };
  return run;
}

// A button that asks for confirmation in the page (no window.confirm): the first click shows
// "Sure? Yes / No", Yes calls run(button, ...args), where run is a oneAtATime: the button is
// disabled until that has finished, as are the run's other buttons.
export function confirmButton(label, question, run, attrs = {}, ...args) {
  const box = h('span', {class: 'confirm'});
  const start = run.button({...attrs, onclick: () => {
    replace(box, h('span', {class: 'question'}, question), ' ',
            h('button', {type: 'button', class: 'danger', 'data-confirm': 'yes',
                         onclick: async () => { replace(box, start); await run(start, ...args); }}, 'Yes'),
            ' ',
            h('button', {type: 'button', onclick: () => replace(box, start)}, 'No'));
  }}, label);
  box.append(start);
  return box;
}
