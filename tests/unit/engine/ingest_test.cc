#include "engine/ingest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <utility>

#include "core/suggest.h"

namespace ferry::engine {
namespace {

using ::testing::HasSubstr;

std::vector<Diagnostic> Problems(const std::string& yaml, const IngestOptions& opts = {}) {
  auto r = Ingest(yaml, opts);
  if (r) return {};
  return r.error();
}

// The one diagnostic whose message contains `needle`; fails the test when there is none.
Diagnostic Find(const std::vector<Diagnostic>& ds, const std::string& needle) {
  for (const auto& d : ds) {
    if (d.ToString().find(needle) != std::string::npos) return d;
  }
  ADD_FAILURE() << "no diagnostic containing '" << needle << "' in:\n" << FormatDiagnostics(ds);
  return {};
}

const char* kGood = R"(name: deploy
description: Build and ship
inputs:
  who: {type: string, default: World}
  count: {type: number, default: 1}
triggers:
  webhook:
    methods: [POST]
    auth: hmac
    secret: DEPLOY_HOOK
  cron:
    schedule: "*/5 * * * *"
    timezone: Europe/Paris
    misfire: catch_up
    catch_up_max: 3
    overlap: skip
defaults:
  retry: {max_attempts: 2, backoff: 1s}
  timeout: 30s
nodes:
  greet:
    kind: shell
    argv: [echo, "Hello {{ inputs.who }}"]
  shape:
    kind: lua
    needs: [greet]
    script: |
      return { text = nodes.greet.output.stdout, n = inputs.count }
  wait:
    kind: delay
    needs: greet
    duration: 2s
    when: "{{ inputs.count > 1 }}"
  call:
    kind: http
    needs: [shape, wait]
    method: post
    url: "https://example.com/hook"
    headers: {Authorization: "Bearer {{ secrets.API_TOKEN }}"}
    body: {text: "{{ nodes.shape.output.text }}", n: 1}
    expect_status: [200, 201]
    retry: 5
  hand:
    kind: task
    needs: [call]
    task: {kind: echo, queue: default, payload: {x: "{{ nodes.call.output.status }}"}, timeout: 10s}
secrets: [API_TOKEN]
)";

TEST(Ingest, AcceptsAFullDefinition) {
  auto r = Ingest(kGood);
  ASSERT_TRUE(r.has_value()) << FormatDiagnostics(r.error());
  const Workflow& wf = r->workflow;
  EXPECT_EQ(wf.name, "deploy");
  ASSERT_EQ(wf.inputs.size(), 2u);
  EXPECT_EQ(*wf.inputs[0].default_value, Json("World"));
  ASSERT_TRUE(wf.webhook.has_value());
  EXPECT_EQ(wf.webhook->auth, WebhookAuth::kHmac);
  EXPECT_EQ(wf.webhook->secrets, std::vector<std::string>{"DEPLOY_HOOK"});
  ASSERT_EQ(wf.cron.size(), 1u);
  EXPECT_EQ(wf.cron[0].misfire, MisfirePolicy::kCatchUp);
  EXPECT_EQ(wf.cron[0].catch_up_max, 3);
  EXPECT_EQ(wf.cron[0].overlap, OverlapPolicy::kSkip);
  ASSERT_EQ(wf.nodes.size(), 5u);
  EXPECT_EQ(wf.nodes[0].retry.max_attempts, 2);  // from defaults
  EXPECT_EQ(wf.nodes[0].timeout, std::chrono::seconds(30));
  EXPECT_EQ(wf.nodes[3].retry.max_attempts, 5);
  EXPECT_EQ(wf.nodes[2].needs, std::vector<std::string>{"greet"});
  const auto& http = std::get<HttpSpec>(wf.nodes[3].spec);
  EXPECT_EQ(http.method, "POST");
  EXPECT_EQ(http.expect_status, (std::vector<int>{200, 201}));
  EXPECT_EQ((*http.body)["n"], Json(1));
  const auto& lua = std::get<LuaSpec>(wf.nodes[1].spec);
  EXPECT_EQ(lua.script_line, 28);
  EXPECT_EQ(wf.secret_names, (std::vector<std::string>{"API_TOKEN", "DEPLOY_HOOK"}));
  EXPECT_EQ(r->checksum.size(), 64u);
}

TEST(Ingest, CanonicalFormIsReingestableAndStable) {
  auto a = Ingest(kGood);
  ASSERT_TRUE(a.has_value());
  auto b = Ingest(DumpJson(a->canonical, 2));
  ASSERT_TRUE(b.has_value()) << FormatDiagnostics(b.error());
  EXPECT_EQ(a->checksum, b->checksum);
  EXPECT_EQ(a->canonical, b->canonical);
  // Comments and formatting do not change the checksum; content does.
  auto c = Ingest(std::string("# a comment\n") + kGood);
  EXPECT_EQ(a->checksum, c->checksum);
  std::string changed = kGood;
  changed.replace(changed.find("duration: 2s"), 12, "duration: 3s");
  auto d = Ingest(changed);
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(a->checksum, d->checksum);
}

TEST(Ingest, JsonDocumentsWork) {
  auto r = Ingest(R"({"name": "j", "nodes": [{"id": "a", "kind": "fail", "message": "x"}]})");
  ASSERT_TRUE(r.has_value()) << FormatDiagnostics(r.error());
  auto bad = Problems(
      "{\n  \"name\": \"j\",\n  \"nodes\": [{\"id\": \"a\", \"kind\": \"fail\",\n \"mesage\": "
      "\"x\"}]}");
  auto d = Find(bad, "unknown field 'mesage'");
  EXPECT_EQ(d.line, 4);
}

TEST(Ingest, UnknownFieldsAtEveryLevelWithSuggestions) {
  auto ds = Problems(R"(name: w
descripton: typo
inputs:
  a: {type: string, requird: true}
triggers:
  webhook: {method: [POST]}
  crn: {}
defaults: {retyr: 2}
nodes:
  - id: a
    kind: shell
    argv: [true]
    nedes: []
  - id: b
    kind: shell
    argv: [true]
    url: http://x
)");
  EXPECT_EQ(Find(ds, "did you mean 'description'").line, 2);
  auto input = Find(ds, "did you mean 'required'");
  EXPECT_EQ(input.line, 4);
  EXPECT_EQ(input.column, 21);
  EXPECT_EQ(Find(ds, "did you mean 'methods'").line, 6);
  EXPECT_EQ(Find(ds, "did you mean 'cron'").line, 7);
  EXPECT_EQ(Find(ds, "did you mean 'retry'").line, 8);
  auto needs = Find(ds, "unknown field 'nedes' (did you mean 'needs'?)");
  EXPECT_EQ(needs.line, 13);
  EXPECT_EQ(needs.column, 5);
  EXPECT_EQ(needs.path, "nodes.a");
  EXPECT_EQ(Find(ds, "'url' belongs to http nodes").line, 17);
  EXPECT_THAT(needs.ToString(), HasSubstr("line 13, column 5: nodes.a: unknown field"));
}

// A task node's task fields written on the node itself are told where they belong; `timeout`
// there is the node's own (a field every node has), so it is accepted.
TEST(Ingest, ATaskFieldOnATaskNodeIsToldToGoUnderTask) {
  auto ds = Problems(R"(name: t
nodes:
  child:
    kind: task
    task: {kind: k}
    queue: elsewhere
    max_attempts: 3
    timeout: 5s
)");
  auto queue = Find(ds,
                    "unknown field 'queue' ('queue' belongs under 'task:', the task this task "
                    "node submits)");
  EXPECT_EQ(queue.line, 6);
  EXPECT_EQ(queue.path, "nodes.child");
  EXPECT_EQ(Find(ds, "'max_attempts' belongs under 'task:'").line, 7);
  EXPECT_EQ(ds.size(), 2u);
}

// Without the cron parser (loading a stored graph, which it judged when the workflow was
// applied), the shape check takes at least what the parser takes: macros in any case, fields
// split on any blanks. A workflow applied with "@EVERY 90s" could be stored, then not loaded.
// The near misses are still refused.
TEST(Ingest, TheCronShapeCheckTakesWhatTheCronParserTakes) {
  for (const std::string schedule :
       {"@eVery 90s", "@DAILY", "  @hourly ", "@every\t1h30m", "0  9 * * *", "*/5\t* * * *"}) {
    auto r = IngestWorkflow("name: c\ntriggers:\n  cron:\n    - schedule: \"" + schedule +
                            "\"\nnodes:\n  a: {kind: fail}\n");
    EXPECT_TRUE(r) << schedule << ": " << (r ? "" : r.error().message);
    if (r) {
      EXPECT_TRUE(IngestStoredGraph(DumpJson(r->canonical))) << schedule;
    }
  }
  for (const std::string schedule : {"@dayly", "@every", "@every 90s 1h", "@daily 5", "* * * *"}) {
    auto r = IngestWorkflow("name: c\ntriggers:\n  cron:\n    - schedule: \"" + schedule +
                            "\"\nnodes:\n  a: {kind: fail}\n");
    EXPECT_FALSE(r) << schedule;
  }
}

TEST(Ingest, WrongTypesAndMissingFields) {
  auto ds = Problems(R"(name: Bad Name
inputs:
  a: {type: strng, required: maybe}
  b: {type: number, default: "three"}
nodes:
  x:
    kind: shell
    argv: echo
  y:
    kind: http
  z:
    kind: delay
    duration: soon
  w:
    kind: teleport
  v:
    argv: [true]
    timeout: [1]
)");
  EXPECT_EQ(Find(ds, "not a valid name").line, 1);
  EXPECT_EQ(Find(ds, "did you mean 'string'").line, 3);
  EXPECT_EQ(Find(ds, "expected true or false").line, 3);
  EXPECT_EQ(Find(ds, "default does not match type number").line, 4);
  EXPECT_EQ(Find(ds, "expected a list of strings").line, 8);
  Find(ds, "missing required field 'url'");
  EXPECT_EQ(Find(ds, "bad duration").line, 13);
  EXPECT_EQ(Find(ds, "'teleport' is not valid").line, 15);
  EXPECT_EQ(Find(ds, "missing required field 'kind'").line, 16);
  EXPECT_EQ(Find(ds, "expected a duration").line, 18);
}

// A task node cannot submit Ferry's own kinds: a ferry.run task names a run, and a forged one
// would take that run over. The near misses are ordinary kinds.
TEST(Ingest, ATaskNodeCannotSubmitFerrysOwnKinds) {
  auto ds = Problems(R"(name: forge
nodes:
  a: {kind: task, task: {kind: ferry.run, payload: {run_id: x}}}
  b: {kind: task, task: {kind: ferry.anything}}
  c: {kind: task, task: {kind: ferryrun}}
  d: {kind: task, task: {kind: my.ferry.run}}
)");
  EXPECT_EQ(Find(ds, "task kind 'ferry.run' is Ferry's own").line, 3);
  EXPECT_EQ(Find(ds, "task kind 'ferry.anything' is Ferry's own").line, 4);
  EXPECT_EQ(ds.size(), 2u);
}

// A kind is not rendered: a template in it would be submitted as its text.
TEST(Ingest, ATaskKindIsALiteralNotATemplate) {
  auto ds = Problems(R"(name: k
inputs: {k: string}
nodes:
  a: {kind: task, task: {kind: "{{ inputs.k }}"}}
  b: {kind: task, task: {kind: "image.{{inputs.k}}"}}
  c: {kind: task, task: {kind: "image.{resize}"}}
  d: {kind: task, task: {kind: image.resize, payload: {k: "{{ inputs.k }}"}}}
)");
  EXPECT_EQ(Find(ds,
                 "nodes.a.task.kind: task kind '{{ inputs.k }}' holds a template; a kind is "
                 "a literal handler name")
                .line,
            4);
  EXPECT_EQ(Find(ds, "task kind 'image.{{inputs.k}}' holds a template").line, 5);
  EXPECT_EQ(ds.size(), 2u) << FormatDiagnostics(ds);
}

// A lua node's args are a map of names to any values; templates inside them are checked as
// anywhere else, at their own lines.
TEST(Ingest, LuaArgsAreAMapOfValuesWithCheckedTemplates) {
  auto ds = Problems(R"(name: a
nodes:
  x:
    kind: lua
    script: return 1
    args: [1, 2]
  y:
    kind: lua
    script: return 1
    args:
      ok: [1, {n: 2}]
      bad: ["{{ nodes.nope.output }}"]
)");
  EXPECT_EQ(Find(ds, "expected a map of names to values, got a list").line, 6);
  EXPECT_EQ(Find(ds, "no node 'nope'").line, 12);
  EXPECT_EQ(ds.size(), 2u);
}

TEST(Ingest, MissingNeedsDuplicatesAndCycles) {
  auto ds = Problems(R"(name: g
nodes:
  - {id: build, kind: fail}
  - {id: test, kind: fail, needs: [buld]}
  - {id: test, kind: fail}
  - {id: a, kind: fail, needs: [c]}
  - {id: b, kind: fail, needs: [a]}
  - {id: c, kind: fail, needs: [b]}
  - {id: self, kind: fail, needs: [self]}
)");
  auto missing = Find(ds, "no node 'buld' (did you mean 'build'?)");
  EXPECT_EQ(missing.line, 4);
  EXPECT_EQ(Find(ds, "duplicate node id 'test' (first defined on line 4)").line, 5);
  auto cyc = Find(ds, "cycle: ");
  EXPECT_THAT(cyc.message, HasSubstr("a -> b -> c -> a"));
  // At an edge of the cycle, where the user would cut it: a's entry `c`, not a's own key.
  EXPECT_EQ(cyc.path, "nodes.a.needs");
  EXPECT_EQ(cyc.line, 6);
  EXPECT_EQ(cyc.column, 33);
  Find(ds, "cannot need itself");
}

TEST(Ingest, TemplatesAreCheckedAtIngestion) {
  auto ds = Problems(R"(name: t
inputs:
  who: string
nodes:
  a:
    kind: shell
    argv: [echo, "{{ inputs.who }}", "{{ foo.x }}", "{{ inputs.whom }}"]
  b:
    kind: shell
    argv: [echo, "{{ nodes.a.output.stdout }}", "{{ nodes.c.output }}", "{{ inputs.who == }}"]
    needs: [a]
  c:
    kind: fail
    message: "{{ nodes.a }} {{ run.nope }} {{ trigger.bodi }} {{ secrets }}"
  d:
    kind: fail
    needs: [b]
    when: "nodes.a.output.exit_code == 0 and {{"
  e:
    kind: fail
    needs: [d]
    message: "{{ nodes.a.output.stdout }} {{ nodes.nope.output }}"
)");
  EXPECT_EQ(Find(ds, "unknown name 'foo'").line, 7);
  EXPECT_EQ(Find(ds, "no input 'whom' is declared (did you mean 'who'?)").line, 7);
  EXPECT_EQ(Find(ds, "node 'c' is not in this node's needs").line, 10);
  EXPECT_EQ(Find(ds, "bad template").line, 10);
  Find(ds, "read a node's result as nodes.<id>.output");
  Find(ds, "run has id, workflow and triggered_by, not 'nope'");
  Find(ds, "did you mean 'body'");
  Find(ds, "read a secret as secrets.NAME");
  EXPECT_EQ(Find(ds, "nodes.d.when").line, 18);
  Find(ds, "no node 'nope'");
  // e reads a through d -> b -> a: a transitive dependency is fine.
  for (const auto& d : ds)
    EXPECT_NE(d.path.rfind("nodes.e.message", 0) == 0 && d.message.find("'a'") != std::string::npos,
              true);
}

TEST(Ingest, UnknownFunctionsAndArgumentCountsAreIngestionErrors) {
  auto ds = Problems(R"(name: t
inputs:
  x: string
nodes:
  a:
    kind: shell
    argv: [echo, "{{ inputs.x | uper }}", "{{ inputs.x | default }}"]
  b:
    kind: fail
    when: "length() > 0"
    message: "{{ upper(inputs.x, inputs.x) }}"
)");
  EXPECT_EQ(Find(ds,
                 "nodes.a.argv[1]: bad template: at offset 14: unknown function 'uper' "
                 "(did you mean 'upper'?)")
                .line,
            7);
  Find(ds, "nodes.a.argv[2]: bad template: at offset 14: filter 'default' takes 1 argument");
  Find(ds, "nodes.b.when: bad template: at offset 0: function 'length' takes 1 argument");
  Find(ds, "nodes.b.message: bad template: at offset 3: function 'upper' takes 1 argument");
  EXPECT_EQ(ds.size(), 4u) << FormatDiagnostics(ds);
}

TEST(Ingest, LuaSyntaxErrorsMapToFileLines) {
  auto ds = Problems(R"(name: l
nodes:
  t:
    kind: lua
    script: |
      local x = 1
      return x +
)");
  auto d = Find(ds, "lua:");
  EXPECT_EQ(d.line, 5);
  // The script's second line is on line 7 of the file; the error is at its end (line 7/8).
  EXPECT_THAT(d.message, HasSubstr("workflow line"));
  EXPECT_THAT(d.message, HasSubstr("nodes.t.script:"));
}

TEST(Ingest, WebhookAndCronTriggers) {
  auto ds = Problems(R"(name: tr
triggers:
  webhook:
    auth: hmac
    methods: [POST, FETCH]
    secret_env: X
    tolerance: forever
  cron:
    - schedule: "* * *"
    - schedule: "@fortnightly"
      timezone: "Not a zone!"
    - schedule: "0 9 * * MON"
      misfire: run_twice
      overlap: queue
      catch_up_max: 5
      start: yesterday
nodes:
  a: {kind: fail}
)");
  EXPECT_EQ(Find(ds, "auth 'hmac' needs 'secret: NAME'").line, 4);
  EXPECT_EQ(Find(ds, "unsupported method 'FETCH'").line, 5);
  EXPECT_EQ(Find(ds, "name the secret with 'secret: NAME'").line, 6);
  EXPECT_EQ(Find(ds, "bad duration").line, 7);
  EXPECT_EQ(Find(ds, "expected 5 fields").line, 9);
  EXPECT_EQ(Find(ds, "unknown macro").line, 10);
  EXPECT_EQ(Find(ds, "not an IANA time zone").line, 11);
  EXPECT_EQ(Find(ds, "'run_twice' is not valid").line, 13);
  EXPECT_EQ(Find(ds, "only applies with misfire: catch_up").line, 15);
  EXPECT_EQ(Find(ds, "ISO 8601").line, 16);

  auto secret_value = Problems(R"(name: s
triggers: {webhook: {auth: secret, secret: "hunter2 with spaces"}}
nodes: {a: {kind: fail}}
)");
  Find(secret_value, "never the secret itself");
}

TEST(Ingest, WebhookSenderSchemesAndRotation) {
  for (const char* scheme : {"github", "stripe", "slack", "standard-webhooks", "hmac", "secret"}) {
    auto r = Ingest(std::string("name: w\ntriggers:\n  webhook: {auth: ") + scheme +
                    ", secrets: [NEW_KEY, OLD_KEY]}\nnodes: {a: {kind: fail}}\n");
    ASSERT_TRUE(r) << scheme << ": " << FormatDiagnostics(r.error());
    EXPECT_EQ(WebhookAuthName(r->workflow.webhook->auth), scheme);
    EXPECT_EQ(r->workflow.webhook->secrets, (std::vector<std::string>{"NEW_KEY", "OLD_KEY"}));
    // The canonical form keeps the scheme and both names.
    auto again = Ingest(DumpJson(r->canonical));
    ASSERT_TRUE(again) << FormatDiagnostics(again.error());
    EXPECT_EQ(again->workflow.webhook->auth, r->workflow.webhook->auth);
    EXPECT_EQ(again->workflow.webhook->secrets, r->workflow.webhook->secrets);
  }
  auto ds = Problems(R"(name: w
triggers:
  webhook:
    auth: github
    secret: A
    secrets: [B]
    signature_header: X-Mine
    tolerance: 5m
nodes: {a: {kind: fail}}
)");
  EXPECT_EQ(Find(ds, "give 'secret' or 'secrets', not both").line, 6);
  EXPECT_EQ(Find(ds, "its sender fixes the header names").line, 7);
  EXPECT_EQ(Find(ds, "it signs no timestamp").line, 8);
  auto many = Problems(
      "name: w\ntriggers: {webhook: {auth: slack, secrets: [A, B, C, D, E]}}\n"
      "nodes: {a: {kind: fail}}\n");
  Find(many, "name 1 to 4 secrets");
  auto twice = Problems(
      "name: w\ntriggers: {webhook: {auth: slack, secrets: [A, A]}}\nnodes: {a: {kind: fail}}\n");
  Find(twice, "secret A is named twice");
  auto window = Problems(
      "name: w\ntriggers: {webhook: {auth: stripe, secret: A, replay_window: 1h}}\n"
      "nodes: {a: {kind: fail}}\n");
  Find(window, "applies to auth github only");
  auto none =
      Problems("name: w\ntriggers: {webhook: {auth: none, secret: A}}\nnodes: {a: {kind: fail}}\n");
  Find(none, "auth none takes no secret");
}

TEST(Ingest, WebhookToleranceBounds) {
  auto at = [](const std::string& tolerance) {
    return Problems("name: w\ntriggers: {webhook: {auth: hmac, secret: A, tolerance: " + tolerance +
                    "}}\nnodes: {a: {kind: fail}}\n");
  };
  Find(at("0s"), "must be from 1s to 24h");
  Find(at("999ms"), "must be from 1s to 24h");
  EXPECT_TRUE(at("1s").empty());
  EXPECT_TRUE(at("24h").empty());
  Find(at("86401s"), "must be from 1s to 24h");
}

TEST(Ingest, ZoneValidatorHook) {
  IngestOptions opts;
  opts.validate_zone = [](std::string_view zone) -> std::optional<std::string> {
    if (zone == "Mars/Olympus") return "unknown time zone Mars/Olympus";
    return std::nullopt;
  };
  auto ds = Problems(
      "name: c\ntriggers:\n  cron: {schedule: \"0 9 * * *\", timezone: Mars/Olympus}\n"
      "nodes: {a: {kind: fail}}\n",
      opts);
  EXPECT_EQ(Find(ds, "unknown time zone Mars/Olympus").line, 3);
}

TEST(Ingest, SecretsMustBeDeclared) {
  auto r = Ingest(kGood);
  ASSERT_TRUE(r) << FormatDiagnostics(r.error());
  EXPECT_EQ(r->workflow.declared_secrets, std::vector<std::string>{"API_TOKEN"});
  // Used: the declared ones and the webhook's.
  EXPECT_EQ(r->workflow.secret_names, (std::vector<std::string>{"API_TOKEN", "DEPLOY_HOOK"}));
  auto ds = Problems(R"(name: s
secrets: [OTHER, OTHER, bad-name]
nodes:
  a: {kind: shell, argv: [echo, "{{ secrets.API_TOKEN }}"]}
)");
  EXPECT_EQ(Find(ds, "secret OTHER is listed twice").line, 2);
  Find(ds, "'bad-name' is not a secret name");
  EXPECT_EQ(Find(ds, "secrets.API_TOKEN is not declared").line, 4);
  // A graph stored before declarations existed still loads, its reads counted as used.
  const std::string legacy =
      R"({"name": "l", "nodes": [{"id": "a", "kind": "shell", "argv": ["echo", "{{ secrets.OLD }}"]}]})";
  EXPECT_FALSE(Ingest(legacy));
  auto stored = IngestStoredGraph(legacy);
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(stored->workflow.secret_names, std::vector<std::string>{"OLD"});
  // ... but a stored graph that declares is held to its declaration.
  EXPECT_FALSE(IngestStoredGraph(
      R"({"name": "l", "secrets": [], "nodes": [{"id": "a", "kind": "shell", "argv": ["echo", "{{ secrets.OLD }}"]}]})"));
}

TEST(Ingest, InputConstraints) {
  auto r = Ingest(R"(name: c
inputs:
  repo: {type: string, pattern: 'https://[a-z.]+/[a-z]+', max_length: 40}
  env: {type: string, enum: [staging, production], default: staging}
  n: {type: number, enum: [1, 2]}
  flag: {type: string, allow_leading_dash: true, default: "-x"}
nodes: {a: {kind: fail}}
)");
  ASSERT_TRUE(r) << FormatDiagnostics(r.error());
  const auto& in = r->workflow.inputs;
  EXPECT_TRUE(CheckInputValue(in[0], Json("https://example.com/repo")));
  EXPECT_FALSE(CheckInputValue(in[0], Json("https://example.com/repo/../x")));
  EXPECT_FALSE(CheckInputValue(in[0], Json("--upload-pack=x")));
  EXPECT_FALSE(CheckInputValue(in[1], Json("prod")));
  EXPECT_TRUE(CheckInputValue(in[2], Json(2)));
  EXPECT_FALSE(CheckInputValue(in[2], Json(3)));
  EXPECT_TRUE(CheckInputValue(in[3], Json("-x")));
  // Constraints round-trip through the canonical form.
  auto again = Ingest(DumpJson(r->canonical));
  ASSERT_TRUE(again) << FormatDiagnostics(again.error());
  auto input = [&](const std::string& name) {
    for (const auto& i : again->workflow.inputs) {
      if (i.name == name) return i;
    }
    ADD_FAILURE() << "no input " << name;
    return InputDef{};
  };
  EXPECT_FALSE(CheckInputValue(input("repo"), Json("https://example.com/repo/../x")));
  EXPECT_TRUE(CheckInputValue(input("flag"), Json("-x")));
  EXPECT_FALSE(CheckInputValue(input("env"), Json("prod")));

  auto ds = Problems(R"(name: c
inputs:
  a: {type: string, pattern: '(unclosed'}
  b: {type: number, pattern: 'x'}
  c: {type: string, enum: [1]}
  d: {type: string, default: "-d"}
  e: {type: string, enum: [x], default: y}
  f: {type: object, enum: [{}]}
nodes: {a: {kind: fail}}
)");
  EXPECT_EQ(Find(ds, "bad pattern").line, 3);
  EXPECT_EQ(Find(ds, "applies to string inputs only").line, 4);
  EXPECT_EQ(Find(ds, "value does not match type string").line, 5);
  EXPECT_EQ(Find(ds, "starts with '-'").line, 6);
  EXPECT_EQ(Find(ds, "must be one of").line, 7);
  EXPECT_EQ(Find(ds, "applies to string, number and boolean inputs").line, 8);
}

TEST(Ingest, CronValidatorHook) {
  IngestOptions opts;
  int calls = 0;
  opts.validate_cron = [&](std::string_view expr) -> std::optional<std::string> {
    ++calls;
    if (expr == "61 * * * *") return "minute 61 out of range";
    return std::nullopt;
  };
  auto ds = Problems(
      "name: c\ntriggers:\n  cron: {schedule: \"61 * * * *\"}\nnodes: {a: {kind: fail}}\n", opts);
  EXPECT_EQ(Find(ds, "minute 61 out of range").line, 3);
  EXPECT_EQ(calls, 1);
}

TEST(Ingest, CollectsManyErrorsNotJustTheFirst) {
  auto ds = Problems(R"(name: m
nodes:
  a: {kind: shell, argv: [x], bogus1: 1}
  b: {kind: shell, argv: [x], bogus2: 1}
  c: {kind: shell, argv: [x], bogus3: 1}
)");
  EXPECT_EQ(ds.size(), 3u) << FormatDiagnostics(ds);
  EXPECT_EQ(ds[0].line, 3);
  EXPECT_EQ(ds[2].line, 5);
}

TEST(Ingest, YamlSyntaxErrorsHaveLines) {
  auto ds = Problems("name: x\nnodes:\n  a: {kind: fail\n  b: [\n");
  ASSERT_FALSE(ds.empty());
  EXPECT_GT(ds[0].line, 0);
  EXPECT_THAT(ds[0].message, HasSubstr("YAML"));
}

TEST(Ingest, EmptyAndNonMappingDocuments) {
  EXPECT_THAT(FormatDiagnostics(Problems("")), HasSubstr("empty"));
  EXPECT_THAT(FormatDiagnostics(Problems("- a\n- b\n")), HasSubstr("expected a mapping"));
  EXPECT_THAT(FormatDiagnostics(Problems("just text")), HasSubstr("expected a mapping"));
  EXPECT_THAT(FormatDiagnostics(Problems("name: x\nnodes: []\n")), HasSubstr("at least one node"));
}

TEST(Ingest, AliasBombIsBounded) {
  std::string bomb = "name: b\nnodes:\n  a:\n    kind: http\n    url: http://x\n    body:\n";
  bomb += "      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    bomb += "      l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) bomb += std::string(j ? ", " : "") + "*l" + std::to_string(i - 1);
    bomb += "]\n";
  }
  auto ds = Problems(bomb);
  EXPECT_THAT(FormatDiagnostics(ds), HasSubstr("aliases expand too far"));
}

