// Internal to src/store (sql_store*.cc): SqlStore, the one Store implementation (see
// sql_store.h), declared here so that its parts live in one file each:
//   sql_store.cc            opening, migrations, transactions, statement execution, and the
//                           remediation methods (their queries live in sql_remediation.cc)
//   sql_store_workflows.cc  workflows and their versions
//   sql_store_runs.cc       runs, steps, events and retention
//   sql_store_triggers.cc   triggers and cron fires
//   sql_store_access.cc     API tokens and webhook nonces
// Nothing else includes this header: the rest of Ferry opens a store through OpenStore
// (store.h), which calls MakeSqlStore (sql_store.h).
//
// Thread-safety: one connection; not thread-safe (the Store is single-threaded).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/sql_conn.h"
#include "store/sql_remediation.h"
#include "store/store.h"

namespace ferry::store_internal {

inline constexpr size_t kMaxNameBytes = 200;

inline std::string Cat(std::string_view a, std::string_view b) {
  std::string s(a);
  s.append(b);
  return s;
}

inline int ToInt(int64_t v) { return static_cast<int>(v); }

// The caller's errors, said in the caller's words: "no token X", not "store: no token X" (the
// store's own failures, kInternal, keep their "store:" to say where they come from).
inline tl::unexpected<Error> Invalid(std::string msg) {
  return Fail(ErrorCode::kInvalidArgument, std::move(msg));
}
inline tl::unexpected<Error> Conflict(std::string msg) {
  return Fail(ErrorCode::kConflict, std::move(msg));
}
inline tl::unexpected<Error> NotFound(std::string msg) {
  return Fail(ErrorCode::kNotFound, std::move(msg));
}

class SqlStore final : public Store, private SqlSession {
 public:
  SqlStore(std::unique_ptr<SqlConn> conn, const StoreOptions& options)
      : conn_(std::move(conn)), options_(options), remediation_(*this) {}

  std::string_view Backend() const override { return conn_->Backend(); }

  // Opening, migrations and transactions (sql_store.cc).
  Status Migrate();
  Status Ping() override;
  Result<int> SchemaVersion() override;
  Result<std::unique_ptr<Transaction>> Begin() override;
  Status EndUserTx(bool commit);

  // ---------------------------------------------------------------- workflows
  // In sql_store_workflows.cc.

  Result<ApplyWorkflowResult> ApplyWorkflow(const ApplyWorkflowRequest& req) override;
  Result<std::optional<Workflow>> GetWorkflow(const std::string& name) override;
  Result<std::optional<Workflow>> GetWorkflowById(const std::string& id) override;
  Result<std::vector<Workflow>> ListWorkflows() override;
  Result<std::optional<WorkflowVersion>> GetWorkflowVersion(const std::string& workflow_id,
                                                            int version) override;
  Result<std::vector<WorkflowVersion>> ListWorkflowVersions(
      const std::string& workflow_id) override;
  Result<Workflow> SetWorkflowPaused(const std::string& workflow_id, bool paused) override;

  // ---------------------------------------------------------------- runs, steps, events
  // In sql_store_runs.cc.

