#include "store/sql_store.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <sstream>
#include <utility>

#include "core/ids.h"
#include "store/sql_counters.h"
#include "store/sql_remediation.h"

namespace ferry::store_internal {

const std::string& SqlRow::Text(size_t i) const {
  static const std::string kEmpty;
  const auto& c = cols_.at(i);
  return c ? *c : kEmpty;
}

int64_t SqlRow::Int(size_t i) const {
  const auto& c = cols_.at(i);
  if (!c || c->empty()) return 0;
  int64_t v = 0;
  std::from_chars(c->data(), c->data() + c->size(), v);
  return v;
}

bool SqlRow::Bool(size_t i) const {
  const auto& c = cols_.at(i);
  if (!c || c->empty()) return false;
  return (*c)[0] == 't' || (*c)[0] == '1';
}

namespace {

using P = SqlParam;

constexpr int64_t kTokenTouchIntervalMs = 60'000;
constexpr size_t kMaxNameBytes = 200;

constexpr std::string_view kWorkflowCols =
    "id, name, description, current_version, paused, created_ms, updated_ms";
constexpr std::string_view kVersionCols =
    "workflow_id, version, source, format, graph, checksum, author, notes, created_ms";
constexpr std::string_view kRunSelect =
    "SELECT r.id, r.workflow_id, w.name, r.version, r.status, r.attempt, r.epoch, r.inputs, "
    "r.output, r.error, r.failed_node, r.triggered_by, r.trigger_id, r.retry_of, r.worker, "
    "r.created_ms, r.started_ms, r.finished_ms, r.updated_ms, r.seq "
    "FROM runs r JOIN workflows w ON w.id = r.workflow_id ";
constexpr size_t kRunSeqCol = 19;
// The same columns from an INSERT/UPDATE on runs, so a transition is one round trip.
constexpr std::string_view kRunReturning =
    " RETURNING id, workflow_id, (SELECT name FROM workflows WHERE workflows.id = "
    "runs.workflow_id), version, status, attempt, epoch, inputs, output, error, failed_node, "
    "triggered_by, trigger_id, retry_of, worker, created_ms, started_ms, finished_ms, updated_ms, "
    "seq";
constexpr int kEventAppendTries = 32;
constexpr std::string_view kStepCols =
    "run_id, node_id, status, output, error, attempt, epoch, started_ms, finished_ms";
constexpr std::string_view kTriggerSelect =
    "SELECT t.id, t.workflow_id, w.name, w.paused, t.kind, t.key, t.config, t.enabled, "
    "t.last_fire_ms, t.next_fire_ms, t.created_ms, t.updated_ms "
    "FROM triggers t JOIN workflows w ON w.id = t.workflow_id ";
constexpr std::string_view kTokenCols =
    "id, name, token_hash, created_ms, last_used_ms, revoked_ms, scopes";

std::string Cat(std::string_view a, std::string_view b) {
  std::string s(a);
  s.append(b);
  return s;
}

int ToInt(int64_t v) { return static_cast<int>(v); }

Workflow WorkflowFromRow(const SqlRow& r) {
  Workflow w;
  w.id = r.Text(0);
  w.name = r.Text(1);
  w.description = r.Text(2);
  w.current_version = ToInt(r.Int(3));
  w.paused = r.Bool(4);
  w.created_ms = r.Int(5);
  w.updated_ms = r.Int(6);
  return w;
}

WorkflowVersion VersionFromRow(const SqlRow& r) {
  WorkflowVersion v;
  v.workflow_id = r.Text(0);
  v.version = ToInt(r.Int(1));
  v.source = r.Text(2);
  v.format = r.Text(3);
  v.graph = r.Text(4);
  v.checksum = r.Text(5);
  v.author = r.Text(6);
  v.notes = r.Text(7);
  v.created_ms = r.Int(8);
  return v;
}

Run RunFromRow(const SqlRow& r) {
  Run run;
  run.id = r.Text(0);
  run.workflow_id = r.Text(1);
  run.workflow_name = r.Text(2);
  run.version = ToInt(r.Int(3));
  run.status = ParseRunStatus(r.Text(4)).value_or(RunStatus::kPending);
  run.attempt = ToInt(r.Int(5));
  run.epoch = r.Int(6);
  run.inputs = r.Text(7);
  run.output = r.Text(8);
  run.error = r.Text(9);
  run.failed_node = r.Text(10);
  run.triggered_by = ParseTriggeredBy(r.Text(11)).value_or(TriggeredBy::kApi);
  run.trigger_id = r.Text(12);
  run.retry_of = r.Text(13);
  run.worker = r.Text(14);
  run.created_ms = r.Int(15);
  run.started_ms = r.Int(16);
  run.finished_ms = r.Int(17);
  run.updated_ms = r.Int(18);
  return run;
}

RunStep StepFromRow(const SqlRow& r) {
  RunStep s;
  s.run_id = r.Text(0);
  s.node_id = r.Text(1);
  s.status = r.Text(2);
  s.output = r.Text(3);
  s.error = r.Text(4);
  s.attempt = ToInt(r.Int(5));
  s.epoch = r.Int(6);
  s.started_ms = r.Int(7);
  s.finished_ms = r.Int(8);
  return s;
}

Trigger TriggerFromRow(const SqlRow& r) {
  Trigger t;
  t.id = r.Text(0);
  t.workflow_id = r.Text(1);
  t.workflow_name = r.Text(2);
  t.workflow_paused = r.Bool(3);
  t.kind = ParseTriggerKind(r.Text(4)).value_or(TriggerKind::kWebhook);
  t.key = r.Text(5);
  t.config = r.Text(6);
  t.enabled = r.Bool(7);
  t.last_fire_ms = r.Int(8);
  t.next_fire_ms = r.Int(9);
  t.created_ms = r.Int(10);
  t.updated_ms = r.Int(11);
  return t;
}

ApiToken TokenFromRow(const SqlRow& r) {
  ApiToken t;
  t.id = r.Text(0);
  t.name = r.Text(1);
  t.token_hash = r.Text(2);
  t.created_ms = r.Int(3);
  t.last_used_ms = r.Int(4);
  t.revoked_ms = r.Int(5);
  std::istringstream scopes(r.Text(6));
  for (std::string scope; scopes >> scope;) t.scopes.push_back(scope);
  return t;
}

tl::unexpected<Error> Invalid(std::string msg) {
  return Fail(ErrorCode::kInvalidArgument, "store: " + std::move(msg));
}
tl::unexpected<Error> Conflict(std::string msg) {
  return Fail(ErrorCode::kConflict, "store: " + std::move(msg));
}
tl::unexpected<Error> NotFound(std::string msg) {
  return Fail(ErrorCode::kNotFound, "store: " + std::move(msg));
}

std::string RunState(const Run& r) {
  return std::string(RunStatusName(r.status)) + " at epoch " + std::to_string(r.epoch);
}

class SqlStore;

class SqlTransaction final : public Transaction {
 public:
  explicit SqlTransaction(SqlStore* store) : store_(store) {}
  ~SqlTransaction() override;
  Status Commit() override;

