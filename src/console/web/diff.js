// A line diff (longest common subsequence) of two texts, for workflow versions. Sources are small
// (a workflow is at most a few thousand lines); beyond kMaxCells the table would be too large to
// build in the page, and the caller is told so.
import {h} from './dom.js';

const kMaxCells = 4_000_000;

// -> [{op: ' ' | '+' | '-', text}], or null when the texts are too large to compare here.
export function diffLines(a, b) {
  const x = a.split('\n'), y = b.split('\n');
  // Common head and tail first: most versions differ in a few lines.
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head &&
         x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xs = x.slice(head, x.length - tail), ys = y.slice(head, y.length - tail);
  const n = xs.length, m = ys.length;
  if ((n + 1) * (m + 1) > kMaxCells) return null;
  const lcs = Array.from({length: n + 1}, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = xs[i] === ys[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = x.slice(0, head).map((text) => ({op: ' ', text}));
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && xs[i] === ys[j]) { out.push({op: ' ', text: xs[i]}); i++; j++; }
    // Removed lines before added ones, as unified diffs show them.
    else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) { out.push({op: '-', text: xs[i]}); i++; }
    else { out.push({op: '+', text: ys[j]}); j++; }
  }
  for (const text of x.slice(x.length - tail)) out.push({op: ' ', text});
  return out;
}

// Renders a diff, keeping `context` unchanged lines around each change.
export function renderDiff(lines, context = 3) {
  if (lines === null) return h('p', {class: 'muted'}, 'These versions are too large to compare in the browser.');
  const changed = lines.map((l) => l.op !== ' ');
  if (!changed.some(Boolean)) return h('p', {class: 'muted'}, 'The sources are identical.');
  const keep = lines.map((_, i) => {
    for (let k = Math.max(0, i - context); k <= Math.min(lines.length - 1, i + context); k++) if (changed[k]) return true;
    return false;
  });
  const rows = [];
  let skipped = false;
  lines.forEach((l, i) => {
    if (!keep[i]) { skipped = true; return; }
    if (skipped) { rows.push(h('div', {class: 'hunk'}, '⋯')); skipped = false; }
    rows.push(h('div', {class: l.op === '+' ? 'add' : l.op === '-' ? 'del' : null}, `${l.op} ${l.text}`));
  });
  return h('div', {class: 'diff'}, rows);
}
