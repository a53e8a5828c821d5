// The Store: Ferry's record of workflows, their versions, runs, run checkpoints (steps), run event
// history, triggers, cron fires, API tokens and webhook replay nonces. Two implementations share
// this interface and one conformance suite: SQLite (a file; one host, several processes) and
// PostgreSQL (several hosts). docs/store.md describes the schema and the transition rules.
//
// Thread-safety: a Store instance owns ONE database connection and is NOT thread-safe
// (REQUIRES: external synchronization). Give each thread its own Store through a StoreFactory,
// whose Open() is thread-safe. Several processes may open the same database at once: schema
// migrations are serialized by the database itself (SQLite: BEGIN IMMEDIATE; PostgreSQL:
// pg_advisory_xact_lock).
//
// Every status change is one conditional UPDATE checked by the database (never read, decide,
// write), so two connections racing on the same run cannot both win. A lost condition is
// ErrorCode::kConflict with a message naming the state found. Errors: kUnavailable when the
// database is unreachable or locked past the busy timeout (retry later), kUnauthenticated for
// rejected credentials, kNotFound when a mutation names something that does not exist (lookups
// return std::nullopt instead), kInvalidArgument for bad input, kInternal for everything else.
//
// Timestamps are epoch milliseconds taken from StoreOptions::clock; 0 means "not yet". JSON
// values travel as text, stored verbatim; "" means "none".
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/result.h"

