#include "store/postgres/pg_conn.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dynamic_library.h"
#include "core/json_fields.h"
#include "store/sql_counters.h"

namespace ferry::store_migrations_postgres {
extern const std::string_view k_001_init;
extern const std::string_view k_002_remediation;
extern const std::string_view k_003_token_scopes;
extern const std::string_view k_004_run_indexes;
extern const std::string_view k_005_nonce_run;
}  // namespace ferry::store_migrations_postgres

namespace ferry::store_internal {
namespace {

// libpq, loaded on the first PostgreSQL connection rather than at process start: with Kerberos,
// LDAP and GnuTLS behind it, its load alone leaves megabytes resident in every process, most of
// which use SQLite or never open the store (core/dynamic_library.h).
#define FERRY_LIBPQ_FUNCTIONS(X) \
  X(PQclear)                     \
  X(PQcmdTuples)                 \
  X(PQconnectdbParams)           \
  X(PQenterPipelineMode)         \
  X(PQerrorMessage)              \
  X(PQexec)                      \
  X(PQexecPrepared)              \
  X(PQexitPipelineMode)          \
  X(PQfinish)                    \
  X(PQgetResult)                 \
  X(PQgetisnull)                 \
  X(PQgetlength)                 \
  X(PQgetvalue)                  \
  X(PQnfields)                   \
  X(PQntuples)                   \
  X(PQpipelineSync)              \
  X(PQprepare)                   \
  X(PQreset)                     \
  X(PQresultErrorField)          \
  X(PQresultErrorMessage)        \
  X(PQresultStatus)              \
  X(PQsendQueryParams)           \
  X(PQsendQueryPrepared)         \
  X(PQsetNoticeProcessor)        \
  X(PQsocket)                    \
  X(PQstatus)                    \
  X(PQtransactionStatus)

struct LibPq {
  FERRY_LIBPQ_FUNCTIONS(FERRY_DL_FIELD)
};

// The functions, once loaded; an error (the same every time) when libpq cannot be.
const Result<LibPq>& LoadLibPq() {
  return DynamicLibrary::LoadTableOnce<LibPq>(
      kLibPq, [](auto&& bind, LibPq& table) { FERRY_LIBPQ_FUNCTIONS(FERRY_DL_BIND) });
}

// Only called once a connection exists, which OpenPgConn makes only after LoadLibPq succeeded.
const LibPq& Pq() { return *LoadLibPq(); }

struct ConnDeleter {
  void operator()(PGconn* c) const noexcept { Pq().PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { Pq().PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// Built-in type OIDs (catalog/pg_type.h is a server header; these values never change).
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kBoolOid = 16;

// Any constant shared by every Ferry process; only the migration transaction takes it.
constexpr std::string_view kMigrationLock = "SELECT pg_advisory_xact_lock(4658793271)";

const std::vector<Migration>& PgMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "init", store_migrations_postgres::k_001_init},
      {2, "remediation", store_migrations_postgres::k_002_remediation},
      {3, "token_scopes", store_migrations_postgres::k_003_token_scopes},
      {4, "run_indexes", store_migrations_postgres::k_004_run_indexes},
      {5, "nonce_run", store_migrations_postgres::k_005_nonce_run},
  };
  return kMigrations;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void IgnoreNotice(void* /*arg*/, const char* /*message*/) {}

// Classifies a failed connection attempt from libpq's message (there is no SQLSTATE for them).
tl::unexpected<Error> ConnectError(PGconn* conn) {
  std::string msg = Trim(conn != nullptr ? Pq().PQerrorMessage(conn) : "out of memory");
  bool auth = msg.find("password authentication failed") != std::string::npos ||
              msg.find("no password supplied") != std::string::npos ||
              msg.find("authentication failed") != std::string::npos;
  if (auth) return Fail(ErrorCode::kUnauthenticated, "postgres: " + msg);
  return Fail(ErrorCode::kUnavailable, "postgres: cannot connect: " + msg);
}

class PgConn final : public SqlConn {
 public:
  explicit PgConn(ConnPtr conn) : conn_(std::move(conn)) { Configure(); }

  std::string_view Backend() const override { return "postgres"; }

