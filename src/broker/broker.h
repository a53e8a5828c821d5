// The Broker: Ferry's task layer. It stores task records, queues them, hands them to workers
// under leases with fencing epochs, and records every transition. The Redis implementation
// (broker/redis/) is the only one; the interface exists so tests can wrap it and inject faults.
//
// Thread-safety: a Broker instance owns one connection and is NOT thread-safe
// (REQUIRES: external synchronization). Each thread or loop opens its own through a
// BrokerFactory, which is thread-safe.
//
// Delivery guarantees and the Redis key layout are described in docs/broker.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/redis_url.h"
#include "core/result.h"

namespace ferry {

enum class TaskStatus {
  kPending,    // in its queue's stream, waiting for a worker
  kScheduled,  // waiting in the delayed set for its ETA
  kRunning,    // claimed by a worker under a lease
  kRetrying,   // failed, waiting in the delayed set for its backoff to pass
  kSucceeded,
  kFailed,  // dead-lettered: out of attempts, non-retryable error, or poison pill
  kCancelled,
};

std::string_view TaskStatusName(TaskStatus s);
// Case-insensitive ("RUNNING", "running"). "dead" is accepted for kFailed.
std::optional<TaskStatus> ParseTaskStatus(std::string_view text);
bool IsTerminal(TaskStatus s);
// The event types that tell a task's life (`submitted`, `cancel_requested` and every status
// name, in any case), which only the broker writes: a reader of a task's events must never take
// a handler's event for a change of the task's state.
bool IsLifecycleEventType(std::string_view type);
// Why `type` cannot name an event a handler writes (exec programs on descriptor 3, SDK handlers
// through ctx.events): it must be 1-64 characters from A-Z a-z 0-9 _ - . (one line, a readable
// name in `ferry task events`) and not a lifecycle type. nullopt when it can.
std::optional<std::string> HandlerEventTypeProblem(std::string_view type);

// Bounds on what a submission may ask for (ValidateSubmit; the API and CLI name them in errors).
inline constexpr int kMaxTaskAttempts = 1000;
inline constexpr std::chrono::milliseconds kMaxTaskTimeout = std::chrono::hours(24 * 7);
// How far ahead an ETA (or delay) may lie.
inline constexpr std::chrono::milliseconds kMaxTaskEtaHorizon = std::chrono::hours(24 * 366);

struct SubmitRequest {
  std::string kind;                      // handler name, e.g. "echo"; required
  Json payload = Json::object();         // handed to the handler as-is
  std::string queue = "default";         // [A-Za-z0-9_.-]{1,64}
  int max_attempts = 3;                  // executions allowed before dead-lettering; >= 1
  std::chrono::milliseconds timeout{0};  // per attempt; 0 = the worker's default
  std::optional<int64_t> eta_ms;         // run at/after this wall time (epoch ms); none = now
  std::string unique_key;                // non-empty: idempotent submission within unique_ttl
  std::chrono::milliseconds unique_ttl = std::chrono::hours(24);
  // The new task's id: empty for a new NewId(); else one the caller drew with NewId() and
  // recorded before submitting (StartRun keeps it in the run's first commit). Never reuse one:
  // only unique_key makes a submission idempotent.
  std::string id;
  // The task that waits for this one (a workflow run's task, for its task node), as queue and
  // id: when this task ends (Complete, Cancel), that one is woken: moved to its queue at once if
  // it is snoozed, else told so that its next snooze comes back at once. Empty: none.
  std::string waiter_queue;
  std::string waiter_id;
};

struct SubmitResult {
  std::string id;
  bool existing = false;  // true when unique_key matched an earlier submission
};

// A task's record as stored. Times are epoch milliseconds; 0 means "not yet".
struct TaskRecord {
  std::string id;
  std::string queue;
  std::string kind;
  std::string payload;  // JSON text
  TaskStatus status = TaskStatus::kPending;
  int attempts = 0;  // executions started
  int max_attempts = 1;
  int reclaims = 0;   // times taken over from a worker whose lease expired
  int64_t epoch = 0;  // fencing token; bumped by every claim
  int64_t timeout_ms = 0;
  std::string worker;  // last worker that claimed it
  std::string unique_key;
  int64_t created_ms = 0;
  int64_t eta_ms = 0;  // when scheduled/retrying: when it becomes ready
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  std::string result;  // JSON text, when succeeded
  std::string error;   // last error message
  bool cancel_requested = false;
};

// A task handed to a worker. `epoch` is the fencing token the worker must present to finish.
struct ClaimedTask {
  std::string id;
  std::string queue;
  std::string entry_id;  // stream entry id (the lease is on this entry)
  std::string kind;
  std::string payload;  // JSON text
  int64_t epoch = 0;
  int attempt = 0;  // 1 for the first execution
  int max_attempts = 1;
  int64_t timeout_ms = 0;
  int64_t created_ms = 0;
  int64_t started_ms = 0;
  bool reclaimed = false;  // taken over from an expired lease
};

// How a worker reports the end of one execution.
struct Completion {
  enum class Kind {
    kSucceeded,  // result holds the handler's JSON output
    kFailed,     // error + retryable; retried with backoff_ms delay if attempts remain
    kCancelled,  // the handler stopped because cancel was requested
    kHandBack,   // the worker is shutting down: back to the queue at once, attempt not counted
    // The handler waits for a time (a workflow run in a long delay): scheduled again at now +
    // backoff_ms (> 0), attempt not counted, the worker's slot free meanwhile.
    kSnooze,
  };
  Kind kind = Kind::kSucceeded;
  std::string id;
  std::string queue;
  std::string entry_id;
  int64_t epoch = 0;
  std::string result;  // JSON text (kSucceeded)
  std::string error;   // message (kFailed, kCancelled)
  bool retryable = true;
  int64_t backoff_ms = 0;  // delay before the retry (kFailed and retryable), or the snooze
  std::string worker;
};

enum class CompletionOutcome {
  kApplied,    // the transition happened
  kDuplicate,  // this same completion was already applied (a retried call after a reconnect)
  kStale,      // the epoch is old: another worker owns the task now; nothing changed
  kMissing,    // the record is gone (retention expired)
};

struct QueueStats {
  std::string queue;
  int64_t pending = 0;            // stream entries not yet delivered
  int64_t running = 0;            // delivered, unacknowledged (the PEL)
  int64_t scheduled = 0;          // delayed set size (ETA + retry backoff)
  int64_t dead = 0;               // dead-letter set size
  int64_t oldest_pending_ms = 0;  // enqueue time of the oldest undelivered entry; 0 if none
  // Counters kept by the scripts since the queue was first used.
  std::map<std::string, int64_t> counters;  // submitted, started, succeeded, failed, retried,
                                            // cancelled, dead_lettered, reclaimed, stale, ...
};

struct WorkerInfo {
  std::string id;
  std::string status;  // running, draining, stopped
  std::string hostname;
  int64_t pid = 0;
  std::string version;
  std::vector<std::string> queues;
  int concurrency = 0;
  int64_t tasks_processed = 0;
  int64_t tasks_failed = 0;
  std::vector<std::string> current_tasks;  // one entry per busy slot
  int64_t started_ms = 0;
  int64_t last_heartbeat_ms = 0;
  bool alive = false;  // heartbeat younger than its TTL, and not stopped
};

struct TaskEvent {
  std::string id;  // stream entry id (resume point)
  int64_t ts_ms = 0;
  std::string type;  // submitted, started, progress, log, succeeded, failed, retrying, ...
  Json data;         // event-specific fields
};

struct TaskListFilter {
  std::optional<std::string> queue;  // none: every known queue
  std::optional<TaskStatus> status;
  std::optional<std::string> kind;  // exactly this kind
  int limit = 50;                   // newest first
  std::string cursor;               // a previous page's `next` (broker/task_cursor.h); "": newest
};

struct TaskPage {
  std::vector<TaskRecord> tasks;
  // Where the next page begins; "" when nothing more matches. With a status or kind filter a
  // page may hold fewer than `limit` tasks (each queue's scan is bounded) and still have a next.
  std::string next;
};

// A lease the owner renews: the task and the epoch under which it holds it.
struct LeaseRef {
  std::string id;
  std::string queue;
  std::string entry_id;
  int64_t epoch = 0;
};

struct BrokerOptions {
  // Where Redis is: one server, a Sentinel-managed master or a Cluster (core/redis_url.h).
  std::string redis_url = "redis://127.0.0.1:6379";
  // What the URL cannot carry: TLS files, the ACL user, the sentinels' credentials.
  RedisConnectOptions redis;
  // Key prefix; every key is "<prefix>:{<queue>}:..." or "<prefix>:<global>".
  std::string prefix = "ferry";
  // Largest accepted payload, in bytes of JSON text.
  size_t max_payload_bytes = 1 << 20;
  // How long a finished task's record (and its events) is kept.
  std::chrono::milliseconds retention = std::chrono::hours(24);
  // How long dead-lettered tasks stay inspectable and re-runnable.
  std::chrono::milliseconds dead_retention = std::chrono::hours(24 * 7);
  // Per-task event stream bound.
  int64_t events_maxlen = 1000;
  // A task taken over more than this many times is dead-lettered as a poison pill.
  int max_reclaims = 3;
  // How many queues may exist at once. A queue is made by the first task submitted to it or the
  // first worker that serves it; past this many, making one more is kConflict naming the limit
  // (existing queues go on as before; a worker reads those of its queues that exist or may be
  // made). Each queue costs Redis keys, a round trip per metrics scrape and console refresh, and
  // 18 series in /metrics, so a token that may submit tasks must not be able to make them without
  // bound. DeleteQueue frees a place. Every process checks against its own setting: set it alike.
  int64_t max_queues = 1000;
  // Connect and command timeout. Blocking reads add their BLOCK time to it.
  std::chrono::milliseconds io_timeout = std::chrono::seconds(5);
  // Durability: when > 0, Submit, Complete, Cancel and Retry return only after this many
  // replicas acknowledged their writes (Redis WAIT), and fail with kUnavailable when fewer did
  // within wait_timeout (the write may then be lost by a failover; retrying a submission with a
  // unique key is safe). 0: acknowledged once the master has it; replication is asynchronous,
  // so a failover may lose the last writes. docs/broker.md "Durability" says what each gives.
  int wait_replicas = 0;
  std::chrono::milliseconds wait_timeout = std::chrono::seconds(1);
};

class Broker {
 public:
  virtual ~Broker() = default;
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // --- producers ---
  virtual Result<SubmitResult> Submit(const SubmitRequest& request) = 0;
  // All-or-nothing validation, then one pipelined round trip.
  virtual Result<std::vector<SubmitResult>> SubmitBatch(
      const std::vector<SubmitRequest>& requests) = 0;
  // Cancels a pending, scheduled, retrying or running task. Running tasks get cancel_requested
  // and their worker stops the handler. Error kNotFound for unknown ids, kConflict when the
  // task already ended (the message says how).
  virtual Result<TaskStatus> Cancel(const std::string& id) = 0;
  // Cancel, asked by the task that waits for `id` (a run's task node giving up an attempt's
  // task): that waiter is not woken, as its own cancel tells it nothing new. (Waking it would
  // send it out of its slot and back at its next wait.)
  virtual Result<TaskStatus> CancelUnwaited(const std::string& id) { return Cancel(id); }
  // Re-runs a dead-lettered (failed) or cancelled task with fresh attempts. Error kNotFound for
  // unknown ids, kConflict for another status, and kConflict with details {"waiter": "<queue>/
  // <id>"} for a task another waits for (a run's task node's): its waiter owns its end.
  virtual Status Retry(const std::string& id) = 0;

