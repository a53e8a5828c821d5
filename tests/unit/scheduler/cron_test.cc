// Table tests for the cron library: parsing (valid and invalid), next-fire times across DST
// transitions in several zones, month ends, leap days, L/W/#, the Vixie rule, seconds, @every.
#include "cron/cron.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ferry::cron {
namespace {

using ::testing::HasSubstr;

const date::time_zone* Zone(const std::string& name) {
  auto tz = LocateZone(name);
  EXPECT_TRUE(tz) << tz.error().message;
  return tz ? *tz : nullptr;
}

SystemTime At(const std::string& iso) {
  auto t = ParseIso8601(iso, nullptr);
  EXPECT_TRUE(t) << t.error().message;
  return t ? *t : SystemTime{};
}

std::vector<std::string> Next(const std::string& expr, const std::string& zone,
                              const std::string& after, int count,
                              const std::string& anchor = "1970-01-01T00:00:00Z") {
  auto schedule = CronSchedule::Parse(expr);
  EXPECT_TRUE(schedule) << expr << ": " << schedule.error().message;
  if (!schedule) return {};
  const date::time_zone* tz = zone.empty() ? nullptr : Zone(zone);
  std::vector<std::string> out;
  for (SystemTime t : NextN(*schedule, At(after), tz, count, At(anchor))) {
    out.push_back(FormatIso8601(t, tz));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct InvalidCase {
  const char* expr;
  const char* message;  // a substring the error must contain
};

class CronParseInvalid : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(CronParseInvalid, RejectsWithFieldAndPosition) {
  const InvalidCase& c = GetParam();
  auto s = CronSchedule::Parse(c.expr);
  ASSERT_FALSE(s) << "accepted: " << c.expr;
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.error().message, HasSubstr(c.message)) << c.expr;
}

INSTANTIATE_TEST_SUITE_P(
    Table, CronParseInvalid,
    ::testing::Values(
        InvalidCase{"0 0 32 * *",
                    "day-of-month field (field 3), position 5: value 32 out of range 1-31"},
        InvalidCase{"60 * * * *", "minute field (field 1), position 1: value 60 out of range 0-59"},
        InvalidCase{"* 24 * * *", "hour field (field 2), position 3: value 24 out of range 0-23"},
        InvalidCase{"0 0 1 13 *", "month field (field 4), position 7: value 13 out of range 1-12"},
        InvalidCase{"0 0 1 0 *", "month field (field 4), position 7: value 0 out of range 1-12"},
        InvalidCase{"0 0 * * 8",
                    "day-of-week field (field 5), position 9: value 8 out of range 0-7"},
        InvalidCase{"0 0 0 0 * *", "day-of-month field (field 4), position 7: value 0"},
        InvalidCase{"60 0 0 * * *", "second field (field 1), position 1: value 60"},
        InvalidCase{"0 0 1,,2 * *", "day-of-month field (field 3), position 7: empty list element"},
        InvalidCase{"0 0 1, * *", "day-of-month field (field 3), position 7: empty list element"},
        InvalidCase{"*/0 * * * *", "minute field (field 1), position 3: step 0 out of range 1-60"},
        InvalidCase{"*/61 * * * *", "minute field (field 1), position 3: step 61 out of range"},
        InvalidCase{"0 0 1-5/ * *", "day-of-month field (field 3), position 9: '/' must be"},
        InvalidCase{"0 0 * JANUARY *", "month field (field 4), position 7: unknown name 'JANUARY'"},
        InvalidCase{"0 0 * * MON-FOO", "day-of-week field (field 5), position 13: unknown name"},
        InvalidCase{"a * * * *", "minute field (field 1), position 1: names are not allowed"},
        InvalidCase{"0 0 0 MON * *", "day-of-month field (field 4), position 7: names are not"},
        InvalidCase{"5-1 * * * *", "minute field (field 1), position 1: range 5-1 is reversed"},
        InvalidCase{"1-2-3 * * * *",
                    "minute field (field 1), position 4: unexpected character '-'"},
        InvalidCase{"0 0 15X * *", "day-of-month field (field 3), position 7: unexpected"},
        InvalidCase{"0 0 L-31 * *",
                    "day-of-month field (field 3), position 7: value 31 out of range 0-30"},
        InvalidCase{"0 0 L-x * *", "day-of-month field (field 3), position 7: 'L-' must be"},
        InvalidCase{"0 0 LX * *", "day-of-month field (field 3), position 5: 'L' must stand"},
        InvalidCase{"0 0 32W * *", "day-of-month field (field 3), position 5: value 32"},
        InvalidCase{"0 0 * * 1#6",
                    "day-of-week field (field 5), position 11: occurrence 6 out of range 1-5"},
        InvalidCase{"0 0 * * 1#", "day-of-week field (field 5), position 11: '#' must be"},
        InvalidCase{"0 0 * * 9L", "day-of-week field (field 5), position 9: value 9"},
        InvalidCase{"0 0 * * L", "day-of-week field (field 5), position 9: 'L' alone"},
        InvalidCase{"? 0 * * *", "minute field (field 1), position 1: '?' is only allowed"},
        InvalidCase{"0 0 * *", "expected 5 fields"}, InvalidCase{"0 0 0 * * * *", "got 7"},
        InvalidCase{"", "empty cron expression"}, InvalidCase{"   ", "empty cron expression"},
        InvalidCase{"0 0 30 2 *", "day-of-month field (field 3), position 5: the schedule never"},
        InvalidCase{"0 0 31 4,6,9,11 *", "never fires"},
        InvalidCase{"0 0 0 30 FEB ?", "day-of-month field (field 4), position 7: the schedule"},
        InvalidCase{"0 0 31W 2 *", "never fires"},
        InvalidCase{"@reboot", "position 1: unknown macro '@reboot'"},
        InvalidCase{"@daily 5", "position 8: @daily takes no further fields"},
        InvalidCase{"@every", "@every takes exactly one duration"},
        InvalidCase{"@every 0s", "interval must be positive"},
        InvalidCase{"@every 5x", "@every duration, position 9: unknown unit 'x'"},
        InvalidCase{"@every 90", "@every duration, position 10: missing unit"},
        InvalidCase{"@every 100ms", "sub-second intervals are not supported"},
        InvalidCase{"@every m5", "position 8: expected a number"},
        InvalidCase{"@every 1h 30m", "exactly one duration"}));

TEST(CronParse, RejectsOverlongExpressions) {
  auto s = CronSchedule::Parse(std::string(2000, '1'));
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("longer than"));
}

TEST(CronParse, NeverThrows) {
  // Garbage of every shape comes back as an error value.
  for (const char* expr : {"*/", "-", "-1 * * * *", "1- * * * *", ",", "@", "@every 1h-",
                           "0 0 # * *", "0 0 * * #", "0 0 * * #1", "0 0 W * *", "0 0 * * FRI#",
                           "99999999999 * * * *", "0 0 * * SUNX", "0 0 1/0 * *"}) {
    auto s = CronSchedule::Parse(expr);
    EXPECT_FALSE(s) << expr;
  }
}

TEST(CronParse, AcceptsTheSyntax) {
  for (const char* expr : {"* * * * *",
                           "*/5 * * * *",
                           "1-30/7 * * * *",
                           "5/10 * * * *",
                           "0,15,30,45 * * * *",
                           "0 0 ? * MON",
                           "0 0 ? * *",
                           "0 0 * jan-mar mon-fri",
                           "0 0 * * 7",
                           "0 0 * * 0-7",
                           "0 0 * * SAT-SUN",
                           "0 0 * * 5-0",
                           "0 0 L * *",
                           "0 0 L-3 * *",
                           "0 0 15W * *",
                           "0 0 LW * *",
                           "0 0 1,L,15W * *",
                           "0 0 * * 5L",
                           "0 0 * * FRIL",
                           "0 0 * * fri#3",
                           "0 0 * * 1#2,5L",
                           "0 0 30 2 MON",
                           "0 0 29 2 *",
                           "0 0 * * 5#5",
                           "*/10 * * * * *",
                           "@yearly",
                           "@annually",
                           "@monthly",
                           "@weekly",
                           "@daily",
                           "@midnight",
                           "@hourly",
                           "@DAILY",
                           "@every 90s",
                           "@every 1h30m",
                           "@every 2d",
                           "  0\t0  * * *  "}) {
    auto s = CronSchedule::Parse(expr);
    EXPECT_TRUE(s) << expr << ": " << (s ? "" : s.error().message);
  }
}

TEST(CronParse, Accessors) {
  auto five = CronSchedule::Parse("*/5 * * * *");
  ASSERT_TRUE(five);
  EXPECT_FALSE(five->has_seconds_field());
  EXPECT_FALSE(five->is_interval());
  EXPECT_TRUE(five->fires_every_hour());
  EXPECT_EQ(five->expression(), "*/5 * * * *");

  auto six = CronSchedule::Parse("0 30 2 * * *");
  ASSERT_TRUE(six);
  EXPECT_TRUE(six->has_seconds_field());
  EXPECT_FALSE(six->fires_every_hour());

  auto every = CronSchedule::Parse("@every 1h30m15s");
  ASSERT_TRUE(every);
  EXPECT_TRUE(every->is_interval());
  EXPECT_EQ(every->interval(), std::chrono::seconds(5415));
}

TEST(CronParse, MatchesLocalTimes) {
  auto s = CronSchedule::Parse("30 9 * * MON-FRI");
  ASSERT_TRUE(s);
  using namespace std::chrono_literals;
  const date::local_days monday{date::year{2026} / 3 / 2};
  EXPECT_TRUE(s->Matches(monday + 9h + 30min));
  EXPECT_FALSE(s->Matches(monday + 9h + 30min + 1s));
  EXPECT_FALSE(s->Matches(monday + date::days{5} + 9h + 30min));  // Saturday
}

// ---------------------------------------------------------------------------------------------
// Next-fire tables

struct NextCase {
  const char* expr;
  const char* zone;  // "" = UTC (nullptr)
  const char* after;
  std::vector<std::string> expected;
};

class CronNext : public ::testing::TestWithParam<NextCase> {};

TEST_P(CronNext, Table) {
  const NextCase& c = GetParam();
  EXPECT_EQ(Next(c.expr, c.zone, c.after, static_cast<int>(c.expected.size())), c.expected)
      << c.expr << " in " << (*c.zone ? c.zone : "UTC") << " after " << c.after;
}

// Fields and macros, in UTC.
INSTANTIATE_TEST_SUITE_P(
    Basics, CronNext,
    ::testing::Values(
        NextCase{"*/15 * * * *",
                 "",
                 "2026-01-01T00:07:00Z",
                 {"2026-01-01T00:15:00+00:00", "2026-01-01T00:30:00+00:00",
                  "2026-01-01T00:45:00+00:00", "2026-01-01T01:00:00+00:00"}},
        // Strictly after: a fire time equal to `after` is not returned.
        NextCase{"0 * * * *", "", "2026-01-01T01:00:00Z", {"2026-01-01T02:00:00+00:00"}},
        NextCase{"0 * * * *", "", "2026-01-01T00:59:59.999Z", {"2026-01-01T01:00:00+00:00"}},
        NextCase{"1-30/7 3 * * *",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-01T03:01:00+00:00", "2026-01-01T03:08:00+00:00",
                  "2026-01-01T03:15:00+00:00", "2026-01-01T03:22:00+00:00",
                  "2026-01-01T03:29:00+00:00", "2026-01-02T03:01:00+00:00"}},
        NextCase{"5/20 0 * * *",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-01T00:05:00+00:00", "2026-01-01T00:25:00+00:00",
                  "2026-01-01T00:45:00+00:00", "2026-01-02T00:05:00+00:00"}},
        NextCase{"0 12 * JAN,jul *",
                 "",
                 "2026-01-31T13:00:00Z",
                 {"2026-07-01T12:00:00+00:00", "2026-07-02T12:00:00+00:00"}},
        NextCase{"0 0 * * 7",  // 7 is Sunday; 2026-01-04 is a Sunday
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"}},
        NextCase{"0 0 * * SAT-SUN",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00",
                  "2026-01-10T00:00:00+00:00"}},
        NextCase{"0 0 * * 5-7",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00",
                  "2026-01-04T00:00:00+00:00", "2026-01-09T00:00:00+00:00"}},
        NextCase{"@yearly", "", "2026-05-01T00:00:00Z", {"2027-01-01T00:00:00+00:00"}},
        NextCase{"@annually", "", "2026-12-31T23:59:59Z", {"2027-01-01T00:00:00+00:00"}},
        NextCase{"@monthly",
                 "",
                 "2026-01-15T00:00:00Z",
                 {"2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"}},
        NextCase{"@weekly", "", "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00+00:00"}},
        NextCase{"@daily", "", "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00+00:00"}},
        NextCase{"@midnight", "", "2026-01-01T10:00:00Z", {"2026-01-02T00:00:00+00:00"}},
        NextCase{"@hourly", "", "2026-01-01T10:00:00Z", {"2026-01-01T11:00:00+00:00"}},
        NextCase{"59 23 31 12 *", "", "2026-01-01T00:00:00Z", {"2026-12-31T23:59:00+00:00"}}));

