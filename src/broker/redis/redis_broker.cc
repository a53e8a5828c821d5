// The Redis implementation of Broker. Key layout, scripts and guarantees: docs/broker.md.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "broker/broker.h"
#include "broker/redis/redis_acl.h"
#include "broker/redis/redis_client.h"
#include "broker/redis/redis_cluster.h"
#include "broker/redis/redis_codec.h"
#include "broker/task_cursor.h"
#include "core/ids.h"
#include "core/redis_url.h"
#include "core/time_util.h"

namespace ferry {
namespace redis_broker {
namespace {

// Tasks (or completions) per script call: large enough to amortize EVALSHA, small enough that
// one call never holds Redis for long (Lua scripts block the server while they run).
constexpr size_t kSubmitChunk = 200;

constexpr size_t kCompleteChunk = 200;
// The dead-letter set keeps at most this many ids per queue (besides dead_retention).
constexpr int64_t kDeadMax = 100000;
// Dead-lettered tasks one purge or retry_dead script call handles at most.
constexpr int64_t kDeadBatch = 500;
// Stopped or dead workers stay listed this long, so operators can see what died.
constexpr std::chrono::milliseconds kWorkerKeep = std::chrono::hours(1);
constexpr int64_t kMaxListedWorkers = 1000;
// How long the entry of a worker that left no record must have gone unrenewed before a cancel
// ends its task itself: the default heartbeat TTL, which a live worker renews well within.
constexpr std::chrono::milliseconds kGoneIdleWithoutRecord = std::chrono::seconds(30);

// ListTasks with a status or kind filter scans at most this many index (or dead-letter) entries
// per queue.
constexpr int64_t kListScanMax = 5000;
constexpr int64_t kListChunk = 200;
constexpr size_t kQueueCacheMax = 10000;
constexpr int kListLimitMax = 10000;
// A task listing's cursor holds one position per queue with tasks left, about 20 bytes and the
// queue's name each: over hundreds of queues it outgrows a URL (a request line is at most 16 KiB
// with its headers). One longer than this is kept in Redis for kStoredCursorTtl, and the page
// names it (task_cursor.h).
constexpr size_t kInlineCursorMax = 2048;
constexpr std::chrono::milliseconds kStoredCursorTtl = std::chrono::hours(1);
// ReadEvents of a task without an event stream re-derives its events this often while blocking.
constexpr std::chrono::milliseconds kDerivedPoll{100};
// A worker whose queues live in several cluster slots blocks on each in turn this long at most.
constexpr std::chrono::milliseconds kShardSlice{100};

constexpr std::string_view kCounterNames[] = {
    "submitted", "started", "succeeded",   "failed", "retried",  "cancelled", "dead_lettered",
    "reclaimed", "stale",   "handed_back", "poison", "requeued", "purged",    "snoozed"};

// A submit whose answer was lost may have made its tasks: the caller learns that, and whether
// sending the same again is safe (`keyed`: every task carries a unique_key, which is then how
// to find it; else a single task is named by its id, `first_id` as sent).
Error SubmitOutcome(Error e, bool keyed, size_t count, const std::string& first_id) {
  if (e.details != kOutcomeUnknown) return e;
  const bool one = count == 1;
  const std::string them = one ? "it" : "them";
  std::string what = one ? "the task" : "its " + std::to_string(count) + " tasks";
  std::string advice;
  if (keyed) {
    advice =
        "a submit with the same unique_key finds " + them + " instead of making " + them + " twice";
  } else {
    if (one) what = "task " + first_id;
    advice = "submitting again may make " + them + " twice (" +
             (one ? "`ferry task status " + first_id + "` shows whether it exists"
                  : std::string("`ferry task list` shows whether they exist")) +
             "; a unique_key makes a retry safe)";
  }
  e.message = "no answer came after the submit was sent, so " + what + " may exist; " + advice +
              ": " + e.message;
  return e;
}

// An error from before anything of the submit was sent: nothing of it can have taken effect
// (a lost queue registration is made again by the next call).
Error NothingSubmitted(Error e) {
  if (e.details == kOutcomeUnknown) e.details.clear();
  return e;
}

// Text of a string, status or integer reply; "" for nil.
std::string Str(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) return std::to_string(r.integer);
  return std::string(ReplyText(r));
}

const redisReply& Elem(const redisReply& r, size_t i) { return *r.element[i]; }

bool IsArray(const redisReply& r) { return r.type == REDIS_REPLY_ARRAY; }

FieldList Pairs(const redisReply& r) {
  FieldList out;
  if (!IsArray(r)) return out;
  out.reserve(r.elements / 2);
  for (size_t i = 0; i + 1 < r.elements; i += 2) {
    out.emplace_back(Str(Elem(r, i)), Str(Elem(r, i + 1)));
  }
  return out;
}

std::vector<std::string> Strings(const redisReply& r) {
  std::vector<std::string> out;
  if (!IsArray(r)) return out;
  out.reserve(r.elements);
  for (size_t i = 0; i < r.elements; ++i) out.push_back(Str(Elem(r, i)));
  return out;
}

bool Contains(std::string_view s, std::string_view needle) {
  return s.find(needle) != std::string_view::npos;
}

// Entries of an XREAD reply for one stream as events.
std::vector<TaskEvent> StreamEvents(const redisReply& r) {
  std::vector<TaskEvent> out;
  if (!IsArray(r) || r.elements == 0) return out;
  const redisReply& stream = Elem(r, 0);
  if (!IsArray(stream) || stream.elements != 2) return out;
  const redisReply& entries = Elem(stream, 1);
  for (size_t i = 0; i < entries.elements; ++i) {
    const redisReply& e = Elem(entries, i);
    if (!IsArray(e) || e.elements != 2) continue;
    out.push_back(EventFromEntry(Str(Elem(e, 0)), Pairs(Elem(e, 1))));
  }
  return out;
}

Status CheckReply(const redisReply& r) {
  if (IsError(r)) return Fail(ReplyError(r));
  return {};
}

char CompletionCode(Completion::Kind k) {
  switch (k) {
    case Completion::Kind::kSucceeded:
      return 's';
    case Completion::Kind::kFailed:
      return 'f';
    case Completion::Kind::kCancelled:
      return 'c';
    case Completion::Kind::kHandBack:
      return 'h';
    case Completion::Kind::kSnooze:
      return 'z';
  }
  return 'f';
}

Status RequireWorker(const std::string& worker) {
  if (worker.empty()) return Fail(ErrorCode::kInvalidArgument, "worker id must not be empty");
  return {};
}

Status RequireQueues(const std::vector<std::string>& queues) {
  for (const auto& q : queues) {
    if (auto st = ValidateQueueName(q); !st) return st;
  }
  return {};
}

class RedisBroker final : public Broker {
 public:
  RedisBroker(BrokerOptions options, std::unique_ptr<Client> conn, RedisTopology topology)
      : options_(std::move(options)), conn_(std::move(conn)), topology_(topology) {}

  Result<SubmitResult> Submit(const SubmitRequest& request) override {
    auto r = SubmitBatch({request});
    if (!r) return Fail(r.error());
    return std::move(r->front());
  }

