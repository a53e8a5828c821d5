#include "service/remote/remote_service.h"

#include <cctype>
#include <functional>
#include <optional>
#include <stop_token>
#include <thread>

#include "broker/broker.h"
#include "core/json_fields.h"
#include "core/time_util.h"
#include "engine/http_client.h"
#include "service/arguments.h"
#include "store/store.h"

namespace ferry::service {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// Between a stream the server ended and the next one (it ends them when it shuts down).
constexpr milliseconds kResumePause{200};

// RFC 3986 percent-encoding of everything but unreserved characters, for path segments and
// query values (an id never needs it, but a name typed by a user may).
std::string Escape(std::string_view text) {
  static const char* const kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string QueryString(const Query& query) {
  std::string out;
  for (const auto& [name, value] : query) {
    out += (out.empty() ? "?" : "&") + Escape(name) + "=" + Escape(value);
  }
  return out;
}

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The server's error body as the Error it stands for. Anything else (a proxy's HTML page) is
// reported with its status so the user sees what answered.
Error ErrorFromResponse(const engine::HttpResponse& response, const std::string& url) {
  auto body = ParseStoredJson(response.body);
  if (body && body->is_object() && body->contains("error") && (*body)["error"].is_object()) {
    const Json& e = (*body)["error"];
    Error error;
    error.code = ParseErrorCodeName(e.value("code", "")).value_or(ErrorCode::kInternal);
    error.message = e.value("message", "");
    Json details = Json::object();
    for (const auto& [key, value] : e.items()) {
      if (key != "code" && key != "message") details[key] = value;
    }
    if (!details.empty()) error.details = DumpJson(details);
    return error;
  }
  ErrorCode code = response.status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kInternal;
  return Error{code, "the server at " + url + " answered HTTP " + std::to_string(response.status) +
                         " without a Ferry error body"};
}

// `timeout`: the request's own, which a timeout names.
Error DescribeTransportError(const Error& e, const std::string& url,
                             std::chrono::milliseconds timeout) {
  std::string reason = e.message;
  if (reason.rfind("http: ", 0) == 0) reason = reason.substr(6);
  if (OutcomeIsUnknown(e)) {
    // Not "unreachable" (exit 3, which a script may retry): the request arrived, and a retry
    // could do it twice.
    return OutcomeUnknown(Error{
        ErrorCode::kUnavailable,
        "no answer came from the Ferry server at " + url +
            " after the request was sent, so what it asked may have been done (a task submitted "
            "again with the same unique_key is found, not made twice): " +
            reason});
  }
  if (e.code == ErrorCode::kTimeout) {
    return Error{ErrorCode::kTimeout, "the Ferry server at " + url + " did not answer within " +
                                          FormatDuration(timeout) + " (--io-timeout)"};
  }
  return Error{
      e.code == ErrorCode::kInvalidArgument ? ErrorCode::kInvalidArgument : ErrorCode::kUnavailable,
      "cannot reach the Ferry server at " + url + ": " + reason};
}

// Incremental parser of a text/event-stream body: feeds complete events to `on_event`
// (id, data). Comments (keep-alives) and retry fields are skipped.
class SseParser {
 public:
  // Returns false when `on_event` asked to stop.
  template <typename OnEvent>
  bool Feed(std::string_view chunk, OnEvent&& on_event) {
    buffer_.append(chunk);
    while (true) {
      auto end = buffer_.find("\n\n");
      if (end == std::string::npos) return true;
      std::string block = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      std::string id;
      std::string data;
      size_t pos = 0;
      while (pos <= block.size()) {
        size_t nl = block.find('\n', pos);
        std::string line =
            block.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? block.size() + 1 : nl + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("id: ", 0) == 0) id = line.substr(4);
        if (line.rfind("data: ", 0) == 0) data += (data.empty() ? "" : "\n") + line.substr(6);
      }
      if (!data.empty() && !on_event(id, data)) return false;
    }
  }

  // What arrived after the last complete event.
  size_t pending() const { return buffer_.size(); }
  const std::string& pending_text() const { return buffer_; }

 private:
  std::string buffer_;
};

}  // namespace

