// Workflows: the list, and a workflow's page with its versions, the current version's DAG and
// source, a diff between any two versions, and a form that starts a run with the declared inputs.
import {api} from './api.js';
import {badge, fmtTime, h, LEAVING, oneAtATime, replace, table} from './dom.js';
import {diffLines, renderDiff} from './diff.js';
import {drawGraph} from './graph.js';

export async function render(view) {
  const box = h('div');
  replace(view, h('h1', null, 'Workflows'), box);
  const {workflows} = await api('/workflows');
  replace(box, table(['workflow', 'description', 'version', 'paused', 'updated'],
    workflows.map((w) => h('tr', null,
      h('td', null, h('a', {href: `#/workflows/${encodeURIComponent(w.name)}`}, w.name)),
      h('td', {class: 'wrap'}, w.description || ''),
      h('td', {class: 'num'}, w.current_version),
      h('td', null, w.paused ? badge('paused') : ''),
      h('td', null, fmtTime(w.updated_at)))),
    {empty: 'no workflows: ferry workflow apply FILE'}));
}

// One form field per declared input; returns {el, read()} where read() throws on bad JSON.
function inputField(name, spec) {
  const id = `in-${name}`;
  const type = spec.type || 'string';
  let control;
  let read;
  if (Array.isArray(spec.enum) && spec.enum.length) {
    control = h('select', {id, name},
      spec.required ? null : h('option', {value: ''}, '(unset)'),
      spec.enum.map((v, i) => h('option', {value: String(i), selected: JSON.stringify(v) === JSON.stringify(spec.default)}, String(v))));
    read = () => (control.value === '' ? undefined : spec.enum[Number(control.value)]);
  } else if (type === 'boolean') {
    control = h('input', {id, name, type: 'checkbox', checked: spec.default === true});
    read = () => control.checked;
  } else if (type === 'number') {
    control = h('input', {id, name, type: 'number', step: 'any', value: spec.default ?? ''});
    read = () => (control.value === '' ? undefined : Number(control.value));
  } else if (type === 'object' || type === 'array') {
    control = h('textarea', {id, name, spellcheck: 'false'},
      spec.default === undefined ? '' : JSON.stringify(spec.default, null, 2));
    read = () => {
      if (!control.value.trim()) return undefined;
      try { return JSON.parse(control.value); } catch (e) { throw new Error(`input ${name}: not JSON (${e.message})`); }
    };
  } else {
    control = h('input', {id, name, type: 'text', value: spec.default ?? '', maxlength: spec.max_length ?? null});
    read = () => (control.value === '' && !spec.required && spec.default === undefined ? undefined : control.value);
  }
  const label = h('label', {for: id}, name, spec.required ? ' *' : '', h('span', {class: 'muted'}, ` (${type})`));
  return {els: [label, h('div', null, control, spec.description ? h('div', {class: 'muted'}, spec.description) : null)], name, read};
}

function runForm(name, graph, ctx) {
  const inputs = Object.entries((graph && graph.inputs) || {}).map(([k, v]) => inputField(k, v));
  const status = h('p', {class: 'error', role: 'alert'});
  const submit = h('button', {type: 'submit'}, 'Start run');
  // One run per click: a double click or a second Enter while the first start is in flight, or
  // after it while the run's page is being drawn, starts nothing more.
  const start = oneAtATime(async () => {
    try {
      const values = {};
      for (const f of inputs) {
        const v = f.read();
        if (v !== undefined) values[f.name] = v;
      }
      const r = await api('/runs', {method: 'POST', body: {workflow: name, inputs: values}});
      ctx.go(`#/runs/${encodeURIComponent(r.run.id)}`);
      return LEAVING;
    } catch (e) {
      replace(status, String(e.message || e));
      return false;
    }
  });
  return h('form', {class: 'inputs', 'data-form': 'start-run', onsubmit: (ev) => {
    ev.preventDefault();
    start(submit);
  }},
  inputs.length ? inputs.flatMap((f) => f.els) : h('p', {class: 'muted full'}, 'This workflow declares no inputs.'),
  h('div', {class: 'full'}, submit),
  h('div', {class: 'full'}, status));
}