// Month ends, leap days, L / W / #.
INSTANTIATE_TEST_SUITE_P(
    Calendar, CronNext,
    ::testing::Values(
        NextCase{"0 0 29 2 *",
                 "",
                 "2025-01-01T00:00:00Z",
                 {"2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00",
                  "2036-02-29T00:00:00+00:00"}},
        // 2100 is not a leap year.
        NextCase{"0 0 29 2 *", "", "2096-03-01T00:00:00Z", {"2104-02-29T00:00:00+00:00"}},
        // 31 skips 30-day months and February.
        NextCase{
            "0 0 31 * *",
            "",
            "2026-01-31T00:00:00Z",
            {"2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00",
             "2026-08-31T00:00:00+00:00", "2026-10-31T00:00:00+00:00"}},
        NextCase{"0 0 L * *",
                 "",
                 "2026-01-15T00:00:00Z",
                 {"2026-01-31T00:00:00+00:00", "2026-02-28T00:00:00+00:00",
                  "2026-03-31T00:00:00+00:00", "2026-04-30T00:00:00+00:00"}},
        NextCase{"0 0 L 2 *",
                 "",
                 "2027-03-01T00:00:00Z",
                 {"2028-02-29T00:00:00+00:00", "2029-02-28T00:00:00+00:00"}},
        NextCase{"0 0 L-3 * *",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-28T00:00:00+00:00", "2026-02-25T00:00:00+00:00",
                  "2026-03-28T00:00:00+00:00"}},
        // 2026: Jan 15 Thu; Feb 15 and Mar 15 Sun -> Mon 16; Aug 15 Sat -> Fri 14.
        NextCase{
            "0 0 15W * *",
            "",
            "2026-01-01T00:00:00Z",
            {"2026-01-15T00:00:00+00:00", "2026-02-16T00:00:00+00:00", "2026-03-16T00:00:00+00:00",
             "2026-04-15T00:00:00+00:00", "2026-05-15T00:00:00+00:00", "2026-06-15T00:00:00+00:00",
             "2026-07-15T00:00:00+00:00", "2026-08-14T00:00:00+00:00"}},
        // W does not cross the month: Aug 1 2026 is a Saturday -> Monday the 3rd;
        // May 31 2026 is a Sunday -> Friday the 29th.
        NextCase{"0 0 1W 8 *", "", "2026-01-01T00:00:00Z", {"2026-08-03T00:00:00+00:00"}},
        NextCase{"0 0 31W 5 *", "", "2026-01-01T00:00:00Z", {"2026-05-29T00:00:00+00:00"}},
        // 31W in 30-day months selects nothing.
        NextCase{"0 0 31W 4,5 *", "", "2026-01-01T00:00:00Z", {"2026-05-29T00:00:00+00:00"}},
        NextCase{
            "0 0 LW * *",
            "",
            "2026-01-01T00:00:00Z",
            {"2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00", "2026-03-31T00:00:00+00:00",
             "2026-04-30T00:00:00+00:00", "2026-05-29T00:00:00+00:00"}},
        NextCase{"0 0 * * 5L",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00",
                  "2026-03-27T00:00:00+00:00"}},
        NextCase{"0 0 * * FRIL", "", "2026-01-01T00:00:00Z", {"2026-01-30T00:00:00+00:00"}},
        NextCase{"0 0 * * 1#2",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-12T00:00:00+00:00", "2026-02-09T00:00:00+00:00",
                  "2026-03-09T00:00:00+00:00"}},
        NextCase{"0 0 * * FRI#3",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-16T00:00:00+00:00", "2026-02-20T00:00:00+00:00"}},
        // A fifth Friday exists only in some months.
        NextCase{"0 0 * * 5#5",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-30T00:00:00+00:00", "2026-05-29T00:00:00+00:00",
                  "2026-07-31T00:00:00+00:00"}},
        // A fifth Friday in February needs a leap year whose Feb 1 is a Friday: 2036, then 2064.
        NextCase{"0 0 ? 2 5#5",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2036-02-29T00:00:00+00:00", "2064-02-29T00:00:00+00:00"}},
        NextCase{"0 0 * * 1#2,5L",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-12T00:00:00+00:00", "2026-01-30T00:00:00+00:00",
                  "2026-02-09T00:00:00+00:00"}}));