  Result<SqlResult> Exec(std::string_view sql, const std::vector<SqlParam>& params) override {
    if (sql == "ROLLBACK") {
      // What was deferred belongs to the transaction being undone (and, sent first, a failing
      // one would make the server skip the ROLLBACK). One begun but never sent ends here.
      const bool sent_begin = !begin_deferred_;
      deferred_.clear();
      begin_deferred_ = false;
      deferred_failed_ = false;
      if (!sent_begin) return SqlResult{};
    } else if (deferred_failed_ && sql.starts_with("ROLLBACK TO")) {
      // The failure belongs to an earlier call that was told it worked: undoing a later
      // savepoint must not let the transaction commit without that call's writes.
      return Fail(ErrorCode::kInternal,
                  "postgres: a deferred statement of this transaction failed; only ROLLBACK "
                  "ends it");
    }
    if (auto st = EnsureConnected(); !st) return Fail(st.error());
    auto stmt = Bind(sql, params);
    if (!stmt) return Fail(stmt.error());
    if (!deferred_.empty()) {
      std::vector<Statement> all = std::exchange(deferred_, {});
      begin_deferred_ = false;
      all.push_back(std::move(*stmt));
      return Pipeline(all);
    }
    const auto values = stmt->Values();
    // A write outside a transaction commits as it runs: its answer lost, so is its outcome.
    const bool commits = sql == kCommitLabel || (!InTransaction() && Writes(sql));
    CountRoundTrip();
    ResultPtr res(Pq().PQexecPrepared(conn_.get(), stmt->prepared.c_str(),
                                      static_cast<int>(values.size()), values.data(), nullptr,
                                      nullptr, 0));
    auto st = Check(res.get(), sql == kCommitLabel ? kCommitLabel : "query", commits);
    if (!st) return Fail(st.error());
    return ToResult(res.get());
  }

  Status ExecScript(std::string_view sql) override {
    if (auto st = EnsureConnected(); !st) return st;
    if (!deferred_.empty()) {  // a migration's BEGIN: first, on its own
      std::vector<Statement> all = std::exchange(deferred_, {});
      begin_deferred_ = false;
      if (auto r = Pipeline(all, /*last_is_callers=*/false); !r) return Fail(r.error());
    }
    // PQexec (not PQexecParams) is what accepts several statements; there are no parameters.
    std::string text(sql);
    CountRoundTrip();
    ResultPtr res(Pq().PQexec(conn_.get(), text.c_str()));
    return Check(res.get(), "script");
  }

  // BEGIN waits for the transaction's first statement and goes in its round trip: a transaction
  // costs one exchange fewer, and a reset connection found before that statement costs nothing.
  Status BeginWrite() override {
    deferred_.push_back(Statement{"BEGIN", "", {}});
    begin_deferred_ = true;
    return {};
  }

  // Only inside a transaction: one lost with its connection (a reset) takes what would have
  // followed it, so a RELEASE meant for it never reaches an unrelated next statement. A
  // statement with parameters is prepared now (once per connection, like any other).
  Status Defer(std::string_view sql, const std::vector<SqlParam>& params) override {
    if (!InTransaction()) {
      return Fail(ErrorCode::kUnavailable,
                  "postgres: " + std::string(sql) + ": no transaction open (connection reset)");
    }
    if (params.empty()) {
      deferred_.push_back(Statement{std::string(sql), "", {}});
      return {};
    }
    if (auto st = EnsureConnected(); !st) return st;
    auto stmt = Bind(sql, params);
    if (!stmt) return Fail(stmt.error());
    deferred_.push_back(std::move(*stmt));
    return {};
  }