  Result<Run> CreateRun(const CreateRunRequest& req) override;
  Result<std::optional<Run>> GetRun(const std::string& id) override;
  Result<RunPage> ListRuns(const RunFilter& filter) override;
  Result<Run> MarkRunRunning(const std::string& run_id, int64_t epoch,
                             const std::string& worker) override;
  Result<StartedRun> MarkRunStarted(const std::string& run_id, int64_t epoch,
                                    const std::string& worker, const NewRunEvent& started) override;
  Result<Run> FinishRun(const std::string& run_id, int64_t epoch, RunStatus status,
                        const std::string& output, const std::string& error,
                        const std::string& failed_node, const std::vector<NewRunEvent>& events = {},
                        const std::vector<RunStep>& steps = {}) override;
  Result<Run> CancelRun(const std::string& run_id) override;
  Result<Run> ReleaseRun(const std::string& run_id, int64_t epoch,
                         const std::vector<NewRunEvent>& events,
                         const std::vector<RunStep>& steps = {}) override;
  Result<Run> RetryRun(const std::string& run_id, const RetryRunOptions& options) override;
  Result<std::vector<Run>> ListPendingRunsOlderThan(std::chrono::milliseconds age,
                                                    int limit) override;
  Result<std::vector<Run>> ListRunningRuns(std::chrono::milliseconds age, int limit,
                                           const std::string& after_id = "") override;
  Result<std::vector<Run>> ListCancelledRunsWithout(const std::string& event_type,
                                                    std::chrono::milliseconds within,
                                                    int limit) override;
  Result<std::map<RunStatus, int64_t>> CountRunsByStatus() override;
  Result<std::map<RunStatus, int64_t>> CountActiveRuns() override;
  Result<int64_t> CountPendingOlderThan(std::chrono::milliseconds age) override;

  Result<SaveStepOutcome> SaveStep(const RunStep& step) override;
  Result<std::vector<RunStep>> ListSteps(const std::string& run_id) override;

  Result<int64_t> AppendRunEvent(const std::string& run_id, const std::string& type,
                                 const std::string& data) override;
  Result<int64_t> AppendRunEvents(const std::string& run_id,
                                  const std::vector<NewRunEvent>& events) override;
  Result<std::vector<RunEvent>> ListRunEvents(const std::string& run_id, int64_t after_seq,
                                              int limit) override;
  Result<RunEventPage> ListRunEventPage(const std::string& run_id,
                                        const RunEventQuery& query) override;

  // ---------------------------------------------------------------- triggers, cron fires
  // In sql_store_triggers.cc.

  Result<std::vector<Trigger>> SyncTriggers(const std::string& workflow_id,
                                            const std::vector<TriggerSpec>& specs) override;
  Result<std::optional<Trigger>> GetTrigger(const std::string& id) override;
  Result<std::vector<Trigger>> ListTriggers(const TriggerFilter& filter) override;
  Status UpdateTriggerFireTimes(const std::string& trigger_id, int64_t last_fire_ms,
                                int64_t next_fire_ms) override;

  Result<bool> RecordCronFire(const std::string& trigger_id, int64_t fire_ms,
                              const std::string& run_id) override;
  Result<std::optional<Run>> CreateCronRun(const std::string& trigger_id, int64_t fire_ms,
                                           const CreateRunRequest& request) override;
  Result<std::vector<CronFire>> ListCronFires(const std::string& trigger_id, int limit) override;

  // ---------------------------------------------------------------- tokens, nonces
  // In sql_store_access.cc.

  Result<ApiToken> CreateApiToken(const std::string& name, const std::string& token_hash,
                                  const std::vector<std::string>& scopes) override;
  Result<std::vector<ApiToken>> ListApiTokens() override;
  Status RevokeApiToken(const std::string& id) override;
  Result<std::optional<ApiToken>> VerifyApiToken(const std::string& token_hash) override;

  Result<bool> RememberNonce(const std::string& scope, const std::string& nonce,
                             int64_t expires_ms) override;
  Result<int64_t> DeleteExpiredNonces(int limit) override;

  // ---------------------------------------------------------------- remediation
  // In sql_store.cc, forwarding to sql_remediation.cc, where the queries live.

