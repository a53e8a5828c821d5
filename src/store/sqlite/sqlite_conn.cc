#include "store/sqlite/sqlite_conn.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/sqlite/commit_groups.h"
#include "store/sqlite/write_precedence.h"
#include "store/sqlite/write_turns.h"

namespace ferry::store_migrations_sqlite {
extern const std::string_view k_001_init;
extern const std::string_view k_002_remediation;
extern const std::string_view k_003_token_scopes;
extern const std::string_view k_004_run_indexes;
extern const std::string_view k_005_nonce_run;
}  // namespace ferry::store_migrations_sqlite

namespace ferry::store_internal {
namespace {

struct DbDeleter {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

// Resets a cached statement when a call is done with it, whatever path it leaves by, so the
// statement never holds a read snapshot open between calls.
class StmtReset {
 public:
  explicit StmtReset(sqlite3_stmt* s) : s_(s) {}
  ~StmtReset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StmtReset(const StmtReset&) = delete;
  StmtReset& operator=(const StmtReset&) = delete;

 private:
  sqlite3_stmt* s_;
};

const std::vector<Migration>& SqliteMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "init", store_migrations_sqlite::k_001_init},
      {2, "remediation", store_migrations_sqlite::k_002_remediation},
      {3, "token_scopes", store_migrations_sqlite::k_003_token_scopes},
      {4, "run_indexes", store_migrations_sqlite::k_004_run_indexes},
      {5, "nonce_run", store_migrations_sqlite::k_005_nonce_run},
  };
  return kMigrations;
}

// $N -> ?N outside quoted text: the shared SQL uses PostgreSQL placeholders; ?N binds the same
// index in SQLite.
std::string RewritePlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  char quote = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '$' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      c = '?';
    }
    out.push_back(c);
  }
  return out;
}

tl::unexpected<Error> SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string("sqlite: ") + std::string(what) + ": " +
                    (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Fail(ErrorCode::kUnavailable, msg + " (another process holds the lock)");
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
      return Fail(ErrorCode::kUnavailable, msg);
    case SQLITE_CONSTRAINT:
      return Fail(ErrorCode::kConflict, msg);
    case SQLITE_NOTADB:
      // The path names a file that is not a database: the caller's mistake, and trying again
      // cannot help.
      return Fail(ErrorCode::kInvalidArgument, msg);
    default:
      return Fail(ErrorCode::kInternal, msg);
  }
}

// Waits for another connection's lock (another process's write transaction, usually one commit
// long: well under a millisecond) in short steps. SQLite's own busy timeout sleeps 1, 2, 5, 10 ...
// ms between tries. Another process that writes often (a worker running runs) hands the lock from
// one of its writers to the next within microseconds (write_turns.h), so a waiter that sleeps even
// a few hundred microseconds between tries keeps missing the gaps: a webhook's answer waited tens
// of milliseconds behind a worker running a backlog. Here the waiter tries every 50 µs for its
// first 10 ms, then every millisecond, until `timeout` (docs/benchmarks.md: a webhook's p99 under
// a worker's backlog 17.8-21.7 -> 5.2-5.3 ms).
// Only the one thread of a process that holds its write turn ever waits here, and only while the
// lock is taken, so the polling costs little. A waiter without write precedence does not retry
// while one with it asks for the file (write_precedence.h).
class BusyWait {
 public:
  // `yield_to`: the wish of writers with precedence, or null (this one has it, or none exists).
  BusyWait(std::chrono::milliseconds timeout, WritePrecedence* yield_to)
      : timeout_(timeout), yield_to_(yield_to) {}

  void Install(sqlite3* db) { sqlite3_busy_handler(db, &BusyWait::OnBusy, this); }

  // The write about to start asked for the file at `t`: its timeout counts from there, so the
  // time it already spent yielding to a writer with precedence is part of it, not added to it.
  // EndWrite() when it is over; a lock event outside such a write counts from its own start.
  void StartWrite(std::chrono::steady_clock::time_point t) { write_started_ = t; }
  void EndWrite() { write_started_.reset(); }