 private:
  SqlStore* store_;
  bool done_ = false;
};

class SqlStore final : public Store, private SqlSession {
 public:
  SqlStore(std::unique_ptr<SqlConn> conn, const StoreOptions& options)
      : conn_(std::move(conn)), options_(options), remediation_(*this) {}

  std::string_view Backend() const override { return conn_->Backend(); }

  Status Migrate() {
    const auto& migrations = conn_->Migrations();
    const int latest = migrations.empty() ? 0 : migrations.back().version;
    // Fast path: most opens find the schema current and take no lock at all. The table may not
    // exist yet, so an error here only means "take the slow path".
    if (auto v = ReadSchemaVersion(); v && *v == latest) return {};
    if (auto st = conn_->BeginWrite(); !st) return st;
    auto st = MigrateLocked(migrations, latest);
    if (!st) {
      (void)conn_->Exec("ROLLBACK", {});
      return st;
    }
    return CommitNow();
  }

  Status Ping() override {
    auto r = conn_->Exec("SELECT 1", {});
    if (!r) return Fail(r.error());
    return {};
  }

  Result<int> SchemaVersion() override { return ReadSchemaVersion(); }

  Result<std::unique_ptr<Transaction>> Begin() override {
    if (user_tx_) return Invalid("a transaction is already open on this store");
    if (auto st = conn_->BeginWrite(); !st) return Fail(st.error());
    user_tx_ = true;
    return std::unique_ptr<Transaction>(std::make_unique<SqlTransaction>(this));
  }

  Status EndUserTx(bool commit) {
    user_tx_ = false;
    if (commit) return CommitNow();
    if (conn_->InTransaction()) (void)conn_->Exec("ROLLBACK", {});
    return {};
  }

  // ---------------------------------------------------------------- workflows

  Result<ApplyWorkflowResult> ApplyWorkflow(const ApplyWorkflowRequest& req) override {
    if (req.name.empty() || req.name.size() > kMaxNameBytes) {
      return Invalid("workflow name must be 1.." + std::to_string(kMaxNameBytes) + " bytes");
    }
    if (req.format != "yaml" && req.format != "json") {
      return Invalid("workflow format must be yaml or json, not \"" + req.format + "\"");
    }
    if (req.graph.empty()) return Invalid("workflow graph is required");
    if (req.checksum.empty()) return Invalid("workflow checksum is required");
    return InTx([&]() -> Result<ApplyWorkflowResult> {
      int64_t now = NowMs();
      auto ins = Exec(
          "INSERT INTO workflows (id, name, description, current_version, paused, created_ms, "
          "updated_ms) VALUES ($1, $2, $3, 0, $4, $5, $5) ON CONFLICT (name) DO NOTHING",
          {P::Text(NewId(now)), P::Text(req.name), P::Text(req.description), P::Bool(false),
           P::Int(now)});
      if (!ins) return Fail(ins.error());
      // Also the row lock (PostgreSQL) that serializes concurrent applies of one workflow.
      auto locked = Exec(
          "UPDATE workflows SET description = $2 WHERE name = $1 RETURNING id, current_version",
          {P::Text(req.name), P::Text(req.description)});
      if (!locked) return Fail(locked.error());
      if (locked->rows.empty()) return Fail(ErrorCode::kInternal, "store: workflow vanished");
      std::string id = locked->rows[0].Text(0);
      int current = ToInt(locked->rows[0].Int(1));
      bool created = true;
      if (current > 0) {
        auto latest =
            Exec("SELECT checksum FROM workflow_versions WHERE workflow_id = $1 AND version = $2",
                 {P::Text(id), P::Int(current)});
        if (!latest) return Fail(latest.error());
        created = latest->rows.empty() || latest->rows[0].Text(0) != req.checksum;
      }
      int version = current;
      if (created) {
        version = current + 1;
        auto v = Exec(Cat("INSERT INTO workflow_versions (", kVersionCols) +
                          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                      {P::Text(id), P::Int(version), P::Text(req.source), P::Text(req.format),
                       P::Text(req.graph), P::Text(req.checksum), P::Text(req.author),
                       P::Text(req.notes), P::Int(now)});
        if (!v) return Fail(v.error());
        auto w = Exec("UPDATE workflows SET current_version = $2, updated_ms = $3 WHERE id = $1",
                      {P::Text(id), P::Int(version), P::Int(now)});
        if (!w) return Fail(w.error());
      }
      ApplyWorkflowResult out;
      out.created = created;
      auto wf = GetWorkflowById(id);
      if (!wf) return Fail(wf.error());
      auto ver = GetWorkflowVersion(id, version);
      if (!ver) return Fail(ver.error());
      if (!*wf || !*ver) return Fail(ErrorCode::kInternal, "store: applied workflow not found");
      out.workflow = std::move(**wf);
      out.version = std::move(**ver);
      return out;
    });
  }

  Result<std::optional<Workflow>> GetWorkflow(const std::string& name) override {
    return One<Workflow>(Cat("SELECT ", kWorkflowCols) + " FROM workflows WHERE name = $1",
                         {P::Text(name)}, WorkflowFromRow);
  }

  Result<std::optional<Workflow>> GetWorkflowById(const std::string& id) override {
    return One<Workflow>(Cat("SELECT ", kWorkflowCols) + " FROM workflows WHERE id = $1",
                         {P::Text(id)}, WorkflowFromRow);
  }

  Result<std::vector<Workflow>> ListWorkflows() override {
    return Many<Workflow>(Cat("SELECT ", kWorkflowCols) + " FROM workflows ORDER BY name", {},
                          WorkflowFromRow);
  }