  Result<std::vector<SubmitResult>> SubmitBatch(
      const std::vector<SubmitRequest>& requests) override {
    for (size_t i = 0; i < requests.size(); ++i) {
      if (auto st = ValidateSubmit(requests[i], options_); !st) {
        Error e = st.error();
        if (requests.size() > 1) e.message = "task " + std::to_string(i) + ": " + e.message;
        return Fail(std::move(e));
      }
    }
    std::vector<SubmitResult> results(requests.size());
    if (requests.empty()) return results;

    std::map<std::string, std::vector<size_t>> by_queue;
    for (size_t i = 0; i < requests.size(); ++i) by_queue[requests[i].queue].push_back(i);
    std::vector<std::string> queues;
    for (const auto& [q, _] : by_queue) queues.push_back(q);
    if (auto st = EnsureQueues(queues); !st) return Fail(NothingSubmitted(st.error()));
    const bool keyed = std::all_of(requests.begin(), requests.end(),
                                   [](const SubmitRequest& r) { return !r.unique_key.empty(); });
    // Once a chunk was applied, a failure after it leaves the batch's outcome unknown.
    bool applied = false;
    std::string first_id;  // as sent (drawn when the task had none), for SubmitOutcome's words
    const auto lost = [&](Error e) {
      return SubmitOutcome(applied ? OutcomeUnknown(std::move(e)) : std::move(e), keyed,
                           requests.size(), first_id);
    };

    const int64_t now = WallNowMs();
    const std::string now_s = std::to_string(now);
    const std::string retention = std::to_string(options_.retention.count());
    std::vector<Args> commands;
    std::vector<std::vector<size_t>> chunks;
    std::vector<std::string> chunk_queue;
    for (const auto& [queue, indices] : by_queue) {
      std::string qp = QueuePrefix(options_.prefix, queue);
      for (size_t begin = 0; begin < indices.size(); begin += kSubmitChunk) {
        size_t end = std::min(indices.size(), begin + kSubmitChunk);
        Args a = EvalArgs(Script::kSubmit, qp);
        a.Add(now_s).Add(retention).Add(queue);
        for (size_t k = begin; k < end; ++k) {
          const SubmitRequest& req = requests[indices[k]];
          int64_t eta = req.eta_ms.value_or(0);
          std::string id = req.id.empty() ? NewId(now) : req.id;
          if (first_id.empty()) first_id = id;
          a.Add(std::move(id))
              .Add(req.kind)
              .Add(DumpJson(req.payload))
              .Add(int64_t{req.max_attempts})
              .Add(static_cast<int64_t>(req.timeout.count()))
              .Add(eta > now ? eta : 0)
              .Add(req.unique_key)
              .Add(static_cast<int64_t>(req.unique_ttl.count()))
              .Add(req.waiter_id.empty() ? std::string() : req.waiter_queue + "/" + req.waiter_id);
        }
        commands.push_back(std::move(a));
        chunks.emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(begin),
                            indices.begin() + static_cast<std::ptrdiff_t>(end));
        chunk_queue.push_back(queue);
      }
    }
    // A chunk whose queue's stream is gone wrote nothing ("nostream": the queue was deleted
    // under this connection): its queue is made again and the chunk sent again.
    std::vector<size_t> todo(commands.size());
    for (size_t c = 0; c < todo.size(); ++c) todo[c] = c;
    for (int round = 0; !todo.empty(); ++round) {
      std::vector<Args> resend;  // the first round sends `commands` as they are
      if (round > 0) {
        for (size_t c : todo) resend.push_back(commands[c]);
      }
      auto replies = conn_->Pipeline(round == 0 ? commands : resend);
      if (!replies) return Fail(lost(replies.error()));
      std::vector<size_t> again;
      std::vector<std::string> gone;
      for (size_t j = 0; j < replies->size(); ++j) {
        const size_t c = todo[j];
        const redisReply& r = *(*replies)[j];
        // Earlier chunks may have been applied; resubmitting with unique keys is idempotent.
        if (auto st = CheckReply(r); !st) return Fail(lost(st.error()));
        if (IsArray(r) && r.elements == 1 && Str(Elem(r, 0)) == "nostream") {
          again.push_back(c);
          gone.push_back(chunk_queue[c]);
          continue;
        }
        if (!IsArray(r) || r.elements != chunks[c].size() * 2) {
          return Fail(ErrorCode::kInternal, "unexpected reply from the submit script");
        }
        applied = true;
        for (size_t k = 0; k < chunks[c].size(); ++k) {
          SubmitResult& out = results[chunks[c][k]];
          out.id = Str(Elem(r, 2 * k));
          out.existing = ReplyInt(Elem(r, 2 * k + 1)) == 1;
          RememberQueue(out.id, requests[chunks[c][k]].queue);
        }
      }
      if (again.empty()) break;
      if (round == 2) {
        return Fail(ErrorCode::kConflict, "queue " + gone.front() +
                                              " was deleted each time it was made again; "
                                              "its tasks were not submitted");
      }
      for (const auto& q : gone) known_queues_.erase(q);
      if (auto st = EnsureQueues(gone); !st) {
        return Fail(lost(applied ? st.error() : NothingSubmitted(st.error())));
      }
      todo = std::move(again);
    }
    if (auto st = Replicated(); !st) return Fail(st.error());
    return results;
  }

  Result<TaskStatus> Cancel(const std::string& id) override { return CancelTask(id, true); }
  Result<TaskStatus> CancelUnwaited(const std::string& id) override {
    return CancelTask(id, false);
  }

  Result<TaskStatus> CancelTask(const std::string& id, bool wake_waiter) {
    auto queue = FindQueue(id);
    if (!queue) return Fail(queue.error());
    if (!*queue) return Fail(ErrorCode::kNotFound, "no task " + id);
    auto parts = RunCancel(id, **queue, "", 0);
    if (!parts) return Fail(parts.error());
    // A running task's worker stops it, unless that worker is gone: then nobody would until a
    // live worker of its queue reclaims it, so ask again naming the gone worker.
    if (parts->size() > 2 && (*parts)[1] == "running" && !(*parts)[2].empty()) {
      auto idle = GoneWorkerIdle((*parts)[2]);
      if (!idle) return Fail(idle.error());
      if (*idle > 0) parts = RunCancel(id, **queue, (*parts)[2], *idle);
      if (!parts) return Fail(parts.error());
    }
    if (parts->empty() || (*parts)[0] == "notfound") {
      return Fail(ErrorCode::kNotFound, "no task " + id);
    }
    if (wake_waiter && parts->size() > 3) WakeWaiters({(*parts)[3]});
    if ((*parts)[0] == "conflict") {
      return Fail(ErrorCode::kConflict,
                  "task " + id + " already ended" +
                      (parts->size() > 1 ? " (" + (*parts)[1] + ")" : std::string()));
    }
    if (auto st = Replicated(); !st) return Fail(st.error());
    return parts->size() > 1 && (*parts)[1] == "running" ? TaskStatus::kRunning
                                                         : TaskStatus::kCancelled;
  }

  Result<std::vector<std::string>> RunCancel(const std::string& id, const std::string& queue,
                                             const std::string& gone_worker, int64_t gone_idle) {
    Args a = EvalArgs(Script::kCancel, QueuePrefix(options_.prefix, queue));
    a.Add(id).Add(WallNowMs()).Add(static_cast<int64_t>(options_.retention.count()));
    a.Add(options_.events_maxlen).Add(gone_worker).Add(gone_idle);
    auto r = conn_->Command(a);
    if (!r) return Fail(r.error());
    return Strings(**r);
  }

  // 0 while `worker` heartbeats; else how long its leases must have gone unrenewed before a
  // cancel may end its task (its heartbeat TTL: a live worker's clock may lag ours, its lease
  // renewals, measured by Redis, do not).
  Result<int64_t> GoneWorkerIdle(const std::string& worker) {
    auto r = conn_->Command(Args{"HGETALL", WorkerKey(options_.prefix, worker)});
    if (!r) return Fail(r.error());
    if (auto st = CheckReply(**r); !st) return Fail(st.error());
    auto fields = Pairs(**r);
    if (fields.empty()) return static_cast<int64_t>(kGoneIdleWithoutRecord.count());
    if (WorkerFromFields(fields, WallNowMs()).alive) return int64_t{0};
    for (const auto& [k, v] : fields) {
      if (k == "ttl_ms" && ToInt(v) > 0) return ToInt(v);
    }
    return static_cast<int64_t>(kGoneIdleWithoutRecord.count());
  }

  Status Retry(const std::string& id) override {
    auto queue = FindQueue(id);
    if (!queue) return Fail(queue.error());
    if (!*queue) return Fail(ErrorCode::kNotFound, "no task " + id);
    Args a = EvalArgs(Script::kRetry, QueuePrefix(options_.prefix, **queue));
    a.Add(id).Add(WallNowMs()).Add(static_cast<int64_t>(options_.retention.count()));
    a.Add(options_.events_maxlen);
    auto r = conn_->Command(a);
    if (!r) return Fail(r.error());
    auto parts = Strings(**r);
    if (parts.empty() || parts[0] == "notfound") return Fail(ErrorCode::kNotFound, "no task " + id);
    if (parts[0] == "conflict") {
      return Fail(ErrorCode::kConflict, "task " + id + " is " +
                                            (parts.size() > 1 ? parts[1] : "not ended") +
                                            "; only failed or cancelled tasks can be retried");
    }
    if (parts[0] == "owned") {
      // The waiter is in the details too, so that whoever knows what it is (the service: a
      // run's task) can name what to retry instead.
      const std::string waiter = parts.size() > 1 ? parts[1] : "";
      return Fail(Error{ErrorCode::kConflict,
                        "task " + id + " is waited for by task " + waiter +
                            ", which owns its end: retry that instead",
                        DumpJson(Json{{"waiter", waiter}})});
    }
    return Replicated();
  }

  Result<std::vector<ClaimedTask>> Claim(const std::vector<std::string>& queues,
                                         const std::string& worker, int count,
                                         std::chrono::milliseconds block) override {
    auto claimed = ClaimOnce(queues, worker, count, block);
    last_claim_full_ = claimed && static_cast<int>(claimed->size()) == count;
    return claimed;
  }

