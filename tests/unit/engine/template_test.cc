#include "engine/template.h"

#include <gtest/gtest.h>

namespace ferry::engine {
namespace {

Json Root() {
  return Json::parse(R"({
    "inputs": {"who": "World", "n": 3, "flag": true, "list": [1, 2, 3], "empty": ""},
    "nodes": {"build": {"output": {"items": ["a", "b"], "ok": true, "code": 0}}},
    "run": {"id": "R1", "workflow": "w", "triggered_by": "api"},
    "trigger": {"headers": {"X-Id": "h1"}}
  })");
}

Result<Json> Eval(const std::string& expr, const Json& root = Root()) {
  auto e = Expression::Parse(expr);
  if (!e) return Fail(e.error());
  Scope s;
  s.root = &root;
  s.secret = [](const std::string& n) -> std::optional<std::string> {
    if (n == "TOKEN") return std::string("s3cret");
    return std::nullopt;
  };
  return e->Evaluate(s);
}

struct Case {
  std::string expr;
  Json want;
};

TEST(Expression, EvaluatesTable) {
  const std::vector<Case> cases = {
      {"inputs.who", "World"},
      {"inputs.n", 3},
      {"inputs.missing", nullptr},
      {"inputs.list[0]", 1},
      {"inputs.list[-1]", 3},
      {"inputs.list[9]", nullptr},
      {"nodes.build.output.items[1]", "b"},
      {"trigger.headers[\"X-Id\"]", "h1"},
      {"inputs.n == 3", true},
      {"inputs.n != 3", false},
      {"inputs.n > 2 and inputs.n <= 3", true},
      {"inputs.n < 2 or inputs.flag", true},
      {"not inputs.flag", false},
      {"not (inputs.n == 3 and false)", true},
      {"'a' < 'b'", true},
      {"inputs.missing | default('x')", "x"},
      {"inputs.who | default('x')", "World"},
      {"inputs.who | upper", "WORLD"},
      {"inputs.who | lower", "world"},
      {"'  pad ' | trim", "pad"},
      {"inputs.list | json", "[1,2,3]"},
      {"length(inputs.list)", 3},
      {"inputs.who | length", 5},
      // Characters, not bytes: é is two bytes, 世 three, 🚀 four (it said 18 for these 10).
      {"'h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x9A\x80' | length", 10},
      {"'' | length", 0},
      {"length(inputs.missing)", 0},
      {"null", nullptr},
      {"-1.5", -1.5},
      {"\"q\\\"uote\"", "q\"uote"},
      {"secrets.TOKEN", "s3cret"},
      {"inputs.empty or 'fallback'", true},
      {"nodes.build.output.code == 0", true},
  };
  for (const auto& c : cases) {
    auto got = Eval(c.expr);
    ASSERT_TRUE(got.has_value()) << c.expr << ": " << got.error().message;
    EXPECT_EQ(*got, c.want) << c.expr;
  }
}

TEST(Expression, ParseErrorsNameTheOffset) {
  const std::vector<std::string> bad = {
      "",    "inputs.", "(inputs.x", "a ==", "'open", "inputs.x |",
      "a b", "1 = 2",   "x[1",       "and",  "a ! b", "'\\q'"};
  for (const auto& b : bad) {
    auto e = Expression::Parse(b);
    ASSERT_FALSE(e.has_value()) << b;
    EXPECT_NE(e.error().message.find("at offset"), std::string::npos) << e.error().message;
  }
}

TEST(Expression, DeepNestingIsRejectedNotACrash) {
  std::string deep(10000, '(');
  EXPECT_FALSE(Expression::Parse(deep).has_value());
  std::string nots;
  for (int i = 0; i < 5000; ++i) nots += "not ";
  EXPECT_FALSE(Expression::Parse(nots + "true").has_value());
}

TEST(Expression, TypeErrorsAreErrors) {
  EXPECT_FALSE(Eval("inputs.n < 'a'").has_value());
  EXPECT_FALSE(Eval("inputs.n | upper").has_value());
  EXPECT_FALSE(Eval("nope(1)").has_value());
  EXPECT_FALSE(Eval("secrets.UNKNOWN").has_value());
  EXPECT_FALSE(Eval("secrets").has_value());
  EXPECT_FALSE(Eval("default(1)").has_value());
}

// A failure at run time quotes the expression as written between its braces, spaces and all,
// so it can be found in the definition; its offset counts from after the `{{`.
TEST(Template, ARunTimeErrorQuotesTheExpressionAsWritten) {
  const Json root = Root();
  Scope s;
  s.root = &root;
  for (const std::string written : {" upper(3) ", "upper(3)", "  upper(3)"}) {
    auto t = Template::Parse("x {{" + written + "}} y");
    ASSERT_TRUE(t) << t.error().message;
    auto r = t->Render(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message.rfind("{{" + written + "}}: at offset ", 0), 0u)
        << r.error().message;
  }
}

// Functions and filters are checked when the template is parsed (at ingestion), against the
// table the evaluator uses: a typo or a wrong argument count never waits for the node to run.
TEST(Expression, CallsAreCheckedAgainstTheFunctionTable) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"inputs.x | uper", "at offset 11: unknown function 'uper' (did you mean 'upper'?)"},
      {"nosuchfn(x)",
       "unknown function 'nosuchfn'; the functions are default, json, length, lower, trim, upper"},
      {"x | default",
       "filter 'default' takes 1 argument besides its input (x | default(y)), "
       "given 0 arguments"},
      {"x | upper(1)",
       "filter 'upper' takes 0 arguments besides its input (x | upper), given 1 argument"},
      {"length()", "function 'length' takes 1 argument (length(x)), given 0 arguments"},
      {"upper(a, b)", "function 'upper' takes 1 argument (upper(x)), given 2 arguments"},
      {"default(x)", "function 'default' takes 2 arguments (default(x, y)), given 1 argument"},
      {"not (x | lenght) and y", "unknown function 'lenght' (did you mean 'length'?)"},
  };
  for (const auto& [expr, want] : bad) {
    auto e = Expression::Parse(expr);
    ASSERT_FALSE(e.has_value()) << expr;
    EXPECT_NE(e.error().message.find(want), std::string::npos) << e.error().message;
  }
  for (const std::string good : {"x | upper", "upper(x)", "x | default(y)", "default(x, y)",
                                 "length(x)", "x | json | length", "x | trim | lower"}) {
    EXPECT_TRUE(Expression::Parse(good).has_value()) << good;
  }
}

