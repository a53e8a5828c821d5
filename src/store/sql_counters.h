// Process-wide counts of what the stores in this process asked of their databases, so a
// benchmark can report statements and commits per run (bench/run_bench.cc) and a change that
// adds a round trip shows up in its output.
//
// Thread-safety: safe from any thread (relaxed atomics; figures are for measurement only).
#pragma once

#include <cstdint>

namespace ferry::store_internal {

struct SqlCounters {
  int64_t statements = 0;  // statements sent, transaction control (BEGIN, COMMIT, ...) excluded
  int64_t commits = 0;     // write transactions committed: COMMITs, and writes run on their own
  // Exchanges with a database server that the caller waited for (PostgreSQL: each statement,
  // preparation and transaction control that is not sent along with another; SQLite has none).
  int64_t round_trips = 0;
  // SQLite: commits that went in another caller's transaction (commit_groups.h), so the file saw
  // `commits - grouped` transactions.
  int64_t grouped = 0;
};

SqlCounters ReadSqlCounters();

// Called by the SQL store for each statement it sends.
void CountStatement(bool commits_on_its_own);
void CountCommit();
// Called by a network backend for each exchange it waits for.
void CountRoundTrip();
// Called by SQLite's commit groups for the members that joined another's transaction.
void CountGrouped(int64_t members);

}  // namespace ferry::store_internal