  Result<std::vector<ClaimedTask>> ClaimOnce(const std::vector<std::string>& asked,
                                             const std::string& worker, int count,
                                             std::chrono::milliseconds block) {
    if (asked.empty()) return Fail(ErrorCode::kInvalidArgument, "no queues to claim from");
    if (count < 1) return Fail(ErrorCode::kInvalidArgument, "claim count must be >= 1");
    if (auto st = RequireQueues(asked); !st) return Fail(st.error());
    if (auto st = RequireWorker(worker); !st) return Fail(st.error());
    // Under Redis Cluster a queue whose shard cannot be reached (a failover under way) sits
    // this claim out, so the queues on healthy shards go on; the call fails only when no queue
    // could be read. Without Cluster every error is returned.
    std::vector<std::string> live;
    std::optional<Error> skipped;
    auto skip = [&](const Error& e) {
      if (!conn_->clustered() || e.code != ErrorCode::kUnavailable) return false;
      if (!skipped) skipped = e;
      return true;
    };
    // A queue the limit on queues refuses is left out (logged once): the others go on.
    std::vector<std::string> refused;
    if (!conn_->clustered()) {
      if (auto st = EnsureQueues(asked, &refused); !st) return Fail(st.error());
    }
    std::vector<std::string> queues;
    for (const auto& q : asked) {
      if (std::find(refused.begin(), refused.end(), q) == refused.end()) queues.push_back(q);
    }
    if (queues.empty()) return Fail(ErrorCode::kConflict, RefusedAll(refused));
    // One queue, time to wait, and the last claim took what there was (fewer than asked): the
    // stream is most likely empty, so a non-blocking scripted read first (which also orders
    // several queues by priority) would only add two commands to every idle turn and to every
    // task that arrives while the worker waits. The blocking read returns at once when entries
    // are there. After a full batch the scripted read goes first: it reads and starts tasks in
    // one round trip where the blocking path takes two.
    if (queues.size() == 1 && block.count() > 0 && !last_claim_full_) {
      if (conn_->clustered()) {
        if (auto st = EnsureQueues(queues, &refused); !st) return Fail(st.error());
        if (!refused.empty()) return Fail(ErrorCode::kConflict, RefusedAll(refused));
      }
      return BlockingClaim(queues, worker, count, block);
    }
    for (const auto& q : queues) {
      if (conn_->clustered()) {
        const size_t before = refused.size();
        if (auto st = EnsureQueues({q}, &refused); !st) {
          if (skip(st.error())) continue;
          return Fail(st.error());
        }
        if (refused.size() != before) continue;
      }
      Args a = EvalArgs(Script::kClaim, QueuePrefix(options_.prefix, q));
      a.Add(worker).Add(WallNowMs()).Add(int64_t{count}).Add(options_.events_maxlen).Add("read");
      auto r = CommandWithGroup(a, q);
      if (!r) {
        if (skip(r.error())) continue;
        return Fail(r.error());
      }
      live.push_back(q);
      auto tasks = ParseStarted(**r, q, false);
      if (!tasks.empty()) return tasks;
    }
    if (live.empty()) {
      if (skipped) return Fail(*skipped);
      return Fail(ErrorCode::kConflict, RefusedAll(refused));
    }
    if (block.count() <= 0) return std::vector<ClaimedTask>{};
    auto groups = SlotGroups(live);
    if (groups.size() == 1) return BlockingClaim(live, worker, count, block);
    // Redis Cluster with the queues in several slots: one XREADGROUP cannot block on them all,
    // so block on each slot's queues in turn, in priority order, in short slices.
    const auto deadline = std::chrono::steady_clock::now() + block;
    const auto slice = std::clamp(block / static_cast<int64_t>(groups.size()),
                                  std::chrono::milliseconds(10), kShardSlice);
    while (!groups.empty()) {
      for (auto it = groups.begin(); it != groups.end();) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::vector<ClaimedTask>{};
        auto tasks = BlockingClaim(*it, worker, count, std::min(slice, left));
        if (!tasks && skip(tasks.error())) {
          it = groups.erase(it);
          continue;
        }
        if (!tasks || !tasks->empty()) return tasks;
        ++it;
      }
    }
    return Fail(*skipped);
  }

  Result<std::vector<ClaimedTask>> Reclaim(const std::string& queue, const std::string& worker,
                                           std::chrono::milliseconds min_idle, int count) override {
    if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
    if (auto st = RequireWorker(worker); !st) return Fail(st.error());
    if (count < 1) return Fail(ErrorCode::kInvalidArgument, "reclaim count must be >= 1");
    // A queue the limit refuses cannot exist, so it holds nothing to take over.
    std::vector<std::string> refused;
    if (auto st = EnsureQueues({queue}, &refused); !st) return Fail(st.error());
    if (!refused.empty()) return std::vector<ClaimedTask>{};
    Args a = EvalArgs(Script::kReclaim, QueuePrefix(options_.prefix, queue));
    a.Add(worker)
        .Add(WallNowMs())
        .Add(static_cast<int64_t>(std::max<int64_t>(0, min_idle.count())))
        .Add(int64_t{count})
        .Add(int64_t{options_.max_reclaims})
        .Add(static_cast<int64_t>(options_.retention.count()))
        .Add(static_cast<int64_t>(options_.dead_retention.count()))
        .Add(options_.events_maxlen)
        .Add(kDeadMax);
    auto r = CommandWithGroup(a, queue);
    if (!r) return Fail(r.error());
    const redisReply& reply = **r;
    if (!IsArray(reply) || reply.elements != 2 || !IsArray(Elem(reply, 1))) {
      return Fail(ErrorCode::kInternal, "unexpected reply from the reclaim script");
    }
    // Tasks it ended (poison, or cancelled with their worker gone) wake what waited for them.
    WakeWaiters(Strings(Elem(reply, 1)));
    return ParseStarted(Elem(reply, 0), queue, true);
  }

  Result<std::vector<std::string>> RenewLeases(const std::string& worker,
                                               const std::vector<LeaseRef>& leases) override {
    if (auto st = RequireWorker(worker); !st) return Fail(st.error());
    std::map<std::string, std::vector<const LeaseRef*>> by_queue;
    for (const auto& l : leases) by_queue[l.queue].push_back(&l);
    std::vector<Args> commands;
    std::vector<const std::vector<const LeaseRef*>*> groups;
    for (const auto& [queue, refs] : by_queue) {
      if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
      Args a = EvalArgs(Script::kRenew, QueuePrefix(options_.prefix, queue));
      a.Add(worker);
      for (const LeaseRef* l : refs) a.Add(l->id).Add(l->entry_id).Add(l->epoch);
      commands.push_back(std::move(a));
      groups.push_back(&refs);
    }
    std::vector<std::string> lost;
    if (commands.empty()) return lost;
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    for (size_t i = 0; i < replies->size(); ++i) {
      const redisReply& r = *(*replies)[i];
      if (IsError(r)) {
        // The stream or its group is gone (deleted, or Redis lost its data): no lease survives.
        if (!Contains(ReplyText(r), "NOGROUP")) return Fail(ReplyError(r));
        known_queues_.clear();
        for (const LeaseRef* l : *groups[i]) lost.push_back(l->id);
        continue;
      }
      for (auto& id : Strings(r)) lost.push_back(std::move(id));
    }
    return lost;
  }

  Result<std::vector<std::string>> CancelRequested(const std::vector<LeaseRef>& leases) override {
    std::vector<Args> commands;
    commands.reserve(leases.size());
    for (const auto& l : leases) {
      if (auto st = ValidateQueueName(l.queue); !st) return Fail(st.error());
      commands.push_back(Args{"HGET", TaskKey(options_.prefix, l.queue, l.id), "cancel_requested"});
    }
    std::vector<std::string> out;
    if (commands.empty()) return out;
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    for (size_t i = 0; i < replies->size(); ++i) {
      if (auto st = CheckReply(*(*replies)[i]); !st) return Fail(st.error());
      if (ReplyText(*(*replies)[i]) == "1") out.push_back(leases[i].id);
    }
    return out;
  }

