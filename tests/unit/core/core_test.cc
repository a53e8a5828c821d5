#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/decimal.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/non_dumpable.h"
#include "core/redis_url.h"
#include "core/sleep.h"
#include "core/time_util.h"
#include "core/utf8.h"

namespace ferry {
namespace {

// In a child, so that the test process itself stays as it was.
TEST(NonDumpable, MarksTheProcess) {
  if (!MarkingNonDumpableWorks()) GTEST_SKIP() << "sanitizer build: not marked";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (IsNonDumpable()) _exit(10);  // dumpable to begin with
    MarkNonDumpable();
    MarkNonDumpable();  // idempotent
    _exit(IsNonDumpable() ? 0 : 11);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(RedisUrl, ParsesHostPortPasswordDb) {
  auto ep = ParseRedisUrl("redis://:s3cret@10.0.0.5:6380/2");
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->host, "10.0.0.5");
  EXPECT_EQ(ep->port, 6380);
  EXPECT_EQ(ep->password, "s3cret");
  EXPECT_EQ(ep->username, "");
  EXPECT_EQ(ep->db, 2);
}

TEST(RedisUrl, ParsesUserAndDefaults) {
  auto ep = ParseRedisUrl("redis://alice:p%40ss@redis");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->username, "alice");
  EXPECT_EQ(ep->password, "p@ss");
  EXPECT_EQ(ep->port, 6379);
  EXPECT_EQ(ep->db, 0);
}

TEST(RedisUrl, RejectsBadInput) {
  EXPECT_FALSE(ParseRedisUrl("http://x"));
  EXPECT_FALSE(ParseRedisUrl("redis://host:notaport"));
  EXPECT_FALSE(ParseRedisUrl("redis://host:70000"));
  EXPECT_FALSE(ParseRedisUrl("redis://host/abc"));
  auto err = ParseRedisUrl("redis://:topsecret@host:x");
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().message.find("topsecret"), std::string::npos);
}

TEST(RedisUrl, MasksPasswords) {
  EXPECT_EQ(MaskRedisUrl("redis://:s3cret@h:1/0"), "redis://:****@h:1/0");
  EXPECT_EQ(MaskRedisUrl("redis://s3cret@h:1/0"), "redis://****@h:1/0");
  EXPECT_EQ(MaskRedisUrl("redis://bob:s3cret@h:1"), "redis://bob:****@h:1");
  EXPECT_EQ(MaskRedisUrl("redis://h:1"), "redis://h:1");
}

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(ParseDuration("250ms")->count(), 250);
  EXPECT_EQ(ParseDuration("30s")->count(), 30000);
  EXPECT_EQ(ParseDuration("1.5")->count(), 1500);
  EXPECT_EQ(ParseDuration("2m")->count(), 120000);
  EXPECT_EQ(ParseDuration("1h")->count(), 3600000);
  EXPECT_FALSE(ParseDuration("abc"));
  EXPECT_FALSE(ParseDuration("5 parsecs"));
  EXPECT_FALSE(ParseDuration(""));
}

TEST(Duration, TheNumberIsAPlainDecimal) {
  EXPECT_EQ(ParseDuration(".5s")->count(), 500);
  EXPECT_EQ(ParseDuration("2.s")->count(), 2000);
  for (const char* bad : {"1.2.3s", ".s", "1e3ms", "0x10s", "nan", "infs"}) {
    EXPECT_FALSE(ParseDuration(bad)) << bad;
  }
}

TEST(Decimal, DigitsWithAtMostOnePoint) {
  EXPECT_EQ(ParseDecimal("0.5"), 0.5);
  EXPECT_EQ(ParseDecimal("10"), 10.0);
  EXPECT_EQ(ParseDecimal(".25"), 0.25);
  EXPECT_EQ(ParseDecimal("1."), 1.0);
  EXPECT_EQ(ParseDecimal("0"), 0.0);
  // What strtod would take besides, and what it would leave a range check blind to (NaN).
  for (const char* bad : {"", ".", "nan", "NaN", "inf", "-inf", "infinity", " 0.5", "0.5 ", "+0.5",
                          "-0", "-0.5", "0x1p-3", "0x10", "1e-1", "1E2", "1.2.3", "1,5", "0.5%"}) {
    EXPECT_FALSE(ParseDecimal(bad)) << "'" << bad << "'";
  }
  // Past double's range: refused, not infinity.
  EXPECT_FALSE(ParseDecimal(std::string(400, '9')));
  EXPECT_TRUE(ParseDecimal(std::string(300, '9')));
}

