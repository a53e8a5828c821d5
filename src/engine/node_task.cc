// The task node: submits a task to the task layer and waits for its end; the task's result is
// the node's output. The node does not block while the task runs: it says where the task is and
// the executor's coordinator runs it again to look (NodeWaitForTask), so a run waiting long for
// a task can give its worker slot back. The unique key is stable across resumes of the run, so
// a resumed run finds the task it already submitted. See node_kinds.h for what a kind file holds.
#include <regex>
#include <utility>

#include "core/task_kinds.h"
#include "engine/node_kinds.h"

namespace ferry::engine {
namespace {

const std::vector<std::string>& TaskFields() {
  static const std::vector<std::string> fields{"kind", "queue", "payload", "max_attempts",
                                               "timeout"};
  return fields;
}

NodeSpec Read(NodeFields& in) {
  auto& r = in.reader;
  TaskSpec t;
  const auto* tf = r.Get(in.fields, "task");
  if (tf == nullptr) {
    r.Add(in.node, in.path,
          "missing required field 'task' ({kind, queue, payload, max_attempts, timeout})");
    return t;
  }
  std::string tp = in.path + ".task";
  if (!r.ExpectMap(tf->value, tp)) return t;
  auto ts = r.Fields(tf->value, tp, TaskFields());
  if (const auto* k = r.Get(ts, "kind")) {
    if (auto v = r.String(*k, tp + ".kind")) {
      t.kind = *v;
      if (v->empty()) r.Add(k->value, tp + ".kind", "empty task kind");
      // Not rendered: the text would be submitted as it is and no handler would take it.
      if (v->find("{{") != std::string::npos) {
        r.Add(k->value, tp + ".kind",
              "task kind '" + *v +
                  "' holds a template; a kind is a literal handler name (choose between "
                  "kinds with two nodes and `when:`)");
      }
      if (IsFerrysOwnKind(*v)) {
        r.Add(k->value, tp + ".kind",
              "task kind '" + *v +
                  "' is Ferry's own (kinds starting with 'ferry.'); a task node "
                  "cannot submit it");
      }
    }
  } else {
    r.Add(tf->value, tp, "missing required field 'kind' (the task handler's name)");
  }
  if (const auto* q = r.Get(ts, "queue")) {
    if (auto v = r.String(*q, tp + ".queue")) {
      static const std::regex re("[A-Za-z0-9_.-]{1,64}");
      if (!std::regex_match(*v, re)) r.Add(q->value, tp + ".queue", "bad queue name '" + *v + "'");
      t.queue = *v;
    }
  }
  if (const auto* p = r.Get(ts, "payload")) {
    if (auto v = r.ToJson(p->value, tp + ".payload", 0)) {
      r.JsonSites(*v, p->value, tp + ".payload", in.index);
      t.payload = std::move(*v);
    }
  }
  if (const auto* m = r.Get(ts, "max_attempts")) {
    if (auto v = r.Int(*m, tp + ".max_attempts", 1, 100)) t.max_attempts = static_cast<int>(*v);
  }
  if (const auto* m = r.Get(ts, "timeout")) {
    if (auto v = r.Duration(*m, tp + ".timeout")) t.timeout = *v;
  }
  return t;
}

Json Canonical(const NodeSpec& spec) {
  const auto& s = std::get<TaskSpec>(spec);
  return Json{{"task", Json{{"queue", s.queue},
                            {"kind", s.kind},
                            {"payload", s.payload},
                            {"max_attempts", s.max_attempts},
                            {"timeout", DurationText(s.timeout)}}}};
}

NodeResult Run(const NodeSpec& spec, NodeAttempt& a) {
  const auto& t = std::get<TaskSpec>(spec);
  // Ingestion refuses it; a definition stored before it did is refused here.
  if (IsFerrysOwnKind(t.kind)) {
    return NodeFail(ErrorCode::kInvalidArgument,
                    "task kind '" + t.kind + "' is Ferry's own; a task node cannot submit it",
                    false);
  }
  auto payload = RenderJsonTemplates(t.payload, a.scope);
  if (!payload) return TemplateFail(payload.error());
  TaskNodeRequest req;
  req.run_id = a.run.run_id;
  req.node_id = a.node.id;
  req.attempt = a.attempt;
  req.queue = t.queue;
  req.kind = t.kind;
  req.payload = std::move(*payload);
  req.max_attempts = t.max_attempts;
  req.timeout = t.timeout;
  req.unique_key = "ferry.run:" + a.run.run_id + ":" + a.node.id + ":" + std::to_string(a.attempt);
  auto r = a.sink.SubmitOrCheck(req);
  if (!r)
    return NodeFail(r.error(), r.error().Retryable() || r.error().code == ErrorCode::kInternal);
  if (r->result) return std::move(*r->result);
  return NodeWaitForTask(r->check_at_ms, std::move(r->task_id), r->created_ms);
}

}  // namespace

const NodeKindDef& TaskNode() {
  static const NodeKindDef def{NodeKind::kTask, {"task"},    Read, Canonical, Run,
                               "task",          TaskFields()};
  return def;
}

}  // namespace ferry::engine
