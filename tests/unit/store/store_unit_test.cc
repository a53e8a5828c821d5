#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "harness.h"
#include "run_age_queries.h"
#include "store/sqlite/sqlite_conn.h"
#include "store/sqlite/write_turns.h"
#include "store/store.h"
#include "store/store_wrapper.h"
#include "store_conformance.h"

namespace ferry::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Values("sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// A connection of the test's own to the store's file, outside the store (closed, and whatever
// transaction it holds rolled back, however the test ends). nullptr if it cannot be opened.
using SqliteHandle = std::unique_ptr<sqlite3, int (*)(sqlite3*)>;
SqliteHandle OpenSqlite(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return SqliteHandle(nullptr, &sqlite3_close);
  }
  return SqliteHandle(db, &sqlite3_close);
}

TEST(StoreFactory, PicksBackendByScheme) {
  auto pg = MakeStoreFactory("postgresql://u:p@h:5432/db");
  ASSERT_TRUE(pg);
  EXPECT_EQ((*pg)->Backend(), "postgres");
  auto pg2 = MakeStoreFactory("POSTGRES://h/db");
  ASSERT_TRUE(pg2);
  EXPECT_EQ((*pg2)->Backend(), "postgres");
  auto sq = MakeStoreFactory("sqlite:///var/lib/ferry/ferry.db");
  ASSERT_TRUE(sq);
  EXPECT_EQ((*sq)->Backend(), "sqlite");
  EXPECT_EQ((*sq)->Describe(), "sqlite:/var/lib/ferry/ferry.db");
  auto rel = MakeStoreFactory("sqlite://.ferry/ferry.db");
  ASSERT_TRUE(rel);
  EXPECT_EQ((*rel)->Describe(), "sqlite:.ferry/ferry.db");
  auto plain = MakeStoreFactory("./data/ferry.db");
  ASSERT_TRUE(plain);
  EXPECT_EQ((*plain)->Backend(), "sqlite");
}

TEST(StoreFactory, RejectsBadLocations) {
  for (const char* bad : {"", "mysql://h/db", "sqlite://"}) {
    auto f = MakeStoreFactory(bad);
    ASSERT_FALSE(f) << bad;
    EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument) << bad;
  }
  StoreOptions o;
  o.clock = nullptr;
  EXPECT_FALSE(MakeStoreFactory("x.db", o));
}

TEST(StoreFactory, MasksPasswords) {
  EXPECT_EQ(MaskStoreUrl("postgresql://ferry:s3cret@db:5432/ferry"),
            "postgresql://ferry:****@db:5432/ferry");
  EXPECT_EQ(MaskStoreUrl("postgresql://db/ferry?user=a&password=s3cret&sslmode=require"),
            "postgresql://db/ferry?user=a&password=****&sslmode=require");
  EXPECT_EQ(MaskStoreUrl("postgresql://ferry@db/ferry"), "postgresql://ferry@db/ferry");
  EXPECT_EQ(MaskStoreUrl("/tmp/x.db"), "/tmp/x.db");
  auto f = MakeStoreFactory("postgresql://ferry:s3cret@db/ferry");
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)->Describe().find("s3cret"), std::string::npos);
}

TEST(StoreFactory, SqliteInMissingDirectoryIsUnavailable) {
  TempDir dir;
  auto s = OpenStore((dir.path() / "no" / "such" / "ferry.db").string());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().ToString();
}

TEST(StoreFactory, SqliteUrlOpensFile) {
  TempDir dir;
  auto path = dir.path() / "ferry.db";
  auto s = OpenStore("sqlite://" + path.string());
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ((*s)->Backend(), "sqlite");
}

TEST(SqliteStore, WriterBlockedPastBusyTimeoutIsUnavailable) {
  TempDir dir;
  StoreOptions options;
  options.busy_timeout = std::chrono::milliseconds(100);
  auto factory = MakeStoreFactory((dir.path() / "ferry.db").string(), options);
  ASSERT_TRUE(factory);
  auto holder = (*factory)->Open();
  auto other = (*factory)->Open();
  ASSERT_TRUE(holder && other);
  auto tx = (*holder)->Begin();  // holds the write lock
  ASSERT_TRUE(tx);
  auto start = std::chrono::steady_clock::now();
  auto r = (*other)->RememberNonce("s", "n", 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().ToString();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(90));
  // Readers are not blocked by a writer in WAL mode.
  EXPECT_TRUE((*other)->ListWorkflows());
  tx->reset();
  EXPECT_TRUE((*other)->RememberNonce("s", "n", 1));
}

