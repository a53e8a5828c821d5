// The store's lookups of runs by age (src/store/sql_store_runs.cc), as both backends' plan tests
// check them against migration 004's partial indexes: one list, so the two tests cannot drift
// apart from each other.
#pragma once

#include <array>
#include <string_view>

namespace ferry::testing {

struct RunAgeQuery {
  std::string_view sql;        // with PostgreSQL placeholders ($1, $2), which SQLite also takes
  std::string_view index;      // the index that must serve it
  std::string_view pg_params;  // PREPARE's parameter types
  std::string_view pg_args;    // EXECUTE's arguments
};

inline constexpr std::array<RunAgeQuery, 4> kRunAgeQueries{{
    {"SELECT r.id FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.status = "
     "'pending' AND r.created_ms <= $1 ORDER BY r.created_ms, r.seq LIMIT $2",
     "runs_pending_created", "bigint, bigint", "5, 10"},
    {"SELECT COUNT(*) FROM runs WHERE status = 'pending' AND created_ms <= $1",
     "runs_pending_created", "bigint", "5"},
    {"SELECT r.id FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.status = "
     "'running' AND r.updated_ms <= $1 ORDER BY r.updated_ms, r.seq LIMIT $2",
     "runs_running_updated", "bigint, bigint", "5, 10"},
    {"SELECT id FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled') AND "
     "finished_ms < $1 ORDER BY finished_ms LIMIT $2",
     "runs_ended_finished", "bigint, bigint", "5, 10"},
}};

}  // namespace ferry::testing
