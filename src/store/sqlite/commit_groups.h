// Commit groups: write transactions that are a closed list of statements and their COMMIT
// (SqlConn::ExecInOwnCommit) from one process's connections to one SQLite file are run by one
// of their callers, several in one transaction. SQLite has one writer at a time; each of its
// transactions starts by re-reading what other connections changed and ends by writing every
// page it touched, so under many writers that per-transaction work, not the statements, was
// most of a run's time holding the file (docs/benchmarks.md). A group pays it once.
//
// What each caller sees is what its own transaction would give: its statements run in order
// under a savepoint of their own, so a failing one undoes only its caller's statements and fails
// only its caller; the others' results stand. A COMMIT that fails fails every caller whose
// statements it held, and nothing of theirs is committed. A caller returns only after the COMMIT
// that holds its statements (or its failure).
//
// The caller that finds no group running leads one: it begins the transaction, and only then
// takes the callers waiting (itself first, at most kMaxGroup), so those who arrived while it
// waited for the file join it. When it is done, the first caller still waiting leads the next
// group; no caller leads more than the group that holds its own statements.
//
// Thread-safety: all of it is safe from any thread.
#pragma once

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
    bool done = false;
    bool lead = false;
  };
  // Runs a group on the leader's connection: begins the write transaction, then calls `take`
  // exactly once (even when the beginning failed) for the group's requests, and sets the result
  // of every one of them.
  using Take = std::function<std::vector<Request*>()>;
  using Lead = std::function<void(const Take& take)>;

  // At most this many callers' transactions in one group.
  static constexpr size_t kMaxGroup = 32;

  // The groups of the file at `path` (one object per file in this process; `path` is made
  // canonical first, so two spellings of one file share it).
  static std::shared_ptr<CommitGroups> ForFile(const std::string& path);

  // `stmts` in a transaction of their own or in a group; `lead` runs the group when this caller
  // leads it.
  Result<std::vector<SqlResult>> Run(const std::vector<SqlStatement>& stmts, const Lead& lead);

  // How many callers wait to be taken into a group now (a leader included until it takes them).
  size_t Waiting() const;

 private:
  mutable std::mutex mu_;
  bool leading_ = false;          // a group is being run now
  std::deque<Request*> waiting_;  // in arrival order; each lives on its caller's stack
};

}  // namespace ferry::store_internal