TEST(Ids, AreUniqueSortableAndWellFormed) {
  std::set<std::string> seen;
  std::string prev;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewId(1'700'000'000'000 + i);
    EXPECT_TRUE(LooksLikeId(id)) << id;
    EXPECT_GT(id, prev);
    prev = id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_FALSE(LooksLikeId("not-an-id"));
}

TEST(Backoff, GrowsExponentiallyWithinJitterAndCap) {
  BackoffPolicy p{std::chrono::milliseconds(1000), std::chrono::milliseconds(10000)};
  EXPECT_EQ(BackoffDelay(p, 1, 0.0).count(), 500);
  EXPECT_EQ(BackoffDelay(p, 1, 1.0).count(), 1000);
  EXPECT_EQ(BackoffDelay(p, 3, 1.0).count(), 4000);
  EXPECT_EQ(BackoffDelay(p, 10, 1.0).count(), 10000);
  EXPECT_EQ(BackoffDelay(p, 10, 0.0).count(), 5000);
  for (int i = 0; i < 100; ++i) {
    auto d = BackoffDelay(p, 2).count();
    EXPECT_GE(d, 1000);
    EXPECT_LE(d, 2000);
  }
}

TEST(Json, MalformedIsAnErrorNotAThrow) {
  auto r = ParseJson("{\"a\": ");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ParseJson("{\"a\": [1,2]}"));
}

TEST(Time, FormatsUtc) {
  EXPECT_EQ(FormatIsoMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatHumanUtc(1771324215000), "2026-02-17 10:30:15 UTC");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(350)), "350ms");
}

// What code reading time through a Clock& (leases, cron, retention) sees from a FakeClock: the
// fake time, which moves only when a test moves it, exactly, from any thread.
TEST(FakeClock, ReadersThroughTheInterfaceSeeOnlyWhatTheTestSets) {
  FakeClock fake(1000);
  const Clock& clock = fake;
  EXPECT_EQ(clock.NowMs(), 1000);
  EXPECT_EQ(clock.Now(), SystemTime(Millis(1000)));
  const int64_t first = clock.NowMs();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(clock.NowMs(), first) << "moved by itself";
  fake.Advance(Millis(500));
  EXPECT_EQ(clock.NowMs(), 1500);
  EXPECT_EQ(clock.Now(), SystemTime(Millis(1500)));
  fake.SetMs(200);  // back in time: a test of clock skew
  EXPECT_EQ(clock.NowMs(), 200);
  EXPECT_EQ(FakeClock().NowMs(), 1'700'000'000'000);

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) fake.Advance(Millis(1));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(clock.NowMs(), 200 + 4000);
}

TEST(SystemClock, FollowsTheSystemClock) {
  const Clock& clock = SystemClock::Instance();
  auto ms = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
  };
  const int64_t before = ms(std::chrono::system_clock::now());
  const int64_t now = clock.NowMs();
  const int64_t after = ms(std::chrono::system_clock::now());
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

// A stop ends an hour's sleep (the test would time out otherwise) and the answer says it did.
TEST(SleepForTest, AStopEndsTheSleepAndSaysSo) {
  std::stop_source source;
  std::thread stopper([&] { source.request_stop(); });
  EXPECT_FALSE(SleepFor(source.get_token(), std::chrono::hours(1)));
  stopper.join();
}

TEST(SleepForTest, NoStopMeansTrueAndNothingToSleepIsNoSleep) {
  std::stop_source source;
  EXPECT_TRUE(SleepFor(source.get_token(), std::chrono::milliseconds(1)));
  EXPECT_TRUE(SleepFor(source.get_token(), std::chrono::milliseconds(0)));
  EXPECT_TRUE(SleepFor(source.get_token(), std::chrono::milliseconds(-5)));
  source.request_stop();
  // Stopped before the call: false at once, whatever the duration.
  EXPECT_FALSE(SleepFor(source.get_token(), std::chrono::milliseconds(0)));
  EXPECT_FALSE(SleepFor(source.get_token(), std::chrono::hours(1)));
}

