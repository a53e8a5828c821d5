// The fail node: fails the run with its (templated) message, never retried. See node_kinds.h for
// what a kind file holds.
#include "engine/node_kinds.h"

namespace ferry::engine {
namespace {

NodeSpec Read(NodeFields& in) {
  auto& r = in.reader;
  FailSpec f;
  f.message = "failed by a fail node";
  if (const auto* m = r.Get(in.fields, "message")) {
    if (auto v = r.String(*m, in.path + ".message")) {
      f.message = *v;
      r.Site(*v, m->value.Mark(), in.path + ".message", in.index);
    }
  }
  return f;
}

Json Canonical(const NodeSpec& spec) { return Json{{"message", std::get<FailSpec>(spec).message}}; }

NodeResult Run(const NodeSpec& spec, NodeAttempt& a) {
  auto msg = a.Render(std::get<FailSpec>(spec).message);
  if (!msg) return TemplateFail(msg.error());
  return NodeFail(ErrorCode::kInvalidArgument, *msg, false);
}

}  // namespace

const NodeKindDef& FailNode() {
  static const NodeKindDef def{NodeKind::kFail, {"message"}, Read, Canonical, Run};
  return def;
}

}  // namespace ferry::engine