  // --- consumers (workers) ---
  // Claims up to `count` new tasks from `queues`, in strict priority order: a later queue is read
  // only when earlier ones have nothing. Blocks up to `block` when all are empty. Each claimed
  // task is marked running with a bumped epoch. Cancelled or vanished entries are acknowledged
  // and skipped.
  virtual Result<std::vector<ClaimedTask>> Claim(const std::vector<std::string>& queues,
                                                 const std::string& worker, int count,
                                                 std::chrono::milliseconds block) = 0;
  // Takes over entries of `queue` idle longer than `min_idle` (their owner stopped renewing).
  // Each gets a new epoch; tasks over max_reclaims are dead-lettered instead of returned.
  virtual Result<std::vector<ClaimedTask>> Reclaim(const std::string& queue,
                                                   const std::string& worker,
                                                   std::chrono::milliseconds min_idle,
                                                   int count) = 0;
  // Renews leases this worker holds. Returns the ids whose lease is lost (another worker took
  // them, or they were cancelled/ended): their handlers must stop.
  virtual Result<std::vector<std::string>> RenewLeases(const std::string& worker,
                                                       const std::vector<LeaseRef>& leases) = 0;
  // Of the given running tasks, those whose cancellation was requested.
  virtual Result<std::vector<std::string>> CancelRequested(const std::vector<LeaseRef>& leases) = 0;
  // Applies completions in one pipelined round trip; outcomes are in the same order.
  virtual Result<std::vector<CompletionOutcome>> Complete(
      const std::vector<Completion>& completions) = 0;
  // Moves due scheduled/retrying tasks of `queue` into its stream. Returns how many moved.
  virtual Result<int64_t> PromoteDue(const std::string& queue, int64_t now_ms, int limit) = 0;
  // Appends events to a task's event stream (handler progress, logs).
  virtual Status AppendEvents(const std::string& queue, const std::string& id,
                              const std::vector<std::pair<std::string, Json>>& events) = 0;

