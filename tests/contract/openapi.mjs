// docs/openapi.json for the contract checks: its schemas compiled with Ajv (JSON Schema 2020-12,
// OpenAPI 3.1's dialect, strict, formats checked), and a concrete request matched to its
// documented operation and response.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

export function loadDocument(file) {
  return JSON.parse(readFileSync(file, "utf8"));
}

// "#/components/schemas/X" -> "components#/$defs/X", so the component schemas live in one Ajv
// schema of their own and each response schema compiles alone.
function rewriteRefs(node) {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === "object") {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] =
        k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")
          ? "components#/$defs/" + v.slice("#/components/schemas/".length)
          : rewriteRefs(v);
    }
    return out;
  }
  return node;
}

// Every response schema of every operation, compiled. Throws on a malformed schema (an unknown
// keyword, a wrong type name, a dangling $ref). Returns
// {ops: Map("GET /api/v1/tasks" -> {template, method, responses: {status: {media: validate}}})}.
export function compile(doc) {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  // OpenAPI's own annotation keyword on media types is not a schema keyword; none used in schemas.
  ajv.addSchema({ $id: "components", $defs: rewriteRefs(doc.components?.schemas ?? {}) });
  const sharedResponses = doc.components?.responses ?? {};
  const ops = new Map();
  for (const [template, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      const responses = {};
      for (let [status, response] of Object.entries(op.responses ?? {})) {
        if (response.$ref) {
          response = sharedResponses[response.$ref.split("/").pop()];
          if (!response) throw new Error(`${method} ${template} ${status}: unknown response ref`);
        }
        responses[status] = {};
        for (const [media, content] of Object.entries(response.content ?? {})) {
          const schema = rewriteRefs(content.schema ?? {});
          responses[status][media] = ajv.compile(schema);
        }
      }
      ops.set(`${method.toUpperCase()} ${template}`, { template, method: method.toUpperCase(), responses });
    }
  }
  // Compile every component too, so one that no response uses is still checked.
  for (const name of Object.keys(doc.components?.schemas ?? {})) ajv.getSchema(`components#/$defs/${name}`);
  return { ops, errorSchema: ajv.getSchema("components#/$defs/Error") };
}

// The documented path template a concrete path falls under: literal segments must match, a
// "{name}" segment takes any one non-empty segment; the template with more literal segments
// wins (as the server's router does: /api/v1/tasks/batch before /api/v1/tasks/{id}).
export function matchTemplate(doc, path) {
  const segs = path.split("?")[0].split("/").slice(1).map((s) => decodeURIComponent(s));
  let best = null;
  let bestLiterals = -1;
  for (const template of Object.keys(doc.paths ?? {})) {
    const t = template.split("/").slice(1);
    if (t.length !== segs.length) continue;
    let literals = 0;
    let ok = true;
    for (let i = 0; i < t.length && ok; i++) {
      if (/^\{[^}]+\}$/.test(t[i])) ok = segs[i].length > 0;
      else if (t[i] === segs[i]) literals++;
      else ok = false;
    }
    if (ok && literals > bestLiterals) {
      best = template;
      bestLiterals = literals;
    }
  }
  return best;
}

// The documented response for a status: exact ("201"), range ("4XX"), then "default".
export function responseFor(op, status) {
  const s = String(status);
  return op.responses[s] ?? op.responses[`${s[0]}XX`] ?? op.responses.default;
}