TEST(Ingest, DeepNestingDoesNotCrash) {
  std::string deep = "name: d\nnodes: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  EXPECT_FALSE(Ingest(deep).has_value());
  std::string deep_map =
      "name: d\nnodes: {a: {kind: http, url: 'http://x', body: " + std::string(200, '[') +
      std::string(200, ']') + "}}\n";
  EXPECT_THAT(FormatDiagnostics(Problems(deep_map)), HasSubstr("nested deeper than 64 levels"));
}

// Past the YAML parser's own depth limit yaml-cpp says only "bad file": the message names the
// limit instead, for block and flow nesting alike.
TEST(Ingest, NestingPastTheParsersLimitSaysSo) {
  std::string block = "name: d\nnodes:\n";
  for (int i = 0; i < 100'000; ++i) block += "- ";
  block += "x\n";
  std::string flow = "name: d\nnodes: ";
  for (int i = 0; i < 5000; ++i) flow += "{a: ";
  flow += "1" + std::string(5000, '}') + "\n";
  for (const auto& source : {block, flow}) {
    const std::string text = FormatDiagnostics(Problems(source));
    EXPECT_THAT(text, HasSubstr("YAML nested deeper than the parser's limit of")) << text;
    EXPECT_THAT(text, ::testing::Not(HasSubstr("bad file"))) << text;
  }
}

// A cheap in-process fuzz: random mutations of a valid document never crash or hang, and each
// one ends in one of the two documented shapes: accepted with a canonical form that ingests
// again to the same checksum, or rejected with bounded, positioned, non-empty diagnostics.
TEST(Ingest, RandomMutationsAreAcceptedCanonicallyOrRejectedWithPositions) {
  std::mt19937 rng(1234);
  const std::string base = kGood;
  const std::string alphabet = "{}[]:,-&*!|>'\"#%@` \n\tabcxyz01{{}}";
  int accepted = 0;
  int rejected = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string s = base;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0:
          s[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          s.erase(pos, 1 + rng() % 5);
          break;
      }
    }
    auto r = Ingest(s);
    if (r) {
      ++accepted;
      EXPECT_EQ(r->checksum.size(), 64u);
      auto again = Ingest(DumpJson(r->canonical));
      ASSERT_TRUE(again) << "canonical form of mutation " << i << " does not ingest:\n"
                         << FormatDiagnostics(again.error()) << "\n"
                         << s;
      EXPECT_EQ(again->checksum, r->checksum) << s;
      continue;
    }
    ++rejected;
    const auto& ds = r.error();
    ASSERT_FALSE(ds.empty()) << "rejected without a reason:\n" << s;
    EXPECT_LE(ds.size(), IngestOptions{}.max_diagnostics + 1) << s;
    const int lines = 1 + static_cast<int>(std::count(s.begin(), s.end(), '\n'));
    for (const auto& d : ds) {
      EXPECT_FALSE(d.message.empty()) << s;
      EXPECT_GE(d.line, 0);
      EXPECT_LE(d.line, lines + 1) << d.ToString() << "\n" << s;
      EXPECT_GE(d.column, 0);
    }
  }
  // Both outcomes were exercised, so neither branch above is dead.
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