  // --- workers registry ---
  virtual Status Heartbeat(const WorkerInfo& info, std::chrono::milliseconds ttl) = 0;
  virtual Status RemoveWorker(const std::string& id) = 0;
  virtual Result<std::vector<WorkerInfo>> ListWorkers() = 0;

  // --- inspection ---
  virtual Result<std::optional<TaskRecord>> GetTask(const std::string& id) = 0;
  virtual Result<TaskPage> ListTasks(const TaskListFilter& filter) = 0;
  virtual Result<std::vector<std::string>> ListQueues() = 0;
  virtual Result<QueueStats> GetQueueStats(const std::string& queue) = 0;
  // Dead-lettered tasks of a queue, newest first.
  virtual Result<std::vector<TaskRecord>> ListDead(const std::string& queue, int limit) = 0;
  // Deletes for good the queue's tasks dead-lettered at or before up_to_ms (wall-clock ms):
  // records, events and unique keys. Tasks dead-lettered later, or retried meanwhile, stay.
  // Returns how many were deleted.
  virtual Result<int64_t> PurgeDead(const std::string& queue, int64_t up_to_ms) = 0;
  // Re-runs, as Retry does each, the queue's tasks dead-lettered at or before up_to_ms
  // (wall-clock ms), in bounded batches. Tasks dead-lettered later (a retried task failing again
  // at once among them) stay. Returns how many were retried.
  virtual Result<int64_t> RetryDead(const std::string& queue, int64_t up_to_ms) = 0;
  // Forgets a queue that holds no task waiting, running, scheduled, retrying or dead-lettered:
  // its stream, counters and listing index go, and it leaves ListQueues. Finished tasks' records
  // expire as usual but are no longer listed or found by id (until a queue of the same name is
  // made again). kConflict naming what the queue still holds; kNotFound for a queue that does
  // not exist. A task submitted at the same moment, by a producer that had made the queue
  // before, is not lost: its submit finds the stream gone and makes the queue again first.
  virtual Status DeleteQueue(const std::string& queue) = 0;
  // Events after `after_id` ("0" = from the start). With block > 0, waits up to that long for
  // new ones when there are none.
  virtual Result<std::vector<TaskEvent>> ReadEvents(const std::string& id,
                                                    const std::string& after_id, int count,
                                                    std::chrono::milliseconds block) = 0;
  // Round trip to Redis (health checks).
  virtual Status Ping() = 0;
  // Redis server facts for `ferry doctor` / banners: "redis_version", "aof_enabled", ...,
  // "server_time_ms" (Redis' clock, from TIME) for clock-skew checks, and the deployment under
  // "ferry_" keys: "ferry_topology" (single, sentinel, cluster), "ferry_tls", and per topology
  // what doctor checks (see broker/redis/redis_client.h TopologyFacts).
  virtual Result<std::map<std::string, std::string>> ServerInfo() = 0;
  // The commands Ferry needs that this connection's Redis user may not run, each as
  // "command" or "command on key-pattern" (empty: all allowed). Probes with harmless commands
  // on keys of its own ("<prefix>:{ferry-doctor}:..."), which it removes. The default fails with
  // kInternal ("not supported").
  virtual Result<std::vector<std::string>> MissingPermissions();