  Result<std::optional<WorkflowVersion>> GetWorkflowVersion(const std::string& workflow_id,
                                                            int version) override {
    if (version == 0) {
      return One<WorkflowVersion>(
          Cat("SELECT ", kVersionCols) +
              " FROM workflow_versions WHERE workflow_id = $1 AND version = "
              "(SELECT current_version FROM workflows WHERE id = $1)",
          {P::Text(workflow_id)}, VersionFromRow);
    }
    return One<WorkflowVersion>(
        Cat("SELECT ", kVersionCols) +
            " FROM workflow_versions WHERE workflow_id = $1 AND version = $2",
        {P::Text(workflow_id), P::Int(version)}, VersionFromRow);
  }

  Result<std::vector<WorkflowVersion>> ListWorkflowVersions(
      const std::string& workflow_id) override {
    return Many<WorkflowVersion>(Cat("SELECT ", kVersionCols) +
                                     " FROM workflow_versions WHERE workflow_id = $1 "
                                     "ORDER BY version DESC",
                                 {P::Text(workflow_id)}, VersionFromRow);
  }

  Result<Workflow> SetWorkflowPaused(const std::string& workflow_id, bool paused) override {
    return InTx([&]() -> Result<Workflow> {
      auto r = Exec("UPDATE workflows SET paused = $2, updated_ms = $3 WHERE id = $1",
                    {P::Text(workflow_id), P::Bool(paused), P::Int(NowMs())});
      if (!r) return Fail(r.error());
      if (r->affected == 0) return NotFound("no workflow " + workflow_id);
      auto wf = GetWorkflowById(workflow_id);
      if (!wf) return Fail(wf.error());
      if (!*wf) return NotFound("no workflow " + workflow_id);
      return std::move(**wf);
    });
  }

  // ---------------------------------------------------------------- runs

  Result<Run> CreateRun(const CreateRunRequest& req) override {
    if (auto st = ValidateCreate(req); !st) return Fail(st.error());
    return Single([&]() { return InsertRun(req, ""); });
  }

  Result<std::optional<Run>> GetRun(const std::string& id) override {
    return One<Run>(Cat(kRunSelect, "WHERE r.id = $1"), {P::Text(id)}, RunFromRow);
  }

  Result<RunPage> ListRuns(const RunFilter& filter) override {
    if (filter.limit < 1 || filter.limit > 1000) return Invalid("run list limit must be 1..1000");
    std::string sql(kRunSelect);
    std::vector<SqlParam> params;
    std::string where;
    auto add = [&](std::string_view cond, SqlParam p) {
      params.push_back(std::move(p));
      where += where.empty() ? "WHERE " : " AND ";
      where += cond;
      where += "$" + std::to_string(params.size());
    };
    if (filter.workflow_id) add("r.workflow_id = ", P::Text(*filter.workflow_id));
    if (filter.status) add("r.status = ", P::Text(std::string(RunStatusName(*filter.status))));
    if (filter.triggered_by) {
      add("r.triggered_by = ", P::Text(std::string(TriggeredByName(*filter.triggered_by))));
    }
    if (!filter.cursor.empty()) {
      int64_t seq = 0;
      auto [ptr, ec] =
          std::from_chars(filter.cursor.data(), filter.cursor.data() + filter.cursor.size(), seq);
      if (ec != std::errc() || ptr != filter.cursor.data() + filter.cursor.size() || seq <= 0) {
        return Invalid("malformed run list cursor \"" + filter.cursor + "\"");
      }
      add("r.seq < ", P::Int(seq));
    }
    params.push_back(P::Int(filter.limit + 1));
    sql += where + " ORDER BY r.seq DESC LIMIT $" + std::to_string(params.size());
    auto r = Exec(sql, params);
    if (!r) return Fail(r.error());
    RunPage page;
    auto n = std::min(r->rows.size(), static_cast<size_t>(filter.limit));
    for (size_t i = 0; i < n; ++i) page.runs.push_back(RunFromRow(r->rows[i]));
    if (r->rows.size() > n) page.next_cursor = r->rows[n - 1].Text(kRunSeqCol);
    return page;
  }

  Result<Run> MarkRunRunning(const std::string& run_id, int64_t epoch,
                             const std::string& worker) override {
    if (epoch < 0) return Invalid("epoch must be >= 0");
    return Single([&]() -> Result<Run> {
      int64_t now = NowMs();
      auto r = Exec(
          Cat("UPDATE runs SET status = 'running', epoch = $2, worker = $3, attempt = attempt + 1, "
              "started_ms = CASE WHEN started_ms = 0 THEN $4 ELSE started_ms END, updated_ms = $4 "
              "WHERE id = $1 AND (status = 'pending' OR (status = 'running' AND epoch < $2))",
              kRunReturning),
          {P::Text(run_id), P::Int(epoch), P::Text(worker), P::Int(now)});
      if (!r) return Fail(r.error());
      if (!r->rows.empty()) return RunFromRow(r->rows[0]);
      // Lost the condition: read the row only to say why (or to accept a repeat).
      auto run = MustGetRun(run_id);
      if (!run) return run;
      if (run->status == RunStatus::kRunning && run->epoch == epoch && run->worker == worker) {
        return run;  // the same claim marking again (a retried call): already done
      }
      return Conflict("run " + run_id + " is " + RunState(*run) + "; cannot mark it running at " +
                      "epoch " + std::to_string(epoch));
    });
  }

  Result<Run> FinishRun(const std::string& run_id, int64_t epoch, RunStatus status,
                        const std::string& output, const std::string& error,
                        const std::string& failed_node) override {
    if (!IsTerminal(status)) {
      return Invalid("FinishRun needs a terminal status, not " +
                     std::string(RunStatusName(status)));
    }
    return Single([&]() -> Result<Run> {
      int64_t now = NowMs();
      auto r =
          Exec(Cat("UPDATE runs SET status = $3, output = $4, error = $5, failed_node = $6, "
                   "finished_ms = $7, updated_ms = $7 WHERE id = $1 AND status = 'running' AND "
                   "epoch = $2",
                   kRunReturning),
               {P::Text(run_id), P::Int(epoch), P::Text(std::string(RunStatusName(status))),
                P::Text(output), P::Text(error), P::Text(failed_node), P::Int(now)});
      if (!r) return Fail(r.error());
      if (!r->rows.empty()) return RunFromRow(r->rows[0]);
      auto run = MustGetRun(run_id);
      if (!run) return run;
      if (run->status == status && run->epoch == epoch && run->output == output &&
          run->error == error && run->failed_node == failed_node) {
        return run;  // this exact finish was already applied
      }
      return Conflict("run " + run_id + " is " + RunState(*run) + "; cannot finish it as " +
                      std::string(RunStatusName(status)) + " at epoch " + std::to_string(epoch));
    });
  }