RemoteService::RemoteService(RemoteServiceOptions options) : options_(std::move(options)) {}

Result<Json> RemoteService::Call(const std::string& method, const std::string& path,
                                 const Query& query, const Json* body) {
  const std::string base = TrimSlash(options_.url);
  engine::HttpRequest request;
  request.method = method;
  request.url = base + "/api/v1" + path + QueryString(query);
  request.timeout = options_.timeout;
  request.headers.emplace_back("Accept", "application/json");
  if (!options_.token.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + options_.token);
  }
  if (body != nullptr) {
    request.has_body = true;
    request.body = DumpJson(*body);
    request.headers.emplace_back("Content-Type", "application/json");
  }
  auto response = engine::PerformHttp(request, std::stop_token());
  if (!response) return Fail(DescribeTransportError(response.error(), base, request.timeout));
  if (response->status >= 400) return Fail(ErrorFromResponse(*response, base));
  auto parsed = ParseStoredJson(response->body);
  if (!parsed) {
    return Fail(ErrorCode::kInternal,
                "the server at " + base + " answered " + method + " " + path +
                    " with something that is not JSON: " + parsed.error().message);
  }
  return parsed;
}

Status RemoteService::Stream(const std::string& path, std::string& last_id,
                             SteadyClock::time_point deadline, const EventSink& sink,
                             bool& stopped) {
  const std::string base = TrimSlash(options_.url);
  engine::HttpRequest request;
  request.method = "GET";
  request.url = base + "/api/v1" + path;
  request.headers.emplace_back("Accept", "text/event-stream");
  if (!last_id.empty()) request.headers.emplace_back("Last-Event-ID", last_id);
  if (!options_.token.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + options_.token);
  }
  const milliseconds left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
  if (left.count() <= 0) return Fail(ErrorCode::kTimeout, "timed out");
  request.timeout = left;
  SseParser parser;
  std::optional<Error> bad_event;
  request.on_body = [&](std::string_view chunk) {
    if (parser.pending() > (1u << 20)) {
      bad_event = Error{ErrorCode::kTooLarge, "the server sent an event over 1 MiB"};
      return false;
    }
    return parser.Feed(chunk, [&](const std::string& id, const std::string& data) {
      auto event = ParseStoredJson(data);
      if (!event) {
        bad_event = Error{ErrorCode::kInternal,
                          "the server sent an event that is not JSON: " + event.error().message};
        return false;
      }
      if (!id.empty()) last_id = id;
      if (!sink(*event)) {
        stopped = true;
        return false;
      }
      return true;
    });
  };
  auto response = engine::PerformHttp(request, std::stop_token());
  if (bad_event) return Fail(*bad_event);
  if (!response) {
    if (response.error().code == ErrorCode::kTimeout) return Fail(ErrorCode::kTimeout, "timed out");
    return Fail(DescribeTransportError(response.error(), base, request.timeout));
  }
  if (response->status >= 400) {
    // An error answer is one JSON object with no blank line: it is still in the parser.
    engine::HttpResponse copy = *response;
    copy.body = parser.pending_text();
    return Fail(ErrorFromResponse(copy, base));
  }
  return {};
}