  // --- operations state (ops/: alert firing-since times, counter samples) ---
  // A small hash "<prefix>:ops:<name>" shared by every process. Not for hot paths. The defaults
  // fail with kInternal ("not supported") so test doubles need not implement them.
  virtual Result<std::map<std::string, std::string>> GetOpsState(const std::string& name);
  // One round trip: HSET each of `set`, HSETNX each of `set_if_absent`, HDEL each of `remove`.
  virtual Status UpdateOpsState(const std::string& name,
                                const std::map<std::string, std::string>& set,
                                const std::map<std::string, std::string>& set_if_absent,
                                const std::vector<std::string>& remove);

 protected:
  Broker() = default;
};

// Opens Broker connections. Thread-safe.
class BrokerFactory {
 public:
  virtual ~BrokerFactory() = default;
  // Connects (and authenticates, selects the db, loads the scripts). Errors: kUnavailable when
  // Redis cannot be reached, kUnauthenticated for a wrong password, kInvalidArgument for a bad URL.
  virtual Result<std::unique_ptr<Broker>> Open() = 0;
  virtual const BrokerOptions& options() const = 0;
};

// The Redis implementation's factory (broker/redis/).
std::unique_ptr<BrokerFactory> MakeRedisBrokerFactory(BrokerOptions options);

// Validates a queue name: [A-Za-z0-9_.-]{1,64}.
Status ValidateQueueName(std::string_view queue);
// Validates a task kind: 1-128 characters, no control character.
Status ValidateTaskKind(std::string_view kind);
// Validates a request without touching Redis (kind, queue, attempts, payload size).
Status ValidateSubmit(const SubmitRequest& request, const BrokerOptions& options);

}  // namespace ferry