  Result<Run> CancelRun(const std::string& run_id) override {
    return Single([&]() -> Result<Run> {
      int64_t now = NowMs();
      auto r = Exec(Cat("UPDATE runs SET status = 'cancelled', finished_ms = $2, updated_ms = $2 "
                        "WHERE id = $1 AND status IN ('pending', 'running')",
                        kRunReturning),
                    {P::Text(run_id), P::Int(now)});
      if (!r) return Fail(r.error());
      if (!r->rows.empty()) return RunFromRow(r->rows[0]);
      auto run = MustGetRun(run_id);
      if (!run) return run;
      return Conflict("run " + run_id +
                      " already ended: " + std::string(RunStatusName(run->status)));
    });
  }

  Result<Run> RetryRun(const std::string& run_id, const RetryRunOptions& options) override {
    return InTx([&]() -> Result<Run> {
      auto orig = MustGetRun(run_id);
      if (!orig) return orig;
      if (orig->status != RunStatus::kFailed && orig->status != RunStatus::kCancelled) {
        return Conflict("run " + run_id + " is " + std::string(RunStatusName(orig->status)) +
                        "; only failed or cancelled runs can be retried");
      }
      auto prior = Exec("SELECT id FROM runs WHERE retry_of = $1", {P::Text(run_id)});
      if (!prior) return Fail(prior.error());
      if (!prior->rows.empty()) {
        return Conflict("run " + run_id + " was already retried as " + prior->rows[0].Text(0));
      }
      CreateRunRequest req;
      req.workflow_id = orig->workflow_id;
      req.version = options.latest_version ? 0 : orig->version;
      req.inputs = orig->inputs;
      req.triggered_by = options.triggered_by;
      req.trigger_id = orig->trigger_id;
      auto run = InsertRun(req, run_id);
      if (!run && run.error().code == ErrorCode::kConflict) {
        return Conflict("run " + run_id + " was already retried (concurrently)");
      }
      return run;
    });
  }

  Result<std::vector<Run>> ListPendingRunsOlderThan(std::chrono::milliseconds age,
                                                    int limit) override {
    if (limit < 1) return Invalid("limit must be >= 1");
    return Many<Run>(Cat(kRunSelect,
                         "WHERE r.status = 'pending' AND r.created_ms <= $1 "
                         "ORDER BY r.created_ms, r.seq LIMIT $2"),
                     {P::Int(NowMs() - age.count()), P::Int(limit)}, RunFromRow);
  }

  Result<std::vector<Run>> ListRunningRuns(std::chrono::milliseconds age, int limit) override {
    if (limit < 1) return Invalid("limit must be >= 1");
    return Many<Run>(Cat(kRunSelect,
                         "WHERE r.status = 'running' AND r.updated_ms <= $1 "
                         "ORDER BY r.updated_ms, r.seq LIMIT $2"),
                     {P::Int(NowMs() - age.count()), P::Int(limit)}, RunFromRow);
  }

  Result<std::map<RunStatus, int64_t>> CountRunsByStatus() override {
    auto r = Exec("SELECT status, COUNT(*) FROM runs GROUP BY status", {});
    if (!r) return Fail(r.error());
    std::map<RunStatus, int64_t> out;
    for (auto s : {RunStatus::kPending, RunStatus::kRunning, RunStatus::kSucceeded,
                   RunStatus::kFailed, RunStatus::kCancelled}) {
      out[s] = 0;
    }
    for (const auto& row : r->rows) {
      if (auto s = ParseRunStatus(row.Text(0))) out[*s] = row.Int(1);
    }
    return out;
  }

  Result<int64_t> CountPendingOlderThan(std::chrono::milliseconds age) override {
    auto r = Exec("SELECT COUNT(*) FROM runs WHERE status = 'pending' AND created_ms <= $1",
                  {P::Int(NowMs() - age.count())});
    if (!r) return Fail(r.error());
    return r->rows.empty() ? 0 : r->rows[0].Int(0);
  }

  // ---------------------------------------------------------------- steps

  Result<SaveStepOutcome> SaveStep(const RunStep& step) override {
    if (step.run_id.empty() || step.node_id.empty() || step.status.empty()) {
      return Invalid("a step needs run_id, node_id and status");
    }
    return Single([&]() -> Result<SaveStepOutcome> {
      int64_t finished = step.finished_ms != 0 ? step.finished_ms : NowMs();
      if (step.status == kStepWaiting) finished = 0;  // not finished: a delay's deadline
      // Insert-once, and only under the run's current epoch: the fence and the write are one
      // statement, so a worker that lost the run cannot slip a checkpoint in. Only a "waiting"
      // row (a delay's deadline) is ever replaced: by the node's end, or a later attempt's.
      auto r = Exec(Cat("INSERT INTO run_steps (", kStepCols) +
                        ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM "
                        "runs WHERE id = $1 AND status = 'running' AND epoch = $7) "
                        "ON CONFLICT (run_id, node_id) DO UPDATE SET status = excluded.status, "
                        "output = excluded.output, error = excluded.error, "
                        "attempt = excluded.attempt, epoch = excluded.epoch, "
                        "started_ms = excluded.started_ms, finished_ms = excluded.finished_ms "
                        "WHERE run_steps.status = 'waiting'",
                    {P::Text(step.run_id), P::Text(step.node_id), P::Text(step.status),
                     P::Text(step.output), P::Text(step.error), P::Int(step.attempt),
                     P::Int(step.epoch), P::Int(step.started_ms), P::Int(finished)});
      if (!r) return Fail(r.error());
      if (r->affected == 1) return SaveStepOutcome::kSaved;
      auto existing = One<RunStep>(
          Cat("SELECT ", kStepCols) + " FROM run_steps WHERE run_id = $1 AND node_id = $2",
          {P::Text(step.run_id), P::Text(step.node_id)}, StepFromRow);
      if (!existing) return Fail(existing.error());
      // A waiting row would have been replaced had the fence held: the run moved on (below).
      if (*existing && (*existing)->status != kStepWaiting) {
        const RunStep& e = **existing;
        if (e.epoch == step.epoch && e.status == step.status && e.output == step.output &&
            e.error == step.error) {
          return SaveStepOutcome::kAlreadySaved;
        }
        return Conflict("node " + step.node_id + " of run " + step.run_id +
                        " is already checkpointed (" + e.status + " at epoch " +
                        std::to_string(e.epoch) + ")");
      }
      auto run = MustGetRun(step.run_id);
      if (!run) return Fail(run.error());
      return Conflict("run " + step.run_id + " is " + RunState(*run) + "; cannot checkpoint node " +
                      step.node_id + " at epoch " + std::to_string(step.epoch));
    });
  }