TEST(Ingest, TooLargeIsRejected) {
  IngestOptions opts;
  opts.max_source_bytes = 10;
  EXPECT_EQ(FormatDiagnostics(Problems(kGood, opts)), "definition larger than 10 bytes");
  // The documented limit, 1 MiB: one byte past it is refused, in the words the CLI uses too.
  const std::string head = "name: w\nnodes: {a: {kind: fail}}\n#";
  std::string at_limit = head + std::string(kMaxSourceBytes - head.size() - 1, 'x') + "\n";
  ASSERT_EQ(at_limit.size(), size_t{1} << 20);
  EXPECT_TRUE(Ingest(at_limit).has_value());
  EXPECT_EQ(FormatDiagnostics(Problems(at_limit + "\n")),
            "definition larger than 1048576 bytes (1 MiB)");
  EXPECT_EQ(SourceTooLarge(kMaxSourceBytes), "definition larger than 1048576 bytes (1 MiB)");
}

// The YAML parser would replace such bytes with U+FFFD: a run would get text the definition
// never held. The first one is named by line, column and byte offset.
TEST(Ingest, BytesThatAreNotUtf8AreRefusedWithTheirPlace) {
  auto ds = Problems("name: w\ndescription: \"d\xc3\x28\"\nnodes: {a: {kind: fail}}\n");
  ASSERT_EQ(ds.size(), 1u) << FormatDiagnostics(ds);
  EXPECT_EQ(
      ds[0].ToString(),
      "line 2, column 16: not UTF-8: byte 0xc3 at byte offset 23; a definition is UTF-8 text");
  auto argv = Problems("name: w\nnodes: {a: {kind: shell, argv: [echo, \"\xff\xfe\"]}}\n");
  EXPECT_THAT(FormatDiagnostics(argv), HasSubstr("line 2, column 40: not UTF-8: byte 0xff"));
  // Near misses: two-, three- and four-byte characters are text.
  EXPECT_TRUE(Ingest("name: w\ndescription: \"d\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xa2\"\n"
                     "nodes: {a: {kind: fail}}\n")
                  .has_value());
}

