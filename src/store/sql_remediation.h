// Internal to src/store: the remediation tables' queries and transition rules, kept apart from
// sql_store*.cc (runs, workflows, triggers) but written against the same SqlConn dialect subset.
// SqlStore forwards the Store's remediation methods here through a SqlSession.
//
// Thread-safety: as SqlStore (one connection, not thread-safe).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "store/sql_conn.h"
#include "store/store.h"

namespace ferry::store_internal {

// What the remediation queries need from the store that owns the connection.
class SqlSession {
 public:
  virtual Result<SqlResult> Query(std::string_view sql, const std::vector<SqlParam>& params) = 0;
  // Runs f atomically: its own write transaction, or a savepoint inside the caller's.
  virtual Status Atomically(const std::function<Status()>& f) = 0;
  virtual int64_t Now() const = 0;

 protected:
  ~SqlSession() = default;
};

class RemediationSql {
 public:
  explicit RemediationSql(SqlSession& session) : s_(session) {}

  Result<RecordRemediationResult> Record(const RecordRemediationRequest& request);
  Result<std::optional<Remediation>> Get(const std::string& id);
  Result<RemediationPage> List(const RemediationFilter& filter);
  Result<std::vector<RemediationAttempt>> ListAttempts(const std::string& id);
  Result<std::vector<Remediation>> ExpireClaims(int attempt_cap);
  Result<ClaimRemediationsResult> Claim(const ClaimRemediationsRequest& request);
  Status Renew(const std::string& id, const std::string& owner, int attempt,
               std::chrono::milliseconds lease);
  Result<Remediation> Finish(const FinishRemediationRequest& request);
  Status SetRetryError(const std::string& id, const std::string& error);
  Result<Remediation> Dismiss(const std::string& id, const std::string& reason);
  Result<Remediation> Reopen(const std::string& id);
  Result<int64_t> CountActive();
  Result<RemediationStats> Stats(const std::vector<double>& buckets);

 private:
  Result<Remediation> MustGet(const std::string& id);
  // kNotFound for an unknown id, else kConflict naming the status found and `wanted`.
  tl::unexpected<Error> TransitionError(const std::string& id, std::string_view wanted);

  SqlSession& s_;
};

}  // namespace ferry::store_internal
