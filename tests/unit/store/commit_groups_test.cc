// Commit groups (src/store/sqlite/commit_groups.h): one-commit writes of one process to one
// SQLite file that wait while the file is held go in one transaction, and each caller still gets
// exactly what its own transaction would have given it.
#include "store/sqlite/commit_groups.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "store/sql_counters.h"
#include "store/sqlite/sqlite_conn.h"

namespace ferry::store_internal {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;

std::unique_ptr<SqlConn> Open(const std::string& path,
                              std::chrono::milliseconds busy_timeout = 30s) {
  auto c = OpenSqliteConn(path, busy_timeout);
  if (!c) throw std::runtime_error("cannot open " + path + ": " + c.error().message);
  return std::move(*c);
}

std::string One(SqlConn& c, const std::string& sql) {
  auto r = c.Exec(sql, {});
  if (!r || r->rows.empty() || r->rows[0].IsNull(0)) return "(none)";
  return r->rows[0].Text(0);
}

SqlStatement Insert(const std::string& k) {
  return {"INSERT INTO t (k) VALUES ($1)", {SqlParam::Text(k)}};
}

// While another connection holds the file, four writers queue; when it commits, one of them
// runs all four in one transaction. The one whose second statement fails (a taken key) gets its
// error and leaves nothing; the other three get their own statements' results, committed.
TEST(CommitGroups, WritesThatWaitedShareOneCommitAndEachGetsItsOwnResult) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "a.db").string();
  auto holder = Open(path);
  ASSERT_TRUE(holder->ExecScript("CREATE TABLE t (k TEXT PRIMARY KEY)"));
  // Alone, a write is a transaction of its own.
  const auto alone = ReadSqlCounters().grouped;
  ASSERT_TRUE(Open(path)->ExecInOwnCommit({Insert("first")}));
  EXPECT_EQ(ReadSqlCounters().grouped, alone);

  ASSERT_TRUE(holder->BeginWrite());
  ASSERT_TRUE(holder->Exec("INSERT INTO t (k) VALUES ('taken')", {}));
  const std::vector<std::vector<SqlStatement>> writes = {
      {Insert("a"), {"SELECT count(*) FROM t", {}}},
      {Insert("b"), {"SELECT count(*) FROM t", {}}},
      {Insert("c"), Insert("taken")},  // fails at its second statement
      {Insert("d"), {"SELECT count(*) FROM t", {}}},
  };
  std::vector<std::unique_ptr<SqlConn>> conns;
  for (size_t i = 0; i < writes.size(); ++i) conns.push_back(Open(path));
  std::vector<Result<std::vector<SqlResult>>> results(writes.size(),
                                                      Fail(ErrorCode::kInternal, "not run"));
  std::vector<std::thread> threads;
  const auto groups = CommitGroups::ForFile(path);
  bool in_line = true;
  for (size_t i = 0; i < writes.size() && in_line; ++i) {
    threads.emplace_back([&, i] { results[i] = conns[i]->ExecInOwnCommit(writes[i]); });
    // In order: each is in line before the next starts.
    in_line = Eventually([&] { return groups->Waiting() == i + 1; }, 10s);
  }
  const auto before = ReadSqlCounters().grouped;
  EXPECT_TRUE(holder->Exec("COMMIT", {}));
  for (auto& t : threads) t.join();
  ASSERT_TRUE(in_line) << "the writers never all waited";

  ASSERT_FALSE(results[2]);
  EXPECT_EQ(results[2].error().code, ErrorCode::kConflict) << results[2].error().ToString();
  // Each saw the rows of those before it in the group: its own transaction, run in turn.
  ASSERT_TRUE(results[0]) << results[0].error().ToString();
  ASSERT_TRUE(results[1]) << results[1].error().ToString();
  ASSERT_TRUE(results[3]) << results[3].error().ToString();
  EXPECT_EQ((*results[0])[1].rows[0].Text(0), "3");  // first, taken, a
  EXPECT_EQ((*results[1])[1].rows[0].Text(0), "4");
  EXPECT_EQ((*results[3])[1].rows[0].Text(0), "5");  // c left nothing
  EXPECT_EQ(ReadSqlCounters().grouped - before, 2) << "three commits in one transaction";
  auto reader = Open(path);
  EXPECT_EQ(One(*reader, "SELECT group_concat(k, ',') FROM (SELECT k FROM t ORDER BY k)"),
            "a,b,d,first,taken");
  EXPECT_EQ(groups->Waiting(), 0u);
}