// A raw NUL byte is named where it is: the YAML parser reported it a line later as an "unknown
// escape character".
TEST(Ingest, ARawNulByteIsRefusedWithItsPlace) {
  auto ds = Problems(std::string("name: x\0\nnodes: {a: {kind: fail}}\n", 34));
  ASSERT_EQ(ds.size(), 1u) << FormatDiagnostics(ds);
  EXPECT_EQ(ds[0].ToString(),
            "line 1, column 8: a NUL byte at byte offset 7; a definition is UTF-8 text");
}

// One file is one workflow: YAML::Load read the first document and dropped the others unsaid.
TEST(Ingest, ASecondYamlDocumentIsRefusedWhereItStarts) {
  const std::string second = "a workflow file holds one YAML document; a second one starts here";
  EXPECT_EQ(
      FormatDiagnostics(Problems(
          "---\nname: a\nnodes: {x: {kind: fail}}\n---\nname: b\nnodes: {x: {kind: fail}}\n")),
      "line 4, column 1: " + second);
  // An empty one, one after an end marker, one after a comment on the marker's line.
  EXPECT_EQ(FormatDiagnostics(Problems("name: a\nnodes: {x: {kind: fail}}\n---\n")),
            "line 3, column 1: " + second);
  EXPECT_EQ(
      FormatDiagnostics(Problems("name: a\nnodes: {x: {kind: fail}}\n...\n--- # b\nname: b\n")),
      "line 4, column 1: " + second);
  // A column-0 marker ends a block scalar (YAML 1.2, 9.1.2): what follows is a second document.
  EXPECT_EQ(FormatDiagnostics(
                Problems("name: a\nnodes: {x: {kind: fail}}\ndescription: |\n  one\n---\n  two\n")),
            "line 5, column 1: " + second);
  // Text after the document that no marker starts: after an end marker, or a second flow mapping.
  const std::string after =
      "YAML: the document ends before this; a workflow file holds one YAML document and nothing "
      "after it";
  EXPECT_EQ(FormatDiagnostics(Problems("name: a\nnodes: {x: {kind: fail}}\n...\nname: b\n")),
            "line 4, column 1: " + after);
  EXPECT_EQ(FormatDiagnostics(Problems("{name: a, nodes: {x: {kind: fail}}}\n{name: b}\n")),
            "line 2, column 1: " + after);
}