 private:
  // `tries`: how often this lock event was retried before (0 on its first call).
  static int OnBusy(void* self, int tries) {
    auto* w = static_cast<BusyWait*>(self);
    auto now = std::chrono::steady_clock::now();
    if (tries == 0) w->since_ = w->write_started_.value_or(now);
    if (now - w->since_ >= w->timeout_) return 0;  // SQLITE_BUSY to the caller
    if (w->yield_to_ != nullptr && w->yield_to_->YieldTo(w->since_ + w->timeout_)) {
      now = std::chrono::steady_clock::now();
      if (now - w->since_ >= w->timeout_) return 0;
    }
    std::this_thread::sleep_for(now - w->since_ < kFastPhase ? kFastStep : kSlowStep);
    return 1;
  }

  static constexpr std::chrono::milliseconds kFastPhase{10};
  static constexpr std::chrono::microseconds kFastStep{50};
  static constexpr std::chrono::microseconds kSlowStep{1000};

  const std::chrono::milliseconds timeout_;
  WritePrecedence* const yield_to_;
  std::chrono::steady_clock::time_point since_;
  std::optional<std::chrono::steady_clock::time_point> write_started_;
};

class SqliteConn final : public SqlConn {
 public:
  // `precedence`: the file's write-precedence lock, or null; `first`: whether this connection
  // has write precedence (write_precedence.h).
  SqliteConn(DbPtr db, std::chrono::milliseconds busy_timeout, std::shared_ptr<WriteTurns> turns,
             std::shared_ptr<CommitGroups> groups, std::unique_ptr<WritePrecedence> precedence,
             bool first)
      : busy_timeout_(busy_timeout),
        turns_(std::move(turns)),
        groups_(std::move(groups)),
        precedence_(std::move(precedence)),
        first_(first && precedence_ != nullptr),
        busy_(busy_timeout, first_ ? nullptr : precedence_.get()),
        db_(std::move(db)) {
    busy_.Install(db_.get());
  }

  // The connection closes (rolling back an open transaction) before its turn goes to the next
  // writer, who then finds the file free.
  ~SqliteConn() override {
    cache_.clear();
    db_.reset();
    EndTurnIfDone(/*closing=*/true);
  }

  std::string_view Backend() const override { return "sqlite"; }

