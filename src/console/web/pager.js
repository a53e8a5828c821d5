// Pages of a list whose API cursor only leads to older items (runs, tasks): each page's link
// carries the cursors of the pages before it (`newer`, once each, the nearest last), so
// "← Newer" is a link to the page before, not history.back(), which leaves the console when an
// older page was opened from a bookmark. A bookmarked older page knows no page before it, and
// "← Newest" goes to the first.
import {h} from './dom.js';

function trail(query) {
  return query.getAll('newer').filter(Boolean);
}

function withTrail(query, cursor, newer) {
  const q = new URLSearchParams(query);
  q.delete('newer');
  for (const c of newer) q.append('newer', c);
  if (cursor) q.set('cursor', cursor);
  else q.delete('cursor');
  return q;
}

function olderPage(query, next) {
  const cursor = query.get('cursor');
  return withTrail(query, next, cursor ? [...trail(query), cursor] : []);
}

function newerPage(query) {
  const newer = trail(query);
  const cursor = newer.pop();
  return withTrail(query, cursor, newer);
}

// The links under a page of `route` ("#/runs") shown for `query`, whose answer gave `next`
// (its next_cursor, null on the last page).
export function pagerLinks(route, query, next) {
  return [
    query.get('cursor') ? h('a', {href: `${route}?${newerPage(query)}`, 'data-action': 'newer'},
                            trail(query).length ? '← Newer' : '← Newest') : null,
    next ? h('a', {href: `${route}?${olderPage(query, next)}`, 'data-action': 'older'}, 'Older →') : null,
  ];
}