// Markers around one document, and `---` that is not a marker, leave one document.
TEST(Ingest, OneDocumentMayHaveMarkersAndHoldDashes) {
  const std::string body = "name: a\nnodes: {x: {kind: fail}}\n";
  for (const std::string& source :
       {"---\n" + body, body + "...\n", "--- # a\n" + body + "...\n# the end\n", body + "# ---\n",
        "%YAML 1.2\n---\n" + body}) {
    auto r = Ingest(source);
    EXPECT_TRUE(r.has_value()) << source << "\n" << FormatDiagnostics(r.error());
  }
  // In block scalars (indented), quoted strings and plain scalars, `---` is text.
  const std::pair<std::string, std::string> texts[] = {
      {"description: |\n  one\n  ---\n  two\n", "one\n---\ntwo\n"},
      {"description: >\n  one\n\n  ---\n", "one\n---\n"},
      {"description: '---'\n", "---"},
      {"description: \"one\n  --- two\"\n", "one --- two"},
      {"description: one\n  ---\n", "one ---"},
  };
  for (const auto& [yaml, text] : texts) {
    auto r = Ingest(body + yaml);
    ASSERT_TRUE(r.has_value()) << yaml << "\n" << FormatDiagnostics(r.error());
    EXPECT_EQ(r->workflow.description, text) << yaml;
  }
}