// A lock held by a connection outside this process's write turns (another process, the sqlite3
// shell) is waited for by the busy handler: until busy_timeout, then kUnavailable; once it is
// released the same write goes through. A second wait starts its own timeout afresh.
TEST(SqliteStore, AWriterWaitsForAnotherProcesssLockUntilItsBusyTimeout) {
  TempDir dir;
  const std::string path = (dir.path() / "ferry.db").string();
  StoreOptions options;
  options.busy_timeout = std::chrono::milliseconds(100);
  auto factory = MakeStoreFactory(path, options);
  ASSERT_TRUE(factory);
  auto store = (*factory)->Open();
  ASSERT_TRUE(store) << store.error().ToString();
  const SqliteHandle handle = OpenSqlite(path, SQLITE_OPEN_READWRITE);
  ASSERT_NE(handle, nullptr);
  sqlite3* outside = handle.get();
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(sqlite3_exec(outside, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    const auto start = std::chrono::steady_clock::now();
    auto refused = (*store)->RememberNonce("s", "n" + std::to_string(round), 1);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable) << refused.error().ToString();
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100)) << round;
    ASSERT_EQ(sqlite3_exec(outside, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    auto accepted = (*store)->RememberNonce("s", "n" + std::to_string(round), 1);
    ASSERT_TRUE(accepted) << accepted.error().ToString();
    EXPECT_TRUE(*accepted);
  }
}

// Migration 004 on SQLite: the store's lookups of runs by age (its own SQL, sql_store_runs.cc)
// use the indexes of their status only (SQLite takes a partial index only when the query names
// its condition as the index does).
TEST(SqliteStore, RunLookupsByAgeUseIndexesOfTheirStatusOnly) {
  TempDir dir;
  const std::string path = (dir.path() / "ferry.db").string();
  auto factory = MakeStoreFactory(path, {});
  ASSERT_TRUE(factory);
  auto store = (*factory)->Open();
  ASSERT_TRUE(store) << store.error().ToString();
  const SqliteHandle handle = OpenSqlite(path, SQLITE_OPEN_READONLY);
  ASSERT_NE(handle, nullptr);
  sqlite3* db = handle.get();
  auto plan = [&](const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    const std::string text = "EXPLAIN QUERY PLAN " + sql;
    EXPECT_EQ(sqlite3_prepare_v2(db, text.c_str(), -1, &stmt, nullptr), SQLITE_OK) << text;
    std::string out;
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      out += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
      out += '\n';
    }
    sqlite3_finalize(stmt);
    return out;
  };
  for (const auto& q : kRunAgeQueries) {
    const std::string shown = plan(std::string(q.sql));
    EXPECT_NE(shown.find(q.index), std::string::npos) << q.sql << "\n" << shown;
  }
}

// A wrapper that fails every Nth CreateRun, as a fault-injecting test would.
class FlakyStore : public StoreWrapper {
 public:
  using StoreWrapper::StoreWrapper;
  Result<Run> CreateRun(const CreateRunRequest& request) override {
    if (++calls_ % 2 == 0) return Fail(ErrorCode::kUnavailable, "injected");
    return StoreWrapper::CreateRun(request);
  }

 private:
  int calls_ = 0;
};

TEST(StoreWrapper, ForwardsAndLetsTestsInjectFaults) {
  TempDir dir;
  auto real = OpenStore((dir.path() / "ferry.db").string());
  ASSERT_TRUE(real);
  FlakyStore store(**real);
  EXPECT_EQ(store.Backend(), "sqlite");
  ApplyWorkflowRequest req{"wf", "", "src", "yaml", "{}", "c1", "", ""};
  auto wf = store.ApplyWorkflow(req);
  ASSERT_TRUE(wf);
  CreateRunRequest run;
  run.workflow_id = wf->workflow.id;
  EXPECT_TRUE(store.CreateRun(run));
  auto second = store.CreateRun(run);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ((*real)->ListRuns({})->runs.size(), 1u);
}

