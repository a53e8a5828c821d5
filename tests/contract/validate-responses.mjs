// Checks recorded API answers against docs/openapi.json: each answer's route must be documented
// with its method, its status must be documented (exactly, as a range or as `default`), its
// Content-Type must be one the response lists, and a JSON body must match that response's
// schema. An answer on an undocumented path passes only as a 404/405 error body.
//
//   node tests/contract/validate-responses.mjs docs/openapi.json answers.jsonl
//
// Each line of answers.jsonl: {"method", "path" (with query), "status", "content_type", "body"}.
// Prints one line per problem and "N passed, M failed"; exits 1 when any failed.
import { readFileSync } from "node:fs";
import { compile, loadDocument, matchTemplate, responseFor } from "./openapi.mjs";

const [docFile, answersFile] = process.argv.slice(2);
if (!docFile || !answersFile) {
  console.error("usage: validate-responses.mjs OPENAPI.json ANSWERS.jsonl");
  process.exit(2);
}
const doc = loadDocument(docFile);
const { ops, errorSchema } = compile(doc);
const lines = readFileSync(answersFile, "utf8").split("\n").filter((l) => l.trim() !== "");

let passed = 0;
const failures = [];
const explain = (validate) =>
  (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`).join("; ");

for (const [i, line] of lines.entries()) {
  const a = JSON.parse(line);
  const where = `${a.method} ${a.path} -> ${a.status}`;
  const fail = (why) => failures.push(`answer ${i + 1}: ${where}: ${why}`);
  const media = (a.content_type ?? "").split(";")[0].trim().toLowerCase();
  const parse = () => {
    try {
      return { ok: true, value: JSON.parse(a.body) };
    } catch (e) {
      return { ok: false, why: `body is not JSON: ${e.message}` };
    }
  };
  const template = matchTemplate(doc, a.path);
  const method = a.method === "HEAD" ? "GET" : a.method;
  const op = template && ops.get(`${method} ${template}`);
  if (!op) {
    // Unknown routes and methods must still answer with the error shape.
    if (a.status !== 404 && a.status !== 405) {
      fail(template ? `method not documented for ${template}` : "path not documented");
      continue;
    }
    const body = parse();
    if (!body.ok) fail(body.why);
    else if (!errorSchema(body.value)) fail(`error body does not match Error: ${explain(errorSchema)}`);
    else passed++;
    continue;
  }
  const response = responseFor(op, a.status);
  if (!response) {
    fail(`status ${a.status} not documented for ${method} ${template}`);
    continue;
  }
  if (a.method === "HEAD") {
    passed++;
    continue;
  }
  const validate = response[media];
  if (!validate) {
    fail(`Content-Type ${media || "(none)"} not documented (${Object.keys(response).join(", ") || "no body"})`);
    continue;
  }
  if (media !== "application/json") {
    passed++;  // text/event-stream, text/plain: the media type is the contract
    continue;
  }
  const body = parse();
  if (!body.ok) fail(body.why);
  else if (!validate(body.value)) fail(`body does not match: ${explain(validate)}\n  body: ${a.body.slice(0, 400)}`);
  else passed++;
}
for (const f of failures) console.error(f);
console.log(`${passed} passed, ${failures.length} failed`);
process.exit(failures.length > 0 || lines.length === 0 ? 1 : 0);