// The fuzzer's input on which YAML::LoadAll never returned: no node starts with its ',', so it
// is left unread and LoadAll's next document began at it again, forever. It is refused at once.
TEST(Ingest, TheInputLoadAllNeverReturnedOnIsRefused) {
  const std::string source =
      ",# stripe-events:name: nightly\x14"
      "inputs:\n  rs:\n_SECRET\n    slack_url_verification: true\n\nnodes:\n"
      "  record Slack signs it ook wing:\n  wa";
  ASSERT_EQ(source.size(), 132u);
  auto ds = Problems(source);
  ASSERT_EQ(ds.size(), 1u) << FormatDiagnostics(ds);
  EXPECT_EQ(ds[0].ToString(),
            "line 1, column 1: YAML: the document ends before this; a workflow file holds one "
            "YAML document and nothing after it");
}

// argv, env and cwd reach the kernel as C strings, so a NUL in them would fail every run.
TEST(Ingest, ANulByteInAShellNodesArgvEnvOrCwdIsRefused) {
  auto ds = Problems(R"(name: w
nodes:
  a:
    kind: shell
    argv: [echo, "a\0b"]
    env: {X: "c\0d"}
    cwd: "/tmp\0x"
)");
  EXPECT_EQ(Find(ds, "nodes.a.argv[1]: holds a NUL byte").line, 5);
  EXPECT_EQ(Find(ds, "nodes.a.env.X: holds a NUL byte").line, 6);
  EXPECT_EQ(Find(ds, "nodes.a.cwd: holds a NUL byte").line, 7);
  EXPECT_EQ(ds.size(), 3u) << FormatDiagnostics(ds);
  // A backslash and a zero are two characters, not a NUL; stdin is a pipe and may hold one.
  EXPECT_TRUE(Ingest(R"(name: w
nodes:
  a:
    kind: shell
    argv: [echo, 'a\0b']
    stdin: "a\0b"
)")
                  .has_value());
}

