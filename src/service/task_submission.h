// A task submission as programs send it: the JSON object of POST /api/v1/tasks, of each item of
// POST /api/v1/tasks/batch and of each line of `ferry task submit --batch`. One reader for all
// three, so a field means the same everywhere and is refused with the same words.
//
// Thread-safety: pure functions; call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/json.h"
#include "core/result.h"

namespace ferry::service {

// The most tasks one POST /api/v1/tasks/batch may carry (docs/api.md). `ferry task submit
// --batch` sends its lines to Redis in batches of this size.
inline constexpr size_t kMaxBatchTasks = 1000;

// Reads {kind, payload?, queue?, max_attempts?, timeout?, delay?, eta_ms?, unique_key?} into a
// request and validates it (ValidateSubmit against `options`; `ferry.run` is refused: runs are
// started through their own route). `now_ms` turns `delay` into an ETA and bounds `eta_ms`.
// `where` names the object in messages: "" for a body, "tasks[3]" for an item, "line 4".
// Errors are kInvalidArgument.
Result<SubmitRequest> ReadTaskSubmission(const Json& object, int64_t now_ms,
                                         const BrokerOptions& options, const std::string& where);

// Refuses two requests of one batch with the same unique key on the same queue (the second
// would silently return the first one's id). `name(i)` names request i in the message.
Status CheckBatchUniqueKeys(const std::vector<SubmitRequest>& requests,
                            const std::function<std::string(size_t)>& name);

// Reads a batch body {"tasks": [submission, ...]} with 1 to kMaxBatchTasks items, all or
// nothing: the first bad item fails the whole batch, named by its index ("tasks[3].kind is
// required").
Result<std::vector<SubmitRequest>> ReadTaskBatch(const Json& body, int64_t now_ms,
                                                 const BrokerOptions& options);

// The answer to a batch: {"tasks": [{"id", "existing"}], "created": n, "existing": n}, in the
// order submitted. Shared by the API and `ferry task submit --batch --json`.
Json BatchAnswer(const std::vector<SubmitResult>& results);

}  // namespace ferry::service