  Result<std::vector<CompletionOutcome>> Complete(
      const std::vector<Completion>& completions) override {
    std::vector<CompletionOutcome> outcomes(completions.size(), CompletionOutcome::kMissing);
    if (completions.empty()) return outcomes;
    std::map<std::string, std::vector<size_t>> by_queue;
    for (size_t i = 0; i < completions.size(); ++i) {
      if (auto st = ValidateQueueName(completions[i].queue); !st) return Fail(st.error());
      by_queue[completions[i].queue].push_back(i);
    }
    const std::string now_s = std::to_string(WallNowMs());
    std::vector<Args> commands;
    std::vector<std::vector<size_t>> chunks;
    for (const auto& [queue, indices] : by_queue) {
      std::string qp = QueuePrefix(options_.prefix, queue);
      for (size_t begin = 0; begin < indices.size(); begin += kCompleteChunk) {
        size_t end = std::min(indices.size(), begin + kCompleteChunk);
        Args a = EvalArgs(Script::kComplete, qp);
        a.Add(now_s)
            .Add(static_cast<int64_t>(options_.retention.count()))
            .Add(static_cast<int64_t>(options_.dead_retention.count()))
            .Add(options_.events_maxlen)
            .Add(kDeadMax);
        for (size_t k = begin; k < end; ++k) {
          const Completion& c = completions[indices[k]];
          char code = CompletionCode(c.kind);
          a.Add(std::string_view(&code, 1))
              .Add(c.id)
              .Add(c.entry_id)
              .Add(c.epoch)
              .Add(c.worker)
              .Add(c.kind == Completion::Kind::kSucceeded ? c.result : c.error)
              .Add(c.retryable ? "1" : "0")
              .Add(std::max<int64_t>(0, c.backoff_ms));
        }
        commands.push_back(std::move(a));
        chunks.emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(begin),
                            indices.begin() + static_cast<std::ptrdiff_t>(end));
      }
    }
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    std::vector<std::string> waiters;
    for (size_t c = 0; c < replies->size(); ++c) {
      const redisReply& reply = *(*replies)[c];
      if (auto st = CheckReply(reply); !st) return Fail(st.error());
      if (!IsArray(reply) || reply.elements != 2 || !IsArray(Elem(reply, 0)) ||
          Elem(reply, 0).elements != chunks[c].size() || !IsArray(Elem(reply, 1))) {
        return Fail(ErrorCode::kInternal, "unexpected reply from the complete script");
      }
      for (const auto& w : Strings(Elem(reply, 1))) waiters.push_back(w);
      const redisReply& r = Elem(reply, 0);
      for (size_t k = 0; k < chunks[c].size(); ++k) {
        switch (ReplyInt(Elem(r, k))) {
          case 0:
            outcomes[chunks[c][k]] = CompletionOutcome::kApplied;
            break;
          case 1:
            outcomes[chunks[c][k]] = CompletionOutcome::kDuplicate;
            break;
          case 2:
            outcomes[chunks[c][k]] = CompletionOutcome::kStale;
            break;
          default:
            outcomes[chunks[c][k]] = CompletionOutcome::kMissing;
            break;
        }
      }
    }
    WakeWaiters(waiters);
    if (auto st = Replicated(); !st) return Fail(st.error());
    return outcomes;
  }

  // Wakes the tasks ("<queue>/<id>") that waited for tasks that just ended (wake.lua). Best
  // effort, after the ends are applied: a waiter not woken (Redis gone in between) still looks
  // again at the time its snooze named.
  void WakeWaiters(const std::vector<std::string>& waiters) {
    std::vector<Args> commands;
    for (const auto& w : waiters) {
      const size_t slash = w.find('/');
      if (slash == std::string::npos) continue;
      const std::string queue = w.substr(0, slash);
      if (!ValidateQueueName(queue)) continue;
      Args a = EvalArgs(Script::kWake, QueuePrefix(options_.prefix, queue));
      a.Add(w.substr(slash + 1)).Add(options_.events_maxlen);
      commands.push_back(std::move(a));
    }
    if (commands.empty()) return;
    auto replies = conn_->Pipeline(commands);
    if (!replies) {
      spdlog::debug("waking {} waiting task(s) failed: {}", commands.size(),
                    replies.error().message);
      return;
    }
    for (const auto& r : *replies) {
      if (auto st = CheckReply(*r); !st) {
        spdlog::debug("waking a waiting task failed: {}", st.error().message);
      }
    }
  }

  Result<int64_t> PromoteDue(const std::string& queue, int64_t now_ms, int limit) override {
    if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
    if (limit < 1) return int64_t{0};
    std::vector<std::string> refused;  // cannot exist: nothing is due in it
    if (auto st = EnsureQueues({queue}, &refused); !st) return Fail(st.error());
    if (!refused.empty()) return int64_t{0};
    Args a = EvalArgs(Script::kPromote, QueuePrefix(options_.prefix, queue));
    a.Add(now_ms).Add(int64_t{limit}).Add(options_.events_maxlen);
    auto r = conn_->Command(a);
    if (!r) return Fail(r.error());
    return ReplyInt(**r);
  }

  Status AppendEvents(const std::string& queue, const std::string& id,
                      const std::vector<std::pair<std::string, Json>>& events) override {
    if (auto st = ValidateQueueName(queue); !st) return st;
    if (events.empty()) return {};
    Args a = EvalArgs(Script::kEvents, QueuePrefix(options_.prefix, queue));
    a.Add(id).Add(options_.events_maxlen).Add(static_cast<int64_t>(options_.retention.count()));
    for (const auto& [type, data] : events) a.Add(type).Add(DumpJson(data));
    auto r = conn_->Command(a);
    if (!r) return Fail(r.error());
    if (ReplyInt(**r) < 0 && (*r)->type == REDIS_REPLY_INTEGER) {
      return Fail(ErrorCode::kNotFound, "no task " + id + " in queue " + queue);
    }
    return {};
  }

  Status Heartbeat(const WorkerInfo& info, std::chrono::milliseconds ttl) override {
    if (auto st = RequireWorker(info.id); !st) return st;
    if (ttl.count() <= 0) return Fail(ErrorCode::kInvalidArgument, "heartbeat TTL must be > 0");
    const int64_t now = WallNowMs();
    std::string key = WorkerKey(options_.prefix, info.id);
    Args hset{"HSET", key};
    for (const auto& [k, v] : WorkerToFields(info, ttl.count(), now)) hset.Add(k).Add(v);
    int64_t keep = std::max<int64_t>(ttl.count(), kWorkerKeep.count());
    std::string workers = WorkersKey(options_.prefix);
    std::vector<Args> commands;
    commands.push_back(std::move(hset));
    commands.push_back(Args{"PEXPIRE", key, std::to_string(keep)});
    commands.push_back(Args{"ZADD", workers, std::to_string(now), info.id});
    commands.push_back(Args{"ZREMRANGEBYSCORE", workers, "-inf", "(" + std::to_string(now - keep)});
    return RunAll(commands);
  }

  Status RemoveWorker(const std::string& id) override {
    if (auto st = RequireWorker(id); !st) return st;
    return RunAll({Args{"DEL", WorkerKey(options_.prefix, id)},
                   Args{"ZREM", WorkersKey(options_.prefix), id}});
  }

  Result<std::vector<WorkerInfo>> ListWorkers() override {
    auto ids = conn_->Command(
        Args{"ZREVRANGE", WorkersKey(options_.prefix), "0", std::to_string(kMaxListedWorkers - 1)});
    if (!ids) return Fail(ids.error());
    auto names = Strings(**ids);
    std::vector<WorkerInfo> out;
    if (names.empty()) return out;
    std::vector<Args> commands;
    for (const auto& id : names)
      commands.push_back(Args{"HGETALL", WorkerKey(options_.prefix, id)});
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    const int64_t now = WallNowMs();
    for (size_t i = 0; i < replies->size(); ++i) {
      if (auto st = CheckReply(*(*replies)[i]); !st) return Fail(st.error());
      auto fields = Pairs(*(*replies)[i]);
      if (fields.empty()) continue;  // expired; the set is trimmed by the next heartbeat
      WorkerInfo w = WorkerFromFields(fields, now);
      if (w.id.empty()) w.id = names[i];
      out.push_back(std::move(w));
    }
    return out;
  }

  Result<std::optional<TaskRecord>> GetTask(const std::string& id) override {
    if (id.empty()) return std::optional<TaskRecord>{};
    if (auto it = queue_of_.find(id); it != queue_of_.end()) {
      auto r = conn_->Command(Args{"HGETALL", TaskKey(options_.prefix, it->second, id)});
      if (!r) return Fail(r.error());
      auto fields = Pairs(**r);
      if (!fields.empty()) return std::optional<TaskRecord>(Record(id, it->second, fields));
    }
    auto queues = ListQueues();
    if (!queues) return Fail(queues.error());
    if (queues->empty()) return std::optional<TaskRecord>{};
    std::vector<Args> commands;
    for (const auto& q : *queues)
      commands.push_back(Args{"HGETALL", TaskKey(options_.prefix, q, id)});
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    for (size_t i = 0; i < replies->size(); ++i) {
      if (auto st = CheckReply(*(*replies)[i]); !st) return Fail(st.error());
      auto fields = Pairs(*(*replies)[i]);
      if (fields.empty()) continue;
      RememberQueue(id, (*queues)[i]);
      return std::optional<TaskRecord>(Record(id, (*queues)[i], fields));
    }
    return std::optional<TaskRecord>{};
  }

  // The cursor text a stored cursor's name (task_cursor.h) stands for, or `text` itself.
  Result<std::string> CursorText(const std::string& text) {
    if (!IsStoredCursorName(text)) return text;
    auto r = conn_->Command(Args{"GET", CursorKey(options_.prefix, text.substr(1))});
    if (!r) return Fail(r.error());
    if (auto st = CheckReply(**r); !st) return Fail(st.error());
    if ((*r)->type != REDIS_REPLY_STRING) {
      return Fail(ErrorCode::kInvalidArgument,
                  "cursor expired (a listing over many queues keeps its cursor " +
                      std::to_string(kStoredCursorTtl.count() / 3'600'000) +
                      " h); list again from the first page");
    }
    return Str(**r);
  }

  // `text` as a page's next cursor: as is, or stored when too long for a URL (kInlineCursorMax).
  Result<std::string> PageCursor(std::string text) {
    if (text.size() <= kInlineCursorMax) return text;
    const std::string token = NewId();
    auto r = conn_->Command(Args{"SET", CursorKey(options_.prefix, token), text, "PX",
                                 std::to_string(kStoredCursorTtl.count())});
    if (!r) return Fail(r.error());
    if (auto st = CheckReply(**r); !st) return Fail(st.error());
    return kStoredCursorMark + token;
  }

  Result<TaskPage> ListTasks(const TaskListFilter& filter) override {
    int limit = filter.limit <= 0 ? 50 : std::min(filter.limit, kListLimitMax);
    auto cursor_text = CursorText(filter.cursor);
    if (!cursor_text) return Fail(cursor_text.error());
    const ListingOf of = ListingFor(filter.status);
    auto cursor = DecodeTaskCursor(*cursor_text, of);
    if (!cursor) return Fail(cursor.error());
    std::vector<std::string> queues;
    if (filter.queue) {
      if (auto st = ValidateQueueName(*filter.queue); !st) return Fail(st.error());
      queues.push_back(*filter.queue);
    } else {
      auto all = ListQueues();
      if (!all) return Fail(all.error());
      queues = std::move(*all);
    }
    // Each queue's part, from where the cursor left it. A later page reads only the queues the
    // cursor names: one absent from it had nothing more (or did not exist yet).
    std::vector<std::pair<std::string, QueueScan>> scans;
    for (const auto& q : queues) {
      std::optional<ListPosition> from;
      if (!filter.cursor.empty()) {
        auto it = cursor->find(q);
        if (it == cursor->end()) continue;
        from = it->second;
      }
      // Dead letters are found in the dead set, the rest in the index.
      auto scan = of == ListingOf::kDeadLetters
                      ? ScanDead(q, filter.kind, limit, from)
                      : ScanIndex(q, filter.status, filter.kind, limit, from);
      if (!scan) return Fail(scan.error());
      scans.emplace_back(q, std::move(*scan));
    }
    // The newest `limit` of all the parts, merged: each step takes the newest of the parts' next
    // tasks, so what a queue gives is a prefix of its part (in its own order, which a producer's
    // clock may disagree with), and it resumes after its last one listed.
    TaskPage page;
    std::vector<size_t> taken(scans.size(), 0);
    while (page.tasks.size() < static_cast<size_t>(limit)) {
      std::optional<size_t> pick;
      for (size_t i = 0; i < scans.size(); ++i) {
        if (taken[i] == scans[i].second.found.size()) continue;
        const TaskRecord& x = scans[i].second.found[taken[i]].record;
        if (pick) {
          const TaskRecord& y = scans[*pick].second.found[taken[*pick]].record;
          if (x.created_ms != y.created_ms ? x.created_ms < y.created_ms : x.id < y.id) continue;
        }
        pick = i;
      }
      if (!pick) break;
      page.tasks.push_back(scans[*pick].second.found[taken[*pick]++].record);
    }
    TaskCursor next;
    for (size_t i = 0; i < scans.size(); ++i) {
      const auto& [q, scan] = scans[i];
      const size_t n = taken[i];
      if (n == scan.found.size()) {
        if (!scan.exhausted) next[q] = scan.scanned_to;
      } else if (n > 0) {
        next[q] = scan.found[n - 1].at;
      } else {
        next[q] = scan.found.front().at;  // none listed: resume at its first
        next[q].inclusive = true;
      }
    }
    auto next_text = PageCursor(EncodeTaskCursor(next));
    if (!next_text) return Fail(next_text.error());
    page.next = std::move(*next_text);
    return page;
  }

  Result<std::vector<std::string>> ListQueues() override {
    auto r = conn_->Command(Args{"SMEMBERS", QueuesKey(options_.prefix)});
    if (!r) return Fail(r.error());
    auto names = Strings(**r);
    std::sort(names.begin(), names.end());
    return names;
  }

  Result<QueueStats> GetQueueStats(const std::string& queue) override {
    if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
    std::string stream = StreamKey(options_.prefix, queue);
    auto replies = conn_->Pipeline({Args{"XLEN", stream}, Args{"XINFO", "GROUPS", stream},
                                    Args{"ZCARD", DelayedKey(options_.prefix, queue)},
                                    Args{"ZCARD", DeadKey(options_.prefix, queue)},
                                    Args{"HGETALL", StatsKey(options_.prefix, queue)},
                                    Args{"XINFO", "STREAM", IndexKey(options_.prefix, queue)}});
    if (!replies) return Fail(replies.error());
    auto& rs = *replies;
    for (size_t i : {size_t{0}, size_t{2}, size_t{3}, size_t{4}}) {
      if (auto st = CheckReply(*rs[i]); !st) return Fail(st.error());
    }
    QueueStats s;
    s.queue = queue;
    int64_t length = ReplyInt(*rs[0]);
    std::string last_delivered;
    bool has_group = false;
    if (!IsError(*rs[1])) {  // no stream yet: "ERR no such key"
      for (size_t g = 0; g < rs[1]->elements; ++g) {
        auto fields = Pairs(Elem(*rs[1], g));
        bool ours = false;
        int64_t pel = 0;
        std::string last;
        for (const auto& [k, v] : fields) {
          if (k == "name") ours = v == kGroup;
          if (k == "pending") pel = ToInt(v);
          if (k == "last-delivered-id") last = v;
        }
        if (ours) {
          has_group = true;
          s.running = pel;
          last_delivered = last;
        }
      }
    }
    // Acknowledged entries are deleted, so the stream holds exactly the undelivered entries
    // plus the PEL. (The group's "lag" is unusable here: XDEL makes Redis 7.0 report it null.)
    s.pending = std::max<int64_t>(0, length - s.running);
    s.scheduled = ReplyInt(*rs[2]);
    s.dead = ReplyInt(*rs[3]);
    for (auto name : kCounterNames) s.counters[std::string(name)] = 0;
    const redisReply& counters = *rs[4];
    for (size_t i = 0; i + 1 < counters.elements; i += 2) {
      s.counters[Str(Elem(counters, i))] = ToInt(ReplyText(Elem(counters, i + 1)));
    }
    // `submitted` is the index's: submit.lua appends one entry per task it makes, and the stream
    // counts every entry ever added, however trimmed since (no index yet: "ERR no such key").
    if (!IsError(*rs[5])) {
      for (const auto& [k, v] : Pairs(*rs[5])) {
        if (k == "entries-added") s.counters["submitted"] = ToInt(v);
      }
    }
    if (s.pending > 0) {
      std::string start = has_group ? "(" + last_delivered : "-";
      auto first = conn_->Command(Args{"XRANGE", stream, start, "+", "COUNT", "1"});
      if (!first) return Fail(first.error());
      if (IsArray(**first) && (*first)->elements > 0 && IsArray(Elem(**first, 0))) {
        s.oldest_pending_ms = StreamIdMs(ReplyText(Elem(Elem(**first, 0), 0)));
      }
    }
    return s;
  }

  Result<std::vector<TaskRecord>> ListDead(const std::string& queue, int limit) override {
    if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
    if (limit <= 0) limit = 50;
    limit = std::min(limit, kListLimitMax);
    auto ids = conn_->Command(
        Args{"ZREVRANGE", DeadKey(options_.prefix, queue), "0", std::to_string(limit - 1)});
    if (!ids) return Fail(ids.error());
    return LoadRecords(queue, Strings(**ids), std::nullopt);
  }

  Result<int64_t> PurgeDead(const std::string& queue, int64_t up_to_ms) override {
    return OverDeadSet(Script::kPurge, queue, {up_to_ms});
  }

  Result<int64_t> RetryDead(const std::string& queue, int64_t up_to_ms) override {
    return OverDeadSet(
        Script::kRetryDead, queue,
        {up_to_ms, static_cast<int64_t>(options_.retention.count()), options_.events_maxlen});
  }

  // Runs purge.lua or retry_dead.lua (ARGV: the batch size, then `args`) until a batch comes
  // back short. Bounded batches keep each script short; the set shrinks every round (every
  // examined id leaves it), so the loop ends. Returns the sum of what the batches did.
  Result<int64_t> OverDeadSet(Script script, const std::string& queue,
                              std::initializer_list<int64_t> args) {
    if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
    int64_t done = 0;
    for (;;) {
      Args a = EvalArgs(script, QueuePrefix(options_.prefix, queue));
      a.Add(kDeadBatch);
      for (int64_t v : args) a.Add(v);
      auto r = conn_->Command(a);
      if (!r) return Fail(r.error());
      if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) {
        return Fail(ErrorCode::kInternal,
                    "unexpected reply from the " + std::string(ScriptName(script)) + " script");
      }
      done += ReplyInt(Elem(**r, 0));
      if (ReplyInt(Elem(**r, 1)) < kDeadBatch) break;
    }
    if (auto st = Replicated(); !st) return Fail(st.error());
    return done;
  }

  Status DeleteQueue(const std::string& queue) override {
    if (auto st = ValidateQueueName(queue); !st) return st;
    auto member = conn_->Command(Args{"SISMEMBER", QueuesKey(options_.prefix), queue});
    if (!member) return Fail(member.error());
    if (ReplyInt(**member) != 1) return Fail(ErrorCode::kNotFound, "no queue " + queue);
    if (auto st = ForgetQueue(queue); !st) return st;
    return Replicated();
  }

  // A task's event stream exists only once it had an event its record cannot tell (see
  // docs/broker.md "Events"); until then the routine events are derived from the record, under
  // the ids the stream gets when it is opened, so a resume point works across the switch.
  Result<std::vector<TaskEvent>> ReadEvents(const std::string& id, const std::string& after_id,
                                            int count, std::chrono::milliseconds block) override {
    auto queue = FindQueue(id);
    if (!queue) return Fail(queue.error());
    if (!*queue) return Fail(ErrorCode::kNotFound, "no task " + id);
    const std::string after = after_id.empty() ? "0" : after_id;
    const std::string ekey = EventsKey(options_.prefix, **queue, id);
    const std::string tkey = TaskKey(options_.prefix, **queue, id);
    const std::string n = std::to_string(count > 0 ? count : 100);
    const auto deadline = std::chrono::steady_clock::now() + block;
    // Bounded: each round either returns or waits up to kDerivedPoll.
    for (int round = 0; round < 1 + static_cast<int>(block / kDerivedPoll) + 1; ++round) {
      auto replies = conn_->Pipeline(
          {Args{"XREAD", "COUNT", n, "STREAMS", ekey, after}, Args{"HGETALL", tkey}});
      if (!replies) return Fail(replies.error());
      for (const auto& r : *replies) {
        if (auto st = CheckReply(*r); !st) return Fail(st.error());
      }
      auto events = StreamEvents(*(*replies)[0]);
      if (!events.empty()) return events;
      auto fields = Pairs(*(*replies)[1]);
      bool has_stream = std::any_of(fields.begin(), fields.end(), [](const auto& f) {
        return f.first == "events" && f.second == "1";
      });
      auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (!has_stream) {
        for (auto& e : DerivedEvents(fields)) {
          if (StreamIdLess(after, e.id) && events.size() < static_cast<size_t>(ToInt(n))) {
            events.push_back(std::move(e));
          }
        }
        if (!events.empty() || fields.empty()) return events;
      }
      if (remaining.count() <= 0) return events;
      // Routine transitions of a task without a stream write nothing to wait on, so wait in
      // short steps and derive again; with a stream, wait for it directly.
      auto wait = has_stream ? remaining : std::min(remaining, kDerivedPoll);
      wait = std::max(wait, std::chrono::milliseconds(1));
      auto r = conn_->Command(
          Args{"XREAD", "COUNT", n, "BLOCK", std::to_string(wait.count()), "STREAMS", ekey, after},
          wait);
      if (!r) return Fail(r.error());
      events = StreamEvents(**r);
      if (!events.empty() || has_stream) return events;
    }
    return std::vector<TaskEvent>{};
  }

  Status Ping() override {
    auto r = conn_->Command(Args{"PING"});
    if (!r) return Fail(r.error());
    return {};
  }

  Result<std::map<std::string, std::string>> ServerInfo() override {
    const Args info_args{"INFO", "server", "persistence", "memory", "replication"};
    auto rs = conn_->Pipeline({info_args, Args{"TIME"}});
    if (!rs) return Fail(rs.error());
    if (auto st = CheckReply(*(*rs)[0]); !st) return Fail(st.error());
    auto info = ParseInfo(ReplyText(*(*rs)[0]));
    const redisReply& t = *(*rs)[1];
    if (IsArray(t) && t.elements == 2) {
      info["server_time_ms"] =
          std::to_string(ToInt(Str(Elem(t, 0))) * 1000 + ToInt(Str(Elem(t, 1))) / 1000);
    }
    auto facts = conn_->TopologyFacts();
    if (!facts) return Fail(facts.error());
    for (auto& [k, v] : *facts) info["ferry_" + k] = v;
    info["ferry_wait_replicas"] = std::to_string(options_.wait_replicas);
    if (conn_->clustered()) {
      // Persistence and eviction are per master: report the worst, and where.
      auto each = conn_->OnEveryMaster(info_args);
      if (!each) return Fail(each.error());
      std::string aof_off;
      std::string evicting;
      int64_t fewest_replicas = -1;
      for (const auto& [where, reply] : *each) {
        if (auto st = CheckReply(*reply); !st) return Fail(st.error());
        auto m = ParseInfo(ReplyText(*reply));
        if (m["aof_enabled"] != "1") aof_off += (aof_off.empty() ? "" : ",") + where;
        if (m["maxmemory_policy"] != "noeviction") {
          evicting += (evicting.empty() ? "" : ",") + where + "=" + m["maxmemory_policy"];
          info["maxmemory_policy"] = m["maxmemory_policy"];
        }
        int64_t replicas = ToInt(m["connected_slaves"]);
        if (fewest_replicas < 0 || replicas < fewest_replicas) fewest_replicas = replicas;
      }
      info["aof_enabled"] = aof_off.empty() ? "1" : "0";
      info["ferry_aof_off_on"] = aof_off;
      info["ferry_evicting_on"] = evicting;
      info["connected_slaves"] = std::to_string(std::max<int64_t>(0, fewest_replicas));
    }
    return info;
  }

  Result<std::vector<std::string>> MissingPermissions() override {
    return ProbePermissions(*conn_, options_.prefix, topology_);
  }

  Result<std::map<std::string, std::string>> GetOpsState(const std::string& name) override {
    auto r = conn_->Command(Args{"HGETALL", options_.prefix + ":ops:" + name});
    if (!r) return Fail(r.error());
    if (auto st = CheckReply(**r); !st) return Fail(st.error());
    std::map<std::string, std::string> out;
    for (auto& [k, v] : Pairs(**r)) out[k] = v;
    return out;
  }

  Status UpdateOpsState(const std::string& name, const std::map<std::string, std::string>& set,
                        const std::map<std::string, std::string>& set_if_absent,
                        const std::vector<std::string>& remove) override {
    const std::string key = options_.prefix + ":ops:" + name;
    std::vector<Args> commands;
    if (!set.empty()) {
      Args a{"HSET", key};
      for (const auto& [k, v] : set) a.Add(k).Add(v);
      commands.push_back(std::move(a));
    }
    for (const auto& [k, v] : set_if_absent) commands.push_back(Args{"HSETNX", key, k, v});
    if (!remove.empty()) {
      Args a{"HDEL", key};
      for (const auto& k : remove) a.Add(k);
      commands.push_back(std::move(a));
    }
    if (commands.empty()) return {};
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    for (const auto& r : *replies) {
      if (auto st = CheckReply(*r); !st) return st;
    }
    return {};
  }

 private:
  // Makes queues usable, once per queue and connection (a new connection checks again: a Redis
  // restart without persistence loses everything), and again when a submit or a read finds the
  // stream gone (the queue was deleted under this process): first each stream and its consumer
  // group (XGROUP CREATE ... MKSTREAM, from id 0 so entries added before the group are
  // delivered), then the names in the set of queues within max_queues (register_queue.lua).
  // Stream before name is what keeps a queue that has a stream listed against a concurrent
  // DeleteQueue (see ForgetQueue). Without `refused` the call fails whole when any name is
  // over the limit (kConflict naming it) and no name is added, so no other process lists, and
  // makes again, a queue this call gave up; with `refused`, the names over the limit are added
  // there and the others are made. A refused queue's fresh, empty stream is removed again.
  Status EnsureQueues(const std::vector<std::string>& queues,
                      std::vector<std::string>* refused = nullptr) {
    if (auto st = conn_->Ready(); !st) return st;
    if (known_generation_ != conn_->generation()) {
      known_queues_.clear();
      known_generation_ = conn_->generation();
    }
    std::vector<std::string> fresh;
    for (const auto& q : queues) {
      if (known_queues_.count(q) != 0) continue;
      if (std::find(fresh.begin(), fresh.end(), q) != fresh.end()) continue;
      fresh.push_back(q);
    }
    if (fresh.empty()) return {};
    std::vector<Args> groups;
    Args registers{"EVAL", RegisterQueueScriptText(), "1", QueuesKey(options_.prefix)};
    registers.Add(options_.max_queues).Add(refused == nullptr ? "all" : "each");
    for (const auto& q : fresh) {
      groups.push_back(
          Args{"XGROUP", "CREATE", StreamKey(options_.prefix, q), kGroup, "0", "MKSTREAM"});
      registers.Add(q);
    }
    auto made = conn_->Pipeline(groups);
    if (!made) return Fail(made.error());
    for (const auto& r : *made) {
      if (IsError(*r) && !Contains(ReplyText(*r), "BUSYGROUP")) return Fail(ReplyError(*r));
    }
    auto registered = conn_->Command(registers);
    if (!registered) return Fail(registered.error());
    if (auto st = CheckReply(**registered); !st) return st;
    if ((*registered)->type != REDIS_REPLY_ARRAY || (*registered)->elements != fresh.size()) {
      return Fail(ErrorCode::kInternal, "unexpected reply from the register_queue script");
    }
    std::vector<std::string> usable;
    std::vector<std::string> over;
    int64_t existing = 0;
    for (size_t i = 0; i < fresh.size(); ++i) {
      const int64_t r = ReplyInt(Elem(**registered, i));
      if (r > 0) {
        usable.push_back(fresh[i]);
        continue;
      }
      existing = -r;
      over.push_back(fresh[i]);
      // Only an empty stream goes: a task in it would be a producer's that had the queue before.
      auto undone =
          conn_->Command(EvalArgs(Script::kDeleteQueue, QueuePrefix(options_.prefix, fresh[i])));
      if (!undone) return Fail(undone.error());
    }
    // The connection may have been re-established inside Pipeline().
    if (known_generation_ != conn_->generation()) {
      known_queues_.clear();
      known_generation_ = conn_->generation();
    }
    known_queues_.insert(usable.begin(), usable.end());
    if (over.empty()) return {};
    const std::string exist =
        std::to_string(existing) + (existing == 1 ? " queue exists" : " queues exist");
    const std::string limit = " and the limit is " + std::to_string(options_.max_queues) +
                              " (--max-queues, FERRY_MAX_QUEUES); `ferry queue delete` removes "
                              "one no longer used";
    if (refused != nullptr) {
      for (const auto& q : over) {
        if (warned_refused_.insert(q).second) {
          spdlog::warn("broker: queue {} cannot be made: {}{}", q, exist, limit);
        }
        refused->push_back(q);
      }
      return {};
    }
    if (over.size() == 1) {
      return Fail(ErrorCode::kConflict, "queue " + over[0] + " cannot be made: " + exist + limit);
    }
    // A call that fails whole: it names its new queues (the first few) and how many it needs, so
    // a batch of new queues does not read as if the limit had been reached before it.
    std::string names;
    for (size_t i = 0; i < over.size() && i < 3; ++i) names += (i ? ", " : "") + over[i];
    if (over.size() > 3) names += ", ...";
    return Fail(ErrorCode::kConflict, std::to_string(over.size()) + " new queues (" + names +
                                          ") cannot be made: " + exist + ", this call needs " +
                                          std::to_string(over.size()) + " more," + limit +
                                          "; it submits nothing and makes none");
  }

  // Forgets `queue` when it holds no task: its keys (delete_queue.lua), then its name. A
  // producer that made the queue before and writes to it meanwhile loses nothing: its submit
  // finds the stream gone and makes the queue again, stream first. A stream found after the name
  // went (made again between the two steps) puts the name back: kConflict.
  Status ForgetQueue(const std::string& queue) {
    auto r = conn_->Command(EvalArgs(Script::kDeleteQueue, QueuePrefix(options_.prefix, queue)));
    if (!r) return Fail(r.error());
    auto parts = Strings(**r);
    if (parts.size() == 4 && parts[0] == "busy") {
      std::vector<std::string> held;
      if (parts[1] != "0") held.push_back(parts[1] + " waiting or running");
      if (parts[2] != "0") held.push_back(parts[2] + " scheduled or retrying");
      if (parts[3] != "0") held.push_back(parts[3] + " dead-lettered");
      return Fail(ErrorCode::kConflict, "queue " + queue + " still holds tasks (" +
                                            fmt::format("{}", fmt::join(held, ", ")) +
                                            "): cancel, run or purge them first");
    }
    if (parts.size() != 1 || parts[0] != "deleted") {
      return Fail(ErrorCode::kInternal, "unexpected reply from the delete_queue script");
    }
    known_queues_.erase(queue);
    const std::string stream = StreamKey(options_.prefix, queue);
    auto after =
        conn_->Pipeline({Args{"SREM", QueuesKey(options_.prefix), queue}, Args{"EXISTS", stream}});
    if (!after) return Fail(after.error());
    for (const auto& reply : *after) {
      if (auto st = CheckReply(*reply); !st) return st;
    }
    if (ReplyInt(*(*after)[1]) != 0) {
      auto back = conn_->Command(Args{"SADD", QueuesKey(options_.prefix), queue});
      if (!back) return Fail(back.error());
      return Fail(ErrorCode::kConflict,
                  "queue " + queue + " was used again while it was being deleted; it stays");
    }
    return {};
  }

  // Queues grouped by hash slot of their stream, groups in the queues' priority order (one
  // group unless clustered).
  std::vector<std::vector<std::string>> SlotGroups(const std::vector<std::string>& queues) const {
    if (!conn_->clustered()) return {queues};
    std::vector<std::pair<int, std::vector<std::string>>> groups;
    for (const auto& q : queues) {
      int slot = KeySlot(StreamKey(options_.prefix, q));
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& g) { return g.first == slot; });
      if (it == groups.end()) {
        groups.emplace_back(slot, std::vector<std::string>{q});
      } else {
        it->second.push_back(q);
      }
    }
    std::vector<std::vector<std::string>> out;
    for (auto& [_, g] : groups) out.push_back(std::move(g));
    return out;
  }

  // One blocking XREADGROUP on `queues` (one slot), then the claim script on what arrived.
  Result<std::vector<ClaimedTask>> BlockingClaim(const std::vector<std::string>& queues,
                                                 const std::string& worker, int count,
                                                 std::chrono::milliseconds block) {
    const auto deadline = std::chrono::steady_clock::now() + block;
    auto make_read = [&](std::chrono::milliseconds wait) {
      Args read{"XREADGROUP", "GROUP", kGroup, worker};
      read.Add("COUNT").Add(int64_t{count}).Add("BLOCK").Add(static_cast<int64_t>(wait.count()));
      read.Add("STREAMS");
      for (const auto& q : queues) read.Add(StreamKey(options_.prefix, q));
      for (size_t i = 0; i < queues.size(); ++i) read.Add(">");
      return read;
    };
    std::unordered_map<std::string, std::string> queue_of_stream;
    for (const auto& q : queues) queue_of_stream.emplace(StreamKey(options_.prefix, q), q);
    auto r = conn_->Command(make_read(block), block);
    if (!r && (Contains(r.error().message, "NOGROUP") ||
               Contains(r.error().message, "UNBLOCKED the stream key no longer exists"))) {
      // A stream deleted under the worker (DeleteQueue, FLUSHALL, a manual DEL): found at the
      // read (NOGROUP), or while blocked in it (Redis 7 unblocks the reader with "UNBLOCKED the
      // stream key no longer exists"). Make the groups again and read once more, for what is
      // left of the wait (BLOCK 0 would wait forever).
      known_queues_.clear();
      if (auto st = EnsureQueues(queues); !st) return Fail(st.error());
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::vector<ClaimedTask>{};
      r = conn_->Command(make_read(left), left);
    }
    if (!r) return Fail(r.error());
    if ((*r)->type == REDIS_REPLY_NIL || !IsArray(**r)) return std::vector<ClaimedTask>{};

    // Start what arrived, in the queues' priority order.
    std::map<size_t, std::pair<std::string, Args>> starts;
    const std::string now_s = std::to_string(WallNowMs());
    for (size_t s = 0; s < (*r)->elements; ++s) {
      const redisReply& stream = Elem(**r, s);
      if (!IsArray(stream) || stream.elements != 2) continue;
      auto it = queue_of_stream.find(Str(Elem(stream, 0)));
      if (it == queue_of_stream.end()) continue;
      size_t rank =
          static_cast<size_t>(std::find(queues.begin(), queues.end(), it->second) - queues.begin());
      Args a = EvalArgs(Script::kClaim, QueuePrefix(options_.prefix, it->second));
      a.Add(worker).Add(now_s).Add(int64_t{count}).Add(options_.events_maxlen).Add("given");
      const redisReply& entries = Elem(stream, 1);
      for (size_t e = 0; e < entries.elements; ++e) {
        const redisReply& entry = Elem(entries, e);
        if (!IsArray(entry) || entry.elements != 2) continue;
        auto fields = Pairs(Elem(entry, 1));
        a.Add(ReplyText(Elem(entry, 0))).Add(fields.empty() ? "" : fields[0].second);
      }
      starts.emplace(rank, std::make_pair(it->second, std::move(a)));
    }
    std::vector<Args> commands;
    std::vector<std::string> command_queues;
    for (auto& [rank, qa] : starts) {
      command_queues.push_back(qa.first);
      commands.push_back(std::move(qa.second));
    }
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    std::vector<ClaimedTask> tasks;
    for (size_t i = 0; i < replies->size(); ++i) {
      if (auto st = CheckReply(*(*replies)[i]); !st) return Fail(st.error());
      auto part = ParseStarted(*(*replies)[i], command_queues[i], false);
      std::move(part.begin(), part.end(), std::back_inserter(tasks));
    }
    return tasks;
  }

  // Why a claim had no queue to read: every one it named was refused by the limit on queues.
  std::string RefusedAll(const std::vector<std::string>& refused) const {
    return fmt::format(
        "queue{} {} cannot be made: the limit of {} queues is reached "
        "(--max-queues, FERRY_MAX_QUEUES); `ferry queue delete` removes one no "
        "longer used",
        refused.size() == 1 ? "" : "s", fmt::join(refused, ", "), options_.max_queues);
  }

  // Durability (BrokerOptions::wait_replicas): called after a write whose success the caller
  // is about to be told.
  Status Replicated() {
    if (options_.wait_replicas <= 0) return {};
    return conn_->WaitForReplicas(options_.wait_replicas, options_.wait_timeout);
  }

  // Runs a script that reads the queue's consumer group; recreates the group once on NOGROUP.
  Result<ReplyPtr> CommandWithGroup(const Args& args, const std::string& queue) {
    auto r = conn_->Command(args);
    if (r || !Contains(r.error().message, "NOGROUP")) return r;
    known_queues_.erase(queue);
    if (auto st = EnsureQueues({queue}); !st) return Fail(st.error());
    return conn_->Command(args);
  }

  Status RunAll(const std::vector<Args>& commands) {
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    for (const auto& r : *replies) {
      if (auto st = CheckReply(*r); !st) return st;
    }
    return {};
  }

  std::vector<ClaimedTask> ParseStarted(const redisReply& r, const std::string& queue,
                                        bool reclaimed) const {
    std::vector<ClaimedTask> out;
    if (!IsArray(r)) return out;
    out.reserve(r.elements / 10);
    for (size_t i = 0; i + 9 < r.elements; i += 10) {
      ClaimedTask t;
      t.id = Str(Elem(r, i));
      t.queue = queue;
      t.entry_id = Str(Elem(r, i + 1));
      t.kind = Str(Elem(r, i + 2));
      t.payload = Str(Elem(r, i + 3));
      t.epoch = ReplyInt(Elem(r, i + 4));
      t.attempt = static_cast<int>(ReplyInt(Elem(r, i + 5)));
      t.max_attempts = static_cast<int>(ReplyInt(Elem(r, i + 6)));
      t.timeout_ms = ReplyInt(Elem(r, i + 7));
      t.created_ms = ReplyInt(Elem(r, i + 8));
      t.started_ms = ReplyInt(Elem(r, i + 9));
      t.reclaimed = reclaimed;
      out.push_back(std::move(t));
    }
    return out;
  }

  // One listed task and where its queue's listing resumes after it.
  struct Listed {
    TaskRecord record;
    ListPosition at;
  };
  // A queue's part of a listing: its matches newest first (at most the page's limit), the last
  // entry examined, and whether nothing older is left to examine.
  struct QueueScan {
    std::vector<Listed> found;
    ListPosition scanned_to;
    bool exhausted = false;
  };

  // The tasks of `queue` matching `status` and `kind`, newest first from the index, starting
  // after (or at) `from`: at most `limit`, examining at most kListScanMax entries per call.
  Result<QueueScan> ScanIndex(const std::string& queue, std::optional<TaskStatus> status,
                              const std::optional<std::string>& kind, int limit,
                              const std::optional<ListPosition>& from) {
    QueueScan out;
    if (from) out.scanned_to = *from;
    const std::string index = IndexKey(options_.prefix, queue);
    const auto want = static_cast<size_t>(limit);
    const bool filtered = status || kind;
    std::string end = "+";
    if (from) end = (from->inclusive ? "" : "(") + std::to_string(from->ms) + "-" + from->rest;
    for (int64_t scanned = 0; out.found.size() < want;) {
      if (scanned >= kListScanMax) return out;  // not exhausted: the next page goes on
      int64_t n = filtered ? kListChunk : static_cast<int64_t>(want - out.found.size());
      auto r = conn_->Command(Args{"XREVRANGE", index, end, "-", "COUNT", std::to_string(n)});
      if (!r) return Fail(r.error());
      std::vector<std::string> ids;
      std::vector<ListPosition> at;
      for (size_t i = 0; i < (*r)->elements; ++i) {
        const redisReply& e = Elem(**r, i);
        if (!IsArray(e) || e.elements != 2) continue;
        const std::string entry = Str(Elem(e, 0));
        end = "(" + entry;
        auto fields = Pairs(Elem(e, 1));
        ids.push_back(fields.empty() ? std::string() : fields[0].second);
        at.push_back(EntryPosition(entry));
      }
      scanned += static_cast<int64_t>((*r)->elements);
      if (auto st = Take(queue, ids, at, status, kind, want, out); !st) return Fail(st.error());
      if (out.found.size() >= want) return out;
      if (static_cast<int64_t>((*r)->elements) < n) break;
    }
    out.exhausted = out.found.size() < want;
    return out;
  }

  // The dead letters of `queue` (of one kind, when given), newest first from the dead set (by
  // the time they died, then by id, as Redis orders equal scores), starting after (or at)
  // `from`: at most `limit`, examining at most kListScanMax entries per call.
  Result<QueueScan> ScanDead(const std::string& queue, const std::optional<std::string>& kind,
                             int limit, const std::optional<ListPosition>& from) {
    QueueScan out;
    if (from) out.scanned_to = *from;
    const std::string dead = DeadKey(options_.prefix, queue);
    const auto want = static_cast<size_t>(limit);
    const std::string max = from ? std::to_string(from->ms) : "+inf";
    for (int64_t offset = 0; out.found.size() < want;) {
      if (offset >= kListScanMax) return out;  // not exhausted: the next page goes on
      auto r = conn_->Command(Args{"ZREVRANGEBYSCORE", dead, max, "-inf", "WITHSCORES", "LIMIT",
                                   std::to_string(offset), std::to_string(kListChunk)});
      if (!r) return Fail(r.error());
      auto pairs = Pairs(**r);
      offset += static_cast<int64_t>(pairs.size());
      std::vector<std::string> ids;
      std::vector<ListPosition> at;
      for (auto& [id, score] : pairs) {
        ListPosition p{ToInt(score), id, false};
        // Equal scores come in descending id order: those not after `from` were listed.
        if (from && p.ms == from->ms && (from->inclusive ? id > from->rest : id >= from->rest)) {
          continue;
        }
        ids.push_back(id);
        at.push_back(std::move(p));
      }
      if (auto st = Take(queue, ids, at, std::nullopt, kind, want, out); !st) {
        return Fail(st.error());
      }
      if (out.found.size() >= want) return out;
      if (static_cast<int64_t>(pairs.size()) < kListChunk) break;
    }
    out.exhausted = out.found.size() < want;
    return out;
  }

  // Loads the records of `ids` (their positions in `at`) and appends the matching ones to `out`
  // until it holds `want`; out.scanned_to follows the last entry taken or passed over.
  Status Take(const std::string& queue, const std::vector<std::string>& ids,
              const std::vector<ListPosition>& at, std::optional<TaskStatus> status,
              const std::optional<std::string>& kind, size_t want, QueueScan& out) {
    auto records = LoadRecords(queue, ids, status, kind);
    if (!records) return Fail(records.error());
    size_t r = 0;
    for (size_t i = 0; i < ids.size() && out.found.size() < want; ++i) {
      out.scanned_to = at[i];
      if (r < records->size() && (*records)[r].id == ids[i]) {
        out.found.push_back(Listed{std::move((*records)[r]), at[i]});
        ++r;
      }
    }
    return {};
  }

  static ListPosition EntryPosition(const std::string& entry) {
    ListPosition p;
    const size_t dash = entry.find('-');
    p.ms = ToInt(entry.substr(0, dash));
    p.rest = dash == std::string::npos ? "0" : entry.substr(dash + 1);
    return p;
  }

  Result<std::vector<TaskRecord>> LoadRecords(
      const std::string& queue, const std::vector<std::string>& ids,
      std::optional<TaskStatus> status, const std::optional<std::string>& kind = std::nullopt) {
    std::vector<TaskRecord> out;
    if (ids.empty()) return out;
    std::vector<Args> commands;
    commands.reserve(ids.size());
    for (const auto& id : ids)
      commands.push_back(Args{"HGETALL", TaskKey(options_.prefix, queue, id)});
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    for (size_t i = 0; i < replies->size(); ++i) {
      if (auto st = CheckReply(*(*replies)[i]); !st) return Fail(st.error());
      auto fields = Pairs(*(*replies)[i]);
      if (fields.empty()) continue;  // expired by retention
      TaskRecord rec = Record(ids[i], queue, fields);
      if (status && rec.status != *status) continue;
      if (kind && rec.kind != *kind) continue;
      out.push_back(std::move(rec));
    }
    return out;
  }

  static TaskRecord Record(const std::string& id, const std::string& queue,
                           const FieldList& fields) {
    TaskRecord r = RecordFromFields(id, fields);
    if (r.queue.empty()) r.queue = queue;
    return r;
  }

  // Which queue holds task `id` (ids do not name their queue); none when no queue does.
  Result<std::optional<std::string>> FindQueue(const std::string& id) {
    if (id.empty()) return std::optional<std::string>{};
    // The queue this connection last found the task in, alone first: the task's event stream
    // asks every 150 ms, and asking every queue each time grew with the number of queues.
    std::string cached;
    if (auto it = queue_of_.find(id); it != queue_of_.end()) {
      cached = it->second;
      auto r = conn_->Command(Args{"EXISTS", TaskKey(options_.prefix, cached, id),
                                   EventsKey(options_.prefix, cached, id)});
      if (!r) return Fail(r.error());
      if (auto st = CheckReply(**r); !st) return Fail(st.error());
      if (ReplyInt(**r) > 0) return std::optional<std::string>(cached);
    }
    std::vector<std::string> candidates;
    auto queues = ListQueues();
    if (!queues) return Fail(queues.error());
    for (auto& q : *queues) {
      if (q != cached) candidates.push_back(std::move(q));
    }
    std::vector<Args> commands;
    for (const auto& q : candidates) {
      commands.push_back(
          Args{"EXISTS", TaskKey(options_.prefix, q, id), EventsKey(options_.prefix, q, id)});
    }
    if (commands.empty()) return std::optional<std::string>{};
    auto replies = conn_->Pipeline(commands);
    if (!replies) return Fail(replies.error());
    for (size_t i = 0; i < replies->size(); ++i) {
      if (auto st = CheckReply(*(*replies)[i]); !st) return Fail(st.error());
      if (ReplyInt(*(*replies)[i]) > 0) {
        RememberQueue(id, candidates[i]);
        return std::optional<std::string>(candidates[i]);
      }
    }
    return std::optional<std::string>{};
  }

  void RememberQueue(const std::string& id, const std::string& queue) {
    if (queue_of_.size() >= kQueueCacheMax) queue_of_.clear();
    queue_of_[id] = queue;
  }

  // Constant after construction.
  const BrokerOptions options_;
  const std::unique_ptr<Client> conn_;
  const RedisTopology topology_;

  // Per-connection caches (a Broker is used by one thread at a time).
  std::set<std::string> known_queues_;    // queues whose group exists, as of known_generation_
  std::set<std::string> warned_refused_;  // queues the limit refused a claim, logged once each
  uint64_t known_generation_ = 0;
  std::unordered_map<std::string, std::string> queue_of_;  // task id -> queue, bounded
  bool last_claim_full_ = false;  // the last Claim returned as many tasks as it asked for
};