  Result<std::vector<RunStep>> ListSteps(const std::string& run_id) override {
    return Many<RunStep>(Cat("SELECT ", kStepCols) +
                             " FROM run_steps WHERE run_id = $1 ORDER BY finished_ms, node_id",
                         {P::Text(run_id)}, StepFromRow);
  }

  // ---------------------------------------------------------------- events

  Result<int64_t> AppendRunEvent(const std::string& run_id, const std::string& type,
                                 const std::string& data) override {
    if (type.empty()) return Invalid("event type is required");
    // One statement takes the next number and inserts; two appenders that pick the same number
    // collide on the (run_id, seq) key and the loser tries again with the next one.
    for (int attempt = 1;; ++attempt) {
      auto seq = Single([&]() -> Result<int64_t> {
        auto r = Exec(
            "INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT $1, "
            "COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM run_events WHERE run_id = $1 "
            "RETURNING seq",
            {P::Text(run_id), P::Int(NowMs()), P::Text(type), P::Text(data.empty() ? "{}" : data)});
        if (!r) return Fail(r.error());
        if (r->rows.empty())
          return Fail(ErrorCode::kInternal, "store: event insert returned nothing");
        return r->rows[0].Int(0);
      });
      if (seq || seq.error().code != ErrorCode::kConflict) return seq;
      // A conflict is either the race above or a foreign-key miss: the run does not exist.
      auto run = GetRun(run_id);
      if (!run) return Fail(run.error());
      if (!*run) return NotFound("no run " + run_id);
      if (attempt >= kEventAppendTries) return seq;
    }
  }

  Result<std::vector<RunEvent>> ListRunEvents(const std::string& run_id, int64_t after_seq,
                                              int limit) override {
    if (limit < 1 || limit > 10000) return Invalid("event list limit must be 1..10000");
    return Many<RunEvent>(
        "SELECT run_id, seq, ts_ms, type, data FROM run_events WHERE run_id = $1 AND seq > $2 "
        "ORDER BY seq LIMIT $3",
        {P::Text(run_id), P::Int(after_seq), P::Int(limit)}, [](const SqlRow& r) {
          RunEvent e;
          e.run_id = r.Text(0);
          e.seq = r.Int(1);
          e.ts_ms = r.Int(2);
          e.type = r.Text(3);
          e.data = r.Text(4);
          return e;
        });
  }

  // ---------------------------------------------------------------- triggers

  Result<std::vector<Trigger>> SyncTriggers(const std::string& workflow_id,
                                            const std::vector<TriggerSpec>& specs) override {
    std::set<std::string> keys;
    for (const auto& s : specs) {
      if (s.key.empty()) return Invalid("trigger key is required");
      if (!keys.insert(s.key).second) return Invalid("duplicate trigger key \"" + s.key + "\"");
    }
    return InTx([&]() -> Result<std::vector<Trigger>> {
      int64_t now = NowMs();
      // Locks the workflow row (PostgreSQL) so concurrent syncs of one workflow serialize.
      auto lock = Exec("UPDATE workflows SET updated_ms = updated_ms WHERE id = $1",
                       {P::Text(workflow_id)});
      if (!lock) return Fail(lock.error());
      if (lock->affected == 0) return NotFound("no workflow " + workflow_id);
      auto cur = Exec("SELECT id, key, kind, config, enabled FROM triggers WHERE workflow_id = $1",
                      {P::Text(workflow_id)});
      if (!cur) return Fail(cur.error());
      std::set<std::string> seen;
      for (const auto& spec : specs) {
        std::string kind(TriggerKindName(spec.kind));
        std::string config = spec.config.empty() ? "{}" : spec.config;
        const SqlRow* found = nullptr;
        for (const auto& row : cur->rows) {
          if (row.Text(1) == spec.key) found = &row;
        }
        if (found == nullptr) {
          auto ins = Exec(
              "INSERT INTO triggers (id, workflow_id, kind, key, config, enabled, last_fire_ms, "
              "next_fire_ms, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7)",
              {P::Text(NewId(now)), P::Text(workflow_id), P::Text(kind), P::Text(spec.key),
               P::Text(config), P::Bool(true), P::Int(now)});
          if (!ins) return Fail(ins.error());
          continue;
        }
        bool changed = found->Text(2) != kind || found->Text(3) != config;
        if (!changed && found->Bool(4)) continue;
        auto up = Exec(
            "UPDATE triggers SET kind = $2, config = $3, enabled = $4, updated_ms = $5, "
            "next_fire_ms = CASE WHEN $6 THEN 0 ELSE next_fire_ms END WHERE id = $1",
            {P::Text(found->Text(0)), P::Text(kind), P::Text(config), P::Bool(true), P::Int(now),
             P::Bool(changed)});
        if (!up) return Fail(up.error());
      }
      for (const auto& row : cur->rows) {
        if (keys.count(row.Text(1)) != 0 || !row.Bool(4)) continue;
        auto off = Exec("UPDATE triggers SET enabled = $2, updated_ms = $3 WHERE id = $1",
                        {P::Text(row.Text(0)), P::Bool(false), P::Int(now)});
        if (!off) return Fail(off.error());
      }
      TriggerFilter f;
      f.workflow_id = workflow_id;
      return ListTriggers(f);
    });
  }

  Result<std::optional<Trigger>> GetTrigger(const std::string& id) override {
    return One<Trigger>(Cat(kTriggerSelect, "WHERE t.id = $1"), {P::Text(id)}, TriggerFromRow);
  }

