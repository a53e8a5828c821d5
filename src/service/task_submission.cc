#include "service/task_submission.h"

#include <map>
#include <utility>

#include "core/json_fields.h"
#include "core/task_kinds.h"
#include "runs/runs.h"

namespace ferry::service {

using namespace std::chrono_literals;

namespace {

Error At(const std::string& where, Error e) {
  if (!where.empty()) e.message = where + ": " + e.message;
  return e;
}

}  // namespace

Result<SubmitRequest> ReadTaskSubmission(const Json& object, int64_t now_ms,
                                         const BrokerOptions& options, const std::string& where) {
  SubmitRequest submit;
  FieldReader f(object, where.empty() ? "" : where + ".");
  submit.kind = f.String("kind", kRequired).value_or("");
  submit.payload = f.AnyButNull("payload", "for {}").value_or(Json::object());
  submit.queue = f.String("queue").value_or(submit.queue);
  submit.max_attempts = static_cast<int>(f.Int("max_attempts", 1, kMaxTaskAttempts).value_or(3));
  // An empty key would mean no key: a resend meant to find its task would make another.
  submit.unique_key = f.NonEmptyString("unique_key", "for no key").value_or("");
  submit.timeout = f.Duration("timeout", 1ms, kMaxTaskTimeout).value_or(0ms);
  auto delay = f.Duration("delay", 0ms, kMaxTaskEtaHorizon);
  auto eta = f.Int("eta_ms", 0, now_ms + kMaxTaskEtaHorizon.count());
  if (auto st = f.Finish(); !st) return Fail(st.error());
  if (delay && eta) {
    return Fail(At(where, Error{ErrorCode::kInvalidArgument, "give delay or eta_ms, not both"}));
  }
  if (delay) submit.eta_ms = now_ms + delay->count();
  if (eta) submit.eta_ms = *eta;
  if (submit.kind == runs::kRunTaskKind) {
    return Fail(At(where, Error{ErrorCode::kInvalidArgument,
                                "ferry.run tasks are made by starting a run (`ferry workflow run`, "
                                "POST /api/v1/runs)"}));
  }
  if (IsFerrysOwnKind(submit.kind)) {
    return Fail(At(
        where, Error{ErrorCode::kInvalidArgument, "kinds starting with 'ferry.' are Ferry's own"}));
  }
  if (auto st = ValidateSubmit(submit, options); !st) return Fail(At(where, st.error()));
  return submit;
}

Status CheckBatchUniqueKeys(const std::vector<SubmitRequest>& requests,
                            const std::function<std::string(size_t)>& name) {
  // Keys live per queue (docs/broker.md), so the same key on two queues is two tasks.
  std::map<std::pair<std::string_view, std::string_view>, size_t> first;
  for (size_t i = 0; i < requests.size(); ++i) {
    const SubmitRequest& r = requests[i];
    if (r.unique_key.empty()) continue;
    auto [it, inserted] = first.try_emplace({r.queue, r.unique_key}, i);
    if (!inserted) {
      return Fail(ErrorCode::kInvalidArgument,
                  name(i) + ": unique_key '" + r.unique_key + "' on queue " + r.queue +
                      " is already used by " + name(it->second) + " of this batch");
    }
  }
  return {};
}

Result<std::vector<SubmitRequest>> ReadTaskBatch(const Json& body, int64_t now_ms,
                                                 const BrokerOptions& options) {
  FieldReader f(body);
  auto tasks = f.Any("tasks", kRequired);
  if (auto st = f.Finish(); !st) return Fail(st.error());
  if (!tasks->is_array()) {
    return Fail(ErrorCode::kInvalidArgument,
                "tasks must be an array of task objects, got " + JsonKindName(*tasks));
  }
  if (tasks->empty()) return Fail(ErrorCode::kInvalidArgument, "tasks must not be empty");
  if (tasks->size() > kMaxBatchTasks) {
    return Fail(ErrorCode::kInvalidArgument, "tasks holds " + std::to_string(tasks->size()) +
                                                 " items, over the limit of " +
                                                 std::to_string(kMaxBatchTasks) + " per batch");
  }
  std::vector<SubmitRequest> requests;
  requests.reserve(tasks->size());
  for (size_t i = 0; i < tasks->size(); ++i) {
    auto r = ReadTaskSubmission((*tasks)[i], now_ms, options, "tasks[" + std::to_string(i) + "]");
    if (!r) return Fail(r.error());
    requests.push_back(std::move(*r));
  }
  auto name = [](size_t i) { return "tasks[" + std::to_string(i) + "]"; };
  if (auto st = CheckBatchUniqueKeys(requests, name); !st) return Fail(st.error());
  return requests;
}

Json BatchAnswer(const std::vector<SubmitResult>& results) {
  Json tasks = Json::array();
  int64_t existing = 0;
  for (const auto& r : results) {
    tasks.push_back(Json{{"id", r.id}, {"existing", r.existing}});
    if (r.existing) ++existing;
  }
  return Json{{"tasks", std::move(tasks)},
              {"created", static_cast<int64_t>(results.size()) - existing},
              {"existing", existing}};
}

}  // namespace ferry::service