Result<Json> RemoteService::SubmitTasks(const Json& body) {
  return Call("POST", "/tasks/batch", {}, &body);
}
Result<Json> RemoteService::SubmitTask(const Json& body) {
  return Call("POST", "/tasks", {}, &body);
}
Result<Json> RemoteService::ListTasks(const Query& query) {
  return Call("GET", "/tasks", query, nullptr);
}
Result<Json> RemoteService::GetTask(const std::string& id) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  return Call("GET", "/tasks/" + Escape(id), {}, nullptr);
}
Result<Json> RemoteService::CancelTask(const std::string& id) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  return Call("POST", "/tasks/" + Escape(id) + "/cancel", {}, nullptr);
}
Result<Json> RemoteService::RetryTask(const std::string& id) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  return Call("POST", "/tasks/" + Escape(id) + "/retry", {}, nullptr);
}
Result<Json> RemoteService::TaskEvents(const std::string& id, const Query& query) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  return Call("GET", "/tasks/" + Escape(id) + "/events", query, nullptr);
}
Result<Json> RemoteService::ListWorkers() { return Call("GET", "/workers", {}, nullptr); }
Result<Json> RemoteService::ListQueues() { return Call("GET", "/queues", {}, nullptr); }
Result<Json> RemoteService::GetQueue(const std::string& name) {
  if (auto st = ValidateQueueName(name); !st) return Fail(st.error());
  return Call("GET", "/queues/" + Escape(name), {}, nullptr);
}
Result<Json> RemoteService::ListDead(const std::string& queue, const Query& query) {
  if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
  return Call("GET", "/queues/" + Escape(queue) + "/dead", query, nullptr);
}
Result<Json> RemoteService::PurgeDead(const std::string& queue) {
  if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
  return Call("POST", "/queues/" + Escape(queue) + "/dead/purge", {}, nullptr);
}
Result<Json> RemoteService::RetryDead(const std::string& queue) {
  if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
  return Call("POST", "/queues/" + Escape(queue) + "/dead/retry", {}, nullptr);
}
Result<Json> RemoteService::DeleteQueue(const std::string& queue) {
  if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
  return Call("POST", "/queues/" + Escape(queue) + "/delete", {}, nullptr);
}

// The caller is the server's business: it knows the token's scopes and records "api".
Result<Json> RemoteService::ApplyWorkflow(const Json& body, const Caller&) {
  return Call("POST", "/workflows", {}, &body);
}
Result<Json> RemoteService::ListWorkflows() { return Call("GET", "/workflows", {}, nullptr); }
Result<Json> RemoteService::GetWorkflow(const std::string& name) {
  if (auto st = CheckWorkflowName(name); !st) return Fail(st.error());
  return Call("GET", "/workflows/" + Escape(name), {}, nullptr);
}
Result<Json> RemoteService::ListVersions(const std::string& name) {
  if (auto st = CheckWorkflowName(name); !st) return Fail(st.error());
  return Call("GET", "/workflows/" + Escape(name) + "/versions", {}, nullptr);
}
Result<Json> RemoteService::GetVersion(const std::string& name, const std::string& version) {
  if (auto st = CheckWorkflowName(name); !st) return Fail(st.error());
  return Call("GET", "/workflows/" + Escape(name) + "/versions/" + Escape(version), {}, nullptr);
}

Result<Json> RemoteService::StartRun(const Json& body, const Caller&) {
  return Call("POST", "/runs", {}, &body);
}
Result<Json> RemoteService::ListRuns(const Query& query) {
  return Call("GET", "/runs", query, nullptr);
}
Result<Json> RemoteService::DispatchCron() {
  return Call("POST", "/triggers/cron/dispatch", {}, nullptr);
}
Result<Json> RemoteService::ListRemediations(const Query& query) {
  return Call("GET", "/remediations", query, nullptr);
}
Result<Json> RemoteService::GetRemediation(const std::string& id) {
  if (auto st = CheckRemediationId(id); !st) return Fail(st.error());
  return Call("GET", "/remediations/" + Escape(id), {}, nullptr);
}
Result<Json> RemoteService::DismissRemediation(const std::string& id, const Json& body,
                                               const Caller&) {
  if (auto st = CheckRemediationId(id); !st) return Fail(st.error());
  return Call("POST", "/remediations/" + Escape(id) + "/dismiss", {}, &body);
}
Result<Json> RemoteService::ReopenRemediation(const std::string& id, const Caller&) {
  if (auto st = CheckRemediationId(id); !st) return Fail(st.error());
  return Call("POST", "/remediations/" + Escape(id) + "/reopen", {}, nullptr);
}
Result<Json> RemoteService::RemediationDiff(const std::string& id) {
  if (auto st = CheckRemediationId(id); !st) return Fail(st.error());
  return Call("GET", "/remediations/" + Escape(id) + "/diff", {}, nullptr);
}
Result<Json> RemoteService::Alerts() { return Call("GET", "/alerts", {}, nullptr); }
Result<Json> RemoteService::Doctor() { return Call("GET", "/doctor", {}, nullptr); }
Result<Json> RemoteService::CountRuns() { return Call("GET", "/runs/counts", {}, nullptr); }
Result<Json> RemoteService::GetRun(const std::string& id) {
  if (auto st = CheckRunId(id); !st) return Fail(st.error());
  return Call("GET", "/runs/" + Escape(id), {}, nullptr);
}
Result<Json> RemoteService::CancelRun(const std::string& id, const Caller&) {
  if (auto st = CheckRunId(id); !st) return Fail(st.error());
  return Call("POST", "/runs/" + Escape(id) + "/cancel", {}, nullptr);
}
Result<Json> RemoteService::RetryRun(const std::string& id, const Json& body) {
  if (auto st = CheckRunId(id); !st) return Fail(st.error());
  return Call("POST", "/runs/" + Escape(id) + "/retry", {}, &body);
}
Result<Json> RemoteService::RunEvents(const std::string& id, const Query& query) {
  if (auto st = CheckRunId(id); !st) return Fail(st.error());
  return Call("GET", "/runs/" + Escape(id) + "/events", query, nullptr);
}