namespace ferry {

// ---------------------------------------------------------------------------------------------
// Workflows

struct Workflow {
  std::string id;    // NewId()
  std::string name;  // unique
  std::string description;
  int current_version = 0;  // the latest version; 0 only transiently inside ApplyWorkflow
  bool paused = false;      // schedules (cron triggers) do not fire while paused
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

struct WorkflowVersion {
  std::string workflow_id;
  int version = 0;       // 1, 2, 3, ... per workflow
  std::string source;    // the document as the user wrote it
  std::string format;    // "yaml" or "json"
  std::string graph;     // parsed graph, JSON text (what workers execute)
  std::string checksum;  // of the source; decides whether ApplyWorkflow makes a new version
  std::string author;
  std::string notes;
  int64_t created_ms = 0;
};

struct ApplyWorkflowRequest {
  std::string name;  // required, 1..200 bytes
  std::string description;
  std::string source;
  std::string format = "yaml";
  std::string graph;     // JSON text; required
  std::string checksum;  // required
  std::string author;
  std::string notes;
};

struct ApplyWorkflowResult {
  Workflow workflow;
  WorkflowVersion version;  // the new version, or the latest one when nothing changed
  bool created = false;     // true when a new version was stored
};

// ---------------------------------------------------------------------------------------------
// Runs

enum class RunStatus { kPending, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view RunStatusName(RunStatus s);
std::optional<RunStatus> ParseRunStatus(std::string_view text);  // case-insensitive
bool IsTerminal(RunStatus s);

enum class TriggeredBy { kApi, kCli, kWebhook, kCron, kRetry, kRemediation };
std::string_view TriggeredByName(TriggeredBy t);
std::optional<TriggeredBy> ParseTriggeredBy(std::string_view text);

struct Run {
  std::string id;  // NewId(): time-ordered
  std::string workflow_id;
  std::string workflow_name;  // joined from workflows, for listings
  int version = 0;
  RunStatus status = RunStatus::kPending;
  // Times the run was marked running (1 on the first start, 2 after one takeover, ...).
  int attempt = 0;
  // The fencing token of the task that last marked it running (the broker's task epoch).
  int64_t epoch = 0;
  std::string inputs;  // JSON text
  std::string output;  // JSON text, "" until succeeded
  std::string error;
  std::string failed_node;
  TriggeredBy triggered_by = TriggeredBy::kApi;
  std::string trigger_id;  // the trigger that made it, "" if none
  std::string retry_of;    // the run this one retries, "" if none
  std::string worker;      // the worker that last marked it running
  int64_t created_ms = 0;
  int64_t started_ms = 0;  // first start
  int64_t finished_ms = 0;
  int64_t updated_ms = 0;
};

// A run released to wait for a delay out of any worker's slot (Store::ReleaseRun): running, held
// by no worker. Its next start counts no attempt.
inline bool IsReleased(const Run& r) { return r.status == RunStatus::kRunning && r.worker.empty(); }

struct CreateRunRequest {
  std::string workflow_id;  // required
  int version = 0;          // 0 = the workflow's current version
  // With a version: create the run only while that version is still the workflow's current
  // one, else kConflict and nothing written (a caller that remembered the current version).
  bool only_if_current = false;
  std::string inputs = "{}";
  TriggeredBy triggered_by = TriggeredBy::kApi;
  std::string trigger_id;
  std::string id;  // "" = a new NewId(); otherwise must satisfy LooksLikeId()
  // When type is set, the run's first event (seq 1), written in the run's own commit: no reader
  // sees the run without it (the "run.created" event that says how it was triggered).
  struct {
    std::string type;
    std::string data = "{}";  // JSON text
  } first_event;
  // A webhook delivery's nonce (replay protection), remembered in the run's own commit with the
  // run it started (RememberNonce's record). One remembered and not yet expired is kConflict
  // ("nonce ... already used") and nothing is written; the run refused for any other reason
  // leaves the nonce unused. Empty value: none.
  struct {
    std::string scope;
    std::string value;
    int64_t expires_ms = 0;
  } nonce;
};

// An event to append (AppendRunEvents).
struct NewRunEvent {
  std::string type;
  std::string data = "{}";  // JSON text
  int64_t ts_ms = 0;        // when it happened; 0 = when written
};

struct RunFilter {
  std::optional<std::string> workflow_id;
  std::optional<RunStatus> status;
  std::optional<TriggeredBy> triggered_by;
  int limit = 50;      // 1..1000
  std::string cursor;  // "" = from the newest; else RunPage::next_cursor of the previous page
};

struct RunPage {
  std::vector<Run> runs;    // newest first
  std::string next_cursor;  // "" when this is the last page
};

struct RetryRunOptions {
  // Run the workflow's current version instead of the failed run's version (after a fix).
  bool latest_version = false;
  TriggeredBy triggered_by = TriggeredBy::kRetry;
};

// The status of a step row that is not a checkpoint: a delay node's deadline (output
// {"deadline_ms", "duration_ms"}, finished_ms 0), replaced by the node's end.
inline constexpr std::string_view kStepWaiting = "waiting";

// A finished node of a run: the checkpoint a resumed run starts from (or a waiting delay).
struct RunStep {
  std::string run_id;
  std::string node_id;
  std::string status;  // the node's end state as the engine names it: "succeeded", "failed", ...
  std::string output;  // JSON text
  std::string error;
  int attempt = 0;    // the node's own attempt count (node retries)
  int64_t epoch = 0;  // the run epoch under which it ran; must be the run's current epoch
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
};

enum class SaveStepOutcome {
  kSaved,         // stored now
  kAlreadySaved,  // an identical checkpoint (same epoch, status, output) was already stored
};

// What an execution of a run starts from (Store::MarkRunStarted).
struct StartedRun {
  Run run;                     // as MarkRunRunning leaves it
  std::vector<RunStep> steps;  // its checkpoints and waiting delays, as ListSteps reads them
};

struct RunEvent {
  std::string run_id;
  int64_t seq = 0;  // 1, 2, 3, ... per run (the SSE event id)
  int64_t ts_ms = 0;
  std::string type;  // run.started, node.started, node.finished, log, run.finished, ...
  std::string data;  // JSON text
};

// Which of a run's events a page holds (Store::ListRunEventPage).
struct RunEventQuery {
  int64_t after_seq = 0;  // events with seq > after_seq
  int limit = 100;        // at most this many (1..10000)
  // and none past the one whose data brings the page to max_bytes or more (at least one,
  // whatever its size): a run's events may hold a node's whole output each, so a count alone
  // does not bound what a page holds in memory.
  int64_t max_bytes = int64_t{4} << 20;
  std::vector<std::string> types{};  // only events of these types (empty: every type)
  // The last of them rather than the first (still in ascending order): a run's end without
  // reading its whole history.
  bool last = false;
};

struct RunEventPage {
  std::vector<RunEvent> events;
  // More events the query asks for exist: after the page's last one, or with `last`, before
  // its first.
  bool more = false;
};

// ---------------------------------------------------------------------------------------------
// Triggers

enum class TriggerKind { kWebhook, kCron };
std::string_view TriggerKindName(TriggerKind k);
std::optional<TriggerKind> ParseTriggerKind(std::string_view text);

// A trigger as a workflow version declares it. `key` names it stably within its workflow
// (e.g. "webhook", "cron:0" or a user-given name), so re-applying keeps its fire history.
struct TriggerSpec {
  TriggerKind kind = TriggerKind::kWebhook;
  std::string key;
  std::string config;  // JSON text: schedule, timezone, policies / methods, auth, limits
};

struct Trigger {
  std::string id;
  std::string workflow_id;
  std::string workflow_name;     // joined
  bool workflow_paused = false;  // joined: the workflow's schedule pause flag
  TriggerKind kind = TriggerKind::kWebhook;
  std::string key;
  std::string config;
  bool enabled = true;  // false once the latest version no longer declares it
  int64_t last_fire_ms = 0;
  int64_t next_fire_ms = 0;  // reset to 0 when the config changes; the scheduler recomputes
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

struct TriggerFilter {
  std::optional<std::string> workflow_id;
  std::optional<TriggerKind> kind;
  bool enabled_only = true;
};

struct CronFire {
  std::string trigger_id;
  int64_t fire_ms = 0;
  std::string run_id;  // "" when recorded without a run, or once the run was deleted
  int64_t created_ms = 0;
};

// ---------------------------------------------------------------------------------------------
// API tokens

struct ApiToken {
  std::string id;
  std::string name;
  std::string token_hash;  // lowercase hex SHA-256 of the secret; the secret is never stored
  // What the token may do ("read", "run", "apply", "admin", "secret:NAME"), validated by the
  // caller (service/scopes.h); stored space-separated.
  std::vector<std::string> scopes;
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
  int64_t revoked_ms = 0;
};

// ---------------------------------------------------------------------------------------------
// Remediation candidates (docs/remediation.md)

// pending -> claimed -> fixed | note_only | failed; a failed candidate with attempts left is
// claimed again after its backoff (next_attempt_ms); an expired claim returns it to pending (or
// to failed at the attempt cap). dismissed from pending, claimed or failed; reopen from
// dismissed, failed or note_only back to pending.
enum class RemediationStatus { kPending, kClaimed, kFixed, kNoteOnly, kFailed, kDismissed };
std::string_view RemediationStatusName(RemediationStatus s);
std::optional<RemediationStatus> ParseRemediationStatus(std::string_view text);
// pending, claimed and failed: the statuses in which later failures attach to the candidate.
bool IsOpen(RemediationStatus s);

struct Remediation {
  std::string id;
  std::string fingerprint;
  std::string workflow_id;
  std::string workflow_name;  // joined
  int version = 0;            // the version whose run failed
  std::string run_id;         // the failed run that opened the candidate
  std::string last_run_id;    // the latest failed run that attached to it
  std::string failed_node;
  std::string error;             // redacted
  std::string error_normalized;  // the error with numbers, ids and addresses replaced
  std::string context;           // JSON text, redacted: inputs, recent run events, trigger
  RemediationStatus status = RemediationStatus::kPending;
  int64_t occurrences = 1;
  int attempts = 0;             // claims ever made; the current claim's fencing token
  int attempt_base = 0;         // attempts at the last reopen: the cap counts attempts after it
  int64_t next_attempt_ms = 0;  // earliest next claim; failed with 0 = no further attempts
  std::string claim_owner;
  int64_t claim_deadline_ms = 0;
  std::string classification;  // the agent's, once an attempt read it
  std::string summary;
  std::string confidence;       // as the agent wrote it ("0.9")
  std::string note;             // developer_note.md
  std::string reason;           // why it failed, or the dismissal's reason
  std::string result;           // JSON text: artifact hashes, diagnostics, dry_run, agent exit, ...
  std::string base_source;      // the (redacted) source the agent was given
  std::string proposed_source;  // the agent's edited source, "" when none
  int fixed_version = 0;        // the version the fix created
  std::string retry_run_id;     // the run of the fixed version, "" when none
  std::string retry_error;      // why that run could not be enqueued
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

struct RecordRemediationRequest {
  std::string fingerprint;  // required
  std::string workflow_id;  // required
  int version = 0;          // required, >= 1
  std::string run_id;       // required
  std::string failed_node;
  std::string error;
  std::string error_normalized;
  std::string context = "{}";
};

struct RecordRemediationResult {
  Remediation remediation;
  bool created = false;  // false: attached to the open candidate with this fingerprint
};

struct RemediationFilter {
  std::optional<RemediationStatus> status;
  std::optional<std::string> workflow_id;
  int limit = 50;      // 1..1000
  std::string cursor;  // "" = from the newest; else RemediationPage::next_cursor
};

struct RemediationPage {
  std::vector<Remediation> remediations;  // newest first
  std::string next_cursor;
};

struct RemediationAttempt {
  std::string remediation_id;
  int attempt = 0;
  std::string workflow_id;
  std::string owner;
  std::string outcome;  // running, fixed, note_only, failed, expired, dismissed
  std::string detail;
  int64_t agent_ms = -1;  // how long the agent ran; -1 when it did not run
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
};

struct ClaimRemediationsRequest {
  std::string owner;  // required
  // The claim's deadline is now + lease; the owner renews it while its attempt runs.
  std::chrono::milliseconds lease = std::chrono::minutes(1);
  int max_active = 1;   // claims held at once, over every owner
  int attempt_cap = 3;  // claims per candidate
  // Attempts per workflow within the last 24 hours.
  int daily_cap = 10;
};

struct ClaimRemediationsResult {
  std::vector<Remediation> claimed;
  int64_t active_before = 0;  // claims held when this call started
  int64_t capped = 0;         // candidates left out by the daily cap
};

// How an attempt ended. The candidate must still be claimed by (owner, attempt).
struct FinishRemediationRequest {
  std::string id;
  std::string owner;
  int attempt = 0;
  // kFixed, kNoteOnly or kFailed; kPending releases the claim (a stopping scheduler) and
  // forgets the attempt.
  RemediationStatus status = RemediationStatus::kFailed;
  // kFailed: when the next attempt may start; 0 = no further attempts.
  int64_t next_attempt_ms = 0;
  std::string classification;
  std::string summary;
  std::string confidence;
  std::string note;
  std::string reason;
  std::string result = "{}";
  std::string base_source;
  std::string proposed_source;
  int fixed_version = 0;
  std::string retry_run_id;
  int64_t agent_ms = -1;
};

struct RemediationStats {
  std::map<RemediationStatus, int64_t> by_status;  // every status, zero included
  std::map<std::string, int64_t> attempts_by_outcome;
  // Finished attempts whose agent ran: cumulative counts per upper bound (seconds) of the given
  // buckets, their sum and count.
  std::vector<int64_t> agent_buckets;
  double agent_seconds_sum = 0;
  int64_t agent_count = 0;
};

// ---------------------------------------------------------------------------------------------

struct StoreOptions {
  // Source of every timestamp the store writes and of "now" in age-based queries. Not owned;
  // must outlive every Store opened with these options.
  const Clock* clock = &SystemClock::Instance();
  // SQLite: how long a writer waits for another process's lock before kUnavailable.
  std::chrono::milliseconds busy_timeout = std::chrono::seconds(5);
  // PostgreSQL: connect timeout (libpq counts whole seconds, minimum 2) unless the URL sets one.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  // PostgreSQL: the server cancels any statement (lock waits included) running longer, so a
  // stuck query fails the call (kUnavailable, retryable) instead of hanging a worker. 0 = none.
  // Migrations run without it. `options=-c statement_timeout=...` in the URL replaces it.
  std::chrono::milliseconds statement_timeout = std::chrono::seconds(30);
  // Apply pending migrations at open. When false, opening a store whose schema is behind fails.
  bool migrate = true;
  // SQLite: this store's writes (transactions and single statements) go before those of stores
  // opened without it, in this process or another, when both wait for the file (`ferry server
  // start`, so that its answers do not wait behind a worker's runs). PostgreSQL has row locks: no
  // effect.
  bool write_precedence = false;
  // SQLite: make the database file when there is none. When false, a missing file fails with
  // kNotFound instead, so that a mistyped path read by a command that only looks is reported,
  // not turned into a new, empty store.
  bool create = true;
};

// A write transaction on one Store. While it is open every call on that Store runs inside it.
// Rolls back on destruction unless Commit() succeeded.
// REQUIRES: destroyed before its Store; at most one open per Store; same thread as the Store.
class Transaction {
 public:
  virtual ~Transaction() = default;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  virtual Status Commit() = 0;