// Bytes of a character cut at either end: 1-, 2-, 3- and 4-byte characters, whole and split.
TEST(Utf8, FindsTheBytesOfACharacterCutAtEitherEnd) {
  EXPECT_EQ(Utf8UnfinishedTail(""), 0u);
  EXPECT_EQ(Utf8UnfinishedTail("abc"), 0u);
  EXPECT_EQ(Utf8UnfinishedTail("a\xC3\xA9"), 0u);     // é whole
  EXPECT_EQ(Utf8UnfinishedTail("a\xC3"), 1u);         // é's first byte
  EXPECT_EQ(Utf8UnfinishedTail("\xE2\x82"), 2u);      // two of €'s three
  EXPECT_EQ(Utf8UnfinishedTail("\xE2\x82\xAC"), 0u);  // € whole
  EXPECT_EQ(Utf8UnfinishedTail("\xF0\x9F\x98"), 3u);  // three of 😀's four
  EXPECT_EQ(Utf8UnfinishedTail("\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(Utf8UnfinishedTail("\x82\xAC"), 0u);  // no lead byte within reach: left as is
  EXPECT_EQ(Utf8OrphanHead("abc"), 0u);
  EXPECT_EQ(Utf8OrphanHead("\xAC!"), 1u);
  EXPECT_EQ(Utf8OrphanHead("\x9F\x98\x80x"), 3u);
  EXPECT_EQ(Utf8OrphanHead("\x80\x80\x80\x80"), 3u);  // at most one character's rest
  EXPECT_EQ(Utf8OrphanHead("\xE2\x82\xAC"), 0u);
  EXPECT_EQ(Utf8Tail("abc", 3), "abc");
  EXPECT_EQ(Utf8Tail("abc", 2), "bc");
  EXPECT_EQ(Utf8Tail("a\xE2\x82\xAC"
                     "b",
                     3),
            "b");  // the split euro sign goes whole
  EXPECT_EQ(Utf8Tail("a\xE2\x82\xAC"
                     "b",
                     4),
            "\xE2\x82\xAC"
            "b");
}

TEST(Utf8, ShowsBytesThatAreNotUtf8AsTheReplacementCharacter) {
  EXPECT_EQ(Utf8Shown("caf\xC3\xA9"), "caf\xC3\xA9");  // UTF-8 throughout: as it was
  EXPECT_EQ(Utf8Shown(""), "");
  EXPECT_EQ(Utf8Shown("a\xFF"
                      "b\xFE"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_EQ(Utf8Shown("\xC3("), "\xEF\xBF\xBD(");  // a lead not continued: the lead alone
  EXPECT_EQ(Utf8Shown("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short: each byte
}

TEST(Utf8, FindsTheFirstByteThatIsNotUtf8) {
  for (std::string_view ok : {"", "plain", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                              "\xED\x9F\xBF",         // U+D7FF, just below the surrogates
                              "\xEE\x80\x80",         // U+E000, just above them
                              "\xF4\x8F\xBF\xBF"}) {  // U+10FFFF, the last
    EXPECT_EQ(Utf8FirstInvalid(ok), std::nullopt) << ok;
  }
  EXPECT_EQ(Utf8FirstInvalid("ab\xFF"), 2u);
  EXPECT_EQ(Utf8FirstInvalid("\x80"), 0u);                    // a continuation without a lead
  EXPECT_EQ(Utf8FirstInvalid("a\xC3"), 1u);                   // cut short
  EXPECT_EQ(Utf8FirstInvalid("\xC3("), 0u);                   // not continued
  EXPECT_EQ(Utf8FirstInvalid("\xC0\xAF"), 0u);                // overlong '/'
  EXPECT_EQ(Utf8FirstInvalid("\xE0\x9F\xBF"), 0u);            // overlong
  EXPECT_EQ(Utf8FirstInvalid("\xED\xA0\x80"), 0u);            // U+D800, a surrogate
  EXPECT_EQ(Utf8FirstInvalid("\xF0\x8F\xBF\xBF"), 0u);        // overlong
  EXPECT_EQ(Utf8FirstInvalid("x\xF4\x90\x80\x80"), 1u);       // U+110000, one past the last
  EXPECT_EQ(Utf8FirstInvalid("\xE2\x82\xACok\xE2\x82"), 5u);  // the second € cut short
}

}  // namespace
}  // namespace ferry
