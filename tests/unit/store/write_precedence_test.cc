// Write precedence across processes on one SQLite file (src/store/sqlite/write_precedence.h):
// a writer with it goes before writers without it that wait for the file, in any process.
#include "store/sqlite/write_precedence.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <string>

#include "harness.h"
#include "store/sqlite/sqlite_conn.h"

namespace ferry::store_internal {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Two connections' locks on one database's precedence file: `a` asks first in each test, `b`
// is the other.
class WritePrecedenceLocks : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(a && b); }

  testing::TempDir dir;
  const std::string db = (dir.path() / "a.db").string();
  std::unique_ptr<WritePrecedence> a = WritePrecedence::Open(db);
  std::unique_ptr<WritePrecedence> b = WritePrecedence::Open(db);
};

// A wish is seen by the others (not by its own holder) until it is withdrawn; with none, nobody
// waits. Two connections of one process see each other's too (each has its own descriptor).
TEST_F(WritePrecedenceLocks, AWishIsSeenByTheOthersUntilItIsWithdrawn) {
  EXPECT_FALSE(b->Claimed());
  EXPECT_FALSE(b->YieldTo(Clock::now() + 10s)) << "nobody asked: no wait";

  ASSERT_TRUE(a->Announce(Clock::now() + 10s));
  EXPECT_TRUE(b->Claimed());
  EXPECT_FALSE(a->Claimed()) << "its own wish does not hold it back";
  EXPECT_TRUE(b->Claimed()) << "asking its holder did not drop it";
  a->Withdraw();
  EXPECT_FALSE(b->Claimed());
  EXPECT_FALSE(b->YieldTo(Clock::now() + 10s));
}

// A second writer with precedence (b) waits for the first one's wish, until its own deadline.
TEST_F(WritePrecedenceLocks, TwoWishesQueue) {
  ASSERT_TRUE(a->Announce(Clock::now() + 10s));
  EXPECT_FALSE(b->Announce(Clock::now())) << "taken, and no time to wait";
  a->Withdraw();
  EXPECT_TRUE(b->Announce(Clock::now()));
  b->Withdraw();
}

// A wish never withdrawn (a's process stopped while asking) holds another connection for
// kMaxYield once, not for its whole busy timeout, and not again until it has been seen released;
// a new wish after that is yielded to again.
TEST_F(WritePrecedenceLocks, AWishNeverWithdrawnHoldsAnotherOnlyOnce) {
  ASSERT_TRUE(a->Announce(Clock::now() + 10s));
  const auto before = Clock::now();
  const auto deadline = before + 30s;
  EXPECT_TRUE(b->YieldTo(deadline));
  EXPECT_GE(Clock::now() - before, WritePrecedence::kMaxYield);
  EXPECT_LT(Clock::now(), deadline) << "it waited for its own deadline, not kMaxYield";
  EXPECT_FALSE(b->YieldTo(Clock::now() + 30s)) << "the same wish again: no wait";
  a->Withdraw();
  EXPECT_FALSE(b->YieldTo(Clock::now() + 30s));  // sees it released
  ASSERT_TRUE(a->Announce(Clock::now() + 10s));
  EXPECT_TRUE(b->YieldTo(Clock::now() + 30s)) << "a new wish is waited for again";
}

// A connection with precedence leaves the WAL's checkpoints to the others (ten times their
// threshold), so its commits do not copy the WAL into the database while an answer waits.
TEST(WritePrecedence, AConnectionWithPrecedenceCheckpointsLater) {
  testing::TempDir dir;
  const std::string db = (dir.path() / "a.db").string();
  for (const bool first : {false, true}) {
    auto conn = OpenSqliteConn(db, 5s, first);
    ASSERT_TRUE(conn) << conn.error().ToString();
    auto pages = (*conn)->Exec("PRAGMA wal_autocheckpoint", {});
    ASSERT_TRUE(pages) << pages.error().ToString();
    EXPECT_EQ(pages->rows.at(0).Text(0), first ? "10000" : "1000");
  }
}

