// Write turns: the connections of one process to one SQLite file take their write transactions
// in arrival order, handed from one to the next, before they ask SQLite for the file's write
// lock. Without it each waiter polls that lock in growing sleeps (sqlite_conn.cc, BusyWait), so
// under many writers a free lock sits idle between polls and an unlucky waiter loses it again and
// again: a webhook's answer then waits tens of milliseconds behind runs being written
// (docs/benchmarks.md). Other processes still meet the file lock and its busy handler.
//
// Thread-safety: all of it is safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace ferry::store_internal {

class WriteTurns {
 public:
  // The turns of the file at `path` (one object per file in this process; `path` is made
  // canonical first, so two spellings of one file share it).
  static std::shared_ptr<WriteTurns> ForFile(const std::string& path);

  // Waits for this caller's turn, first come first served, for at most `timeout`. False when
  // it did not come: the caller must not write (and must not call Release).
  virtual bool Acquire(std::chrono::milliseconds timeout) = 0;
  // Ends the turn; the next waiter's begins.
  virtual void Release() = 0;
  // How many callers wait for a turn now.
  virtual size_t Waiters() const = 0;

  virtual ~WriteTurns() = default;
};

}  // namespace ferry::store_internal