// The Vixie rule.
INSTANTIATE_TEST_SUITE_P(
    Vixie, CronNext,
    ::testing::Values(
        // Both restricted: the 1st OR any Monday (2026-02-01 is a Sunday).
        NextCase{
            "0 0 1 * MON",
            "",
            "2026-01-31T00:00:00Z",
            {"2026-02-01T00:00:00+00:00", "2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00",
             "2026-02-16T00:00:00+00:00", "2026-02-23T00:00:00+00:00", "2026-03-01T00:00:00+00:00",
             "2026-03-02T00:00:00+00:00"}},
        // Friday the 13th is not an AND: every 13th and every Friday.
        NextCase{"0 0 13 * FRI",
                 "",
                 "2026-02-01T00:00:00Z",
                 {"2026-02-06T00:00:00+00:00", "2026-02-13T00:00:00+00:00",
                  "2026-02-20T00:00:00+00:00", "2026-02-27T00:00:00+00:00",
                  "2026-03-06T00:00:00+00:00", "2026-03-13T00:00:00+00:00"}},
        // Only day-of-week restricted (`*` or `?` or `*/1` in day-of-month).
        NextCase{"0 0 * * MON",
                 "",
                 "2026-01-31T00:00:00Z",
                 {"2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00"}},
        NextCase{"0 0 ? * MON", "", "2026-01-31T00:00:00Z", {"2026-02-02T00:00:00+00:00"}},
        NextCase{"0 0 */1 * MON", "", "2026-01-31T00:00:00Z", {"2026-02-02T00:00:00+00:00"}},
        // Only day-of-month restricted.
        NextCase{"0 0 1 * ?",
                 "",
                 "2026-01-31T00:00:00Z",
                 {"2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"}},
        // `*/10` is a restriction (unlike Vixie's first-character test): OR with Mondays.
        NextCase{"0 0 */10 * MON",
                 "",
                 "2026-01-31T00:00:00Z",
                 {"2026-02-01T00:00:00+00:00", "2026-02-02T00:00:00+00:00",
                  "2026-02-09T00:00:00+00:00", "2026-02-11T00:00:00+00:00",
                  "2026-02-16T00:00:00+00:00", "2026-02-21T00:00:00+00:00"}},
        // Day-of-month OR nth weekday: the 13th, or the second Monday.
        NextCase{"0 0 13 * 1#2",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-12T00:00:00+00:00", "2026-01-13T00:00:00+00:00",
                  "2026-02-09T00:00:00+00:00", "2026-02-13T00:00:00+00:00"}}));