  Result<std::vector<Trigger>> ListTriggers(const TriggerFilter& filter) override {
    std::string sql(kTriggerSelect);
    std::vector<SqlParam> params;
    std::string where;
    auto add = [&](std::string_view cond, SqlParam p) {
      params.push_back(std::move(p));
      where += where.empty() ? "WHERE " : " AND ";
      where += cond;
      where += "$" + std::to_string(params.size());
    };
    if (filter.workflow_id) add("t.workflow_id = ", P::Text(*filter.workflow_id));
    if (filter.kind) add("t.kind = ", P::Text(std::string(TriggerKindName(*filter.kind))));
    if (filter.enabled_only) add("t.enabled = ", P::Bool(true));
    sql += where + " ORDER BY w.name, t.key";
    return Many<Trigger>(sql, params, TriggerFromRow);
  }

  Status UpdateTriggerFireTimes(const std::string& trigger_id, int64_t last_fire_ms,
                                int64_t next_fire_ms) override {
    auto r = Exec(
        "UPDATE triggers SET last_fire_ms = CASE WHEN last_fire_ms < $2 THEN $2 ELSE "
        "last_fire_ms END, next_fire_ms = $3, updated_ms = $4 WHERE id = $1",
        {P::Text(trigger_id), P::Int(last_fire_ms), P::Int(next_fire_ms), P::Int(NowMs())});
    if (!r) return Fail(r.error());
    if (r->affected == 0) return NotFound("no trigger " + trigger_id);
    return {};
  }

  // ---------------------------------------------------------------- cron fires

  Result<bool> RecordCronFire(const std::string& trigger_id, int64_t fire_ms,
                              const std::string& run_id) override {
    return InTx([&]() -> Result<bool> {
      if (auto st = RequireTrigger(trigger_id); !st) return Fail(st.error());
      return InsertFire(trigger_id, fire_ms, run_id);
    });
  }

  Result<std::optional<Run>> CreateCronRun(const std::string& trigger_id, int64_t fire_ms,
                                           const CreateRunRequest& request) override {
    return InTx([&]() -> Result<std::optional<Run>> {
      auto wf = Exec("SELECT workflow_id FROM triggers WHERE id = $1", {P::Text(trigger_id)});
      if (!wf) return Fail(wf.error());
      if (wf->rows.empty()) return NotFound("no trigger " + trigger_id);
      // The occurrence is claimed first: a second scheduler stops here (in PostgreSQL it waits
      // on the key until the first commits, then finds it taken).
      auto claimed = InsertFire(trigger_id, fire_ms, "");
      if (!claimed) return Fail(claimed.error());
      if (!*claimed) return std::optional<Run>();
      CreateRunRequest req = request;
      if (req.workflow_id.empty()) req.workflow_id = wf->rows[0].Text(0);
      req.triggered_by = TriggeredBy::kCron;
      req.trigger_id = trigger_id;
      if (auto st = ValidateCreate(req); !st) return Fail(st.error());
      auto run = InsertRun(req, "");
      if (!run) return Fail(run.error());
      auto link = Exec("UPDATE cron_fires SET run_id = $3 WHERE trigger_id = $1 AND fire_ms = $2",
                       {P::Text(trigger_id), P::Int(fire_ms), P::Text(run->id)});
      if (!link) return Fail(link.error());
      auto last = Exec(
          "UPDATE triggers SET last_fire_ms = CASE WHEN last_fire_ms < $2 THEN $2 ELSE "
          "last_fire_ms END, updated_ms = $3 WHERE id = $1",
          {P::Text(trigger_id), P::Int(fire_ms), P::Int(NowMs())});
      if (!last) return Fail(last.error());
      return std::optional<Run>(std::move(*run));
    });
  }

  Result<std::vector<CronFire>> ListCronFires(const std::string& trigger_id, int limit) override {
    if (limit < 1) return Invalid("limit must be >= 1");
    return Many<CronFire>(
        "SELECT trigger_id, fire_ms, run_id, created_ms FROM cron_fires WHERE trigger_id = $1 "
        "ORDER BY fire_ms DESC LIMIT $2",
        {P::Text(trigger_id), P::Int(limit)}, [](const SqlRow& r) {
          CronFire f;
          f.trigger_id = r.Text(0);
          f.fire_ms = r.Int(1);
          f.run_id = r.Text(2);
          f.created_ms = r.Int(3);
          return f;
        });
  }

  // ---------------------------------------------------------------- tokens

  Result<ApiToken> CreateApiToken(const std::string& name, const std::string& token_hash,
                                  const std::vector<std::string>& scopes) override {
    if (name.empty() || name.size() > kMaxNameBytes)
      return Invalid("token name must be 1..200 bytes");
    if (token_hash.empty()) return Invalid("token hash is required");
    if (scopes.empty()) return Invalid("a token needs at least one scope");
    std::string joined;
    for (const auto& scope : scopes) {
      if (scope.empty() || scope.find_first_of(" \t\n") != std::string::npos) {
        return Invalid("bad scope '" + scope + "'");
      }
      joined += (joined.empty() ? "" : " ") + scope;
    }
    return InTx([&]() -> Result<ApiToken> {
      int64_t now = NowMs();
      std::string id = NewId(now);
      auto r =
          Exec(Cat("INSERT INTO api_tokens (", kTokenCols) + ") VALUES ($1, $2, $3, $4, 0, 0, $5)",
               {P::Text(id), P::Text(name), P::Text(token_hash), P::Int(now), P::Text(joined)});
      if (!r) {
        if (r.error().code == ErrorCode::kConflict)
          return Conflict("a token with this hash exists");
        return Fail(r.error());
      }
      ApiToken t;
      t.id = id;
      t.name = name;
      t.token_hash = token_hash;
      t.created_ms = now;
      t.scopes = scopes;
      return t;
    });
  }

  Result<std::vector<ApiToken>> ListApiTokens() override {
    return Many<ApiToken>(Cat("SELECT ", kTokenCols) + " FROM api_tokens ORDER BY created_ms, id",
                          {}, TokenFromRow);
  }

  Status RevokeApiToken(const std::string& id) override {
    auto r = Exec("UPDATE api_tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms = 0",
                  {P::Text(id), P::Int(NowMs())});
    if (!r) return Fail(r.error());
    if (r->affected == 1) return {};
    auto e = Exec("SELECT 1 FROM api_tokens WHERE id = $1", {P::Text(id)});
    if (!e) return Fail(e.error());
    if (e->rows.empty()) return NotFound("no token " + id);
    return {};
  }