Status RemoteService::Follow(const std::string& path, std::string last_id, milliseconds timeout,
                             const EventSink& sink, const std::function<Result<bool>()>& ended,
                             const std::string& timeout_message) {
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    bool stopped = false;
    auto st = Stream(path, last_id, deadline, sink, stopped);
    if (!st) {
      if (st.error().code == ErrorCode::kTimeout) return Fail(ErrorCode::kTimeout, timeout_message);
      return st;
    }
    if (stopped) return {};
    // The server ends a stream after the last event, or when it shuts down: resume from the
    // last event unless the run or task is over.
    auto over = ended();
    if (!over) return Fail(over.error());
    if (*over) return {};
    if (SteadyClock::now() >= deadline) return Fail(ErrorCode::kTimeout, timeout_message);
    std::this_thread::sleep_for(kResumePause);
  }
}

Result<Json> RemoteService::ListSchedules() { return Call("GET", "/schedules", {}, nullptr); }
Result<Json> RemoteService::SetSchedulesPaused(const std::string& workflow, bool paused) {
  if (auto st = CheckWorkflowName(workflow); !st) return Fail(st.error());
  return Call("POST", "/workflows/" + Escape(workflow) + (paused ? "/pause" : "/resume"), {},
              nullptr);
}

Result<Json> RemoteService::ListTokens() { return Call("GET", "/tokens", {}, nullptr); }
Result<Json> RemoteService::CreateToken(const Json& body) {
  return Call("POST", "/tokens", {}, &body);
}
Result<Json> RemoteService::RevokeToken(const std::string& id) {
  if (auto st = CheckTokenId(id); !st) return Fail(st.error());
  return Call("POST", "/tokens/" + Escape(id) + "/revoke", {}, nullptr);
}

Status RemoteService::FollowRunEvents(const std::string& id, int64_t after, milliseconds timeout,
                                      const EventSink& sink) {
  if (auto st = CheckRunId(id); !st) return st;
  return Follow(
      "/runs/" + Escape(id) + "/events", after > 0 ? std::to_string(after) : std::string(), timeout,
      sink,
      [&]() -> Result<bool> {
        auto run = GetRun(id);
        if (!run) return Fail(run.error());
        auto status = ParseRunStatus((*run)["run"].value("status", ""));
        return status && IsTerminal(*status);
      },
      "run " + id + " has not ended after " + std::to_string(timeout.count()) + " ms");
}

Status RemoteService::FollowTaskEvents(const std::string& id, milliseconds timeout,
                                       const EventSink& sink) {
  if (auto st = CheckTaskId(id); !st) return st;
  return Follow(
      "/tasks/" + Escape(id) + "/events", std::string(), timeout, sink,
      [&]() -> Result<bool> {
        auto task = GetTask(id);
        if (!task) return Fail(task.error());
        auto status = ParseTaskStatus((*task)["task"].value("status", ""));
        return status && IsTerminal(*status);
      },
      "timed out following task " + id);
}

}  // namespace ferry::service
