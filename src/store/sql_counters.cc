#include "store/sql_counters.h"

#include <atomic>

namespace ferry::store_internal {
namespace {

std::atomic<int64_t> g_statements{0};
std::atomic<int64_t> g_commits{0};
std::atomic<int64_t> g_round_trips{0};
std::atomic<int64_t> g_grouped{0};

}  // namespace

SqlCounters ReadSqlCounters() {
  return SqlCounters{
      g_statements.load(std::memory_order_relaxed), g_commits.load(std::memory_order_relaxed),
      g_round_trips.load(std::memory_order_relaxed), g_grouped.load(std::memory_order_relaxed)};
}

void CountStatement(bool commits_on_its_own) {
  g_statements.fetch_add(1, std::memory_order_relaxed);
  if (commits_on_its_own) g_commits.fetch_add(1, std::memory_order_relaxed);
}

void CountCommit() { g_commits.fetch_add(1, std::memory_order_relaxed); }

void CountRoundTrip() { g_round_trips.fetch_add(1, std::memory_order_relaxed); }

void CountGrouped(int64_t members) { g_grouped.fetch_add(members, std::memory_order_relaxed); }

}  // namespace ferry::store_internal