  Result<RecordRemediationResult> RecordRemediation(
      const RecordRemediationRequest& request) override;
  Result<std::optional<Remediation>> GetRemediation(const std::string& id) override;
  Result<RemediationPage> ListRemediations(const RemediationFilter& filter) override;
  Result<std::vector<RemediationAttempt>> ListRemediationAttempts(const std::string& id) override;
  Result<std::vector<Remediation>> ExpireRemediationClaims(int attempt_cap) override;
  Result<ClaimRemediationsResult> ClaimRemediations(
      const ClaimRemediationsRequest& request) override;
  Status RenewRemediationClaim(const std::string& id, const std::string& owner, int attempt,
                               std::chrono::milliseconds lease) override;
  Result<Remediation> FinishRemediation(const FinishRemediationRequest& request) override;
  Status SetRemediationRetryError(const std::string& id, const std::string& error) override;
  Result<Remediation> DismissRemediation(const std::string& id, const std::string& reason) override;
  Result<Remediation> ReopenRemediation(const std::string& id) override;
  Result<int64_t> CountActiveRemediationClaims() override;
  Result<RemediationStats> GetRemediationStats(const std::vector<double>& buckets) override;

  // ---------------------------------------------------------------- retention
  // In sql_store_runs.cc.

  Result<int64_t> DeleteFinishedRunsBefore(int64_t before_ms, int limit) override;
  Result<int64_t> DeleteCronFiresBefore(int64_t before_ms, int limit) override;

 private:
  int64_t NowMs() const { return options_.clock->NowMs(); }

  // Statement execution and transactions (sql_store.cc).
  // SqlSession (for sql_remediation.cc).
  Result<SqlResult> Query(std::string_view sql, const std::vector<SqlParam>& params) override;
  Status Atomically(const std::function<Status()>& f) override;
  int64_t Now() const override;

  Result<SqlResult> Exec(std::string_view sql, const std::vector<SqlParam>& params);
  Result<int64_t> Affected(std::string_view sql, const std::vector<SqlParam>& params);
  // A write inside a transaction whose only outcome is whether it worked: on PostgreSQL it goes
  // with the next statement or the COMMIT (SqlConn::Defer), and a failure fails that, so the
  // transaction does not commit. REQUIRES: inside InTx or a user's transaction.
  Status ExecWithNext(std::string_view sql, const std::vector<SqlParam>& params);

  // Outside a user's transaction: begins one, runs `stmts` and commits, in one round trip on
  // PostgreSQL (SqlConn::ExecAndCommit), perhaps in a commit group on SQLite
  // (SqlConn::ExecInOwnCommit). Each statement's result; nothing committed on failure, nor when
  // a `needs_row` statement returned no row (the results end with its own).
  Result<std::vector<SqlResult>> ExecAndCommit(const std::vector<SqlStatement>& stmts);

  template <typename T, typename F>
  Result<std::optional<T>> One(std::string_view sql, const std::vector<SqlParam>& params, F from) {
    auto r = Exec(sql, params);
    if (!r) return Fail(r.error());
    if (r->rows.empty()) return std::optional<T>();
    return std::optional<T>(from(r->rows[0]));
  }

  template <typename T, typename F>
  Result<std::vector<T>> Many(std::string_view sql, const std::vector<SqlParam>& params, F from) {
    auto r = Exec(sql, params);
    if (!r) return Fail(r.error());
    std::vector<T> out;
    out.reserve(r->rows.size());
    for (const auto& row : r->rows) out.push_back(from(row));
    return out;
  }

  // Runs f atomically: in its own write transaction, or, inside a user's Transaction, under a
  // savepoint so a failed condition undoes f's writes without aborting the user's transaction.
  template <typename F>
  auto InTx(F&& f) -> decltype(f()) {
    using R = decltype(f());
    if (user_tx_) {
      if (!conn_->InTransaction()) {
        return Fail(ErrorCode::kUnavailable,
                    "store: the open transaction was lost (connection reset); roll back and retry");
      }
      std::string sp = "ferry_sp" + std::to_string(++savepoint_depth_);
      // Deferred: on PostgreSQL they travel with the next statement (SqlConn::Defer).
      if (auto st = conn_->Defer("SAVEPOINT " + sp, {}); !st) {
        --savepoint_depth_;
        return Fail(st.error());
      }
      R out = f();
      if (!out) (void)Exec("ROLLBACK TO SAVEPOINT " + sp, {});
      (void)conn_->Defer("RELEASE SAVEPOINT " + sp, {});
      --savepoint_depth_;
      return out;
    }
    if (auto st = conn_->BeginWrite(); !st) return Fail(st.error());
    R out = f();
    if (!out) {
      if (conn_->InTransaction()) (void)Exec("ROLLBACK", {});
      return out;
    }
    if (auto st = CommitNow(); !st) return Fail(st.error());
    return out;
  }