// The kernel reads NAME=VALUE: a name with '=' (or none) would fail every run.
TEST(Ingest, ShellEnvNamesTheKernelCannotTakeAreRefused) {
  auto ds = Problems(R"(name: w
nodes:
  a:
    kind: shell
    argv: [env]
    env: {"BAD=NAME": x, "": y, GOOD_NAME: z, "lower.dots-ok": w}
)");
  EXPECT_EQ(
      Find(ds, "nodes.a.env: 'BAD=NAME' cannot name an environment variable: it holds '='").line,
      6);
  Find(ds, "nodes.a.env: '' cannot name an environment variable: it is empty");
  EXPECT_EQ(ds.size(), 2u) << FormatDiagnostics(ds);
}

// A cron run gets scheduled_for and timezone (strings) only: a required input without a default
// that is anything else would be rejected at every occurrence, so apply refuses it.
TEST(Ingest, ACronTriggerCannotGiveARequiredInputWithoutDefault) {
  auto with = [](const std::string& inputs, bool cron = true) {
    return "name: w\ninputs:\n" + inputs +
           (cron ? "triggers: {cron: {schedule: \"@daily\"}}\n" : "") +
           "nodes: {a: {kind: fail}}\n";
  };
  auto ds =
      Problems(with("  who: {type: string, required: true}\n"
                    "  timezone: {type: number, required: true}\n"));
  EXPECT_EQ(Find(ds,
                 "inputs.who: required without a default, but the cron trigger cannot give "
                 "it (a cron run gets scheduled_for and timezone only)")
                .line,
            3);
  Find(ds, "inputs.timezone: required without a default");
  EXPECT_EQ(ds.size(), 2u) << FormatDiagnostics(ds);
  // Near misses: a default, an optional input, the inputs cron gives, no cron trigger.
  EXPECT_TRUE(Ingest(with("  who: {type: string, required: true, default: x}\n")).has_value());
  EXPECT_TRUE(Ingest(with("  who: {type: string}\n")).has_value());
  EXPECT_TRUE(Ingest(with("  scheduled_for: {type: string, required: true}\n"
                          "  timezone: {type: string, required: true}\n"))
                  .has_value());
  EXPECT_TRUE(Ingest(with("  who: {type: string, required: true}\n", false)).has_value());
  // A graph stored before the check still loads, for the scheduler to record its occurrences.
  IngestOptions old;
  old.check_cron_inputs = false;
  auto stored = Ingest(with("  who: {type: string, required: true}\n"), old);
  ASSERT_TRUE(stored.has_value());
  EXPECT_TRUE(IngestStoredGraph(DumpJson(stored->canonical)).has_value());
}

