#include "broker/broker.h"

#include <algorithm>
#include <cctype>

#include "core/control_chars.h"
#include "core/ids.h"

namespace ferry {

std::string_view TaskStatusName(TaskStatus s) {
  switch (s) {
    case TaskStatus::kPending:
      return "pending";
    case TaskStatus::kScheduled:
      return "scheduled";
    case TaskStatus::kRunning:
      return "running";
    case TaskStatus::kRetrying:
      return "retrying";
    case TaskStatus::kSucceeded:
      return "succeeded";
    case TaskStatus::kFailed:
      return "failed";
    case TaskStatus::kCancelled:
      return "cancelled";
  }
  return "pending";
}

bool IsLifecycleEventType(std::string_view type) {
  if (ParseTaskStatus(type)) return true;
  std::string lower(type);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "submitted" || lower == "cancel_requested";
}

std::optional<std::string> HandlerEventTypeProblem(std::string_view type) {
  const bool named = !type.empty() && type.size() <= 64 &&
                     std::all_of(type.begin(), type.end(), [](unsigned char c) {
                       return std::isalnum(c) || c == '_' || c == '-' || c == '.';
                     });
  if (!named) return std::string("\"type\" must be 1-64 characters from A-Z a-z 0-9 _ - .");
  if (IsLifecycleEventType(type)) {
    return "\"type\" \"" + std::string(type) +
           "\" is one of the task's own events, which only Ferry writes";
  }
  return std::nullopt;
}

std::optional<TaskStatus> ParseTaskStatus(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static constexpr TaskStatus kAll[] = {
      TaskStatus::kPending,   TaskStatus::kScheduled, TaskStatus::kRunning,  TaskStatus::kRetrying,
      TaskStatus::kSucceeded, TaskStatus::kFailed,    TaskStatus::kCancelled};
  for (TaskStatus s : kAll) {
    if (lower == TaskStatusName(s)) return s;
  }
  if (lower == "dead") return TaskStatus::kFailed;
  if (lower == "canceled") return TaskStatus::kCancelled;
  return std::nullopt;
}

bool IsTerminal(TaskStatus s) {
  return s == TaskStatus::kSucceeded || s == TaskStatus::kFailed || s == TaskStatus::kCancelled;
}

Status ValidateQueueName(std::string_view queue) {
  bool ok = !queue.empty() && queue.size() <= 64 &&
            std::all_of(queue.begin(), queue.end(), [](unsigned char c) {
              return std::isalnum(c) || c == '_' || c == '-' || c == '.';
            });
  if (!ok) {
    return Fail(ErrorCode::kInvalidArgument, "bad queue name '" + std::string(queue) +
                                                 "': use 1-64 characters from A-Z a-z 0-9 _ - .");
  }
  // A URL resolves these away (`/api/v1/queues/..` is `/api/v1/` to a browser or libcurl), so
  // such a queue could be made but never inspected or emptied through the API or the console.
  if (queue == "." || queue == "..") {
    return Fail(ErrorCode::kInvalidArgument,
                "bad queue name '" + std::string(queue) +
                    "': '.' and '..' are path steps in a URL, not names");
  }
  return {};
}

Status ValidateTaskKind(std::string_view kind) {
  if (kind.empty() || kind.size() > 128) {
    return Fail(ErrorCode::kInvalidArgument, "task kind must be 1-128 characters");
  }
  return NoControlCharacters(kind, "task kind");
}

Status ValidateSubmit(const SubmitRequest& request, const BrokerOptions& options) {
  if (auto st = ValidateTaskKind(request.kind); !st) return st;
  if (auto st = NoControlCharacters(request.unique_key, "unique key"); !st) return st;
  if (auto st = ValidateQueueName(request.queue); !st) return st;
  if (request.max_attempts < 1 || request.max_attempts > kMaxTaskAttempts) {
    return Fail(ErrorCode::kInvalidArgument,
                "max attempts must be between 1 and " + std::to_string(kMaxTaskAttempts));
  }
  if (request.timeout.count() < 0 || request.timeout > kMaxTaskTimeout) {
    return Fail(
        ErrorCode::kInvalidArgument,
        "timeout must be from 0 to " + std::to_string(kMaxTaskTimeout.count() / 1000) + " s");
  }
  if (request.eta_ms && *request.eta_ms < 0) {
    return Fail(ErrorCode::kInvalidArgument, "eta must not be before 1970");
  }
  if (JsonDepth(request.payload) > kMaxJsonDepth) {
    return Fail(ErrorCode::kInvalidArgument, "payload nested deeper than the limit of " +
                                                 std::to_string(kMaxJsonDepth) + " levels");
  }
  if (!request.id.empty() && !LooksLikeId(request.id)) {
    return Fail(ErrorCode::kInvalidArgument, "task id must be an id NewId() made");
  }
  if (request.waiter_queue.empty() != request.waiter_id.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "a waiting task needs both its queue and its id");
  }
  if (!request.waiter_id.empty()) {
    if (auto st = ValidateQueueName(request.waiter_queue); !st) return st;
    if (!LooksLikeId(request.waiter_id)) {
      return Fail(ErrorCode::kInvalidArgument, "the waiting task's id must be an id NewId() made");
    }
  }
  if (request.unique_key.size() > 512) {
    return Fail(ErrorCode::kInvalidArgument, "unique key longer than 512 bytes");
  }
  if (!request.unique_key.empty() && request.unique_ttl.count() <= 0) {
    return Fail(ErrorCode::kInvalidArgument, "unique key TTL must be positive");
  }
  size_t size = DumpJson(request.payload).size();
  if (size > options.max_payload_bytes) {
    return Fail(ErrorCode::kTooLarge, "payload is " + std::to_string(size) +
                                          " bytes, over the limit of " +
                                          std::to_string(options.max_payload_bytes));
  }
  return {};
}

Result<std::map<std::string, std::string>> Broker::GetOpsState(const std::string&) {
  return Fail(ErrorCode::kInternal, "this broker keeps no operations state");
}

Status Broker::UpdateOpsState(const std::string&, const std::map<std::string, std::string>&,
                              const std::map<std::string, std::string>&,
                              const std::vector<std::string>&) {
  return Fail(ErrorCode::kInternal, "this broker keeps no operations state");
}

Result<std::vector<std::string>> Broker::MissingPermissions() {
  return Fail(ErrorCode::kInternal, "this broker cannot check permissions");
}

}  // namespace ferry