  Result<std::optional<ApiToken>> VerifyApiToken(const std::string& token_hash) override {
    auto t = One<ApiToken>(
        Cat("SELECT ", kTokenCols) + " FROM api_tokens WHERE token_hash = $1 AND revoked_ms = 0",
        {P::Text(token_hash)}, TokenFromRow);
    if (!t || !*t) return t;
    int64_t now = NowMs();
    if (now - (*t)->last_used_ms >= kTokenTouchIntervalMs) {
      auto r = Exec("UPDATE api_tokens SET last_used_ms = $2 WHERE id = $1",
                    {P::Text((*t)->id), P::Int(now)});
      if (!r) return Fail(r.error());
      (*t)->last_used_ms = now;
    }
    return t;
  }

  // ---------------------------------------------------------------- nonces

  Result<bool> RememberNonce(const std::string& scope, const std::string& nonce,
                             int64_t expires_ms) override {
    if (nonce.empty()) return Invalid("nonce is required");
    // Insert-or-nothing decides the race; an expired record is taken over in the same statement.
    auto r = Exec(
        "INSERT INTO webhook_nonces (scope, nonce, expires_ms) VALUES ($1, $2, $3) "
        "ON CONFLICT (scope, nonce) DO UPDATE SET expires_ms = excluded.expires_ms "
        "WHERE webhook_nonces.expires_ms <= $4",
        {P::Text(scope), P::Text(nonce), P::Int(expires_ms), P::Int(NowMs())});
    if (!r) return Fail(r.error());
    return r->affected == 1;
  }

  Result<int64_t> DeleteExpiredNonces(int limit) override {
    if (limit < 1) return Invalid("limit must be >= 1");
    return Affected(
        "DELETE FROM webhook_nonces WHERE (scope, nonce) IN (SELECT scope, nonce FROM "
        "webhook_nonces WHERE expires_ms <= $1 LIMIT $2)",
        {P::Int(NowMs()), P::Int(limit)});
  }

  // ---------------------------------------------------------------- remediation
  // The queries live in sql_remediation.cc.

  Result<RecordRemediationResult> RecordRemediation(
      const RecordRemediationRequest& request) override {
    return remediation_.Record(request);
  }
  Result<std::optional<Remediation>> GetRemediation(const std::string& id) override {
    return remediation_.Get(id);
  }
  Result<RemediationPage> ListRemediations(const RemediationFilter& filter) override {
    return remediation_.List(filter);
  }
  Result<std::vector<RemediationAttempt>> ListRemediationAttempts(const std::string& id) override {
    return remediation_.ListAttempts(id);
  }
  Result<std::vector<Remediation>> ExpireRemediationClaims(int attempt_cap) override {
    return remediation_.ExpireClaims(attempt_cap);
  }
  Result<ClaimRemediationsResult> ClaimRemediations(
      const ClaimRemediationsRequest& request) override {
    return remediation_.Claim(request);
  }
  Status RenewRemediationClaim(const std::string& id, const std::string& owner, int attempt,
                               std::chrono::milliseconds lease) override {
    return remediation_.Renew(id, owner, attempt, lease);
  }
  Result<Remediation> FinishRemediation(const FinishRemediationRequest& request) override {
    return remediation_.Finish(request);
  }
  Status SetRemediationRetryError(const std::string& id, const std::string& error) override {
    return remediation_.SetRetryError(id, error);
  }
  Result<Remediation> DismissRemediation(const std::string& id,
                                         const std::string& reason) override {
    return remediation_.Dismiss(id, reason);
  }
  Result<Remediation> ReopenRemediation(const std::string& id) override {
    return remediation_.Reopen(id);
  }
  Result<int64_t> CountActiveRemediationClaims() override { return remediation_.CountActive(); }
  Result<RemediationStats> GetRemediationStats(const std::vector<double>& buckets) override {
    return remediation_.Stats(buckets);
  }

  // ---------------------------------------------------------------- retention

  Result<int64_t> DeleteFinishedRunsBefore(int64_t before_ms, int limit) override {
    if (limit < 1) return Invalid("limit must be >= 1");
    // Steps and events go by ON DELETE CASCADE; cron fires and retries keep their rows with
    // the reference set to NULL.
    return InTx([&]() {
      return Affected(
          "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE status IN ('succeeded', "
          "'failed', 'cancelled') AND finished_ms < $1 ORDER BY finished_ms LIMIT $2)",
          {P::Int(before_ms), P::Int(limit)});
    });
  }

  Result<int64_t> DeleteCronFiresBefore(int64_t before_ms, int limit) override {
    if (limit < 1) return Invalid("limit must be >= 1");
    return Affected(
        "DELETE FROM cron_fires WHERE (trigger_id, fire_ms) IN (SELECT trigger_id, fire_ms FROM "
        "cron_fires WHERE created_ms < $1 ORDER BY created_ms LIMIT $2)",
        {P::Int(before_ms), P::Int(limit)});
  }

 private:
  int64_t NowMs() const { return options_.clock->NowMs(); }

  // SqlSession (for sql_remediation.cc).
  Result<SqlResult> Query(std::string_view sql, const std::vector<SqlParam>& params) override {
    return Exec(sql, params);
  }
  Status Atomically(const std::function<Status()>& f) override {
    return InTx([&] { return f(); });
  }
  int64_t Now() const override { return NowMs(); }

  Result<SqlResult> Exec(std::string_view sql, const std::vector<SqlParam>& params) {
    const bool control = sql == "COMMIT" || sql == "ROLLBACK" || sql.starts_with("SAVEPOINT") ||
                         sql.starts_with("RELEASE") || sql.starts_with("ROLLBACK TO");
    auto r = conn_->Exec(sql, params);
    if (r && sql == "COMMIT") store_internal::CountCommit();
    // Outside a transaction a write commits on its own (a SELECT changes nothing to commit).
    if (r && !control) {
      store_internal::CountStatement(!conn_->InTransaction() && !sql.starts_with("SELECT"));
    }
    return r;
  }

  Result<int64_t> Affected(std::string_view sql, const std::vector<SqlParam>& params) {
    auto r = Exec(sql, params);
    if (!r) return Fail(r.error());
    return r->affected;
  }

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
      if (auto r = Exec("SAVEPOINT " + sp, {}); !r) {
        --savepoint_depth_;
        return Fail(r.error());
      }
      R out = f();
      if (!out) (void)Exec("ROLLBACK TO SAVEPOINT " + sp, {});
      (void)Exec("RELEASE SAVEPOINT " + sp, {});
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