// A writer without precedence that first waits for a wish (never withdrawn: a stopped server)
// and then for the file (held by a connection outside Ferry's turns) gives up after one busy
// timeout in all, not one for each wait.
TEST(WritePrecedence, YieldingAndWaitingForTheFileShareOneBusyTimeout) {
  testing::TempDir dir;
  const std::string db = (dir.path() / "a.db").string();
  {
    auto setup = OpenSqliteConn(db, 5s);  // creates the file in WAL mode
    ASSERT_TRUE(setup) << setup.error().ToString();
    ASSERT_TRUE((*setup)->ExecScript("CREATE TABLE t (k TEXT)"));
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> holder(raw, &sqlite3_close);
  ASSERT_EQ(sqlite3_exec(holder.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto wish = WritePrecedence::Open(db);
  ASSERT_TRUE(wish);
  ASSERT_TRUE(wish->Announce(Clock::now() + 10s));

  constexpr auto kTimeout = WritePrecedence::kMaxYield;  // each wait alone could take all of it
  auto writer = OpenSqliteConn(db, kTimeout);
  ASSERT_TRUE(writer) << writer.error().ToString();
  const auto before = Clock::now();
  auto st = (*writer)->BeginWrite();
  const auto waited = Clock::now() - before;
  ASSERT_FALSE(st) << "the file is held: the write cannot begin";
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable) << st.error().ToString();
  EXPECT_GE(waited, kTimeout) << "it gave up before its busy timeout";
  EXPECT_LT(waited, kTimeout * 3 / 2) << "the yield and the busy wait each took a timeout";
  (void)sqlite3_exec(holder.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

// Three other processes wait for a file this one holds: two without precedence (one in a write
// transaction, one with a single statement outside any) asked first, the one with it last. When
// the file is free, the one with precedence writes first. Four times, the one with precedence
// writing in a transaction and then with a single statement in turn: without precedence any of
// them could win, each time.
TEST(WritePrecedence, AWriterWithPrecedenceGoesBeforeOneThatAskedEarlier) {
  for (int trial = 0; trial < 4; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    testing::TempDir dir;
    const std::string db = (dir.path() / "a.db").string();
    auto holder = OpenSqliteConn(db, 30s);
    ASSERT_TRUE(holder) << holder.error().ToString();
    ASSERT_TRUE(
        (*holder)->ExecScript("CREATE TABLE t (n INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT)"));
    ASSERT_TRUE((*holder)->BeginWrite());
    ASSERT_TRUE((*holder)->Exec("INSERT INTO t (k) VALUES ('held')", {}));

    const auto start = [&](const std::string& mode) {
      testing::Process::Options o;
      o.argv = {SQLITE_WRITER_CHILD, db, mode, mode};
      return std::make_unique<testing::Process>(o);
    };
    auto other = start("other");
    ASSERT_TRUE(other->WaitForOutput("ready", 10s)) << other->Stderr();
    auto single = start("single");
    ASSERT_TRUE(single->WaitForOutput("ready", 10s)) << single->Stderr();
    auto first = start(trial % 2 == 0 ? "first" : "first-single");
    ASSERT_TRUE(first->WaitForOutput("ready", 10s)) << first->Stderr();
    auto watcher = WritePrecedence::Open(db);
    ASSERT_TRUE(watcher);
    ASSERT_TRUE(testing::Eventually([&] { return watcher->Claimed(); }, 10s))
        << "the writer with precedence never asked";
    ASSERT_TRUE((*holder)->Exec("COMMIT", {}));

    EXPECT_EQ(first->Wait(30s), std::optional<int>(0)) << first->Stderr();
    EXPECT_EQ(other->Wait(30s), std::optional<int>(0)) << other->Stderr();
    EXPECT_EQ(single->Wait(30s), std::optional<int>(0)) << single->Stderr();
    auto order = (*holder)->Exec("SELECT k FROM t ORDER BY n", {});
    ASSERT_TRUE(order);
    ASSERT_EQ(order->rows.size(), 4u);
    EXPECT_EQ(order->rows[0].Text(0), "held");
    EXPECT_EQ(order->rows[1].Text(0), trial % 2 == 0 ? "first" : "first-single");
  }
}

}  // namespace
}  // namespace ferry::store_internal
