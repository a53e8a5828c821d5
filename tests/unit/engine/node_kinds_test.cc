// The node kind table (engine/node_kinds.h): every kind is in it at its own index, its fields
// belong to it alone, and its canonical form holds only its own fields and ingests back the same.
#include "engine/node_kinds.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "engine/ingest.h"

namespace ferry::engine {
namespace {

constexpr NodeKind kAllKinds[] = {NodeKind::kShell, NodeKind::kHttp, NodeKind::kLua,
                                  NodeKind::kDelay, NodeKind::kFail, NodeKind::kTask};

TEST(NodeKinds, EveryKindIsFoundAtItsOwnEntry) {
  ASSERT_EQ(NodeKinds().size(), std::size(kAllKinds));
  for (NodeKind k : kAllKinds) {
    const NodeKindDef& def = NodeKindOf(k);
    EXPECT_EQ(def.kind, k) << NodeKindName(k);
    EXPECT_FALSE(def.fields.empty()) << NodeKindName(k);
    EXPECT_NE(def.read, nullptr) << NodeKindName(k);
    EXPECT_NE(def.canonical, nullptr) << NodeKindName(k);
    EXPECT_NE(def.run, nullptr) << NodeKindName(k);
  }
}

// Ingest tells a user "'url' belongs to http nodes": that needs each field name to belong to one
// kind, and none to shadow a field every node has.
TEST(NodeKinds, AFieldBelongsToOneKindAndIsNotACommonField) {
  const std::set<std::string> common = {"id",    "kind",    "needs",      "when",
                                        "retry", "timeout", "description"};
  std::set<std::string> seen;
  for (const auto& def : NodeKinds()) {
    for (const auto& f : def.fields) {
      EXPECT_EQ(common.count(f), 0u) << f << " of " << NodeKindName(def.kind);
      EXPECT_TRUE(seen.insert(f).second) << f << " is claimed twice";
    }
  }
}

const char* kEveryKind = R"(name: every-kind
nodes:
  sh:
    kind: shell
    argv: [echo, "{{ inputs.x }}"]
    env: {A: b}
    cwd: /tmp
    stdin: hello
  web:
    kind: http
    method: post
    url: http://127.0.0.1:1/x
    headers: {X-A: b}
    body: {n: 1, s: "{{ nodes.sh.output.stdout }}"}
    expect_status: [200, 204]
    needs: [sh]
  script:
    kind: lua
    script: return { a = args.a }
    args: {a: "1"}
  wait:
    kind: delay
    duration: 1500ms
  stop:
    kind: fail
    message: "no {{ inputs.x }}"
  job:
    kind: task
    task: {kind: echo, queue: q1, payload: {p: 1}, max_attempts: 3, timeout: 2s}
inputs:
  x: {type: string, default: y}
)";

TEST(NodeKinds, CanonicalFormHoldsOnlyTheKindsFieldsAndIngestsBackTheSame) {
  auto a = Ingest(kEveryKind);
  ASSERT_TRUE(a.has_value()) << FormatDiagnostics(a.error());
  ASSERT_EQ(a->workflow.nodes.size(), 6u);
  const std::set<std::string> common = {"id", "kind", "needs", "when", "retry", "timeout"};
  std::set<NodeKind> kinds;
  for (const auto& node : a->canonical["nodes"]) {
    std::string kind = node["kind"].get<std::string>();
    const NodeKindDef* def = nullptr;
    for (const auto& d : NodeKinds()) {
      if (NodeKindName(d.kind) == kind) def = &d;
    }
    ASSERT_NE(def, nullptr) << kind;
    kinds.insert(def->kind);
    for (auto it = node.begin(); it != node.end(); ++it) {
      bool own = std::find(def->fields.begin(), def->fields.end(), it.key()) != def->fields.end();
      EXPECT_TRUE(own || common.count(it.key()) != 0) << kind << " has " << it.key();
    }
  }
  EXPECT_EQ(kinds.size(), std::size(kAllKinds));
  auto node = [&](const std::string& id) {
    for (const auto& n : a->canonical["nodes"]) {
      if (n["id"] == id) return n;
    }
    return Json();
  };
  EXPECT_EQ(node("web")["method"], "POST");  // normalised once, at ingest
  EXPECT_EQ(node("wait")["duration"], "1500ms");
  EXPECT_EQ(node("job")["task"]["timeout"], "2000ms");
  EXPECT_EQ(node("sh")["cwd"], "/tmp");
  auto b = Ingest(DumpJson(a->canonical, 2));
  ASSERT_TRUE(b.has_value()) << FormatDiagnostics(b.error());
  EXPECT_EQ(a->canonical, b->canonical);
  EXPECT_EQ(a->checksum, b->checksum);
}

TEST(NodeKinds, AMissingKindNamesEveryKind) {
  auto r = Ingest("name: x\nnodes:\n  - id: a\n    argv: [true]\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(FormatDiagnostics(r.error()).find(
                "missing required field 'kind' (shell, http, lua, delay, fail or task)"),
            std::string::npos)
      << FormatDiagnostics(r.error());
}

}  // namespace
}  // namespace ferry::engine