class RedisBrokerFactory final : public BrokerFactory {
 public:
  explicit RedisBrokerFactory(BrokerOptions options) : options_(std::move(options)) {}

  Result<std::unique_ptr<Broker>> Open() override {
    auto setup = Setup();
    if (!setup) return Fail(setup.error());
    if (options_.prefix.empty() || options_.prefix.find_first_of("{}") != std::string::npos) {
      return Fail(ErrorCode::kInvalidArgument,
                  "bad key prefix '" + options_.prefix + "': must be non-empty without { or }");
    }
    if (options_.wait_replicas < 0 || options_.wait_timeout.count() <= 0) {
      return Fail(ErrorCode::kInvalidArgument,
                  "durability: replicas to wait for must be >= 0 and the wait timeout > 0");
    }
    auto conn = NewClient(*setup);
    if (auto st = conn->Ready(); !st) return Fail(st.error());
    return std::unique_ptr<Broker>(
        std::make_unique<RedisBroker>(options_, std::move(conn), (*setup)->endpoint.topology));
  }

  const BrokerOptions& options() const override { return options_; }

 private:
  // Parsed and loaded (TLS files) once; every Open() shares it.
  Result<std::shared_ptr<const ClientSetup>> Setup() {
    std::lock_guard lock(mu_);
    if (!setup_) setup_ = MakeClientSetup(options_.redis_url, options_.redis, options_.io_timeout);
    return *setup_;
  }

  const BrokerOptions options_;  // constant after construction
  std::mutex mu_;
  std::optional<Result<std::shared_ptr<const ClientSetup>>> setup_;  // Guarded by mu_
};

}  // namespace
}  // namespace redis_broker

std::unique_ptr<BrokerFactory> MakeRedisBrokerFactory(BrokerOptions options) {
  return std::make_unique<redis_broker::RedisBrokerFactory>(std::move(options));
}

}  // namespace ferry