  Result<SqlResult> Exec(std::string_view sql, const std::vector<SqlParam>& params) override {
    auto stmt = Prepare(sql);
    if (!stmt) return Fail(stmt.error());
    sqlite3_stmt* s = *stmt;
    // A write outside a transaction is a transaction of its own: it takes a turn too, and
    // meets the other processes' writers as a BEGIN would.
    std::optional<Precedence> precedence;
    if (!my_turn_ && sqlite3_get_autocommit(db_.get()) != 0 && sqlite3_stmt_readonly(s) == 0) {
      if (auto st = TakeTurn(); !st) return Fail(st.error());
      precedence.emplace(this);
    }
    // Declared before `reset`: the turn ends once the statement is reset (its transaction over).
    TurnEnd end(this);
    StmtReset reset(s);
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlParam& p = params[i];
      int idx = static_cast<int>(i + 1);
      int rc = SQLITE_OK;
      if (p.is_null) {
        rc = sqlite3_bind_null(s, idx);
      } else if (p.type == SqlParam::Type::kText) {
        // A null destructor is SQLITE_STATIC: params outlive the step.
        rc = sqlite3_bind_text64(s, idx, p.s.data(), p.s.size(), nullptr, SQLITE_UTF8);
      } else {
        rc = sqlite3_bind_int64(s, idx, p.i);
      }
      if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "bind");
    }
    SqlResult result;
    int ncols = sqlite3_column_count(s);
    while (true) {
      int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "step");
      std::vector<std::optional<std::string>> cols;
      cols.reserve(static_cast<size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        if (sqlite3_column_type(s, c) == SQLITE_NULL) {
          cols.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
          auto len = static_cast<size_t>(sqlite3_column_bytes(s, c));
          cols.emplace_back(std::string(text, len));
        }
      }
      result.rows.emplace_back(std::move(cols));
    }
    result.affected = sqlite3_changes64(db_.get());
    return result;
  }

  Status ExecScript(std::string_view sql) override {
    TurnEnd end(this);
    std::string text(sql);
    char* err = nullptr;
    int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      auto e = SqliteError(nullptr, rc, "script");
      e.value().message = "sqlite: script: " + msg;
      return e;
    }
    return {};
  }

  Status BeginWrite() override {
    // IMMEDIATE takes the write lock up front (waiting up to busy_timeout): a deferred
    // transaction that later upgrades can fail with SQLITE_BUSY without waiting in WAL mode.
    if (!my_turn_) {
      if (auto st = TakeTurn(); !st) return st;
    }
    TurnEnd end(this);  // if BEGIN fails, even before it runs, the turn ends here
    auto r = [&] {
      Precedence precedence(this);
      return Exec("BEGIN IMMEDIATE", {});
    }();
    if (!r) return Fail(r.error());
    return {};
  }

  Result<std::vector<SqlResult>> ExecInOwnCommit(const std::vector<SqlStatement>& stmts) override {
    if (groups_ == nullptr || InTransaction()) return SqlConn::ExecInOwnCommit(stmts);
    const auto deadline = std::chrono::steady_clock::now() + busy_timeout_;
    return groups_->Run(stmts, deadline, busy_timeout_,
                        [&](const CommitGroups::Take& take) { return LeadGroup(take, deadline); });
  }

  bool InTransaction() const override { return sqlite3_get_autocommit(db_.get()) == 0; }
  std::vector<std::string_view> MigrationPrologue() const override { return {}; }
  const std::vector<Migration>& Migrations() const override { return SqliteMigrations(); }

 private:
  // Write precedence across processes (write_precedence.h) for one write about to take the
  // file: with it, the wish is held until the write has the file (or gives up); without it, the
  // write first lets a writer with it go.
  class Precedence {
   public:
    explicit Precedence(SqliteConn* c) : c_(c), p_(c->precedence_.get()) {
      const auto now = std::chrono::steady_clock::now();
      // One busy timeout for the whole write: the wait here and SQLite's busy handler after it.
      c_->busy_.StartWrite(now);
      if (p_ == nullptr) return;
      const auto until = now + c->busy_timeout_;
      if (c->first_) {
        (void)p_->Announce(until);
      } else {
        (void)p_->YieldTo(until);
      }
    }
    ~Precedence() {
      c_->busy_.EndWrite();
      if (p_ != nullptr) p_->Withdraw();  // nothing when this connection holds no wish
    }
    Precedence(const Precedence&) = delete;
    Precedence& operator=(const Precedence&) = delete;

   private:
    SqliteConn* c_;
    WritePrecedence* p_;
  };

  // Ends the turn when the connection's transaction is over (or the connection closes).
  class TurnEnd {
   public:
    explicit TurnEnd(SqliteConn* c) : c_(c) {}
    ~TurnEnd() { c_->EndTurnIfDone(/*closing=*/false); }
    TurnEnd(const TurnEnd&) = delete;
    TurnEnd& operator=(const TurnEnd&) = delete;

   private:
    SqliteConn* c_;
  };

  // Runs a commit group on this connection (commit_groups.h): one write transaction, each
  // member's statements under a savepoint of their own, one COMMIT. `deadline`: the leader's own,
  // for beginning.
  Status LeadGroup(const CommitGroups::Take& take, std::chrono::steady_clock::time_point deadline) {
    if (auto st = BeginWriteBy(deadline); !st) return st;
    std::vector<CommitGroups::Request*> todo;
    try {
      todo = take();
      // A member whose failure ends the whole transaction keeps its error; the others lost what
      // they wrote with it and go again, once, in a new one.
      for (int round = 0;; ++round) {
        CommitGroups::Request* ender = RunMembers(todo);
        if (ender == nullptr) {
          CommitMembers(todo);
          return {};
        }
        std::erase(todo, ender);
        if (todo.empty()) return {};
        const Status again = round == 0
                                 ? BeginWriteBy(std::chrono::steady_clock::now() + busy_timeout_)
                                 : Fail(ErrorCode::kUnavailable, "a second member ended it too");
        if (!again) {
          FailMembers(todo, Fail(ErrorCode::kUnavailable,
                                 "sqlite: the transaction this write shared was ended by "
                                 "another's failure (" +
                                     WhyEnded(*ender) + "); nothing committed, retry"));
          return {};
        }
      }
    } catch (...) {
      // Out of memory, most likely: the file must not stay held by a transaction nobody ends.
      undo_failed_ = false;
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      EndTurnIfDone(/*closing=*/false);
      FailMembers(todo, Fail(ErrorCode::kInternal, "sqlite: commit group failed"));
      return {};
    }
  }

  // What ended the transaction a member ran in: its failure, or the undo of its refusal (a
  // `needs_row` statement returned no row, and rolling back to its savepoint failed).
  static std::string WhyEnded(const CommitGroups::Request& ender) {
    if (ender.result) return "undoing a refused write failed";
    return ender.result.error().message;
  }

  // Each member's statements in the open transaction, in order; the member whose failure (or the
  // undo of whose refusal) ended the transaction, if one did.
  CommitGroups::Request* RunMembers(const std::vector<CommitGroups::Request*>& members) {
    for (auto* r : members) {
      r->result = ExecUnderSavepoint(r->stmts);
      if (InTransaction()) continue;
      if (r->result && !StoppedAtNeededRow(r->stmts, *r->result)) {
        // Its statements ended the transaction themselves (a COMMIT or ROLLBACK among them):
        // not a closed list of statements.
        r->result = Fail(ErrorCode::kInvalidArgument,
                         "sqlite: a grouped write must not end its transaction itself");
      }
      return r;
    }
    return nullptr;
  }

  // The COMMIT of members that all ran: when it fails (or a failed member's statements could not
  // be undone), nothing of the group is committed, so no member's result stands (one may have
  // failed only on another's rows, which are gone now).
  void CommitMembers(const std::vector<CommitGroups::Request*>& members) {
    if (undo_failed_) {
      undo_failed_ = false;
      (void)Exec("ROLLBACK", {});
      FailMembers(members, Fail(ErrorCode::kUnavailable,
                                "sqlite: a write grouped with this one could not be undone; "
                                "nothing committed, retry"));
      return;
    }
    auto committed = Exec("COMMIT", {});
    if (committed) return;
    FailMembers(members, Fail(committed.error()));
    if (InTransaction()) (void)Exec("ROLLBACK", {});
  }

  static void FailMembers(const std::vector<CommitGroups::Request*>& members,
                          const tl::unexpected<Error>& error) {
    for (auto* r : members) r->result = error;
  }

  // One member's statements in the open transaction: all of them, or none (a failure, or a
  // `needs_row` statement that returned no row: then the results end with its own). When its
  // savepoint cannot be rolled back to, the whole transaction is (the group's leader runs the
  // others again).
  Result<std::vector<SqlResult>> ExecUnderSavepoint(const std::vector<SqlStatement>& stmts) {
    const auto undo = [this] {
      if (!InTransaction()) return;
      if (Exec("ROLLBACK TO ferry_group_member", {}) && Exec("RELEASE ferry_group_member", {})) {
        return;
      }
      if (InTransaction()) (void)Exec("ROLLBACK", {});
      if (InTransaction()) undo_failed_ = true;  // LeadGroup then commits nothing
    };
    if (auto s = Exec("SAVEPOINT ferry_group_member", {}); !s) {
      undo();
      return Fail(s.error());
    }
    std::vector<SqlResult> out;
    out.reserve(stmts.size());
    for (const auto& st : stmts) {
      auto r = Exec(st.sql, st.params);
      if (!r) {
        undo();
        return Fail(r.error());
      }
      out.push_back(std::move(*r));
      if (st.needs_row && out.back().rows.empty()) {
        undo();
        return out;
      }
    }
    if (auto s = Exec("RELEASE ferry_group_member", {}); !s) {
      undo();
      return Fail(s.error());
    }
    return out;
  }

  // BeginWrite, waiting for this process's turn only until `deadline`.
  Status BeginWriteBy(std::chrono::steady_clock::time_point deadline) {
    if (!my_turn_) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (auto st = TakeTurn(std::max(left, std::chrono::milliseconds(0))); !st) return st;
    }
    return BeginWrite();
  }

  Status TakeTurn() { return TakeTurn(busy_timeout_); }
  Status TakeTurn(std::chrono::milliseconds timeout) {
    if (turns_ == nullptr) return {};
    if (!turns_->Acquire(timeout)) {
      return Fail(ErrorCode::kUnavailable,
                  "sqlite: database is locked (this process's other writers held it for " +
                      std::to_string(timeout.count()) + " ms)");
    }
    my_turn_ = true;
    return {};
  }

  // `closing`: the connection is gone (db_ is null), so its transaction is over.
  void EndTurnIfDone(bool closing) {
    if (!my_turn_ || (!closing && sqlite3_get_autocommit(db_.get()) == 0)) return;
    my_turn_ = false;
    turns_->Release();
  }

  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    std::string key(sql);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second.get();
    std::string text = RewritePlaceholders(sql);
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), text.c_str(), static_cast<int>(text.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "prepare");
    sqlite3_stmt* s = stmt.get();
    cache_.emplace(std::move(key), std::move(stmt));
    return s;
  }

  const std::chrono::milliseconds busy_timeout_;
  const std::shared_ptr<WriteTurns> turns_;     // null: the file is not shared by name (":memory:")
  const std::shared_ptr<CommitGroups> groups_;  // null when turns_ is
  const std::unique_ptr<WritePrecedence> precedence_;  // null when turns_ is, or unopenable
  const bool first_;                                   // this connection has write precedence
  bool my_turn_ = false;      // this connection holds its file's write turn
  bool undo_failed_ = false;  // a commit group member's writes could not be undone (LeadGroup)
  BusyWait busy_;             // the connection's busy handler points at it: declared before db_
  // Declared before the cache: statements must be finalized before the connection closes.
  DbPtr db_;
  std::unordered_map<std::string, StmtPtr> cache_;
};

}  // namespace

