// Internal to src/store: the narrow SQL connection both backends implement, so every query and
// every transition rule lives once, in sql_store*.cc. SQL is written in the common subset of
// SQLite 3.35+ and PostgreSQL 12+ (ON CONFLICT, RETURNING, row values) with $1..$N placeholders;
// the SQLite backend rewrites them to ?1..?N.
//
// Thread-safety: a SqlConn is one connection and is NOT thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ferry::store_internal {

// A bound parameter. PostgreSQL gets its type explicitly (int8/text/bool), so expressions like
// `epoch < $2` or `INSERT ... SELECT $1` never depend on server-side type inference.
struct SqlParam {
  enum class Type { kInt, kText, kBool };
  Type type = Type::kText;
  bool is_null = false;
  int64_t i = 0;
  std::string s;

  static SqlParam Int(int64_t v) { return {Type::kInt, false, v, {}}; }
  static SqlParam Text(std::string v) { return {Type::kText, false, 0, std::move(v)}; }
  static SqlParam Bool(bool v) { return {Type::kBool, false, v ? 1 : 0, {}}; }
  static SqlParam NullText() { return {Type::kText, true, 0, {}}; }
  // "" -> NULL: optional references (foreign keys) are NULL in the database, "" in the API.
  static SqlParam TextOrNull(const std::string& v) { return v.empty() ? NullText() : Text(v); }
};

// One row as text, the common denominator of both client libraries. NULL is std::nullopt.
class SqlRow {
 public:
  explicit SqlRow(std::vector<std::optional<std::string>> cols) : cols_(std::move(cols)) {}
  size_t size() const { return cols_.size(); }
  bool IsNull(size_t i) const { return !cols_.at(i).has_value(); }
  // NULL -> "".
  const std::string& Text(size_t i) const;
  // NULL -> 0.
  int64_t Int(size_t i) const;
  // SQLite "1"/"0", PostgreSQL "t"/"f".
  bool Bool(size_t i) const;

 private:
  std::vector<std::optional<std::string>> cols_;
};

struct SqlResult {
  std::vector<SqlRow> rows;
  int64_t affected = 0;  // rows changed by INSERT/UPDATE/DELETE
};

// A statement and its parameters, for calls that take several.
struct SqlStatement {
  std::string sql;
  std::vector<SqlParam> params;
  // ExecInOwnCommit only: the call applies only when this statement returns a row (a conditional
  // transition's RETURNING). When it returns none, the statements after it are not run, nothing
  // of the call is committed, and the call's results end with this statement's.
  bool needs_row = false;
};

// Whether a call of ExecInOwnCommit with `stmts` that gave `results` stopped at a `needs_row`
// statement that returned no row (so nothing of it was committed). The statements run in order
// and stop at the first such one, so it is the last of the results, and may be the last
// statement too.
inline bool StoppedAtNeededRow(const std::vector<SqlStatement>& stmts,
                               const std::vector<SqlResult>& results) {
  return !results.empty() && results.size() <= stmts.size() &&
         stmts[results.size() - 1].needs_row && results.back().rows.empty();
}

struct Migration {
  int version = 0;
  std::string name;
  std::string_view sql;
};

class SqlConn {
 public:
  virtual ~SqlConn() = default;
  SqlConn(const SqlConn&) = delete;
  SqlConn& operator=(const SqlConn&) = delete;