  Result<std::vector<SqlResult>> ExecAndCommit(const std::vector<SqlStatement>& stmts) override {
    if (auto st = RequireNoNeedsRow(stmts); !st) return Fail(st.error());
    if (!InTransaction()) {
      return Fail(ErrorCode::kUnavailable,
                  "postgres: no transaction open to commit (connection reset); nothing committed");
    }
    // (A failure leaves the transaction to the caller's ROLLBACK: one begun but never sent is
    // only forgotten by it.)
    if (auto st = EnsureConnected(); !st) return Fail(st.error());
    // Bound first: preparing a statement new to this connection sends what waits ahead of it.
    std::vector<Statement> bound;
    bound.reserve(stmts.size() + 1);
    for (const auto& st : stmts) {
      auto b = Bind(st.sql, st.params);
      if (!b) return Fail(b.error());
      bound.push_back(std::move(*b));
    }
    bound.push_back(Statement{"COMMIT", "", {}});
    std::vector<Statement> all = std::exchange(deferred_, {});
    begin_deferred_ = false;
    const size_t first = all.size();
    std::move(bound.begin(), bound.end(), std::back_inserter(all));
    auto results = Send(all);
    if (!results) return Fail(results.error());
    for (size_t i = 0; i < all.size(); ++i) {
      // The first failure is the call's; the server skipped what followed it, the COMMIT too,
      // so the transaction is still open (aborted) unless the COMMIT was what failed.
      if (auto st = Check((*results)[i].get(), Label(all[i].sql), /*commit_sent=*/true); !st) {
        return Fail(st.error());
      }
    }
    std::vector<SqlResult> out;
    out.reserve(stmts.size());
    for (size_t i = first; i + 1 < all.size(); ++i) out.push_back(ToResult((*results)[i].get()));
    return out;
  }

  bool InTransaction() const override {
    if (begin_deferred_) return true;
    auto s = Pq().PQtransactionStatus(conn_.get());
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
  }

  bool TransactionAborted() const override {
    return deferred_failed_ || Pq().PQtransactionStatus(conn_.get()) == PQTRANS_INERROR;
  }

  std::vector<std::string_view> MigrationPrologue() const override {
    // set_config(..., true) is SET LOCAL: the timeout comes back at COMMIT or ROLLBACK.
    return {"SELECT set_config('statement_timeout', '0', true)", kMigrationLock};
  }
  const std::vector<Migration>& Migrations() const override { return PgMigrations(); }

 private:
  void Configure() { Pq().PQsetNoticeProcessor(conn_.get(), IgnoreNotice, nullptr); }

  // A connection found broken is reset before use; prepared statements died with it.
  Status EnsureConnected() {
    if (Pq().PQstatus(conn_.get()) == CONNECTION_OK && !ClosedWhileIdle()) return {};
    return Reset("connection was broken");
  }

  // Whether the server closed this connection while it sat idle between transactions (a restart,
  // an idle timeout, pg_terminate_backend): libpq says CONNECTION_OK until it next reads, so the
  // next statement would fail ("connection lost") although it never ran. An idle connection is
  // sent nothing unasked, so anything to read (the server's goodbye, the close) means it is
  // gone. Inside a transaction the server had begun, the loss is the caller's to hear, never
  // hidden by a reconnect (one only deferred is kept or dropped by Reset, as for a broken one).
  bool ClosedWhileIdle() {
    if (Pq().PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) return false;
    const int fd = Pq().PQsocket(conn_.get());
    if (fd < 0) return true;
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;  // one poll that does not wait
  }

  Status Reset(const std::string& why) {
    prepared_.clear();
    deferred_failed_ = false;
    // A transaction the server had begun is gone with the connection (InTransaction() says so
    // from now on); what was deferred belonged to it. One not yet begun starts on the new
    // connection, unless a prepared statement waits in it (its name died with the old one):
    // then it is dropped as lost.
    const bool prepared_waits = std::any_of(deferred_.begin(), deferred_.end(),
                                            [](const Statement& d) { return !d.prepared.empty(); });
    if (!begin_deferred_ || prepared_waits) {
      deferred_.clear();
      begin_deferred_ = false;
    }
    Pq().PQreset(conn_.get());
    if (Pq().PQstatus(conn_.get()) != CONNECTION_OK) {
      return Fail(ErrorCode::kUnavailable, "postgres: " + why + "; reconnect failed: " +
                                               Trim(Pq().PQerrorMessage(conn_.get())));
    }
    Configure();
    return {};
  }