export async function renderWorkflow(view, [name], _query, ctx) {
  const [{workflow: wf, version, recent_runs: recent}, {versions}] = await Promise.all([
    api(`/workflows/${encodeURIComponent(name)}`),
    api(`/workflows/${encodeURIComponent(name)}/versions`),
  ]);
  const graph = version ? version.graph : null;
  const cron = (graph && graph.triggers && graph.triggers.cron) || [];
  const hook = graph && graph.triggers && graph.triggers.webhook;

  const from = h('select', {name: 'from'}, versions.map((v, i) => h('option', {value: v.version, selected: i === 1}, `v${v.version}`)));
  const to = h('select', {name: 'to'}, versions.map((v, i) => h('option', {value: v.version, selected: i === 0}, `v${v.version}`)));
  const diffBox = h('div');
  const showDiff = async (ev) => {
    if (ev) ev.preventDefault();
    try {
      const [a, b] = await Promise.all([from.value, to.value].map((n) =>
        api(`/workflows/${encodeURIComponent(name)}/versions/${n}`)));
      replace(diffBox, h('p', {class: 'muted'}, `v${from.value} → v${to.value}`),
              renderDiff(diffLines(a.version.source || '', b.version.source || '')));
    } catch (e) { ctx.error(e); }
  };

  replace(view,
    h('h1', null, 'Workflow ', wf.name),
    wf.description ? h('p', null, wf.description) : null,
    h('div', {class: 'grid'},
      h('div', {class: 'card'}, h('h2', null, 'Start a run'), runForm(wf.name, graph, ctx)),
      h('div', {class: 'card'}, h('h2', null, 'Triggers'),
        hook ? h('p', null, 'Webhook: ', h('code', null, `${(hook.methods || []).join(', ')} /hooks/${wf.name}`), ` (auth ${hook.auth})`)
             : h('p', {class: 'muted'}, 'No webhook.'),
        cron.length ? h('ul', null, cron.map((c) => h('li', null, h('code', null, c.schedule), ` in ${c.timezone || 'UTC'}`,
                                                      `, misfire ${c.misfire}, overlap ${c.overlap}`)))
                    : h('p', {class: 'muted'}, 'No cron schedule.'),
        wf.paused ? h('p', null, badge('paused')) : null)),
    h('h2', null, `Graph (v${wf.current_version})`),
    h('div', {class: 'graph-wrap'}, drawGraph(graph).el),
    h('h2', null, 'Recent runs'),
    table(['run', 'status', 'version', 'triggered by', 'created'], (recent || []).map((r) => h('tr', null,
      h('td', {class: 'mono'}, h('a', {href: `#/runs/${encodeURIComponent(r.id)}`}, r.id)),
      h('td', null, badge(r.status)), h('td', {class: 'num'}, r.version), h('td', null, r.triggered_by),
      h('td', null, fmtTime(r.created_at)))), {empty: 'no runs yet'}),
    h('h2', null, 'Versions'),
    table(['version', 'author', 'notes', 'checksum', 'created'], versions.map((v) => h('tr', null,
      h('td', null, `v${v.version}`), h('td', null, v.author || ''), h('td', {class: 'wrap'}, v.notes || ''),
      h('td', {class: 'mono'}, String(v.checksum || '').slice(0, 12)), h('td', null, fmtTime(v.created_at))))),
    versions.length > 1
      ? [h('h2', null, 'Compare versions'),
         h('form', {class: 'toolbar', onsubmit: showDiff}, h('label', null, 'from', from), h('label', null, 'to', to),
           h('button', {type: 'submit'}, 'Diff')), diffBox]
      : null,
    h('h2', null, 'Source'),
    h('pre', {class: 'json source'}, version ? version.source || '' : ''));
  if (versions.length > 1) showDiff();
}
