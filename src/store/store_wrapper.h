// A Store that forwards every call to another one. Derive from it and override one method to
// inject faults in tests (fail the Nth call with kUnavailable, delay a commit, ...), as leveldb's
// EnvWrapper does for its Env.
//
// Thread-safety: that of the wrapped Store (not thread-safe).
#pragma once

#include "store/store.h"

namespace ferry {

class StoreWrapper : public Store {
 public:
  // REQUIRES: target outlives the wrapper.
  explicit StoreWrapper(Store& target) : target_(target) {}

  std::string_view Backend() const override { return target_.Backend(); }
  Status Ping() override { return target_.Ping(); }
  Result<int> SchemaVersion() override { return target_.SchemaVersion(); }
  Result<std::unique_ptr<Transaction>> Begin() override { return target_.Begin(); }
  Result<ApplyWorkflowResult> ApplyWorkflow(const ApplyWorkflowRequest& request) override {
    return target_.ApplyWorkflow(request);
  }
  Result<std::optional<Workflow>> GetWorkflow(const std::string& name) override {
    return target_.GetWorkflow(name);
  }
  Result<std::optional<Workflow>> GetWorkflowById(const std::string& id) override {
    return target_.GetWorkflowById(id);
  }
  Result<std::vector<Workflow>> ListWorkflows() override { return target_.ListWorkflows(); }
  Result<std::optional<WorkflowVersion>> GetWorkflowVersion(const std::string& workflow_id,
                                                            int version) override {
    return target_.GetWorkflowVersion(workflow_id, version);
  }
  Result<std::vector<WorkflowVersion>> ListWorkflowVersions(
      const std::string& workflow_id) override {
    return target_.ListWorkflowVersions(workflow_id);
  }
  Result<Workflow> SetWorkflowPaused(const std::string& workflow_id, bool paused) override {
    return target_.SetWorkflowPaused(workflow_id, paused);
  }
  Result<Run> CreateRun(const CreateRunRequest& request) override {
    return target_.CreateRun(request);
  }
  Result<std::optional<Run>> GetRun(const std::string& id) override { return target_.GetRun(id); }
  Result<RunPage> ListRuns(const RunFilter& filter) override { return target_.ListRuns(filter); }
  Result<Run> MarkRunRunning(const std::string& run_id, int64_t epoch,
                             const std::string& worker) override {
    return target_.MarkRunRunning(run_id, epoch, worker);
  }
  Result<StartedRun> MarkRunStarted(const std::string& run_id, int64_t epoch,
                                    const std::string& worker,
                                    const NewRunEvent& started) override {
    return target_.MarkRunStarted(run_id, epoch, worker, started);
  }
  Result<Run> FinishRun(const std::string& run_id, int64_t epoch, RunStatus status,
                        const std::string& output, const std::string& error,
                        const std::string& failed_node, const std::vector<NewRunEvent>& events = {},
                        const std::vector<RunStep>& steps = {}) override {
    return target_.FinishRun(run_id, epoch, status, output, error, failed_node, events, steps);
  }
  Result<Run> CancelRun(const std::string& run_id) override { return target_.CancelRun(run_id); }
  Result<Run> ReleaseRun(const std::string& run_id, int64_t epoch,
                         const std::vector<NewRunEvent>& events,
                         const std::vector<RunStep>& steps = {}) override {
    return target_.ReleaseRun(run_id, epoch, events, steps);
  }
  Result<Run> RetryRun(const std::string& run_id, const RetryRunOptions& options) override {
    return target_.RetryRun(run_id, options);
  }
  Result<std::vector<Run>> ListPendingRunsOlderThan(std::chrono::milliseconds age,
                                                    int limit) override {
    return target_.ListPendingRunsOlderThan(age, limit);
  }
  Result<std::vector<Run>> ListRunningRuns(std::chrono::milliseconds age, int limit,
                                           const std::string& after_id = "") override {
    return target_.ListRunningRuns(age, limit, after_id);
  }
  Result<std::vector<Run>> ListCancelledRunsWithout(const std::string& event_type,
                                                    std::chrono::milliseconds within,
                                                    int limit) override {
    return target_.ListCancelledRunsWithout(event_type, within, limit);
  }
  Result<std::map<RunStatus, int64_t>> CountRunsByStatus() override {
    return target_.CountRunsByStatus();
  }
  Result<std::map<RunStatus, int64_t>> CountActiveRuns() override {
    return target_.CountActiveRuns();
  }
  Result<int64_t> CountPendingOlderThan(std::chrono::milliseconds age) override {
    return target_.CountPendingOlderThan(age);
  }
  Result<SaveStepOutcome> SaveStep(const RunStep& step) override { return target_.SaveStep(step); }
  Result<std::vector<RunStep>> ListSteps(const std::string& run_id) override {
    return target_.ListSteps(run_id);
  }
  Result<int64_t> AppendRunEvent(const std::string& run_id, const std::string& type,
                                 const std::string& data) override {
    return target_.AppendRunEvent(run_id, type, data);
  }
  Result<int64_t> AppendRunEvents(const std::string& run_id,
                                  const std::vector<NewRunEvent>& events) override {
    return target_.AppendRunEvents(run_id, events);
  }
  Result<std::vector<RunEvent>> ListRunEvents(const std::string& run_id, int64_t after_seq,
                                              int limit) override {
    return target_.ListRunEvents(run_id, after_seq, limit);
  }
  Result<RunEventPage> ListRunEventPage(const std::string& run_id,
                                        const RunEventQuery& query) override {
    return target_.ListRunEventPage(run_id, query);
  }
  Result<std::vector<Trigger>> SyncTriggers(const std::string& workflow_id,
                                            const std::vector<TriggerSpec>& specs) override {
    return target_.SyncTriggers(workflow_id, specs);
  }
  Result<std::optional<Trigger>> GetTrigger(const std::string& id) override {
    return target_.GetTrigger(id);
  }
  Result<std::vector<Trigger>> ListTriggers(const TriggerFilter& filter) override {
    return target_.ListTriggers(filter);
  }
  Status UpdateTriggerFireTimes(const std::string& trigger_id, int64_t last_fire_ms,
                                int64_t next_fire_ms) override {
    return target_.UpdateTriggerFireTimes(trigger_id, last_fire_ms, next_fire_ms);
  }
  Result<bool> RecordCronFire(const std::string& trigger_id, int64_t fire_ms,
                              const std::string& run_id) override {
    return target_.RecordCronFire(trigger_id, fire_ms, run_id);
  }
  Result<std::optional<Run>> CreateCronRun(const std::string& trigger_id, int64_t fire_ms,
                                           const CreateRunRequest& request) override {
    return target_.CreateCronRun(trigger_id, fire_ms, request);
  }
  Result<std::vector<CronFire>> ListCronFires(const std::string& trigger_id, int limit) override {
    return target_.ListCronFires(trigger_id, limit);
  }
  Result<ApiToken> CreateApiToken(const std::string& name, const std::string& token_hash,
                                  const std::vector<std::string>& scopes) override {
    return target_.CreateApiToken(name, token_hash, scopes);
  }
  Result<std::vector<ApiToken>> ListApiTokens() override { return target_.ListApiTokens(); }
  Status RevokeApiToken(const std::string& id) override { return target_.RevokeApiToken(id); }
  Result<std::optional<ApiToken>> VerifyApiToken(const std::string& token_hash) override {
    return target_.VerifyApiToken(token_hash);
  }
  Result<bool> RememberNonce(const std::string& scope, const std::string& nonce,
                             int64_t expires_ms) override {
    return target_.RememberNonce(scope, nonce, expires_ms);
  }
  Result<int64_t> DeleteExpiredNonces(int limit) override {
    return target_.DeleteExpiredNonces(limit);
  }
  Result<RecordRemediationResult> RecordRemediation(
      const RecordRemediationRequest& request) override {
    return target_.RecordRemediation(request);
  }
  Result<std::optional<Remediation>> GetRemediation(const std::string& id) override {
    return target_.GetRemediation(id);
  }
  Result<RemediationPage> ListRemediations(const RemediationFilter& filter) override {
    return target_.ListRemediations(filter);
  }
  Result<std::vector<RemediationAttempt>> ListRemediationAttempts(const std::string& id) override {
    return target_.ListRemediationAttempts(id);
  }
  Result<std::vector<Remediation>> ExpireRemediationClaims(int attempt_cap) override {
    return target_.ExpireRemediationClaims(attempt_cap);
  }
  Result<ClaimRemediationsResult> ClaimRemediations(
      const ClaimRemediationsRequest& request) override {
    return target_.ClaimRemediations(request);
  }
  Status RenewRemediationClaim(const std::string& id, const std::string& owner, int attempt,
                               std::chrono::milliseconds lease) override {
    return target_.RenewRemediationClaim(id, owner, attempt, lease);
  }
  Result<Remediation> FinishRemediation(const FinishRemediationRequest& request) override {
    return target_.FinishRemediation(request);
  }
  Status SetRemediationRetryError(const std::string& id, const std::string& error) override {
    return target_.SetRemediationRetryError(id, error);
  }
  Result<Remediation> DismissRemediation(const std::string& id,
                                         const std::string& reason) override {
    return target_.DismissRemediation(id, reason);
  }
  Result<Remediation> ReopenRemediation(const std::string& id) override {
    return target_.ReopenRemediation(id);
  }
  Result<int64_t> CountActiveRemediationClaims() override {
    return target_.CountActiveRemediationClaims();
  }
  Result<RemediationStats> GetRemediationStats(const std::vector<double>& buckets) override {
    return target_.GetRemediationStats(buckets);
  }
  Result<int64_t> DeleteFinishedRunsBefore(int64_t before_ms, int limit) override {
    return target_.DeleteFinishedRunsBefore(before_ms, limit);
  }
  Result<int64_t> DeleteCronFiresBefore(int64_t before_ms, int limit) override {
    return target_.DeleteCronFiresBefore(before_ms, limit);
  }

 protected:
  Store& target() { return target_; }

 private:
  Store& target_;
};

}  // namespace ferry