TEST(Expression, ReferencesListStaticPaths) {
  auto e = Expression::Parse("nodes.build.output.items[0] == inputs['who'] and x[inputs.n]");
  ASSERT_TRUE(e.has_value());
  std::vector<std::vector<std::string>> got;
  for (const auto& r : e->References()) got.push_back(r.parts);
  std::vector<std::vector<std::string>> want = {
      {"nodes", "build", "output", "items"}, {"inputs", "who"}, {"x"}, {"inputs", "n"}};
  EXPECT_EQ(got, want);
}

TEST(Template, WholeTemplateYieldsTheValue) {
  Json root = Root();
  Scope s{&root, nullptr};
  auto t = Template::Parse("{{ inputs.list }}");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t->Render(s), Json::parse("[1,2,3]"));
  auto spaced = Template::Parse("  {{ inputs.n }} ");
  EXPECT_EQ(*spaced->Render(s), Json(3));
}

TEST(Template, MixedTextYieldsAString) {
  Json root = Root();
  Scope s{&root, nullptr};
  auto t = Template::Parse(
      "Hello, {{ inputs.who }}! n={{inputs.n}} l={{ inputs.list }} m={{ inputs.missing }}.");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t->Render(s), Json("Hello, World! n=3 l=[1,2,3] m=."));
  auto plain = Template::Parse("no templates");
  EXPECT_FALSE(plain->HasExpressions());
  EXPECT_EQ(*plain->Render(s), Json("no templates"));
}

TEST(Template, BracesInsideStringLiterals) {
  Json root = Root();
  Scope s{&root, nullptr};
  auto t = Template::Parse("{{ '}}' }}x");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(*t->Render(s), Json("}}x"));
}

TEST(Template, UnclosedAndBadPartsFailWithOffset) {
  auto a = Template::Parse("abc {{ inputs.x");
  ASSERT_FALSE(a.has_value());
  EXPECT_NE(a.error().message.find("offset 4"), std::string::npos) << a.error().message;
  auto b = Template::Parse("abc {{ inputs.x == }}");
  ASSERT_FALSE(b.has_value());
  EXPECT_NE(b.error().message.find("offset"), std::string::npos);
}

TEST(Template, ConditionAcceptsBareExpressions) {
  Json root = Root();
  Scope s{&root, nullptr};
  auto c = ParseCondition("inputs.n > 1");
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(Truthy(*c->Render(s)));
  auto d = ParseCondition("{{ inputs.flag and false }}");
  EXPECT_FALSE(Truthy(*d->Render(s)));
}

TEST(Template, TruthinessAndStringify) {
  EXPECT_FALSE(Truthy(Json(nullptr)));
  EXPECT_FALSE(Truthy(Json(0)));
  EXPECT_FALSE(Truthy(Json("")));
  EXPECT_FALSE(Truthy(Json::array()));
  EXPECT_FALSE(Truthy(Json::object()));
  EXPECT_TRUE(Truthy(Json("0")));
  EXPECT_TRUE(Truthy(Json(0.5)));
  EXPECT_EQ(Stringify(Json(nullptr)), "");
  EXPECT_EQ(Stringify(Json(true)), "true");
  EXPECT_EQ(Stringify(Json("x")), "x");
}

TEST(Template, RenderJsonTemplatesWalksValues) {
  Json root = Root();
  Scope s{&root, nullptr};
  Json in = Json::parse(
      R"({"who": "{{ inputs.who }}", "n": "{{ inputs.n }}", "list": ["x{{inputs.n}}", 5], "k": false})");
  auto out = RenderJsonTemplates(in, s);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, Json::parse(R"({"who": "World", "n": 3, "list": ["x3", 5], "k": false})"));
}

}  // namespace
}  // namespace ferry::engine