// A member whose failure ends the whole transaction (here INSERT OR ROLLBACK on a taken key, as
// SQLite does for a full disk) gets its error; the members before and after it lost nothing: they
// run again in a new transaction and are committed once each.
TEST(CommitGroups, AFailureThatEndsTheTransactionFailsOnlyItsOwnCaller) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "a.db").string();
  auto holder = Open(path);
  ASSERT_TRUE(holder->ExecScript("CREATE TABLE t (k TEXT PRIMARY KEY)"));
  ASSERT_TRUE(holder->BeginWrite());
  ASSERT_TRUE(holder->Exec("INSERT INTO t (k) VALUES ('taken')", {}));
  const std::vector<std::vector<SqlStatement>> writes = {
      {Insert("a")},
      {Insert("b"), {"INSERT OR ROLLBACK INTO t (k) VALUES ('taken')", {}}},
      {Insert("c")},
  };
  std::vector<std::unique_ptr<SqlConn>> conns;
  for (size_t i = 0; i < writes.size(); ++i) conns.push_back(Open(path));
  std::vector<Result<std::vector<SqlResult>>> results(writes.size(),
                                                      Fail(ErrorCode::kInternal, "not run"));
  std::vector<std::thread> threads;
  const auto groups = CommitGroups::ForFile(path);
  bool in_line = true;
  for (size_t i = 0; i < writes.size() && in_line; ++i) {
    threads.emplace_back([&, i] { results[i] = conns[i]->ExecInOwnCommit(writes[i]); });
    in_line = Eventually([&] { return groups->Waiting() == i + 1; }, 10s);
  }
  EXPECT_TRUE(holder->Exec("COMMIT", {}));
  for (auto& t : threads) t.join();
  ASSERT_TRUE(in_line) << "the writers never all waited";
  ASSERT_FALSE(results[1]);
  EXPECT_EQ(results[1].error().code, ErrorCode::kConflict) << results[1].error().ToString();
  EXPECT_TRUE(results[0]) << results[0].error().ToString();
  EXPECT_TRUE(results[2]) << results[2].error().ToString();
  EXPECT_EQ(One(*holder, "SELECT group_concat(k, ',') FROM (SELECT k FROM t ORDER BY k)"),
            "a,c,taken");
}

// A COMMIT that fails (here a deferred foreign key one member broke) fails every member it held,
// and commits nothing of any of them; the file is free again afterwards.
TEST(CommitGroups, ACommitThatFailsFailsEveryMemberAndCommitsNothing) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "a.db").string();
  auto holder = Open(path);
  ASSERT_TRUE(holder->ExecScript(
      "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (pid INTEGER REFERENCES p(id) "
      "DEFERRABLE INITIALLY DEFERRED)"));
  ASSERT_TRUE(holder->BeginWrite());
  auto good = Open(path);
  auto bad = Open(path);
  Result<std::vector<SqlResult>> good_r = Fail(ErrorCode::kInternal, "not run");
  Result<std::vector<SqlResult>> bad_r = Fail(ErrorCode::kInternal, "not run");
  const auto groups = CommitGroups::ForFile(path);
  std::thread g([&] { good_r = good->ExecInOwnCommit({{"INSERT INTO p (id) VALUES (1)", {}}}); });
  ASSERT_TRUE(Eventually([&] { return groups->Waiting() == 1; }, 10s));
  std::thread b([&] { bad_r = bad->ExecInOwnCommit({{"INSERT INTO c (pid) VALUES (99)", {}}}); });
  ASSERT_TRUE(Eventually([&] { return groups->Waiting() == 2; }, 10s));
  ASSERT_TRUE(holder->Exec("COMMIT", {}));
  g.join();
  b.join();
  ASSERT_FALSE(good_r);
  ASSERT_FALSE(bad_r);
  EXPECT_EQ(good_r.error().code, bad_r.error().code);
  EXPECT_EQ(One(*holder, "SELECT count(*) FROM p"), "0");
  EXPECT_EQ(One(*holder, "SELECT count(*) FROM c"), "0");
  EXPECT_FALSE(good->InTransaction());
  EXPECT_FALSE(bad->InTransaction());
  // Alone, the good one commits.
  ASSERT_TRUE(good->ExecInOwnCommit({{"INSERT INTO p (id) VALUES (1)", {}}}));
  EXPECT_EQ(One(*holder, "SELECT count(*) FROM p"), "1");
}