 protected:
  Transaction() = default;
};

class Store {
 public:
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // "sqlite" or "postgres".
  virtual std::string_view Backend() const = 0;
  // Round trip to the database (readiness checks).
  virtual Status Ping() = 0;
  // The highest migration applied.
  virtual Result<int> SchemaVersion() = 0;
  // Starts a write transaction (SQLite: BEGIN IMMEDIATE, so it never fails half-way on a lock
  // upgrade). Each method below is atomic on its own; use this to group several.
  virtual Result<std::unique_ptr<Transaction>> Begin() = 0;

  // --- workflows ---
  // Creates the workflow on first apply. Stores a new version only when `checksum` differs from
  // the latest version's (re-applying identical content is a no-op; reverting to older content
  // makes a new version). Updates the description either way.
  virtual Result<ApplyWorkflowResult> ApplyWorkflow(const ApplyWorkflowRequest& request) = 0;
  virtual Result<std::optional<Workflow>> GetWorkflow(const std::string& name) = 0;
  virtual Result<std::optional<Workflow>> GetWorkflowById(const std::string& id) = 0;
  virtual Result<std::vector<Workflow>> ListWorkflows() = 0;  // by name
  // version 0 = the current one.
  virtual Result<std::optional<WorkflowVersion>> GetWorkflowVersion(const std::string& workflow_id,
                                                                    int version) = 0;
  virtual Result<std::vector<WorkflowVersion>> ListWorkflowVersions(
      const std::string& workflow_id) = 0;  // newest first
  virtual Result<Workflow> SetWorkflowPaused(const std::string& workflow_id, bool paused) = 0;

