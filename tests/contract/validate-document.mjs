// Validates an OpenAPI document (docs/openapi.json) against the OpenAPI 3.1 schema with
// @seriousme/openapi-schema-validator, then checks what that schema leaves open and Ferry relies
// on: every schema compiles under JSON Schema 2020-12 in Ajv's strict mode (a misspelt keyword
// or type is an error), every operation has a unique operationId, every $ref resolves.
//
//   node tests/contract/validate-document.mjs docs/openapi.json
import { Validator } from "@seriousme/openapi-schema-validator";
import { compile, loadDocument } from "./openapi.mjs";

const file = process.argv[2];
if (!file) {
  console.error("usage: validate-document.mjs OPENAPI.json");
  process.exit(2);
}
const doc = loadDocument(file);
const validator = new Validator();
const result = await validator.validate(doc);
const problems = [];
if (!result.valid) {
  problems.push(`not a valid OpenAPI document: ${JSON.stringify(result.errors, null, 2)}`);
}
if (validator.version !== "3.1") problems.push(`OpenAPI version ${validator.version}, want 3.1`);

const ids = new Map();
for (const [path, item] of Object.entries(doc.paths ?? {})) {
  for (const [method, op] of Object.entries(item)) {
    if (!op.operationId) problems.push(`${method.toUpperCase()} ${path}: no operationId`);
    else if (ids.has(op.operationId)) problems.push(`operationId ${op.operationId} used twice`);
    else ids.set(op.operationId, path);
  }
}
// Every local $ref points at something.
const resolve = (ref) =>
  ref
    .slice(2)
    .split("/")
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((node, key) => (node == null ? undefined : node[key]), doc);
const walk = (node, where) => {
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${where}/${i}`));
  else if (node && typeof node === "object") {
    if (typeof node.$ref === "string" && (!node.$ref.startsWith("#/") || resolve(node.$ref) === undefined)) {
      problems.push(`${where}: $ref ${node.$ref} does not resolve`);
    }
    for (const [k, v] of Object.entries(node)) walk(v, `${where}/${k}`);
  }
};
walk(doc, "#");
if (problems.length === 0) {
  try {
    compile(doc);
  } catch (e) {
    problems.push(`a schema does not compile: ${e.message}`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`${file}: valid OpenAPI ${validator.version}, ${ids.size} operations, every schema compiles`);
