// The task envelope both external handler types receive (docs/handlers.md): one JSON shape, so a
// handler can move between `exec` and `http` without change.
//
//   {"id", "kind", "queue", "attempt", "max_attempts", "epoch", "deadline_ms", "payload"}
//
// Thread-safety: pure function.
#pragma once

#include "core/json.h"
#include "worker/handler.h"

namespace ferry::handlers {

Json TaskEnvelope(const TaskContext& ctx);

}  // namespace ferry::handlers