  // --- runs ---
  // A new pending run. kNotFound when the workflow or version does not exist.
  virtual Result<Run> CreateRun(const CreateRunRequest& request) = 0;
  virtual Result<std::optional<Run>> GetRun(const std::string& id) = 0;
  virtual Result<RunPage> ListRuns(const RunFilter& filter) = 0;
  // pending -> running, or running -> running when `epoch` is newer than the stored one (a
  // takeover after the previous task lease expired). Sets epoch, worker, attempt+1 (+0 for a run
  // ReleaseRun released). A repeat of
  // the call that already won (same epoch and worker) succeeds again (the row as it is, attempt
  // not counted again). kNotFound for an unknown run; kConflict otherwise.
  virtual Result<Run> MarkRunRunning(const std::string& run_id, int64_t epoch,
                                     const std::string& worker) = 0;
  // An execution's start: MarkRunRunning, `started` appended to the run's events (its data, a
  // JSON object without "attempt", given the run's attempt after marking as "attempt") and the
  // run's steps read, as one commit (one round trip on PostgreSQL outside a user's
  // transaction when it marks the run; a repeat or a refusal takes one more). Outcomes as
  // MarkRunRunning's; the event is written only while the run is running under this claim (so also
  // for a repeat of the claim), and kConflict says the run has ended or another claim holds it now
  // (read after the commit: it may have been taken over just after). An event number another writer
  // took at the same moment is tried again here, and after 3 such clashes it is kUnavailable,
  // nothing committed.
  virtual Result<StartedRun> MarkRunStarted(const std::string& run_id, int64_t epoch,
                                            const std::string& worker,
                                            const NewRunEvent& started) = 0;
  // running -> succeeded|failed|cancelled, only while the stored epoch equals `epoch` (a worker
  // that lost its lease cannot overwrite the newer attempt). A repeat of the exact same finish
  // succeeds again. kConflict otherwise; kInvalidArgument for a non-terminal status. `steps`
  // (the last node's checkpoint, as SaveStep would store it) and `events` (the run's "finished"
  // event, and what its nodes said last) are written in the same commit, and only if the finish
  // applies; a step SaveStep would refuse refuses the finish. When the finish applied but its
  // events met another writer's numbers at the COMMIT (nothing committed), it is tried again at
  // once, up to 5 times in all; then kUnavailable (retry).
  virtual Result<Run> FinishRun(const std::string& run_id, int64_t epoch, RunStatus status,
                                const std::string& output, const std::string& error,
                                const std::string& failed_node,
                                const std::vector<NewRunEvent>& events = {},
                                const std::vector<RunStep>& steps = {}) = 0;
  // pending|running -> cancelled. kConflict when it already ended.
  virtual Result<Run> CancelRun(const std::string& run_id) = 0;
  // A run that gives its worker back to wait (a long delay, a task): while running under
  // `epoch`, it stays running but held by no worker (worker ""), and `steps` (its task nodes'
  // "waiting" rows, saved as SaveStep saves) and `events` are written, in one commit.
  // The next MarkRunRunning takes it again without counting an attempt: the wait was no crash.
  // kConflict when it is not running under `epoch` (cancelled, taken over).
  virtual Result<Run> ReleaseRun(const std::string& run_id, int64_t epoch,
                                 const std::vector<NewRunEvent>& events,
                                 const std::vector<RunStep>& steps = {}) = 0;
  // A new pending run with the same workflow, version (unless latest_version) and inputs, with
  // retry_of = run_id. Only from failed or cancelled, and only once per run (retry the retry to
  // go again): a double-clicked retry makes one run. kConflict otherwise.
  virtual Result<Run> RetryRun(const std::string& run_id, const RetryRunOptions& options) = 0;
  // Pending runs created more than `age` ago, oldest first (the re-enqueue sweeper).
  virtual Result<std::vector<Run>> ListPendingRunsOlderThan(std::chrono::milliseconds age,
                                                            int limit) = 0;
  // Running runs not updated for `age` (0 = all), by id, those after `after_id` (the lost-lease
  // recovery check: a pass goes on where the last one stopped, so every running run is looked
  // at, however many runs wait for delays out of any worker's slot).
  virtual Result<std::vector<Run>> ListRunningRuns(std::chrono::milliseconds age, int limit,
                                                   const std::string& after_id = "") = 0;
  // Runs cancelled at most `within` ago whose history holds no event of `event_type` (the
  // run's end, for runs whose handler died, or lost the store, before it could write it).
  // Oldest cancel first. The index of ended runs keeps this to the runs cancelled in that time.
  virtual Result<std::vector<Run>> ListCancelledRunsWithout(const std::string& event_type,
                                                            std::chrono::milliseconds within,
                                                            int limit) = 0;
  // Every status, zero included. It reads every run (on the order of 0.2 s per million, more with
  // larger rows): overviews go through RunCounter (store/run_counter.h), which counts the ended
  // statuses only now and then.
  virtual Result<std::map<RunStatus, int64_t>> CountRunsByStatus() = 0;
  // Pending and running, both always present: a read of their own partial indexes, as long as
  // the work in flight and not the history.
  virtual Result<std::map<RunStatus, int64_t>> CountActiveRuns() = 0;
  virtual Result<int64_t> CountPendingOlderThan(std::chrono::milliseconds age) = 0;

