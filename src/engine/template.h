// `{{ expr }}` templates: a small, side-effect-free expression language for workflow fields.
//
//   paths       inputs.name   nodes.build.output.items[0]   trigger.headers["X-Id"]
//   literals    "text" 'text' 42 -1.5 true false null
//   operators   == != < <= > >=   and or not   ( )
//   filters     x | default("y")   x | json   x | upper   x | lower   x | trim   x | length
//   functions   length(x)
//
// Evaluation never runs user code and never throws: a missing path is null (so `default` works),
// a type error is an Error. Parsing happens at ingestion so a bad template fails before it is
// stored: its syntax, and each call's function name and argument count (one table, in
// template.cc, for the parser and the evaluator); `References()` lists the paths an expression
// reads so the validator can check roots.
//
// Thread-safety: a compiled Expression / Template is immutable and may be evaluated from many
// threads at once; the Scope passed to Evaluate must not be modified during the call.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace ferry::engine {

struct ExprNode;  // defined in template.cc

// A static path an expression reads: its root identifier followed by the member names that are
// known at parse time (`nodes.build.output` -> {"nodes", "build", "output"}). Dynamic indexes end
// the static part.
struct Reference {
  std::vector<std::string> parts;
  size_t offset = 0;  // byte offset of the path inside the expression text
};

// What an expression sees. `root` is an object with the keys inputs, nodes, run, trigger.
// `secret` resolves `secrets.NAME`; it returns nullopt for an unknown secret (an error).
struct Scope {
  const Json* root = nullptr;
  std::function<std::optional<std::string>(const std::string& name)> secret;
};

class Expression {
 public:
  // Errors name the byte offset inside `text` ("at offset 7: expected ')'").
  static Result<Expression> Parse(std::string_view text);

  Result<Json> Evaluate(const Scope& scope) const;
  const std::vector<Reference>& References() const { return refs_; }
  const std::string& Text() const { return text_; }

 private:
  friend class Template;  // re-bases reference offsets onto the enclosing string

  std::string text_;
  std::shared_ptr<const ExprNode> root_;
  std::vector<Reference> refs_;
};

// Truthiness used by `when:`: null, false, 0, "", [] and {} are false; everything else true.
bool Truthy(const Json& value);
// How a value is written into surrounding text: strings as-is, null as "", the rest as JSON.
std::string Stringify(const Json& value);

// A string with zero or more `{{ expr }}` parts.
class Template {
 public:
  struct Part {
    std::string text;                // literal text, when expr is empty
    std::optional<Expression> expr;  // an expression part
    size_t offset = 0;               // byte offset of the part in the source string
  };

  // Errors name the byte offset inside `source` of the problem.
  static Result<Template> Parse(std::string_view source);

  // A template that is exactly one `{{ expr }}` (surrounding whitespace allowed) yields the
  // expression's JSON value; anything else yields a string.
  Result<Json> Render(const Scope& scope) const;
  // Render, then Stringify: for fields that must be strings (argv, env, urls).
  Result<std::string> RenderString(const Scope& scope) const;

  bool HasExpressions() const;
  const std::vector<Part>& Parts() const { return parts_; }

 private:
  std::vector<Part> parts_;
  bool whole_ = false;
};

// A `when:` condition: either a template ("{{ inputs.deploy and inputs.env == 'prod' }}") or a
// bare expression ("inputs.deploy"), which is read as if it were wrapped in {{ }}.
Result<Template> ParseCondition(std::string_view text);

// Renders every string inside `value` (object values and array elements, not keys) as a template.
Result<Json> RenderJsonTemplates(const Json& value, const Scope& scope);

}  // namespace ferry::engine
