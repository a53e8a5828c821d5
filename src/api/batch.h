// POST /api/v1/tasks/batch: many task submissions in one request, validated as a whole and
// submitted in one pipelined round trip to Redis (Broker::SubmitBatch). docs/api.md "Tasks".
//
// Thread-safety: SubmitTaskBatch may run on any handler thread; the pool is thread-safe and the
// broker it lends is used by this call only.
#pragma once

#include <cstdint>

#include "broker/broker.h"
#include "core/pool.h"
#include "http/message.h"

namespace ferry::api {

// Answers 201 {"tasks": [{id, existing}], "created", "existing"} when at least one task is new,
// 200 when every one already existed (unique keys), 400 naming the first bad item.
http::Response SubmitTaskBatch(const http::Request& request, Pool<Broker>& brokers,
                               const BrokerOptions& options, int64_t now_ms);

}  // namespace ferry::api