  // --- steps (checkpoints) ---
  // Insert-once: stored only while the run is running under step.epoch, and never overwritten
  // (except a kStepWaiting row, which the node's end or a later waiting row replaces).
  // kConflict when the run is not running under that epoch, or the node already has a
  // different checkpoint.
  virtual Result<SaveStepOutcome> SaveStep(const RunStep& step) = 0;
  virtual Result<std::vector<RunStep>> ListSteps(const std::string& run_id) = 0;  // by finish

  // --- run events (history and SSE resume) ---
  // Returns the event's seq. kNotFound when the run does not exist.
  virtual Result<int64_t> AppendRunEvent(const std::string& run_id, const std::string& type,
                                         const std::string& data) = 0;
  // Appends `events` in their order with consecutive seqs, several per statement, each with its
  // own time (events gathered before one write keep when they happened). Returns the last seq
  // (0 for none). kNotFound when the run does not exist; kInvalidArgument for an event without
  // a type, before anything is written.
  virtual Result<int64_t> AppendRunEvents(const std::string& run_id,
                                          const std::vector<NewRunEvent>& events) = 0;
  // Events with seq > after_seq, ascending, at most limit (1..10000).
  virtual Result<std::vector<RunEvent>> ListRunEvents(const std::string& run_id, int64_t after_seq,
                                                      int limit) = 0;
  // A page of them bounded by count and bytes, as RunEventQuery says: what every reader of a
  // run's events that may be long uses (the API, a follower, recovery, remediation).
  // kInvalidArgument for a limit outside 1..10000 or max_bytes below 1.
  virtual Result<RunEventPage> ListRunEventPage(const std::string& run_id,
                                                const RunEventQuery& query) = 0;