  // For methods whose decision is one statement: outside a user transaction they need no
  // BEGIN/COMMIT round trips; inside one they still get InTx's savepoint.
  template <typename F>
  auto Single(F&& f) -> decltype(f()) {
    if (user_tx_) return InTx(std::forward<F>(f));
    return f();
  }

  Status CommitNow();
  Result<int> ReadSchemaVersion();
  Status MigrateLocked(const std::vector<Migration>& migrations, int latest);

  // Runs (sql_store_runs.cc).
  // REQUIRES: inside InTx or a user's transaction. The events' statements, with the next
  // round trip (ExecWithNext).
  Status WriteEventsWithNext(const std::string& run_id, const std::vector<NewRunEvent>& events);
  // Inserts `events` now, in whatever transaction is open; the last number written. A number
  // another writer took is kConflict, not tried again (AppendRunEvents tries again).
  Result<int64_t> InsertRunEvents(const std::string& run_id,
                                  const std::vector<NewRunEvent>& events);
  Status ValidateCreate(const CreateRunRequest& req);
  // REQUIRES: inside InTx, unless the run has no first event and no nonce (then it is one
  // statement). The workflow and version are checked by the insert's join, the row comes back.
  Result<Run> InsertRun(const CreateRunRequest& req, const std::string& retry_of);
  // Outside a user's transaction: the run with its nonce and first event, one commit and one
  // round trip.
  Result<Run> InsertRunInOneCommit(const CreateRunRequest& req);
  // The run from the results of RunWriteFor's statements (those up to the run's insert at
  // `run_at`), or why it was refused.
  Result<Run> CreatedRun(const CreateRunRequest& req, size_t run_at,
                         const std::vector<SqlResult>& results);
  // Why a run insert inserted nothing: the workflow or version missing, or no longer current.
  tl::unexpected<Error> WhyRunNotInserted(const CreateRunRequest& req);
  Result<Run> MustGetRun(const std::string& id);
  // Why MarkRunRunning's update applied to no row: the run as it is for a repeat of the claim
  // that already won, kNotFound or kConflict otherwise.
  Result<Run> WhyNotMarkedRunning(const std::string& run_id, int64_t epoch,
                                  const std::string& worker);
  // FinishRun's one try; FinishRun tries again while the events' numbers clash.
  Result<Run> FinishRunOnce(const std::string& run_id, int64_t epoch, RunStatus status,
                            const std::string& output, const std::string& error,
                            const std::string& failed_node, const std::vector<NewRunEvent>& events,
                            const std::vector<RunStep>& steps);
  // Why FinishRun's update applied to no row: the run as it is for a repeat of that finish,
  // kNotFound or kConflict otherwise.
  Result<Run> WhyNotFinished(const std::string& run_id, int64_t epoch, RunStatus status,
                             const std::string& output, const std::string& error,
                             const std::string& failed_node);

  // Cron fires (sql_store_triggers.cc).
  Status RequireTrigger(const std::string& trigger_id);
  Result<bool> InsertFire(const std::string& trigger_id, int64_t fire_ms,
                          const std::string& run_id);

  // Constant after construction.
  const std::unique_ptr<SqlConn> conn_;
  const StoreOptions options_;
  RemediationSql remediation_;
  // Transaction state of this connection (the Store is single-threaded).
  bool user_tx_ = false;
  int savepoint_depth_ = 0;
};

}  // namespace ferry::store_internal
