// Draws a workflow's DAG (the stored graph's nodes with their `needs`) as SVG: one column per
// depth (longest path from a root), nodes in definition order within a column, edges as curves.
// Node ids and kinds are SVG text nodes. Returns {el, setStatus(nodeId, status)}.
import {s, showControls} from './dom.js';

const W = 150, H = 44, GAP_X = 56, GAP_Y = 18, PAD = 12;

export function drawGraph(graph) {
  const nodes = (graph && Array.isArray(graph.nodes)) ? graph.nodes : [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = new Map();
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;  // a cycle cannot be stored; do not loop if one were
    seen.add(id);
    const n = byId.get(id);
    let d = 0;
    for (const need of (n && n.needs) || []) if (byId.has(need)) d = Math.max(d, depthOf(need, seen) + 1);
    depth.set(id, d);
    return d;
  };
  const columns = [];
  for (const n of nodes) {
    const d = depthOf(n.id);
    (columns[d] = columns[d] || []).push(n);
  }
  const pos = new Map();
  columns.forEach((col, x) => col.forEach((n, y) => {
    pos.set(n.id, {x: PAD + x * (W + GAP_X), y: PAD + y * (H + GAP_Y)});
  }));
  const width = PAD * 2 + Math.max(1, columns.length) * (W + GAP_X) - GAP_X;
  const height = PAD * 2 + Math.max(1, ...columns.map((c) => c.length)) * (H + GAP_Y) - GAP_Y;

  const edges = [];
  for (const n of nodes) {
    const to = pos.get(n.id);
    for (const need of n.needs || []) {
      const from = pos.get(need);
      if (!from) continue;
      const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x, y2 = to.y + H / 2, mx = (x1 + x2) / 2;
      edges.push(s('path', {class: 'edge', d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`,
                            'marker-end': 'url(#arrow)'}));
    }
  }
  const groups = new Map();
  const statusText = new Map();
  for (const n of nodes) {
    const p = pos.get(n.id);
    const label = n.id.length > 20 ? `${n.id.slice(0, 19)}…` : n.id;
    const st = s('text', {x: 8, y: 34, class: 'kind'}, n.kind);
    statusText.set(n.id, {el: st, kind: n.kind});
    const g = s('g', {class: 'node', transform: `translate(${p.x},${p.y})`, 'data-node': n.id},
                s('title', null, n.id),
                s('rect', {width: W, height: H, rx: 6}),
                s('text', {x: 8, y: 17}, label),
                st);
    groups.set(n.id, g);
  }
  const el = s('svg', {class: 'graph', width, height, viewBox: `0 0 ${width} ${height}`,
                       role: 'img', 'aria-label': 'workflow graph'},
               s('defs', null, s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
                                            markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
                                 s('path', {d: 'M 0 0 L 10 5 L 0 10 z', fill: '#98a2b3'}))),
               edges, [...groups.values()]);
  return {
    el,
    setStatus(id, status) {
      const g = groups.get(id);
      if (!g) return;
      g.setAttribute('class', `node st-${String(status).replace(/[^a-z_]/g, '')}`);
      g.setAttribute('data-status', status);
      const t = statusText.get(id);
      t.el.textContent = showControls(`${t.kind} · ${status}`);
    },
  };
}