  // --- triggers ---
  // Makes the workflow's triggers match `specs` (by key): inserts new ones, updates changed
  // ones (a changed config resets next_fire_ms), re-enables returning ones and disables the
  // rest (kept, with their fire history). Returns the enabled triggers.
  virtual Result<std::vector<Trigger>> SyncTriggers(const std::string& workflow_id,
                                                    const std::vector<TriggerSpec>& specs) = 0;
  virtual Result<std::optional<Trigger>> GetTrigger(const std::string& id) = 0;
  virtual Result<std::vector<Trigger>> ListTriggers(const TriggerFilter& filter) = 0;
  // Records the scheduler's progress. last_fire_ms only moves forward.
  virtual Status UpdateTriggerFireTimes(const std::string& trigger_id, int64_t last_fire_ms,
                                        int64_t next_fire_ms) = 0;

  // --- cron fires (exactly-once) ---
  // Inserts (trigger_id, fire_ms) unless present. true = this caller owns the occurrence.
  virtual Result<bool> RecordCronFire(const std::string& trigger_id, int64_t fire_ms,
                                      const std::string& run_id) = 0;
  // Atomically: records the occurrence, creates its run (triggered_by cron, trigger_id set) and
  // advances the trigger's last_fire_ms. std::nullopt when the occurrence was already recorded.
  virtual Result<std::optional<Run>> CreateCronRun(const std::string& trigger_id, int64_t fire_ms,
                                                   const CreateRunRequest& request) = 0;
  virtual Result<std::vector<CronFire>> ListCronFires(const std::string& trigger_id,
                                                      int limit) = 0;  // newest first