  Result<std::string> Prepare(std::string_view sql, const std::vector<SqlParam>& params) {
    std::string key(sql);
    // The types are part of the statement: a NULL (untyped) param would otherwise be inferred.
    for (const auto& p : params) key.push_back(static_cast<char>('0' + static_cast<int>(p.type)));
    auto it = prepared_.find(key);
    if (it != prepared_.end()) return it->second;
    // What waits goes first (one exchange, once per statement and connection): a statement
    // that does not parse must fail after its SAVEPOINT, which can then undo it.
    if (!deferred_.empty()) {
      std::vector<Statement> waiting = std::exchange(deferred_, {});
      begin_deferred_ = false;
      if (auto r = Pipeline(waiting, /*last_is_callers=*/false); !r) return Fail(r.error());
    }
    std::string name = "ferry_" + std::to_string(next_stmt_++);
    std::vector<Oid> types;
    types.reserve(params.size());
    for (const auto& p : params) {
      types.push_back(p.type == SqlParam::Type::kInt    ? kInt8Oid
                      : p.type == SqlParam::Type::kBool ? kBoolOid
                                                        : kTextOid);
    }
    std::string text(sql);
    CountRoundTrip();
    ResultPtr res(Pq().PQprepare(conn_.get(), name.c_str(), text.c_str(),
                                 static_cast<int>(types.size()), types.data()));
    if (auto st = Check(res.get(), "prepare"); !st) return Fail(st.error());
    prepared_.emplace(std::move(key), name);
    return name;
  }

  // Maps a failed result to an Error; a connection lost underneath is reset and kUnavailable,
  // or, when the exchange sent a COMMIT (`commit_sent`), an unknown outcome: the server may have
  // run all of it before the connection went.
  Status Check(PGresult* res, std::string_view what, bool commit_sent = false) {
    ExecStatusType status = res != nullptr ? Pq().PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
      return {};
    }
    std::string msg = Trim(res != nullptr ? Pq().PQresultErrorMessage(res) : "");
    if (msg.empty()) msg = Trim(Pq().PQerrorMessage(conn_.get()));
    const char* state_c = res != nullptr ? Pq().PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string state = state_c != nullptr ? state_c : "";
    if (Pq().PQstatus(conn_.get()) == CONNECTION_BAD) {
      std::string full = "postgres: connection lost during " + std::string(what) + ": " + msg;
      auto reset = Reset("connection lost");
      if (commit_sent || what == kCommitLabel) return Fail(CommitOutcomeUnknown(full));
      return Fail(ErrorCode::kUnavailable,
                  full + (reset ? " (reconnected; retry)" : " (" + reset.error().message + ")"));
    }
    std::string full = "postgres: " + std::string(what) + ": " + msg;
    std::string_view cls = std::string_view(state).substr(0, std::min<size_t>(2, state.size()));
    if (cls == "23") return Fail(ErrorCode::kConflict, full);
    if (cls == "28") return Fail(ErrorCode::kUnauthenticated, full);
    if (cls == "08" || cls == "53" || cls == "57" || state == "40001" || state == "40P01") {
      return Fail(ErrorCode::kUnavailable, full);
    }
    return Fail(ErrorCode::kInternal, full);
  }

  static SqlResult ToResult(PGresult* res) {
    SqlResult out;
    int nrows = Pq().PQntuples(res);
    int ncols = Pq().PQnfields(res);
    out.rows.reserve(static_cast<size_t>(nrows));
    for (int r = 0; r < nrows; ++r) {
      std::vector<std::optional<std::string>> cols;
      cols.reserve(static_cast<size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        if (Pq().PQgetisnull(res, r, c) != 0) {
          cols.emplace_back(std::nullopt);
        } else {
          cols.emplace_back(std::string(Pq().PQgetvalue(res, r, c),
                                        static_cast<size_t>(Pq().PQgetlength(res, r, c))));
        }
      }
      out.rows.emplace_back(std::move(cols));
    }
    const char* tuples = Pq().PQcmdTuples(res);
    out.affected = (tuples != nullptr && *tuples != '\0') ? std::strtoll(tuples, nullptr, 10) : 0;
    return out;
  }

  // A statement ready to send: prepared (with its parameters' text forms), or, for transaction
  // control, plain text without parameters.
  struct Statement {
    std::string sql;
    std::string prepared;  // server-side name; empty: sent as text
    std::vector<std::optional<std::string>> params;

    std::vector<const char*> Values() const {
      std::vector<const char*> out;
      out.reserve(params.size());
      for (const auto& p : params) out.push_back(p ? p->c_str() : nullptr);
      return out;
    }
  };

