// A Broker that only remembers submissions: enough for cron dispatch (runs::EnsureRunTask) and
// promotion tests without Redis. Everything else fails with kInternal.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/ids.h"

namespace ferry::testing {

class FakeBroker final : public Broker {
 public:
  std::vector<SubmitRequest> submitted;
  std::map<std::string, std::string> by_key;  // unique key -> id
  std::map<std::string, TaskRecord> tasks;
  std::vector<std::string> queues{"default"};
  std::map<std::string, int64_t> promote_calls;  // queue -> calls
  int64_t promote_result = 0;
  bool fail_submit = false;
  // When set, what Cancel, Retry, PurgeDead and RetryDead fail with (else they are unused).
  std::optional<Error> change_error;
  // Called by Cancel with the task's id, before it answers.
  std::function<void(const std::string&)> on_cancel;

  Result<SubmitResult> Submit(const SubmitRequest& r) override {
    if (fail_submit) return Fail(ErrorCode::kUnavailable, "fake: Redis is down");
    if (!r.unique_key.empty()) {
      auto it = by_key.find(r.unique_key);
      if (it != by_key.end()) return SubmitResult{it->second, true};
    }
    submitted.push_back(r);
    std::string id = r.id.empty() ? NewId() : r.id;
    if (!r.unique_key.empty()) by_key[r.unique_key] = id;
    TaskRecord t;
    t.id = id;
    t.queue = r.queue;
    t.kind = r.kind;
    t.payload = DumpJson(r.payload);
    t.status = TaskStatus::kPending;
    tasks[id] = t;
    return SubmitResult{id, false};
  }
  Result<std::optional<TaskRecord>> GetTask(const std::string& id) override {
    auto it = tasks.find(id);
    if (it == tasks.end()) return std::optional<TaskRecord>();
    return std::optional<TaskRecord>(it->second);
  }
  Result<std::vector<std::string>> ListQueues() override { return queues; }
  Result<int64_t> PromoteDue(const std::string& queue, int64_t, int) override {
    ++promote_calls[queue];
    return promote_result;
  }

  Result<std::vector<SubmitResult>> SubmitBatch(const std::vector<SubmitRequest>&) override {
    return No();
  }
  Result<TaskStatus> Cancel(const std::string& id) override {
    if (on_cancel) on_cancel(id);
    return Change();
  }
  Status Retry(const std::string&) override { return Change(); }
  Result<std::vector<ClaimedTask>> Claim(const std::vector<std::string>&, const std::string&, int,
                                         std::chrono::milliseconds) override {
    return No();
  }
  Result<std::vector<ClaimedTask>> Reclaim(const std::string&, const std::string&,
                                           std::chrono::milliseconds, int) override {
    return No();
  }
  Result<std::vector<std::string>> RenewLeases(const std::string&,
                                               const std::vector<LeaseRef>&) override {
    return No();
  }
  Result<std::vector<std::string>> CancelRequested(const std::vector<LeaseRef>&) override {
    return No();
  }
  Result<std::vector<CompletionOutcome>> Complete(const std::vector<Completion>&) override {
    return No();
  }
  Status AppendEvents(const std::string&, const std::string&,
                      const std::vector<std::pair<std::string, Json>>&) override {
    return No();
  }
  Status Heartbeat(const WorkerInfo&, std::chrono::milliseconds) override { return No(); }
  Status RemoveWorker(const std::string&) override { return No(); }
  Result<std::vector<WorkerInfo>> ListWorkers() override { return No(); }
  Result<TaskPage> ListTasks(const TaskListFilter&) override { return No(); }
  Result<QueueStats> GetQueueStats(const std::string&) override { return No(); }
  Result<std::vector<TaskRecord>> ListDead(const std::string&, int) override { return No(); }
  Result<int64_t> PurgeDead(const std::string&, int64_t) override { return Change(); }
  Result<int64_t> RetryDead(const std::string&, int64_t) override { return Change(); }
  Status DeleteQueue(const std::string&) override { return No(); }
  Result<std::vector<TaskEvent>> ReadEvents(const std::string&, const std::string&, int,
                                            std::chrono::milliseconds) override {
    return No();
  }
  Status Ping() override { return {}; }
  Result<std::map<std::string, std::string>> ServerInfo() override { return No(); }

 private:
  static tl::unexpected<Error> No() { return Fail(ErrorCode::kInternal, "fake broker: unused"); }
  tl::unexpected<Error> Change() const { return change_error ? Fail(*change_error) : No(); }
};

}  // namespace ferry::testing