TEST(StoreNames, RoundTrip) {
  for (auto s : {RunStatus::kPending, RunStatus::kRunning, RunStatus::kSucceeded,
                 RunStatus::kFailed, RunStatus::kCancelled}) {
    EXPECT_EQ(ParseRunStatus(RunStatusName(s)), s);
  }
  EXPECT_EQ(ParseRunStatus("RUNNING"), RunStatus::kRunning);
  EXPECT_FALSE(ParseRunStatus("done"));
  EXPECT_TRUE(IsTerminal(RunStatus::kCancelled));
  EXPECT_FALSE(IsTerminal(RunStatus::kRunning));
  for (auto t : {TriggeredBy::kApi, TriggeredBy::kCli, TriggeredBy::kWebhook, TriggeredBy::kCron,
                 TriggeredBy::kRetry, TriggeredBy::kRemediation}) {
    EXPECT_EQ(ParseTriggeredBy(TriggeredByName(t)), t);
  }
  EXPECT_EQ(ParseTriggerKind("Cron"), TriggerKind::kCron);
  EXPECT_FALSE(ParseTriggerKind("email"));
}

// Two stores of one process on one file: a write waits in line while the other's transaction
// is open, and goes through once it commits (store/sqlite/write_turns.h).
TEST(SqliteStore, AProcesssWritersTakeTurnsUntilATransactionEnds) {
  TempDir dir;
  const std::string path = (dir.path() / "ferry.db").string();
  auto a = OpenStore(path);
  auto b = OpenStore(path);
  ASSERT_TRUE(a && b);
  ApplyWorkflowRequest req{"wf", "", "src", "yaml", "{}", "c", "", ""};
  auto wf = (*a)->ApplyWorkflow(req);
  ASSERT_TRUE(wf);
  CreateRunRequest run;
  run.workflow_id = wf->workflow.id;
  auto tx = (*a)->Begin();
  ASSERT_TRUE(tx);
  ASSERT_TRUE((*a)->CreateRun(run));
  std::atomic<bool> written{false};
  std::thread other([&] {
    EXPECT_TRUE((*b)->CreateRun(run));
    written = true;
  });
  auto turns = store_internal::WriteTurns::ForFile(path);
  ASSERT_TRUE(Eventually([&] { return turns->Waiters() == 1; }, std::chrono::seconds(10)));
  EXPECT_FALSE(written);
  ASSERT_TRUE((*tx)->Commit());
  other.join();
  EXPECT_TRUE(written);
  EXPECT_EQ(turns->Waiters(), 0u);
  EXPECT_EQ((*a)->ListRuns({})->runs.size(), 2u);
  // A transaction rolled back ends its turn too: the other store writes at once.
  {
    auto rolled = (*a)->Begin();
    ASSERT_TRUE(rolled);
    ASSERT_TRUE((*a)->CreateRun(run));
  }
  EXPECT_TRUE((*b)->CreateRun(run));
  EXPECT_EQ((*b)->ListRuns({})->runs.size(), 3u);
}

// Every statement with RETURNING builds its rows in an ephemeral table, which opens a page cache
// of its own. By default SQLite's first allocation for one is 20 pages at once (88 KB), which
// malloc gave back to the kernel after each statement: page faults and a TLB flush every time.
// Ferry's connections turn that bulk allocation off, so no allocation such statements make comes
// near it. (Run alone, as ctest runs each test: SQLite takes the setting only before its first
// use in the process.)
TEST(SqliteStore, AReturningStatementMakesNoBulkPageCacheAllocation) {
  TempDir dir;
  auto conn =
      store_internal::OpenSqliteConn((dir.path() / "a.db").string(), std::chrono::seconds(5));
  ASSERT_TRUE(conn) << conn.error().ToString();
  ASSERT_TRUE((*conn)->ExecScript(
      "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a')"));
  sqlite3_int64 now = 0;
  sqlite3_int64 largest = 0;
  ASSERT_EQ(sqlite3_status64(SQLITE_STATUS_MALLOC_SIZE, &now, &largest, /*resetFlag=*/1),
            SQLITE_OK);
  for (int i = 0; i < 3; ++i) {
    auto r = (*conn)->Exec("UPDATE t SET v = v || 'b' WHERE k = 1 RETURNING v", {});
    ASSERT_TRUE(r) << r.error().ToString();
    ASSERT_EQ(r->rows.size(), 1u);
  }
  ASSERT_EQ(sqlite3_status64(SQLITE_STATUS_MALLOC_SIZE, &now, &largest, 0), SQLITE_OK);
  EXPECT_GT(largest, 0) << "SQLite keeps no memory statistics here; nothing was measured";
  EXPECT_LT(largest, 10 * 4096) << "an allocation of " << largest << " bytes";
}

}  // namespace
}  // namespace ferry::testing
