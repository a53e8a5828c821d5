// A Broker that forwards every call to another one: a test overrides the calls it wants to fail
// or observe (the leveldb EnvWrapper seam, docs/architecture.md "Seams"), or hands a pool a
// connection it may close while the test keeps the broker underneath.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/broker.h"

namespace ferry::testing {

class ForwardingBroker : public Broker {
 public:
  // `inner` must outlive this broker.
  explicit ForwardingBroker(Broker& inner) : inner_(inner) {}
  Result<SubmitResult> Submit(const SubmitRequest& r) override { return inner_.Submit(r); }
  Result<std::vector<SubmitResult>> SubmitBatch(const std::vector<SubmitRequest>& r) override {
    return inner_.SubmitBatch(r);
  }
  Result<TaskStatus> Cancel(const std::string& id) override { return inner_.Cancel(id); }
  Result<TaskStatus> CancelUnwaited(const std::string& id) override {
    return inner_.CancelUnwaited(id);
  }
  Status Retry(const std::string& id) override { return inner_.Retry(id); }
  Result<std::vector<ClaimedTask>> Claim(const std::vector<std::string>& q, const std::string& w,
                                         int c, std::chrono::milliseconds b) override {
    return inner_.Claim(q, w, c, b);
  }
  Result<std::vector<ClaimedTask>> Reclaim(const std::string& q, const std::string& w,
                                           std::chrono::milliseconds m, int c) override {
    return inner_.Reclaim(q, w, m, c);
  }
  Result<std::vector<std::string>> RenewLeases(const std::string& w,
                                               const std::vector<LeaseRef>& l) override {
    return inner_.RenewLeases(w, l);
  }
  Result<std::vector<std::string>> CancelRequested(const std::vector<LeaseRef>& l) override {
    return inner_.CancelRequested(l);
  }
  Result<std::vector<CompletionOutcome>> Complete(const std::vector<Completion>& c) override {
    return inner_.Complete(c);
  }
  Result<int64_t> PromoteDue(const std::string& q, int64_t now, int limit) override {
    return inner_.PromoteDue(q, now, limit);
  }
  Status AppendEvents(const std::string& q, const std::string& id,
                      const std::vector<std::pair<std::string, Json>>& e) override {
    return inner_.AppendEvents(q, id, e);
  }
  Status Heartbeat(const WorkerInfo& i, std::chrono::milliseconds ttl) override {
    return inner_.Heartbeat(i, ttl);
  }
  Status RemoveWorker(const std::string& id) override { return inner_.RemoveWorker(id); }
  Result<std::vector<WorkerInfo>> ListWorkers() override { return inner_.ListWorkers(); }
  Result<std::optional<TaskRecord>> GetTask(const std::string& id) override {
    return inner_.GetTask(id);
  }
  Result<TaskPage> ListTasks(const TaskListFilter& f) override { return inner_.ListTasks(f); }
  Result<std::vector<std::string>> ListQueues() override { return inner_.ListQueues(); }
  Result<QueueStats> GetQueueStats(const std::string& q) override {
    return inner_.GetQueueStats(q);
  }
  Result<std::vector<TaskRecord>> ListDead(const std::string& q, int l) override {
    return inner_.ListDead(q, l);
  }
  Result<int64_t> PurgeDead(const std::string& q, int64_t up_to_ms) override {
    return inner_.PurgeDead(q, up_to_ms);
  }
  Result<int64_t> RetryDead(const std::string& q, int64_t up_to_ms) override {
    return inner_.RetryDead(q, up_to_ms);
  }
  Status DeleteQueue(const std::string& q) override { return inner_.DeleteQueue(q); }
  Result<std::vector<TaskEvent>> ReadEvents(const std::string& id, const std::string& a, int c,
                                            std::chrono::milliseconds b) override {
    return inner_.ReadEvents(id, a, c, b);
  }
  Status Ping() override { return inner_.Ping(); }
  Result<std::map<std::string, std::string>> ServerInfo() override { return inner_.ServerInfo(); }

 private:
  Broker& inner_;
};

}  // namespace ferry::testing
