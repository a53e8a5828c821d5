// The console's line diff (src/console/web/diff.js), without a browser.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {diffLines} from '../../src/console/web/diff.js';

const ops = (a, b) => diffLines(a, b).map((l) => l.op + l.text);

test('a changed line is removed, then added, between unchanged ones', () => {
  assert.deepEqual(ops('a\nb\nc', 'a\nB\nc'), [' a', '-b', '+B', ' c']);
});

test('pure insertions and deletions', () => {
  assert.deepEqual(ops('a\nc', 'a\nb\nc'), [' a', '+b', ' c']);
  assert.deepEqual(ops('a\nb\nc', 'a\nc'), [' a', '-b', ' c']);
  assert.deepEqual(ops('', 'x'), ['-', '+x']);
});

test('identical texts have no change, and lines are compared exactly', () => {
  assert.deepEqual(ops('a\nb', 'a\nb'), [' a', ' b']);
  assert.deepEqual(ops('a \nb', 'a\nb'), ['-a ', '+a', ' b']);
});

test('the common head and tail are not part of the table, so long sources with a small change diff', () => {
  const head = Array.from({length: 5000}, (_, i) => `line ${i}`).join('\n');
  const out = diffLines(`${head}\nold\n${head}`, `${head}\nnew\n${head}`);
  assert.deepEqual(out.filter((l) => l.op !== ' ').map((l) => l.op + l.text), ['-old', '+new']);
});

test('texts too large to compare in the page give null, one past the limit', () => {
  const lines = (n, c) => Array.from({length: n}, (_, i) => `${c}${i}`).join('\n');
  // (n + 1) * (m + 1) table cells: 2000 * 2000 = 4,000,000 fits; 2001 * 2000 is one row over.
  assert.notEqual(diffLines(lines(1999, 'x'), lines(1999, 'y')), null);
  assert.equal(diffLines(lines(2000, 'x'), lines(1999, 'y')), null);
});
