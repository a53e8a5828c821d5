// Ferry's producer API for C++ programs: submit tasks, wait for them, cancel them, and start
// workflow runs. Part of the installed SDK (find_package(Ferry), target Ferry::client).
//
// Thread-safety: a Client holds one Redis connection (and, for runs, one store connection) and
// is not thread-safe; use one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ferry/json.h"
#include "ferry/result.h"

namespace ferry {

struct ClientOptions {
  // redis://, rediss://, redis+sentinel:// or redis+cluster:// (docs/operations.md).
  std::string redis_url = "redis://127.0.0.1:6379";
  // The key prefix the workers use.
  std::string prefix = "ferry";
  // Workflow store (SQLite path or postgresql:// URL); needed by StartRun only.
  std::string store;
};

struct SubmitOptions {
  std::string queue = "default";
  // Executions allowed before the task is dead-lettered; >= 1.
  int max_attempts = 3;
  // Per attempt; 0 = the worker's default.
  std::chrono::milliseconds timeout{0};
  // Run no earlier than this long from now; 0 = now.
  std::chrono::milliseconds delay{0};
  // Non-empty: a second submission with the same key within 24 h returns the first task.
  std::string unique_key;
};

// A task as it stands: status is pending, scheduled, running, retrying, succeeded, failed or
// cancelled.
struct TaskInfo {
  std::string id;
  std::string kind;
  std::string queue;
  std::string status;
  int attempts = 0;
  Json result;        // succeeded: the handler's result
  std::string error;  // failed or cancelled: the last error
  bool finished() const {
    return status == "succeeded" || status == "failed" || status == "cancelled";
  }
};

class Client {
 public:
  // Connects to Redis now (errors: kUnavailable, kUnauthenticated, kInvalidArgument).
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  virtual ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Returns the task id.
  Result<std::string> Submit(const std::string& kind, const Json& payload,
                             const SubmitOptions& options = {});
  // kNotFound when there is no such task.
  Result<TaskInfo> Get(const std::string& id);
  // Blocks until the task ends (its TaskInfo) or `timeout` passes (kTimeout).
  Result<TaskInfo> Wait(const std::string& id, std::chrono::milliseconds timeout);
  // Cancels a waiting task or stops a running one; returns its status after the request.
  Result<std::string> Cancel(const std::string& id);
  // Starts a run of an applied workflow; returns the run id. Needs ClientOptions::store.
  Result<std::string> StartRun(const std::string& workflow, const Json& inputs = Json::object(),
                               const std::string& queue = "default");

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
