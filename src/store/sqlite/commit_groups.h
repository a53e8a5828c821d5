// Commit groups: write transactions that are a closed list of statements and their COMMIT
// (SqlConn::ExecInOwnCommit) from one process's connections to one SQLite file are run by one
// of their callers, several in one transaction. SQLite has one writer at a time, and each of its
// transactions has work of its own besides the statements (taking the file, re-reading what
// other connections changed, writing every page it touched at COMMIT); a group pays it once
// (docs/benchmarks.md has the figures).
//
// What each caller sees is what its own transaction, run alone just before or after the others,
// would give: its statements run in order under a savepoint of their own, so a failing one
// undoes only its caller's statements and fails only its caller. A failure that ends the whole
// transaction (SQLite does for some errors) fails its own caller; the others are run again, once,
// in a new transaction. A COMMIT that fails fails every caller of the group, and nothing of
// theirs is committed. A caller returns only after the COMMIT that holds its statements (or its
// failure).
//
// The caller that finds no group running leads one: it begins the transaction (waiting for the
// file as a lone writer would), and only then takes the callers waiting (itself first, at most
// kMaxGroup), so those who arrived while it waited for the file join it. When it is done, the
// first caller still waiting leads the next group; no caller leads more than the group that
// holds its own statements. A caller waits to be taken until its own deadline, as for a write
// turn (write_turns.h): a leader that cannot begin fails alone, and the next in line leads.
//
// Thread-safety: all of it is safe from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "store/sql_conn.h"

namespace ferry::store_internal {

class CommitGroups {
 public:
  // One caller's statements, and what they gave.
  struct Request {
    explicit Request(const std::vector<SqlStatement>& s) : stmts(s) {}
    const std::vector<SqlStatement>& stmts;
    Result<std::vector<SqlResult>> result = Fail(ErrorCode::kInternal, "not run");

   private:
    friend class CommitGroups;
    std::condition_variable cv;
    bool taken = false;  // in a group (its result will be set)
    bool done = false;   // its result is final
    bool lead = false;   // named to lead the next group
  };
  // Runs a group on the leader's connection. Begins the write transaction; when that fails,
  // returns the error without calling `take` (only the leader fails). Otherwise calls `take`
  // once for the group's requests (the leader's first), sets the result of every one of them,
  // and returns ok. Leaves no transaction open.
  using Take = std::function<const std::vector<Request*>&()>;
  using Lead = std::function<Status(const Take& take)>;

  // At most this many callers' transactions in one group.
  static constexpr size_t kMaxGroup = 32;

  // The groups of the database file at `path` as this process opened it: `path` is made
  // canonical first (two spellings of one file share it), and a file deleted and created again
  // under the same name is another file (its statements must not run on a connection to the old
  // one).
  static std::shared_ptr<CommitGroups> ForFile(const std::string& path);

  // `stmts` in a transaction of their own or in a group; `lead` runs the group when this caller
  // leads it. Not taken into a group by `deadline`: kUnavailable, `waited` naming how long the
  // caller was willing to wait.
  Result<std::vector<SqlResult>> Run(const std::vector<SqlStatement>& stmts,
                                     std::chrono::steady_clock::time_point deadline,
                                     std::chrono::milliseconds waited, const Lead& lead);

  // How many callers wait to be taken into a group now (a leader included until it takes them).
  size_t Waiting() const;

 private:
  mutable std::mutex mu_;
  bool leading_ = false;          // a group is being run now
  std::deque<Request*> waiting_;  // in arrival order; each lives on its caller's stack
};

}  // namespace ferry::store_internal