  Status CommitNow() {
    if (conn_->TransactionAborted()) {
      (void)Exec("ROLLBACK", {});
      return Fail(ErrorCode::kInternal,
                  "store: transaction aborted by an earlier error; rolled back, nothing committed");
    }
    if (!conn_->InTransaction()) {
      return Fail(ErrorCode::kUnavailable,
                  "store: transaction lost before commit (connection reset); nothing committed");
    }
    auto r = Exec("COMMIT", {});
    if (!r) {
      if (conn_->InTransaction()) (void)Exec("ROLLBACK", {});
      return Fail(r.error());
    }
    return {};
  }

  Result<int> ReadSchemaVersion() {
    auto r = Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {});
    if (!r) return Fail(r.error());
    return r->rows.empty() ? 0 : ToInt(r->rows[0].Int(0));
  }

  Status MigrateLocked(const std::vector<Migration>& migrations, int latest) {
    for (std::string_view sql : conn_->MigrationPrologue()) {
      if (auto r = Exec(sql, {}); !r) return Fail(r.error());
    }
    auto st = conn_->ExecScript(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_ms BIGINT NOT NULL)");
    if (!st) return st;
    auto current = ReadSchemaVersion();
    if (!current) return Fail(current.error());
    if (*current > latest) {
      return Fail(ErrorCode::kInternal, "store: the database schema is at version " +
                                            std::to_string(*current) +
                                            " but this binary knows only up to " +
                                            std::to_string(latest) + "; upgrade ferry");
    }
    for (const auto& m : migrations) {
      if (m.version <= *current) continue;
      if (!options_.migrate) {
        return Fail(ErrorCode::kInternal, "store: the database schema is at version " +
                                              std::to_string(*current) + ", this binary needs " +
                                              std::to_string(latest) + " (migrations disabled)");
      }
      if (auto s = conn_->ExecScript(m.sql); !s) {
        s.error().message = "store: migration " + std::to_string(m.version) + "_" + m.name +
                            " failed: " + s.error().message;
        return s;
      }
      auto rec =
          Exec("INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
               {P::Int(m.version), P::Text(m.name), P::Int(NowMs())});
      if (!rec) return Fail(rec.error());
    }
    return {};
  }

  Status ValidateCreate(const CreateRunRequest& req) {
    if (req.workflow_id.empty()) return Invalid("a run needs a workflow_id");
    if (req.version < 0) return Invalid("version must be >= 0");
    if (!req.id.empty() && !LooksLikeId(req.id)) return Invalid("malformed run id " + req.id);
    return {};
  }

  // REQUIRES: inside InTx.
  // One statement: the workflow and version are checked by the join, the row comes back.
  Result<Run> InsertRun(const CreateRunRequest& req, const std::string& retry_of) {
    int64_t now = NowMs();
    std::string id = req.id.empty() ? NewId(now) : req.id;
    auto ins = Exec(
        Cat("INSERT INTO runs (id, workflow_id, version, status, inputs, triggered_by, trigger_id, "
            "retry_of, created_ms, updated_ms) SELECT $1, w.id, v.version, 'pending', $4, $5, $6, "
            "$7, $8, $8 FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id "
            "WHERE w.id = $2 AND v.version = CASE WHEN $3 = 0 THEN w.current_version ELSE $3 END",
            kRunReturning),
        {P::Text(id), P::Text(req.workflow_id), P::Int(req.version),
         P::Text(req.inputs.empty() ? "{}" : req.inputs),
         P::Text(std::string(TriggeredByName(req.triggered_by))), P::Text(req.trigger_id),
         P::TextOrNull(retry_of), P::Int(now)});
    if (!ins) return Fail(ins.error());
    if (!ins->rows.empty()) {
      if (!req.first_event.type.empty()) {
        auto ev = Exec(
            "INSERT INTO run_events (run_id, seq, ts_ms, type, data) VALUES ($1, 1, $2, $3, $4)",
            {P::Text(id), P::Int(now), P::Text(req.first_event.type),
             P::Text(req.first_event.data.empty() ? "{}" : req.first_event.data)});
        if (!ev) return Fail(ev.error());
      }
      return RunFromRow(ins->rows[0]);
    }
    auto wf = GetWorkflowById(req.workflow_id);
    if (!wf) return Fail(wf.error());
    if (!*wf) return NotFound("no workflow " + req.workflow_id);
    return NotFound("workflow " + (*wf)->name + " has no version " + std::to_string(req.version));
  }

  Result<Run> MustGetRun(const std::string& id) {
    auto run = GetRun(id);
    if (!run) return Fail(run.error());
    if (!*run) return NotFound("no run " + id);
    return std::move(**run);
  }

  Status RequireTrigger(const std::string& trigger_id) {
    auto t = Exec("SELECT 1 FROM triggers WHERE id = $1", {P::Text(trigger_id)});
    if (!t) return Fail(t.error());
    if (t->rows.empty()) return NotFound("no trigger " + trigger_id);
    return {};
  }

  Result<bool> InsertFire(const std::string& trigger_id, int64_t fire_ms,
                          const std::string& run_id) {
    auto r = Exec(
        "INSERT INTO cron_fires (trigger_id, fire_ms, run_id, created_ms) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (trigger_id, fire_ms) DO NOTHING",
        {P::Text(trigger_id), P::Int(fire_ms), P::TextOrNull(run_id), P::Int(NowMs())});
    if (!r) return Fail(r.error());
    return r->affected == 1;
  }

  // Constant after construction.
  const std::unique_ptr<SqlConn> conn_;
  const StoreOptions options_;
  RemediationSql remediation_;
  // Transaction state of this connection (the Store is single-threaded).
  bool user_tx_ = false;
  int savepoint_depth_ = 0;
};

SqlTransaction::~SqlTransaction() {
  if (!done_) (void)store_->EndUserTx(false);
}

Status SqlTransaction::Commit() {
  if (done_) return Invalid("transaction already finished");
  done_ = true;
  return store_->EndUserTx(true);
}

}  // namespace

Result<std::unique_ptr<Store>> MakeSqlStore(std::unique_ptr<SqlConn> conn,
                                            const StoreOptions& options) {
  auto store = std::make_unique<SqlStore>(std::move(conn), options);
  if (auto st = store->Migrate(); !st) return Fail(st.error());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ferry::store_internal