  virtual std::string_view Backend() const = 0;
  // One statement with parameters. Constraint violations are kConflict, connection loss and
  // lock timeouts kUnavailable.
  virtual Result<SqlResult> Exec(std::string_view sql, const std::vector<SqlParam>& params) = 0;
  // Several statements without parameters (migrations).
  virtual Status ExecScript(std::string_view sql) = 0;
  // Starts a write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: BEGIN, sent with the
  // transaction's first statement).
  virtual Status BeginWrite() = 0;
  // A statement whose result no caller reads, only whether it worked (SAVEPOINT, RELEASE
  // SAVEPOINT, an insert whose failure must only fail the transaction).
  // A backend with a network between it and the database may hold it back and send it ahead of
  // the next statement, in the same round trip; it then runs in the same order, and its failure
  // fails that statement (the status returned here is then always ok). SQLite runs it at once.
  virtual Status Defer(std::string_view sql, const std::vector<SqlParam>& params) {
    auto r = Exec(sql, params);
    if (!r) return Fail(r.error());
    return {};
  }
  // Ends the transaction BeginWrite() opened with `stmts`, in order, and its COMMIT, in one
  // round trip where the backend has a network to cross (what was deferred goes first). Returns
  // each statement's result. When any of them or the COMMIT fails, nothing is committed and the
  // first failure is the call's; a transaction it leaves open (InTransaction()) is the caller's
  // to roll back. No statement may be `needs_row` (sent together, none can stop the others).
  virtual Result<std::vector<SqlResult>> ExecAndCommit(const std::vector<SqlStatement>& stmts) {
    if (auto st = RequireNoNeedsRow(stmts); !st) return Fail(st.error());
    return ExecThenCommit(stmts);
  }
  // A write transaction of `stmts` and its COMMIT, as BeginWrite() then ExecAndCommit(), with
  // the same results; no transaction of the call is left open. A `needs_row` statement that
  // returns no row rolls the call back (its results end there). SQLite may run it in one
  // transaction with other callers' (commit_groups.h: each under a savepoint of its own, so
  // each applies or fails alone, and a COMMIT that fails fails all of them).
  virtual Result<std::vector<SqlResult>> ExecInOwnCommit(const std::vector<SqlStatement>& stmts) {
    if (auto st = BeginWrite(); !st) return Fail(st.error());
    const bool stops =
        std::any_of(stmts.begin(), stmts.end(), [](const SqlStatement& s) { return s.needs_row; });
    // A statement that can stop the call waits for the answers before it: one at a time.
    auto r = stops ? ExecThenCommit(stmts) : ExecAndCommit(stmts);
    // Committed, the transaction is over; failed or stopped, it is rolled back here.
    if (InTransaction()) (void)Exec("ROLLBACK", {});
    return r;
  }
  // Whether a transaction is open on the server side, or begun and waiting for its first
  // statement. A reconnect silently ends one; COMMIT checks this first so a lost transaction is
  // never reported as committed.
  virtual bool InTransaction() const = 0;
  // PostgreSQL: a statement failed inside the open transaction, so COMMIT would roll back.
  virtual bool TransactionAborted() const { return false; }
  // Run in order inside the migration transaction before reading schema_migrations: a lock so
  // concurrent openers apply each migration once (none when BeginWrite() already serializes
  // writers), and anything a migration needs that everyday statements must not have (PostgreSQL
  // lifts its statement timeout: a migration over a big table, or the wait for another opener's,
  // may take longer).
  virtual std::vector<std::string_view> MigrationPrologue() const = 0;
  virtual const std::vector<Migration>& Migrations() const = 0;

 protected:
  SqlConn() = default;

  static Status RequireNoNeedsRow(const std::vector<SqlStatement>& stmts) {
    for (const auto& st : stmts) {
      if (st.needs_row) {
        return Fail(ErrorCode::kInvalidArgument,
                    "store: a statement that needs a row only goes to ExecInOwnCommit");
      }
    }
    return {};
  }

 private:
  // `stmts` one at a time, then COMMIT; stops, without committing, after a `needs_row` statement
  // that returned no row (the transaction stays open for the caller to roll back).
  Result<std::vector<SqlResult>> ExecThenCommit(const std::vector<SqlStatement>& stmts) {
    std::vector<SqlResult> out;
    out.reserve(stmts.size());
    for (const auto& st : stmts) {
      auto r = Exec(st.sql, st.params);
      if (!r) return Fail(r.error());
      out.push_back(std::move(*r));
      if (st.needs_row && out.back().rows.empty()) return out;
    }
    if (auto r = Exec("COMMIT", {}); !r) return Fail(r.error());
    return out;
  }
};

}  // namespace ferry::store_internal