// A required input and one with a default, for ResolveInputs.
const char* kInputs = R"(name: resolve
inputs:
  who: {type: string, default: World}
  count: {type: number, required: true}
nodes: {a: {kind: fail}}
)";

// The type named with its article: "must be an array", not "a array".
TEST(ResolveInputs, AWrongTypeIsNamedWithItsArticle) {
  auto r = Ingest(R"(name: kinds
inputs:
  tags: {type: array}
  obj: {type: object}
  n: {type: number}
  s: {type: string}
nodes: {a: {kind: fail}}
)");
  ASSERT_TRUE(r.has_value());
  auto wrong = ResolveInputs(r->workflow, Json{{"tags", 1}, {"obj", 1}, {"n", "x"}, {"s", 1}});
  ASSERT_FALSE(wrong.has_value());
  EXPECT_THAT(wrong.error().message, HasSubstr("input 'tags' must be an array"));
  EXPECT_THAT(wrong.error().message, HasSubstr("input 'obj' must be an object"));
  EXPECT_THAT(wrong.error().message, HasSubstr("input 'n' must be a number"));
  EXPECT_THAT(wrong.error().message, HasSubstr("input 's' must be a string"));
}

TEST(ResolveInputs, AStringInputHoldingANulByteIsRefused) {
  auto r = Ingest(kInputs);
  ASSERT_TRUE(r.has_value());
  auto nul = ResolveInputs(r->workflow, Json{{"count", 1}, {"who", std::string("a\0b", 3)}});
  ASSERT_FALSE(nul.has_value());
  EXPECT_THAT(nul.error().message, HasSubstr("input 'who' holds a NUL byte (\\u0000)"));
  EXPECT_TRUE(ResolveInputs(r->workflow, Json{{"count", 1}, {"who", "a\\0b"}}).has_value());
  // A default is checked the same way, at ingestion.
  EXPECT_THAT(FormatDiagnostics(Problems("name: w\ninputs:\n  who: {type: string, default: "
                                         "\"a\\0b\"}\nnodes: {a: {kind: fail}}\n")),
              HasSubstr("inputs.who.default: default: input 'who' holds a NUL byte"));
}

TEST(ResolveInputs, DefaultsTypesAndUnknowns) {
  auto r = Ingest(kInputs);
  ASSERT_TRUE(r.has_value());
  auto ok = ResolveInputs(r->workflow, Json{{"count", 2}});
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ((*ok)["who"], Json("World"));
  auto missing = ResolveInputs(r->workflow, Json::object());
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message, HasSubstr("'count' is required"));
  auto wrong = ResolveInputs(r->workflow, Json{{"count", "two"}});
  EXPECT_THAT(wrong.error().message, HasSubstr("input 'count' must be a number"));
  auto unknown = ResolveInputs(r->workflow, Json{{"count", 1}, {"zzz", 1}});
  EXPECT_THAT(unknown.error().message, HasSubstr("unknown input 'zzz'"));
  EXPECT_TRUE(ResolveInputs(r->workflow, Json{{"count", 1}, {"zzz", 1}}, true).has_value());
}

TEST(ClosestMatch, SmallEditDistanceOnly) {
  EXPECT_EQ(ClosestMatch("nedes", {"needs", "kind"}), "needs");
  EXPECT_EQ(ClosestMatch("zzzzzz", {"needs", "kind"}), std::nullopt);
}

// A YAML error arriving when the diagnostic cap is reached is reported, not thrown out of Ingest
// (the handler once re-entered the cap check from inside its catch block).
TEST(Ingest, YamlErrorAtTheDiagnosticCapIsReported) {
  IngestOptions options;
  options.max_diagnostics = 1;
  auto r = Ingest("name: x\nnodes: [unclosed\n", options);
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().size(), 1u);
  EXPECT_NE(r.error()[0].message.find("YAML"), std::string::npos) << r.error()[0].message;
}

}  // namespace
}  // namespace ferry::engine
