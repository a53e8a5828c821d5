// The delay node: waits its duration. The deadline is kept by the run's sink, so a run resumed
// after a crash waits only what is left; the executor's coordinator times the wait (NodeWait). See
// node_kinds.h for what a kind file holds.
#include "core/sleep.h"
#include "core/time_util.h"
#include "engine/node_kinds.h"

namespace ferry::engine {
namespace {

NodeSpec Read(NodeFields& in) {
  auto& r = in.reader;
  DelaySpec d;
  if (const auto* f = r.Get(in.fields, "duration")) {
    if (auto v = r.Duration(*f, in.path + ".duration")) d.duration = *v;
  } else {
    r.Add(in.node, in.path, "missing required field 'duration'");
  }
  return d;
}

Json Canonical(const NodeSpec& spec) {
  return Json{{"duration", DurationText(std::get<DelaySpec>(spec).duration)}};
}

NodeResult Run(const NodeSpec& spec, NodeAttempt& a) {
  const auto& d = std::get<DelaySpec>(spec);
  auto deadline = a.sink.DelayDeadline(a.node.id, a.attempt, d.duration);
  if (!deadline) return NodeAbortRun(deadline.error());
  const int64_t left = *deadline - WallNowMs();
  // The coordinator times the wait, and runs the node again once due. A timeout shorter than
  // the wait is the node's own to keep: it waits here, and times out as any node does.
  if (left > 0 && (a.node.timeout.count() <= 0 || a.node.timeout.count() > left)) {
    return NodeWait(*deadline);
  }
  // Told as the coordinator's waits are (`run watch` prints when it ends).
  if (left > 0) {
    a.sink.Emit("node.waiting",
                Json{{"node", a.node.id}, {"attempt", a.attempt}, {"deadline_ms", *deadline}});
  }
  if (!SleepFor(a.stop, std::chrono::milliseconds(left))) {
    return NodeFail(ErrorCode::kCancelled, "stopped", false);
  }
  // Counted from when the delay first began, in this execution or one before a crash.
  const int64_t began = *deadline - d.duration.count();
  return Json{{"waited_ms", WallNowMs() - began}, {"deadline_ms", *deadline}};
}

}  // namespace

const NodeKindDef& DelayNode() {
  static const NodeKindDef def{NodeKind::kDelay, {"duration"}, Read, Canonical, Run};
  return def;
}

}  // namespace ferry::engine
