// The Service over Ferry's HTTP API: what the CLI uses with --server (FERRY_SERVER), so an
// operator needs a URL and a bearer token, not Redis or database credentials. Each call is one
// request to the route docs/api.md names; the answer is the route's JSON body, and an error body
// ({"error": {"code", "message", ...}}) comes back as the same Error a LocalService would return,
// so the CLI prints the same message and exits with the same code in both modes. Following
// events uses the Server-Sent Events routes and resumes after a dropped stream with the last
// event id.
//
// Thread-safety: calls may run on several threads at once (each request has its own handle).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "service/service.h"

namespace ferry::service {

struct RemoteServiceOptions {
  // The server's base URL, http:// or https:// ("http://127.0.0.1:8080"); a trailing slash is
  // ignored.
  std::string url;
  // Sent as "Authorization: Bearer <token>"; empty sends none (`ferry dev` needs none).
  std::string token;
  // One request's deadline (following events has its own).
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

class RemoteService : public Service {
 public:
  explicit RemoteService(RemoteServiceOptions options);

  Result<Json> SubmitTask(const Json& body) override;
  Result<Json> SubmitTasks(const Json& body) override;
  Result<Json> ListTasks(const Query& query) override;
  Result<Json> GetTask(const std::string& id) override;
  Result<Json> CancelTask(const std::string& id) override;
  Result<Json> RetryTask(const std::string& id) override;
  Result<Json> TaskEvents(const std::string& id, const Query& query) override;
  Result<Json> ListWorkers() override;
  Result<Json> ListQueues() override;
  Result<Json> GetQueue(const std::string& name) override;
  Result<Json> ListDead(const std::string& queue, const Query& query) override;
  Result<Json> PurgeDead(const std::string& queue) override;
  Result<Json> RetryDead(const std::string& queue) override;
  Result<Json> DeleteQueue(const std::string& queue) override;

  Result<Json> ApplyWorkflow(const Json& body, const Caller& caller) override;
  Result<Json> ListWorkflows() override;
  Result<Json> GetWorkflow(const std::string& name) override;
  Result<Json> ListVersions(const std::string& name) override;
  Result<Json> GetVersion(const std::string& name, const std::string& version) override;

  Result<Json> StartRun(const Json& body, const Caller& caller) override;
  Result<Json> ListRuns(const Query& query) override;
  Result<Json> CountRuns() override;
  Result<Json> GetRun(const std::string& id) override;
  Result<Json> CancelRun(const std::string& id, const Caller& caller) override;
  Result<Json> RetryRun(const std::string& id, const Json& body) override;
  Result<Json> RunEvents(const std::string& id, const Query& query) override;

  Result<Json> DispatchCron() override;
  Result<Json> ListRemediations(const Query& query) override;
  Result<Json> GetRemediation(const std::string& id) override;
  Result<Json> DismissRemediation(const std::string& id, const Json& body,
                                  const Caller& caller) override;
  Result<Json> ReopenRemediation(const std::string& id, const Caller& caller) override;
  Result<Json> RemediationDiff(const std::string& id) override;

  Result<Json> Alerts() override;
  Result<Json> Doctor() override;
  Result<Json> ListSchedules() override;
  Result<Json> SetSchedulesPaused(const std::string& workflow, bool paused) override;

  Result<Json> ListTokens() override;
  Result<Json> CreateToken(const Json& body) override;
  Result<Json> RevokeToken(const std::string& id) override;

  Status FollowRunEvents(const std::string& id, int64_t after, std::chrono::milliseconds timeout,
                         const EventSink& sink) override;
  Status FollowTaskEvents(const std::string& id, std::chrono::milliseconds timeout,
                          const EventSink& sink) override;

 private:
  // One request; `path` is below /api/v1 with its parameters already escaped.
  Result<Json> Call(const std::string& method, const std::string& path, const Query& query,
                    const Json* body);
  // Reads one SSE stream from `path` until the server ends it, `sink` says stop, or `deadline`.
  // `last_id` is sent as Last-Event-ID and updated as events arrive.
  Status Stream(const std::string& path, std::string& last_id,
                std::chrono::steady_clock::time_point deadline, const EventSink& sink,
                bool& stopped);

  // Follows `path` (resuming after `last_id`) until `ended` says the run or task is over, `sink`
  // stops, or `timeout` passes (kTimeout with `timeout_message`).
  Status Follow(const std::string& path, std::string last_id, std::chrono::milliseconds timeout,
                const EventSink& sink, const std::function<Result<bool>()>& ended,
                const std::string& timeout_message);

  // Constant after construction.
  const RemoteServiceOptions options_;
};

}  // namespace ferry::service
