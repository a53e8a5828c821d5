// The template language (src/engine/template.h): Template::Parse, ParseCondition and
// Expression::Parse, then rendering against a fixed scope. Rendering must never throw and every
// reference must point inside the text.
#include <optional>
#include <string>

#include "core/json.h"
#include "engine/template.h"
#include "fuzz_check.h"

namespace {

using ferry::Json;
using ferry::fuzz::Check;

const Json& Root() {
  static const Json root = [] {
    auto parsed = ferry::ParseJson(R"({
      "inputs": {"name": "ferry", "count": 3, "deploy": true, "env": "prod", "ratio": -1.5,
                 "tags": ["a", "b", ""], "empty": {}},
      "nodes": {"build": {"status": "succeeded", "output": {"items": [1, "two", null, {"x": [3]}],
                                                          "text": "  Mixed Case  "}}},
      "run": {"id": "run_1", "attempt": 1},
      "trigger": {"headers": {"X-Id": "42"}, "body": {"a": {"b": {"c": [[[]]]}}}, "query": []}
    })");
    Check(parsed.has_value(), "the scope is valid JSON");
    return *parsed;
  }();
  return root;
}

void Exercise(const ferry::engine::Template& t, const ferry::engine::Scope& scope,
              size_t text_size) {
  for (const auto& part : t.Parts()) {
    Check(part.offset <= text_size, "part offsets are inside the text");
    if (!part.expr) continue;
    for (const auto& ref : part.expr->References()) {
      Check(ref.offset <= text_size, "reference offsets are inside the text");
      Check(!ref.parts.empty(), "a reference has a root");
    }
  }
  if (auto rendered = t.Render(scope)) (void)ferry::engine::Stringify(*rendered);
  (void)t.RenderString(scope);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = ferry::fuzz::Text(data, size);
  ferry::engine::Scope scope;
  scope.root = &Root();
  scope.secret = [](const std::string& name) -> std::optional<std::string> {
    if (name == "token") return "s3cr3t";
    return std::nullopt;
  };
  if (auto t = ferry::engine::Template::Parse(text)) Exercise(*t, scope, text.size());
  if (auto c = ferry::engine::ParseCondition(text)) {
    // A bare condition is read as if wrapped in {{ }}: offsets may then count the braces.
    Exercise(*c, scope, text.size() + 4);
    if (auto v = c->Render(scope)) (void)ferry::engine::Truthy(*v);
  }
  if (auto e = ferry::engine::Expression::Parse(text)) {
    for (const auto& ref : e->References()) {
      Check(ref.offset <= text.size(), "reference offsets are inside the expression");
    }
    if (auto v = e->Evaluate(scope)) {
      (void)ferry::engine::Truthy(*v);
      (void)ferry::DumpJson(*v);
    }
  }
  return 0;
}