  Result<Statement> Bind(std::string_view sql, const std::vector<SqlParam>& params) {
    auto name = Prepare(sql, params);
    if (!name) return Fail(name.error());
    Statement out{std::string(sql), std::move(*name), {}};
    out.params.reserve(params.size());
    for (const SqlParam& p : params) {
      if (p.is_null) {
        out.params.emplace_back(std::nullopt);
        continue;
      }
      switch (p.type) {
        case SqlParam::Type::kText:
          // libpq takes text parameters as C strings, and PostgreSQL's text holds no NUL: sent,
          // the value would be cut short at it, or an array literal broken.
          if (const size_t nul = p.s.find('\0'); nul != std::string::npos) {
            return Fail(ErrorCode::kInvalidArgument,
                        "postgres: a text value holds a NUL byte at offset " + std::to_string(nul) +
                            ", which PostgreSQL cannot store");
          }
          out.params.emplace_back(p.s);
          break;
        case SqlParam::Type::kBool:
          out.params.emplace_back(p.i != 0 ? "t" : "f");
          break;
        case SqlParam::Type::kInt:
          out.params.emplace_back(std::to_string(p.i));
          break;
      }
    }
    return out;
  }

  // Sends the statements in one pipeline (libpq 14+) and waits for all of their results at
  // once: one round trip. They run in order in one sync group: if one fails, the server skips
  // the rest. One result per statement; kUnavailable when the exchange broke off.
  Result<std::vector<ResultPtr>> Send(const std::vector<Statement>& stmts) {
    PGconn* c = conn_.get();
    CountRoundTrip();
    bool sent = Pq().PQenterPipelineMode(c) == 1;
    for (size_t i = 0; sent && i < stmts.size(); ++i) {
      const Statement& st = stmts[i];
      if (st.prepared.empty()) {
        sent = Pq().PQsendQueryParams(c, st.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr,
                                      0) == 1;
      } else {
        const auto values = st.Values();
        sent = Pq().PQsendQueryPrepared(c, st.prepared.c_str(), static_cast<int>(values.size()),
                                        values.data(), nullptr, nullptr, 0) == 1;
      }
    }
    sent = sent && Pq().PQpipelineSync(c) == 1;
    // One result per statement (each followed by a null), then the sync's. A connection lost
    // midway gives an error result where the sync's should be (or none at all).
    std::vector<ResultPtr> results;
    if (sent) {
      for (size_t q = 0; q < stmts.size(); ++q) {
        ResultPtr first(Pq().PQgetResult(c));
        if (!first) break;
        while (PGresult* more = Pq().PQgetResult(c)) Pq().PQclear(more);
        results.push_back(std::move(first));
      }
      ResultPtr sync(Pq().PQgetResult(c));
      sent = results.size() == stmts.size() && sync != nullptr &&
             Pq().PQresultStatus(sync.get()) == PGRES_PIPELINE_SYNC;
    }
    if (!sent || Pq().PQexitPipelineMode(c) != 1) {
      // The exchange broke off (the connection, most likely): start again from a clean one. An
      // open transaction is lost with it, which InTransaction() then says.
      std::string msg = Trim(Pq().PQerrorMessage(c));
      auto reset = Reset("pipeline broke off");
      const bool commits = std::any_of(stmts.begin(), stmts.end(),
                                       [](const Statement& st) { return st.sql == kCommitLabel; });
      if (commits) {
        return Fail(CommitOutcomeUnknown("postgres: connection lost during COMMIT: " + msg));
      }
      return Fail(ErrorCode::kUnavailable,
                  "postgres: connection lost during query: " + msg +
                      (reset ? " (reconnected; retry)" : " (" + reset.error().message + ")"));
    }
    return results;
  }