// Seconds field and @every (anchored at the Unix epoch unless stated).
INSTANTIATE_TEST_SUITE_P(
    SecondsAndEvery, CronNext,
    ::testing::Values(
        NextCase{"*/15 * * * * *",
                 "",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-01T00:00:15+00:00", "2026-01-01T00:00:30+00:00",
                  "2026-01-01T00:00:45+00:00", "2026-01-01T00:01:00+00:00"}},
        NextCase{"30 0 12 * * *",
                 "",
                 "2026-01-01T12:00:30Z",
                 {"2026-01-02T12:00:30+00:00", "2026-01-03T12:00:30+00:00"}},
        NextCase{"0-10/5 59 23 31 12 *",
                 "",
                 "2026-06-01T00:00:00Z",
                 {"2026-12-31T23:59:00+00:00", "2026-12-31T23:59:05+00:00",
                  "2026-12-31T23:59:10+00:00", "2027-12-31T23:59:00+00:00"}},
        NextCase{"@every 90s",
                 "",
                 "2026-01-01T00:02:00Z",
                 {"2026-01-01T00:03:00+00:00", "2026-01-01T00:04:30+00:00",
                  "2026-01-01T00:06:00+00:00"}},
        // @every ignores wall-clock changes: every 5 minutes of elapsed time through fall-back.
        NextCase{"@every 5m",
                 "America/New_York",
                 "2026-11-01T05:52:00Z",
                 {"2026-11-01T01:55:00-04:00", "2026-11-01T01:00:00-05:00",
                  "2026-11-01T01:05:00-05:00"}}));