Result<std::unique_ptr<SqlConn>> OpenSqliteConn(const std::string& path,
                                                std::chrono::milliseconds busy_timeout,
                                                bool write_precedence) {
  // Every statement with RETURNING (and every INSERT that reads its own table) builds its result
  // in an ephemeral table, and each ephemeral table opens a page cache that by default allocates
  // 20 pages (87 KB) at once on its first page. malloc hands that back to the kernel when the
  // statement ends, so each statement paid for page faults and a TLB flush, several times per
  // run (docs/benchmarks.md). Without that first bulk allocation pages are allocated as they are
  // needed. Process-wide, and only before SQLite initialises: once is enough, and a process that
  // initialised it already keeps the default.
  static const bool no_bulk_cache = sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0) == 0;
  (void)no_bulk_cache;
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    std::string msg = "sqlite: cannot open " + path + ": " +
                      (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    return Fail(ErrorCode::kUnavailable, msg);
  }
  sqlite3_extended_result_codes(db.get(), 1);
  const bool shared = !(path.empty() || path == ":memory:" || path.starts_with("file:"));
  // Known before the files beside it are made (the write-precedence lock, the WAL): a --store
  // that names another file (/etc/passwd) must leave nothing next to it. The header is read by
  // SQLite, not by opening the file here: closing any descriptor of a file drops every POSIX
  // lock this process holds on it, those of its other connections included (SQLite's own
  // descriptors are kept open for that reason). Anything but "not a database" is left to the
  // statements below, which wait out a busy file.
  if (shared && (sqlite3_exec(db.get(), "PRAGMA schema_version", nullptr, nullptr, nullptr) &
                 0xff) == SQLITE_NOTADB) {
    return Fail(ErrorCode::kInvalidArgument, "the file is not a SQLite database");
  }
  auto conn = std::make_unique<SqliteConn>(
      std::move(db), busy_timeout, shared ? WriteTurns::ForFile(path) : nullptr,
      shared ? CommitGroups::ForFile(path) : nullptr,
      shared ? WritePrecedence::Open(path) : nullptr, write_precedence);
  // Switching a fresh file to WAL upgrades a shared lock to an exclusive one. When several
  // processes open it at once (server, worker and scheduler starting together), SQLite answers
  // SQLITE_BUSY at once instead of calling the busy handler (it would deadlock otherwise), so
  // retry here for up to busy_timeout.
  // With write precedence, the connection also leaves the WAL's checkpoints to the others: the
  // COMMIT that takes the WAL past the threshold copies it into the database before it returns
  // (milliseconds). At ten times the default, the connections of other processes (a worker's)
  // reach it first, and alone this one still checkpoints, at 40 MB of WAL (docs/benchmarks.md).
  const std::string pragmas =
      std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;") +
      (write_precedence ? " PRAGMA wal_autocheckpoint=10000;" : "");
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout;
  Status st;
  for (int attempt = 0;; ++attempt) {
    st = conn->ExecScript(pragmas);
    if (st || st.error().code != ErrorCode::kUnavailable ||
        std::chrono::steady_clock::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5 + attempt * 5, 50)));
  }
  if (!st) {
    // The first statements read the file's header: only SQLITE_NOTADB is kInvalidArgument.
    if (st.error().code == ErrorCode::kInvalidArgument) {
      return Fail(ErrorCode::kInvalidArgument, "the file is not a SQLite database");
    }
    st.error().message = "sqlite: " + path + ": " + st.error().message;
    return Fail(st.error());
  }
  return std::unique_ptr<SqlConn>(std::move(conn));
}

}  // namespace ferry::store_internal