  // --- API tokens ---
  virtual Result<ApiToken> CreateApiToken(const std::string& name, const std::string& token_hash,
                                          const std::vector<std::string>& scopes) = 0;
  virtual Result<std::vector<ApiToken>> ListApiTokens() = 0;  // revoked included, by creation
  // kNotFound for an unknown id; revoking twice is a no-op.
  virtual Status RevokeApiToken(const std::string& id) = 0;
  // The unrevoked token with this hash. Updates last_used_ms (at most once a minute per token,
  // so a busy API does not write on every request).
  virtual Result<std::optional<ApiToken>> VerifyApiToken(const std::string& token_hash) = 0;

  // --- webhook replay protection ---
  // true the first time (scope, nonce) is seen (or when its earlier record expired); false for a
  // replay. Shared by every server on the same database.
  virtual Result<bool> RememberNonce(const std::string& scope, const std::string& nonce,
                                     int64_t expires_ms) = 0;
  // Deletes up to `limit` expired nonces; returns how many.
  virtual Result<int64_t> DeleteExpiredNonces(int limit) = 0;

  // --- remediation candidates (docs/remediation.md) ---
  // Inserts a pending candidate, or, while an open one (pending, claimed, failed) has the same
  // fingerprint, attaches to it (occurrences + 1, last_seen_ms, last_run_id): one statement on
  // a partial unique index, so concurrent failures on several workers make one row.
  virtual Result<RecordRemediationResult> RecordRemediation(
      const RecordRemediationRequest& request) = 0;
  virtual Result<std::optional<Remediation>> GetRemediation(const std::string& id) = 0;
  virtual Result<RemediationPage> ListRemediations(const RemediationFilter& filter) = 0;
  virtual Result<std::vector<RemediationAttempt>> ListRemediationAttempts(
      const std::string& id) = 0;  // oldest first
  // Claims whose deadline passed: back to pending (attempts left) or to failed (at
  // attempt_cap); their attempt rows end as "expired". Returns them as they are now.
  virtual Result<std::vector<Remediation>> ExpireRemediationClaims(int attempt_cap) = 0;
  // Claims up to max_active minus the claims held, oldest next_attempt_ms first: pending
  // candidates and failed ones with attempts left whose backoff passed, under attempt_cap and
  // the per-workflow daily cap. Serialized across connections, so the caps hold under races.
  virtual Result<ClaimRemediationsResult> ClaimRemediations(
      const ClaimRemediationsRequest& request) = 0;
  // Moves the claim's deadline to now + lease. kConflict when (owner, attempt) no longer holds it.
  virtual Status RenewRemediationClaim(const std::string& id, const std::string& owner, int attempt,
                                       std::chrono::milliseconds lease) = 0;
  // claimed -> fixed | note_only | failed | pending, only for the claim's (owner, attempt).
  // kConflict otherwise (dismissed meanwhile, expired and taken over).
  virtual Result<Remediation> FinishRemediation(const FinishRemediationRequest& request) = 0;
  // Records the retry run's enqueue failure (or clears it with "").
  virtual Status SetRemediationRetryError(const std::string& id, const std::string& error) = 0;
  // pending | claimed | failed -> dismissed. kConflict from any other status.
  virtual Result<Remediation> DismissRemediation(const std::string& id,
                                                 const std::string& reason) = 0;
  // dismissed | failed | note_only -> pending with its attempts reset. kConflict from another
  // status, or while another open candidate has the same fingerprint.
  virtual Result<Remediation> ReopenRemediation(const std::string& id) = 0;
  // Claims held right now (status claimed).
  virtual Result<int64_t> CountActiveRemediationClaims() = 0;
  // Candidates by status, attempts by outcome, agent durations over `buckets` (seconds).
  virtual Result<RemediationStats> GetRemediationStats(const std::vector<double>& buckets) = 0;

