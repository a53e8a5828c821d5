// Node kinds. Each kind (shell, http, lua, delay, fail, task) lives in one file, node_<kind>.cc,
// that holds the three things making it a kind: how its fields are read from a workflow document
// (ingest), its canonical JSON form (ToCanonicalJson: the stored graph, diffs, `workflow show`),
// and how one attempt of it runs (the executor). Ingest, definition.cc and the executor find a
// kind through NodeKindOf; none of them knows a kind's fields.
//
// Adding a kind: a NodeKind value and its name (definition.h/.cc), its spec struct in NodeSpec,
// its file, and its line in NodeKinds() (node_kinds.cc).
//
// Internal to ferry_engine. Thread-safety: the table is immutable; a NodeAttempt belongs to the
// node thread running it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "engine/definition.h"
#include "engine/executor.h"
#include "engine/ingest_reader.h"
#include "engine/template.h"

namespace ferry::engine {

// ---- reading (ingest) ------------------------------------------------------------------------

// What a kind's reader gets: the node's fields (already limited to the common ones and the
// kind's own), the node (where "missing field" diagnostics point), its path ("nodes.fetch"), its
// index (templates found are checked against it once the graph is known), the document's text
// (the Lua reader finds where a block script starts) and the toolkit that reports problems.
struct NodeFields {
  ingest_internal::IngestReader& reader;
  const std::unordered_map<std::string, ingest_internal::Field>& fields;
  const YAML::Node& node;
  const std::string& path;
  int index = 0;
  std::string_view source;
};

// ---- running (executor) ----------------------------------------------------------------------

struct NodeError {
  Error error;
  bool retryable = true;
  Json output;  // what the node produced before failing (shell exit status, http response)
  // > 0: not a failure: the node is to run again once this wall-clock time (ms) comes (NodeWait).
  int64_t wait_until_ms = 0;
  // With wait_until_ms: the node waits for this task to end, and wait_until_ms is only when to
  // look again (NodeWaitForTask); wait_task_created_ms is when the task was submitted.
  std::string wait_task;
  int64_t wait_task_created_ms = 0;
  // Not the node's failure: the run's store failed under it (NodeAbortRun). The run stops, as
  // when a checkpoint is not saved, and its task runs it again.
  bool aborts_run = false;
};
using NodeResult = tl::expected<Json, NodeError>;

tl::unexpected<NodeError> NodeFail(ErrorCode code, std::string message, bool retryable,
                                   Json output = nullptr);
tl::unexpected<NodeError> NodeFail(Error e, bool retryable);
// The node has nothing to do until `until_ms` (wall-clock): the executor runs it again then,
// and meanwhile whatever else is ready (a delay node's wait).
tl::unexpected<NodeError> NodeWait(int64_t until_ms);
// The node waits for task `task_id` (submitted at `created_ms`) to end, with nothing to do
// before: the executor runs it again at `check_at_ms` to look (a task node's wait).
tl::unexpected<NodeError> NodeWaitForTask(int64_t check_at_ms, std::string task_id,
                                          int64_t created_ms);
// The run's own record could not be written for this node (the store unreachable, a statement
// timeout): the run stops and is run again, as after a checkpoint not saved, rather than the
// node spending an attempt (and with its last, failing the run for good) on the store's outage.
tl::unexpected<NodeError> NodeAbortRun(Error e);
// A template error is the definition's or the inputs' fault: retrying cannot help.
tl::unexpected<NodeError> TemplateFail(Error e);

// One attempt of one node, as the executor hands it to the node's kind.
struct NodeAttempt {
  const NodeDef& node;
  int attempt = 1;
  std::stop_token stop;  // fires on the attempt's timeout and on the run's stop
  const Json& root;      // what templates read: inputs, nodes, run, trigger
  const Scope& scope;    // templates render against this (secrets included)
  const ExecutorOptions& options;
  const RunContext& run;
  RunSink& sink;
  // A node.log event for this node (redacted, counted against the node's cap). `stream` is
  // "stdout", "stderr" or null; `cut` counts bytes of the line that never reached `line`.
  std::function<void(const std::string& line, const char* stream, size_t cut)> log;

  Result<std::string> Render(const std::string& text) const;
  // Renders each value; an error names the key.
  Result<std::map<std::string, std::string>> Render(
      const std::map<std::string, std::string>& values) const;
};

// ---- the table -------------------------------------------------------------------------------

struct NodeKindDef {
  NodeKind kind = NodeKind::kShell;
  std::vector<std::string> fields;  // the kind's own fields, beside the common ones
  NodeSpec (*read)(NodeFields& in) = nullptr;
  Json (*canonical)(const NodeSpec& spec) = nullptr;  // the kind's fields, merged into the node
  NodeResult (*run)(const NodeSpec& spec, NodeAttempt& attempt) = nullptr;
  // A field of `fields` that holds a map of fields of its own (a task node's `task`), and
  // those: one of them written on the node itself is told where it belongs.
  std::string nested{};
  std::vector<std::string> nested_fields{};
};

const std::vector<NodeKindDef>& NodeKinds();
const NodeKindDef& NodeKindOf(NodeKind kind);

// Each kind's definition (node_<kind>.cc).
const NodeKindDef& ShellNode();
const NodeKindDef& HttpNode();
const NodeKindDef& LuaNode();
const NodeKindDef& DelayNode();
const NodeKindDef& FailNode();
const NodeKindDef& TaskNode();

// ---- canonical form helpers ------------------------------------------------------------------

// A duration as the canonical form writes it ("1500ms"), which ingest reads back exactly.
std::string DurationText(std::chrono::milliseconds d);
Json StringMapJson(const std::map<std::string, std::string>& m);

}  // namespace ferry::engine
