#include "engine/node_kinds.h"

#include <utility>

namespace ferry::engine {

tl::unexpected<NodeError> NodeFail(ErrorCode code, std::string message, bool retryable,
                                   Json output) {
  NodeError e;
  e.error = Error{code, std::move(message)};
  e.retryable = retryable;
  e.output = std::move(output);
  return tl::unexpected<NodeError>(std::move(e));
}

tl::unexpected<NodeError> NodeFail(Error e, bool retryable) {
  NodeError ne;
  ne.error = std::move(e);
  ne.retryable = retryable;
  return tl::unexpected<NodeError>(std::move(ne));
}

tl::unexpected<NodeError> NodeAbortRun(Error e) {
  NodeError ne;
  ne.error = std::move(e);
  ne.aborts_run = true;
  return tl::unexpected<NodeError>(std::move(ne));
}

tl::unexpected<NodeError> NodeWait(int64_t until_ms) {
  auto e = NodeFail(ErrorCode::kUnavailable, "waiting", true);
  e.value().wait_until_ms = until_ms;
  return e;
}

tl::unexpected<NodeError> NodeWaitForTask(int64_t check_at_ms, std::string task_id,
                                          int64_t created_ms) {
  auto e = NodeWait(check_at_ms);
  e.value().wait_task = std::move(task_id);
  e.value().wait_task_created_ms = created_ms;
  return e;
}

tl::unexpected<NodeError> TemplateFail(Error e) { return NodeFail(std::move(e), false); }

Result<std::string> NodeAttempt::Render(const std::string& text) const {
  auto t = Template::Parse(text);
  if (!t) return Fail(t.error());
  return t->RenderString(scope);
}

Result<std::map<std::string, std::string>> NodeAttempt::Render(
    const std::map<std::string, std::string>& values) const {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : values) {
    auto r = Render(v);
    if (!r) return Fail(ErrorCode::kInvalidArgument, k + ": " + r.error().message);
    out[k] = std::move(*r);
  }
  return out;
}

const std::vector<NodeKindDef>& NodeKinds() {
  // In NodeKind order, so NodeKindOf can index it.
  static const std::vector<NodeKindDef> kinds = {ShellNode(), HttpNode(), LuaNode(),
                                                 DelayNode(), FailNode(), TaskNode()};
  return kinds;
}

const NodeKindDef& NodeKindOf(NodeKind kind) { return NodeKinds().at(static_cast<size_t>(kind)); }

std::string DurationText(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

Json StringMapJson(const std::map<std::string, std::string>& m) {
  Json out = Json::object();
  for (const auto& [k, v] : m) out[k] = v;
  return out;
}

}  // namespace ferry::engine