  // Send(), for statements of which only the last one's result is wanted (all but the last were
  // deferred; so is the last unless `last_is_callers`). Returns the last one's result.
  Result<SqlResult> Pipeline(const std::vector<Statement>& stmts, bool last_is_callers = true) {
    auto sent = Send(stmts);
    if (!sent) return Fail(sent.error());
    const std::vector<ResultPtr>& results = *sent;
    const size_t deferred = last_is_callers ? stmts.size() - 1 : stmts.size();
    const bool commits = stmts.back().sql == kCommitLabel;
    for (size_t i = 0; i < deferred; ++i) {
      // A deferred statement failed: its caller was told it worked, so from here the
      // transaction can only be rolled back (TransactionAborted). Its text names it. (A lost
      // connection, reset by Check, took the transaction with it: nothing to hold then.)
      if (auto st = Check(results[i].get(), Label(stmts[i].sql), commits); !st) {
        deferred_failed_ = Pq().PQtransactionStatus(conn_.get()) == PQTRANS_INERROR;
        return Fail(st.error());
      }
    }
    if (auto st = Check(results.back().get(), commits ? kCommitLabel : "query"); !st) {
      return Fail(st.error());
    }
    return ToResult(results.back().get());
  }

  static constexpr std::string_view kCommitLabel = "COMMIT";

  // Whether `sql` may write: Ferry's writes begin INSERT, UPDATE, DELETE or WITH (a write in
  // CTEs); its reads SELECT.
  static bool Writes(std::string_view sql) {
    const size_t start = sql.find_first_not_of(" \t\n");
    if (start == std::string_view::npos) return false;
    sql.remove_prefix(start);
    for (std::string_view verb : {"INSERT", "UPDATE", "DELETE", "WITH"}) {
      if (sql.size() >= verb.size() &&
          std::equal(verb.begin(), verb.end(), sql.begin(), [](char a, char b) {
            return a == std::toupper(static_cast<unsigned char>(b));
          })) {
        return true;
      }
    }
    return false;
  }

  // A COMMIT whose answer the lost connection took: the server may have committed before it
  // went (a standby's wait cut short, a crash after the WAL flush). Retrying what the
  // transaction did could do it twice, so the caller hears that the outcome is unknown
  // (exit 4, the API's "outcome": "unknown"), not that nothing happened.
  static Error CommitOutcomeUnknown(const std::string& what) {
    return OutcomeUnknown(
        Error{ErrorCode::kUnavailable, what + " (whether the transaction was committed is unknown: "
                                              "look before doing it again)"});
  }

  // The start of a statement's text, for an error about it.
  static std::string Label(const std::string& sql) {
    constexpr size_t kMax = 60;
    return sql.size() <= kMax ? sql : sql.substr(0, kMax) + "...";
  }

  ConnPtr conn_;
  // Statements held back for the next round trip (BeginWrite, Defer), in order.
  std::vector<Statement> deferred_;
  bool begin_deferred_ = false;  // deferred_ starts a transaction the server has not seen yet
  // A deferred statement of the open transaction failed: until ROLLBACK it is aborted.
  bool deferred_failed_ = false;
  // SQL text + param types -> server-side prepared statement name (per connection).
  std::unordered_map<std::string, std::string> prepared_;
  int64_t next_stmt_ = 0;
};

}  // namespace

Result<std::unique_ptr<SqlConn>> OpenPgConn(const std::string& url,
                                            std::chrono::milliseconds connect_timeout,
                                            std::chrono::milliseconds statement_timeout) {
  // Later keywords override earlier ones, and the expanded URL comes last, so a
  // connect_timeout or options (statement timeout, isolation) in the URL wins over ours.
  auto secs = std::max<int64_t>(2, (connect_timeout.count() + 999) / 1000);
  std::string timeout = std::to_string(secs);
  // Sent in the startup packet: no extra round trip, and in force for the first statement. READ
  // COMMITTED whatever the server's or database's default: the store's statements are written
  // for it (a conditional update that waited for a row re-checks its condition on the row's new
  // version instead of failing with a serialization error; docs/store.md).
  std::string options = "-c default_transaction_isolation=read\\ committed -c statement_timeout=" +
                        std::to_string(std::max<int64_t>(0, statement_timeout.count()));
  const char* keys[] = {"connect_timeout", "application_name", "options", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "ferry", options.c_str(), url.c_str(), nullptr};
  if (const auto& pq = LoadLibPq(); !pq) return Fail(pq.error());
  ConnPtr conn(Pq().PQconnectdbParams(keys, values, 1));
  if (!conn || Pq().PQstatus(conn.get()) != CONNECTION_OK) return ConnectError(conn.get());
  return std::unique_ptr<SqlConn>(std::make_unique<PgConn>(std::move(conn)));
}

}  // namespace ferry::store_internal