  // --- retention ---
  // Deletes up to `limit` terminal runs finished before `before_ms`, oldest first, with their
  // steps and events. Call repeatedly until it returns less than limit.
  virtual Result<int64_t> DeleteFinishedRunsBefore(int64_t before_ms, int limit) = 0;
  // Deletes up to `limit` cron fire records older than `before_ms`.
  virtual Result<int64_t> DeleteCronFiresBefore(int64_t before_ms, int limit) = 0;

 protected:
  Store() = default;
};

// The highest migration of this build, the same for both backends (Store::SchemaVersion after
// Open with migrate on).
inline constexpr int kStoreSchemaVersion = 5;

// Opens Store connections to one database. Thread-safe.
class StoreFactory {
 public:
  virtual ~StoreFactory() = default;
  // Connects and (with options.migrate) applies pending migrations. Errors: kUnavailable when
  // the database cannot be reached, kUnauthenticated for a rejected password, kInternal when the
  // schema is newer than this binary knows.
  virtual Result<std::unique_ptr<Store>> Open() = 0;
  virtual std::string_view Backend() const = 0;
  // The location with any password masked, for banners and logs.
  virtual std::string Describe() const = 0;
};

// Picks the implementation by scheme: "postgresql://" or "postgres://" -> PostgreSQL (libpq URL,
// passed through); "sqlite:///abs/path", "sqlite://rel/path" or a plain path -> SQLite (the
// parent directory must exist). kInvalidArgument for an empty or unknown-scheme location.
// Does not connect.
Result<std::unique_ptr<StoreFactory>> MakeStoreFactory(const std::string& url_or_path,
                                                       StoreOptions options = {});
// MakeStoreFactory(...) then Open().
Result<std::unique_ptr<Store>> OpenStore(const std::string& url_or_path, StoreOptions options = {});
// The same location as it reads from any folder: a relative SQLite path (or sqlite://rel) made
// absolute against the current directory; server URLs, absolute paths and SQLite's own names
// (":memory:", "file:...") as given. For records read by processes elsewhere (ferry dev's).
std::string StoreLocationFromAnywhere(const std::string& url_or_path);
// url_or_path with the password of a PostgreSQL URL replaced by "***".
std::string MaskStoreUrl(const std::string& url_or_path);

}  // namespace ferry
