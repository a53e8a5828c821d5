// SqlStore's wiring: opening (migrations), transactions and statement execution, and the
// remediation methods, which forward to sql_remediation.cc. The resource groups live in
// sql_store_workflows.cc, sql_store_runs.cc, sql_store_triggers.cc and sql_store_access.cc.
#include "store/sql_store.h"

#include <charconv>
#include <memory>
#include <utility>

#include "store/sql_counters.h"
#include "store/sql_store_impl.h"

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

class SqlTransaction final : public Transaction {
 public:
  explicit SqlTransaction(SqlStore* store) : store_(store) {}
  ~SqlTransaction() override;
  Status Commit() override;

 private:
  SqlStore* store_;
  bool done_ = false;
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

Status SqlStore::Migrate() {
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

Status SqlStore::Ping() {
  auto r = conn_->Exec("SELECT 1", {});
  if (!r) return Fail(r.error());
  return {};
}

Result<int> SqlStore::SchemaVersion() { return ReadSchemaVersion(); }

Result<std::unique_ptr<Transaction>> SqlStore::Begin() {
  if (user_tx_) return Invalid("a transaction is already open on this store");
  if (auto st = conn_->BeginWrite(); !st) return Fail(st.error());
  user_tx_ = true;
  return std::unique_ptr<Transaction>(std::make_unique<SqlTransaction>(this));
}

Status SqlStore::EndUserTx(bool commit) {
  user_tx_ = false;
  if (commit) return CommitNow();
  if (conn_->InTransaction()) (void)conn_->Exec("ROLLBACK", {});
  return {};
}

Result<SqlResult> SqlStore::Query(std::string_view sql, const std::vector<SqlParam>& params) {
  return Exec(sql, params);
}

Status SqlStore::Atomically(const std::function<Status()>& f) {
  return InTx([&] { return f(); });
}

int64_t SqlStore::Now() const { return NowMs(); }

Result<SqlResult> SqlStore::Exec(std::string_view sql, const std::vector<SqlParam>& params) {
  // (SAVEPOINT and RELEASE go through SqlConn::Defer, never here.)
  const bool control = sql == "COMMIT" || sql == "ROLLBACK" || sql.starts_with("ROLLBACK TO");
  auto r = conn_->Exec(sql, params);
  if (r && sql == "COMMIT") store_internal::CountCommit();
  // Outside a transaction a write commits on its own (a SELECT changes nothing to commit).
  if (r && !control) {
    store_internal::CountStatement(!conn_->InTransaction() && !sql.starts_with("SELECT"));
  }
  return r;
}

Status SqlStore::ExecWithNext(std::string_view sql, const std::vector<SqlParam>& params) {
  auto st = conn_->Defer(sql, params);
  if (st) store_internal::CountStatement(false);  // inside a transaction: its COMMIT counts
  return st;
}

Result<std::vector<SqlResult>> SqlStore::ExecAndCommit(const std::vector<SqlStatement>& stmts) {
  if (user_tx_) return Invalid("ExecAndCommit inside a user's transaction");
  // Whatever fails, no transaction of this call stays open for the next call to run in.
  auto r = conn_->ExecInOwnCommit(stmts);
  if (r) {
    for (size_t i = 0; i < r->size(); ++i) store_internal::CountStatement(false);
    // A `needs_row` statement that stopped it committed nothing.
    if (!store_internal::StoppedAtNeededRow(stmts, *r)) store_internal::CountCommit();
  }
  return r;
}

Result<int64_t> SqlStore::Affected(std::string_view sql, const std::vector<SqlParam>& params) {
  auto r = Exec(sql, params);
  if (!r) return Fail(r.error());
  return r->affected;
}

Status SqlStore::CommitNow() {
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

Result<int> SqlStore::ReadSchemaVersion() {
  auto r = Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {});
  if (!r) return Fail(r.error());
  return r->rows.empty() ? 0 : ToInt(r->rows[0].Int(0));
}

Status SqlStore::MigrateLocked(const std::vector<Migration>& migrations, int latest) {
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
    auto rec = Exec("INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
                    {P::Int(m.version), P::Text(m.name), P::Int(NowMs())});
    if (!rec) return Fail(rec.error());
  }
  return {};
}

// ---------------------------------------------------------------- remediation
// The queries live in sql_remediation.cc.

Result<RecordRemediationResult> SqlStore::RecordRemediation(
    const RecordRemediationRequest& request) {
  return remediation_.Record(request);
}

Result<std::optional<Remediation>> SqlStore::GetRemediation(const std::string& id) {
  return remediation_.Get(id);
}

Result<RemediationPage> SqlStore::ListRemediations(const RemediationFilter& filter) {
  return remediation_.List(filter);
}

Result<std::vector<RemediationAttempt>> SqlStore::ListRemediationAttempts(const std::string& id) {
  return remediation_.ListAttempts(id);
}

Result<std::vector<Remediation>> SqlStore::ExpireRemediationClaims(int attempt_cap) {
  return remediation_.ExpireClaims(attempt_cap);
}

Result<ClaimRemediationsResult> SqlStore::ClaimRemediations(
    const ClaimRemediationsRequest& request) {
  return remediation_.Claim(request);
}

Status SqlStore::RenewRemediationClaim(const std::string& id, const std::string& owner, int attempt,
                                       std::chrono::milliseconds lease) {
  return remediation_.Renew(id, owner, attempt, lease);
}

Result<Remediation> SqlStore::FinishRemediation(const FinishRemediationRequest& request) {
  return remediation_.Finish(request);
}

Status SqlStore::SetRemediationRetryError(const std::string& id, const std::string& error) {
  return remediation_.SetRetryError(id, error);
}

Result<Remediation> SqlStore::DismissRemediation(const std::string& id, const std::string& reason) {
  return remediation_.Dismiss(id, reason);
}

Result<Remediation> SqlStore::ReopenRemediation(const std::string& id) {
  return remediation_.Reopen(id);
}

Result<int64_t> SqlStore::CountActiveRemediationClaims() { return remediation_.CountActive(); }

Result<RemediationStats> SqlStore::GetRemediationStats(const std::vector<double>& buckets) {
  return remediation_.Stats(buckets);
}

Result<std::unique_ptr<Store>> MakeSqlStore(std::unique_ptr<SqlConn> conn,
                                            const StoreOptions& options) {
  auto store = std::make_unique<SqlStore>(std::move(conn), options);
  if (auto st = store->Migrate(); !st) return Fail(st.error());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ferry::store_internal