// A leader that cannot begin within its own busy timeout fails alone: the caller behind it keeps
// waiting with its own, leads the next group, and commits once the file is free.
TEST(CommitGroups, ALeaderThatCannotBeginFailsAloneAndTheNextInLineLeads) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "a.db").string();
  auto holder = Open(path);
  ASSERT_TRUE(holder->ExecScript("CREATE TABLE t (k TEXT PRIMARY KEY)"));
  ASSERT_TRUE(holder->BeginWrite());
  auto impatient = Open(path, 300ms);
  auto patient = Open(path);
  const auto groups = CommitGroups::ForFile(path);
  Result<std::vector<SqlResult>> first = Fail(ErrorCode::kInternal, "not run");
  Result<std::vector<SqlResult>> second = Fail(ErrorCode::kInternal, "not run");
  std::atomic<bool> first_done{false};
  std::thread a([&] {
    first = impatient->ExecInOwnCommit({Insert("a")});
    first_done = true;
  });
  const bool a_in_line = Eventually([&] { return groups->Waiting() == 1; }, 10s);
  std::thread b([&] { second = patient->ExecInOwnCommit({Insert("b")}); });
  const bool b_in_line = Eventually([&] { return groups->Waiting() == 2; }, 10s);
  const bool a_gave_up = Eventually([&] { return first_done.load(); }, 10s);
  // The patient one is still in line (now leading, waiting for the file).
  const size_t waiting_after = groups->Waiting();
  EXPECT_TRUE(holder->Exec("COMMIT", {}));
  a.join();
  b.join();
  ASSERT_TRUE(a_in_line);
  ASSERT_TRUE(b_in_line);
  ASSERT_TRUE(a_gave_up) << "the leader never gave up";
  EXPECT_EQ(waiting_after, 1u);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, ErrorCode::kUnavailable) << first.error().ToString();
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(One(*holder, "SELECT group_concat(k, ',') FROM t"), "b");
  EXPECT_EQ(groups->Waiting(), 0u);
}

// A caller not taken into a group by its own deadline leaves the line with kUnavailable, its
// statements never run, and the leader it waited behind still commits its own.
TEST(CommitGroups, AWaiterNotTakenByItsDeadlineLeavesTheLine) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "a.db").string();
  auto holder = Open(path);
  ASSERT_TRUE(holder->ExecScript("CREATE TABLE t (k TEXT PRIMARY KEY)"));
  ASSERT_TRUE(holder->BeginWrite());
  auto patient = Open(path);
  auto impatient = Open(path, 200ms);
  const auto groups = CommitGroups::ForFile(path);
  Result<std::vector<SqlResult>> leader = Fail(ErrorCode::kInternal, "not run");
  Result<std::vector<SqlResult>> waiter = Fail(ErrorCode::kInternal, "not run");
  std::atomic<bool> waiter_done{false};
  std::thread a([&] { leader = patient->ExecInOwnCommit({Insert("a")}); });
  const bool a_in_line = Eventually([&] { return groups->Waiting() == 1; }, 10s);
  std::thread b([&] {
    waiter = impatient->ExecInOwnCommit({Insert("b")});
    waiter_done = true;
  });
  const bool b_in_line =
      Eventually([&] { return groups->Waiting() == 2 || waiter_done.load(); }, 10s);
  const bool b_gave_up = Eventually([&] { return waiter_done.load(); }, 10s);
  const size_t waiting_after = groups->Waiting();
  EXPECT_TRUE(holder->Exec("COMMIT", {}));
  a.join();
  b.join();
  ASSERT_TRUE(a_in_line);
  ASSERT_TRUE(b_in_line);
  ASSERT_TRUE(b_gave_up) << "the waiter never gave up";
  EXPECT_EQ(waiting_after, 1u) << "the leader left the line too";
  ASSERT_FALSE(waiter);
  EXPECT_EQ(waiter.error().code, ErrorCode::kUnavailable) << waiter.error().ToString();
  ASSERT_TRUE(leader) << leader.error().ToString();
  EXPECT_EQ(One(*holder, "SELECT group_concat(k, ',') FROM t"), "a");
  EXPECT_EQ(groups->Waiting(), 0u);
}

// Many writers at once, each transaction inserting its own row and adding one to a shared
// counter: every one is applied exactly once, whether it led a group, joined one or ran alone.
TEST(CommitGroups, ManyWritersAtOnceLoseNothingAndApplyNothingTwice) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "a.db").string();
  auto setup = Open(path);
  ASSERT_TRUE(setup->ExecScript(
      "CREATE TABLE t (k TEXT PRIMARY KEY); CREATE TABLE n (v INTEGER); INSERT INTO n VALUES (0)"));
  constexpr int kThreads = 8;
  constexpr int kEach = 150;
  const auto before = ReadSqlCounters().grouped;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto c = Open(path);
      for (int j = 0; j < kEach; ++j) {
        auto r = c->ExecInOwnCommit(
            {Insert(std::to_string(i) + "-" + std::to_string(j)), {"UPDATE n SET v = v + 1", {}}});
        if (!r) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(One(*setup, "SELECT count(*) FROM t"), std::to_string(kThreads * kEach));
  EXPECT_EQ(One(*setup, "SELECT v FROM n"), std::to_string(kThreads * kEach));
  // Not asserted (it depends on the scheduler), said: how many shared a transaction.
  std::printf("%lld of %d commits went in another's transaction\n",
              static_cast<long long>(ReadSqlCounters().grouped - before), kThreads * kEach);
}

}  // namespace
}  // namespace ferry::store_internal
