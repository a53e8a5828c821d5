#include "handlers/envelope.h"

namespace ferry::handlers {

Json TaskEnvelope(const TaskContext& ctx) {
  return Json{{"id", ctx.id},
              {"kind", ctx.kind},
              {"queue", ctx.queue},
              {"attempt", ctx.attempt},
              {"max_attempts", ctx.max_attempts},
              {"epoch", ctx.epoch},
              // null when the task has no timeout
              {"deadline_ms", ctx.deadline_ms > 0 ? Json(ctx.deadline_ms) : Json(nullptr)},
              {"payload", ctx.payload}};
}

}  // namespace ferry::handlers