TEST(CronEvery, AnchorSetsThePhase) {
  EXPECT_EQ(Next("@every 1h30m", "", "2026-01-01T00:00:00Z", 3, "2026-01-01T00:10:00Z"),
            (std::vector<std::string>{"2026-01-01T00:10:00+00:00", "2026-01-01T01:40:00+00:00",
                                      "2026-01-01T03:10:00+00:00"}));
  // Before the anchor too: the anchor is a phase, not a start time.
  EXPECT_EQ(Next("@every 1h", "", "2026-01-01T00:00:00Z", 1, "2026-01-01T05:20:00Z"),
            (std::vector<std::string>{"2026-01-01T00:20:00+00:00"}));
  EXPECT_EQ(Next("@every 1h", "", "2026-01-01T05:20:00Z", 1, "2026-01-01T05:20:00Z"),
            (std::vector<std::string>{"2026-01-01T06:20:00+00:00"}));
}

// DST. 2026 transitions: New York Mar 8 02:00->03:00 and Nov 1 02:00->01:00; London Mar 29
// 01:00->02:00 and Oct 25 02:00->01:00; Berlin Mar 29 02:00->03:00 and Oct 25 03:00->02:00;
// Sydney Apr 5 03:00->02:00 and Oct 4 02:00->03:00; Lord Howe (30-minute DST) Apr 5
// 02:00->01:30 and Oct 4 02:00->02:30; Santiago Apr 5 00:00->Apr 4 23:00 and Sep 6 00:00->01:00.
INSTANTIATE_TEST_SUITE_P(
    Dst, CronNext,
    ::testing::Values(
        // Fixed time in the spring gap fires at the first instant after the gap.
        NextCase{"30 2 * * *",
                 "America/New_York",
                 "2026-03-07T12:00:00-05:00",
                 {"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
        NextCase{"0 30 2 * * *",
                 "America/New_York",
                 "2026-03-07T12:00:00-05:00",
                 {"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
        // Several gap times fire once, and a real 03:15 still fires after the shifted one.
        NextCase{"0,30 2 * * *",
                 "America/New_York",
                 "2026-03-07T12:00:00-05:00",
                 {"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"}},
        NextCase{"15 2,3 * * *",
                 "America/New_York",
                 "2026-03-08T00:00:00-05:00",
                 {"2026-03-08T03:00:00-04:00", "2026-03-08T03:15:00-04:00",
                  "2026-03-09T02:15:00-04:00"}},
        // A time that exists on the spring day is untouched.
        NextCase{"0 3 * * *",
                 "America/New_York",
                 "2026-03-07T12:00:00-05:00",
                 {"2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"}},
        // Fixed time in the fall overlap fires once, at its first occurrence.
        NextCase{"30 1 * * *",
                 "America/New_York",
                 "2026-10-31T12:00:00-04:00",
                 {"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
        // Asked from inside the second pass: the first occurrence is already past.
        NextCase{"30 1 * * *",
                 "America/New_York",
                 "2026-11-01T01:10:00-05:00",
                 {"2026-11-02T01:30:00-05:00"}},
        // Every-hour schedules follow elapsed time: both passes of the repeated hour...
        NextCase{
            "*/30 * * * *",
            "America/New_York",
            "2026-11-01T00:45:00-04:00",
            {"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00",
             "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}},
        NextCase{"*/30 * * * *",
                 "America/New_York",
                 "2026-11-01T01:40:00-04:00",
                 {"2026-11-01T01:00:00-05:00"}},
        // ...and no fire for wall-clock readings the gap skips.
        NextCase{"30 * * * *",
                 "America/New_York",
                 "2026-03-08T00:45:00-05:00",
                 {"2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00"}},
        NextCase{"*/30 * * * *",
                 "America/New_York",
                 "2026-03-08T01:15:00-05:00",
                 {"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00",
                  "2026-03-08T03:30:00-04:00"}},
        NextCase{"30 1 * * *",
                 "Europe/London",
                 "2026-03-28T12:00:00+00:00",
                 {"2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"}},
        NextCase{"30 1 * * *",
                 "Europe/London",
                 "2026-10-24T12:00:00+01:00",
                 {"2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"}},
        NextCase{"30 2 * * *",
                 "Europe/Berlin",
                 "2026-03-28T12:00:00+01:00",
                 {"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
        NextCase{"30 2 * * *",
                 "Europe/Berlin",
                 "2026-10-24T12:00:00+02:00",
                 {"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
        NextCase{"0 * * * *",
                 "Europe/Berlin",
                 "2026-10-25T01:30:00+02:00",
                 {"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
                  "2026-10-25T03:00:00+01:00"}},
        // Southern hemisphere: DST ends in April and starts in October.
        NextCase{"30 2 * * *",
                 "Australia/Sydney",
                 "2026-04-04T12:00:00+11:00",
                 {"2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"}},
        NextCase{"30 2 * * *",
                 "Australia/Sydney",
                 "2026-10-03T12:00:00+10:00",
                 {"2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00"}},
        // No DST, half-hour offset.
        NextCase{"0 9 * * MON-FRI",
                 "Asia/Kolkata",
                 "2026-03-06T12:00:00+05:30",
                 {"2026-03-09T09:00:00+05:30", "2026-03-10T09:00:00+05:30"}},
        NextCase{"0 0 1 * *",
                 "Asia/Kolkata",
                 "2026-01-01T00:00:00Z",
                 {"2026-02-01T00:00:00+05:30", "2026-03-01T00:00:00+05:30"}},
        // 30-minute DST: the gap is 02:00-02:30, the repeated half hour 01:30-02:00.
        NextCase{"15 2 * * *",
                 "Australia/Lord_Howe",
                 "2026-10-03T12:00:00+10:30",
                 {"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
        NextCase{"45 2 * * *",
                 "Australia/Lord_Howe",
                 "2026-10-03T12:00:00+10:30",
                 {"2026-10-04T02:45:00+11:00"}},
        NextCase{"45 1 * * *",
                 "Australia/Lord_Howe",
                 "2026-04-04T12:00:00+11:00",
                 {"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
        NextCase{
            "*/15 * * * *",
            "Australia/Lord_Howe",
            "2026-04-05T01:20:00+11:00",
            {"2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30",
             "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"}},
        // Midnight transitions: the spring day has no 00:00, the fall day repeats 23:00-24:00.
        NextCase{"0 0 * * *",
                 "America/Santiago",
                 "2026-09-05T12:00:00-04:00",
                 {"2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}},
        NextCase{"30 23 * * *",
                 "America/Santiago",
                 "2026-04-04T12:00:00-03:00",
                 {"2026-04-04T23:30:00-03:00", "2026-04-05T23:30:00-04:00"}}));

// ---------------------------------------------------------------------------------------------
// Zones, formatting, the `ferry schedule next` core

TEST(CronZone, UnknownZoneIsAClearError) {
  auto tz = LocateZone("Mars/Olympus_Mons");
  ASSERT_FALSE(tz);
  EXPECT_EQ(tz.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(tz.error().message, HasSubstr("unknown time zone 'Mars/Olympus_Mons'"));
  auto utc = LocateZone("");
  ASSERT_TRUE(utc);
  EXPECT_EQ((*utc)->name(), "UTC");
}

TEST(CronFormat, Iso8601WithOffsets) {
  const SystemTime t = At("2026-03-08T07:00:00Z");
  EXPECT_EQ(FormatIso8601(t, nullptr), "2026-03-08T07:00:00+00:00");
  EXPECT_EQ(FormatIso8601(t, Zone("America/New_York")), "2026-03-08T03:00:00-04:00");
  EXPECT_EQ(FormatIso8601(t, Zone("Asia/Kolkata")), "2026-03-08T12:30:00+05:30");
  EXPECT_EQ(FormatIso8601(t + std::chrono::milliseconds(999), nullptr),
            "2026-03-08T07:00:00+00:00");
  EXPECT_EQ(FormatIso8601(At("1969-12-31T23:59:59Z"), nullptr), "1969-12-31T23:59:59+00:00");
}

TEST(CronFormat, ParsesIso8601) {
  const auto* ny = Zone("America/New_York");
  EXPECT_EQ(At("2026-03-08T07:00:00Z"), At("2026-03-08T02:00:00-05:00"));
  EXPECT_EQ(At("2026-03-08T07:00:00Z"), At("2026-03-08T12:30:00+0530"));
  EXPECT_EQ(At("2026-03-08 07:00Z"), At("2026-03-08T07:00:00Z"));
  EXPECT_EQ(At("2026-03-08T07:00:00.250Z") - At("2026-03-08T07:00:00Z"),
            std::chrono::milliseconds(250));
  // Wall-clock time in a zone: the gap resolves forward, the overlap to the first occurrence.
  EXPECT_EQ(*ParseIso8601("2026-03-08T02:30", ny), At("2026-03-08T07:00:00Z"));
  EXPECT_EQ(*ParseIso8601("2026-11-01T01:30", ny), At("2026-11-01T05:30:00Z"));
  EXPECT_EQ(*ParseIso8601("2026-07-01", ny), At("2026-07-01T04:00:00Z"));
  for (const char* bad :
       {"", "2026", "2026-13-01", "2026-02-30", "2026-01-01T25:00", "2026-01-01T10",
        "2026-01-01T10:00:00+5", "2026-01-01T10:00:00Q", "2026-01-01T10:00:00Zjunk",
        "2026-01-01T10:00:00.", "2300-01-01T00:00:00Z"}) {
    auto t = ParseIso8601(bad, ny);
    EXPECT_FALSE(t) << bad;
    if (!t) {
      EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
    }
  }
}

TEST(CronScheduleNext, NextFireTimes) {
  auto times = NextFireTimes("30 2 * * *", "America/New_York", At("2026-03-07T00:00:00Z"), 3);
  ASSERT_TRUE(times) << times.error().message;
  const auto* ny = Zone("America/New_York");
  std::vector<std::string> text;
  for (SystemTime t : *times) text.push_back(FormatIso8601(t, ny));
  EXPECT_EQ(text,
            (std::vector<std::string>{"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00",
                                      "2026-03-09T02:30:00-04:00"}));

  // @every previews are anchored at --from.
  auto every = NextFireTimes("@every 90s", "", At("2026-01-01T00:00:10Z"), 2);
  ASSERT_TRUE(every);
  EXPECT_EQ(FormatIso8601((*every)[1], nullptr), "2026-01-01T00:03:10+00:00");

  auto bad_zone = NextFireTimes("* * * * *", "Nowhere/Land", At("2026-01-01T00:00:00Z"), 1);
  ASSERT_FALSE(bad_zone);
  EXPECT_THAT(bad_zone.error().message, HasSubstr("Nowhere/Land"));
  auto bad_expr = NextFireTimes("0 0 32 * *", "UTC", At("2026-01-01T00:00:00Z"), 1);
  ASSERT_FALSE(bad_expr);
  EXPECT_THAT(bad_expr.error().message, HasSubstr("day-of-month field (field 3)"));
  EXPECT_FALSE(NextFireTimes("* * * * *", "UTC", At("2026-01-01T00:00:00Z"), 0));
  EXPECT_FALSE(NextFireTimes("* * * * *", "UTC", At("2026-01-01T00:00:00Z"), 10'001));
}

TEST(CronNextAfter, IntervalIgnoresZoneAndHorizon) {
  auto s = CronSchedule::Parse("@every 1d");
  ASSERT_TRUE(s);
  EXPECT_EQ(NextAfter(*s, At("2200-01-01T00:00:00Z"), nullptr), At("2200-01-02T00:00:00Z"));
}

TEST(CronNextAfter, EndsAtTheEndOfSystemTime) {
  // SystemTime (64-bit nanoseconds) ends in April 2262: no overflowed, wrapped-around answers.
  auto yearly = CronSchedule::Parse("@yearly");
  ASSERT_TRUE(yearly);
  EXPECT_EQ(NextAfter(*yearly, At("2261-06-01T00:00:00Z"), nullptr), At("2262-01-01T00:00:00Z"));
  EXPECT_EQ(NextAfter(*yearly, At("2262-01-01T00:00:00Z"), nullptr), std::nullopt);
  auto every = CronSchedule::Parse("@every 30d");
  ASSERT_TRUE(every);
  EXPECT_EQ(NextAfter(*every, At("2262-04-01T00:00:00Z"), nullptr), std::nullopt);
}

TEST(CronNextAfter, RareSchedulesAreFast) {
  // Walking calendar fields: a century of yearly lookups is quick.
  auto s = CronSchedule::Parse("0 0 29 2 MON");  // Vixie OR: Feb 29 or any Monday in Feb
  ASSERT_TRUE(s);
  auto leap = CronSchedule::Parse("59 59 23 29 2 ?");
  ASSERT_TRUE(leap);
  const auto* tz = Zone("Europe/Berlin");
  SystemTime t = At("2026-01-01T00:00:00Z");
  for (int i = 0; i < 25; ++i) {
    auto next = NextAfter(*leap, t, tz);
    ASSERT_TRUE(next);
    t = *next;
  }
  EXPECT_EQ(FormatIso8601(t, tz), "2128-02-29T23:59:59+01:00");
}

TEST(CronParse, RandomInputIsHandled) {
  // A cheap stand-in for fuzzing: random strings over the syntax's alphabet never crash the
  // parser, and whatever parses yields fire times that match the schedule.
  const std::string alphabet = "0123456789*/-,?LW# @JANFEBMONFRIevry";
  std::mt19937 rng(20260308);
  int parsed = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string expr;
    const int fields = 5 + static_cast<int>(rng() % 2);
    for (int f = 0; f < fields; ++f) {
      if (f > 0) expr += ' ';
      const size_t len = 1 + rng() % 5;
      for (size_t k = 0; k < len; ++k) expr += alphabet[rng() % alphabet.size()];
    }
    auto s = CronSchedule::Parse(expr);
    if (!s) {
      EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << expr;
      continue;
    }
    ++parsed;
    auto next = NextAfter(*s, At("2026-01-01T00:00:00Z"), nullptr);
    if (!next) continue;  // possible only for the rarest day combinations
    const date::local_seconds local{date::floor<std::chrono::seconds>(*next).time_since_epoch()};
    EXPECT_TRUE(s->Matches(local)) << expr;
  }
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace ferry::cron
