// Cron trigger policy without I/O: due occurrences, misfire policies, held occurrences, bounds,
// DST days, overlap decisions, config parsing.
#include "scheduler/plan.h"

#include <gtest/gtest.h>

namespace ferry::scheduler {
namespace {

using std::chrono::seconds;

int64_t Ms(const std::string& iso) {
  auto t = cron::ParseIso8601(iso, nullptr);
  EXPECT_TRUE(t) << iso;
  return ToMs(*t);
}

CronTriggerConfig Config(const std::string& json) {
  auto c = ParseCronTriggerConfig(json);
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return *c;
}

std::vector<std::string> Times(const DuePlan& p, const char* zone = "UTC") {
  auto z = cron::LocateZone(zone);
  std::vector<std::string> out;
  for (const auto& f : p.fires) out.push_back(cron::FormatIso8601(FromMs(f.fire_ms), *z));
  return out;
}

// A trigger looked at last at 10:00:30 whose next occurrence is 10:01.
TriggerCursor Seen(const std::string& next, const std::string& looked) {
  return TriggerCursor{0, Ms(next), Ms(looked), Ms("2026-01-01T00:00:00Z")};
}

PlanOptions Grace5() {
  PlanOptions o;
  o.grace = seconds(5);
  return o;
}

TEST(PlanDue, OnTimeOccurrenceFires) {
  auto c = Config(R"({"schedule":"* * * * *"})");
  auto p = PlanDue(c, Seen("2026-03-02T10:01:00Z", "2026-03-02T10:00:30Z"),
                   FromMs(Ms("2026-03-02T10:01:02Z")), Grace5());
  EXPECT_EQ(Times(p), (std::vector<std::string>{"2026-03-02T10:01:00+00:00"}));
  EXPECT_EQ(p.dropped, 0);
  EXPECT_FALSE(p.fires[0].late);
  EXPECT_EQ(p.next_after_ms, Ms("2026-03-02T10:02:00Z"));
}

TEST(PlanDue, NothingDueBeforeTheCursor) {
  auto c = Config(R"({"schedule":"* * * * *"})");
  auto p = PlanDue(c, Seen("2026-03-02T10:01:00Z", "2026-03-02T10:00:30Z"),
                   FromMs(Ms("2026-03-02T10:00:59Z")), Grace5());
  EXPECT_TRUE(p.fires.empty());
  EXPECT_EQ(p.next_after_ms, Ms("2026-03-02T10:01:00Z"));
}

TEST(PlanDue, FirstSightStartsAfterCreation) {
  auto c = Config(R"({"schedule":"* * * * *"})");
  TriggerCursor cur{0, 0, Ms("2026-03-02T10:00:30Z"), Ms("2026-03-02T10:00:30Z")};
  auto p = PlanDue(c, cur, FromMs(Ms("2026-03-02T10:01:01Z")), Grace5());
  EXPECT_EQ(Times(p), (std::vector<std::string>{"2026-03-02T10:01:00+00:00"}));
  // Created long ago, seen only now: the old occurrences are misfires (skip drops them).
  auto late = PlanDue(c, cur, FromMs(Ms("2026-03-02T10:10:01Z")), Grace5());
  EXPECT_EQ(Times(late), (std::vector<std::string>{"2026-03-02T10:10:00+00:00"}));
  EXPECT_EQ(late.dropped, 9);
}

TEST(PlanDue, NeverAtOrBeforeTheLastFire) {
  auto c = Config(R"({"schedule":"* * * * *"})");
  TriggerCursor cur{Ms("2026-03-02T10:05:00Z"), Ms("2026-03-02T10:01:00Z"),
                    Ms("2026-03-02T10:05:01Z"), 0};
  auto p = PlanDue(c, cur, FromMs(Ms("2026-03-02T10:06:01Z")), Grace5());
  EXPECT_EQ(Times(p), (std::vector<std::string>{"2026-03-02T10:06:00+00:00"}));
}

struct MisfireCase {
  const char* config;
  std::vector<std::string> fires;
  int64_t dropped;
  int64_t missed_count_of_first;
};

TEST(PlanDue, MisfirePolicies) {
  // Down from 10:00:30 to 10:10:02: 10:01..10:09 missed (9), 10:10 on time.
  const std::vector<MisfireCase> cases = {
      {R"({"schedule":"* * * * *","misfire":"skip"})", {"10:10"}, 9, 0},
      {R"({"schedule":"* * * * *","misfire":"run_once"})", {"10:09", "10:10"}, 8, 9},
      {R"({"schedule":"* * * * *","misfire":"catch_up","catch_up_max":3})",
       {"10:07", "10:08", "10:09", "10:10"},
       6,
       0},
      {R"({"schedule":"* * * * *","misfire":"catch_up","catch_up_max":100})",
       {"10:01", "10:02", "10:03", "10:04", "10:05", "10:06", "10:07", "10:08", "10:09", "10:10"},
       0,
       0},
  };
  for (const auto& tc : cases) {
    auto c = Config(tc.config);
    auto p = PlanDue(c, Seen("2026-03-02T10:01:00Z", "2026-03-02T10:00:30Z"),
                     FromMs(Ms("2026-03-02T10:10:02Z")), Grace5());
    std::vector<std::string> want;
    for (const auto& hm : tc.fires) want.push_back("2026-03-02T" + hm + ":00+00:00");
    EXPECT_EQ(Times(p), want) << tc.config;
    EXPECT_EQ(p.dropped, tc.dropped) << tc.config;
    ASSERT_FALSE(p.fires.empty());
    EXPECT_EQ(p.fires.front().missed_count, tc.missed_count_of_first) << tc.config;
    EXPECT_FALSE(p.fires.back().late) << tc.config;
    if (p.fires.size() > 1) {
      EXPECT_TRUE(p.fires.front().late) << tc.config;
    }
  }
}

TEST(PlanDue, DroppedRangeIsReported) {
  auto c = Config(R"({"schedule":"* * * * *","misfire":"catch_up","catch_up_max":3})");
  auto p = PlanDue(c, Seen("2026-03-02T10:01:00Z", "2026-03-02T10:00:30Z"),
                   FromMs(Ms("2026-03-02T10:10:02Z")), Grace5());
  EXPECT_EQ(p.dropped_first_ms, Ms("2026-03-02T10:01:00Z"));
  EXPECT_EQ(p.dropped_last_ms, Ms("2026-03-02T10:06:00Z"));
}

TEST(PlanDue, HeldOccurrencesAreNotMisfires) {
  // overlap: queue left 10:01..10:03 waiting; the last look was at 10:03:00.
  auto c = Config(R"({"schedule":"* * * * *","misfire":"skip","overlap":"queue"})");
  auto p = PlanDue(c, Seen("2026-03-02T10:01:00Z", "2026-03-02T10:03:00Z"),
                   FromMs(Ms("2026-03-02T10:03:01Z")), Grace5());
  EXPECT_EQ(Times(p),
            (std::vector<std::string>{"2026-03-02T10:01:00+00:00", "2026-03-02T10:02:00+00:00",
                                      "2026-03-02T10:03:00+00:00"}));
  EXPECT_EQ(p.dropped, 0);
}

TEST(PlanDue, HeldPlusDowntimeGoThroughTheMisfirePolicyTogether) {
  auto c = Config(R"({"schedule":"* * * * *","misfire":"run_once","overlap":"queue"})");
  auto p = PlanDue(c, Seen("2026-03-02T10:01:00Z", "2026-03-02T10:02:00Z"),
                   FromMs(Ms("2026-03-02T10:10:02Z")), Grace5());
  // 10:01, 10:02 held + 10:03..10:09 missed = 9 late, collapsed into 10:09; 10:10 on time.
  EXPECT_EQ(Times(p),
            (std::vector<std::string>{"2026-03-02T10:09:00+00:00", "2026-03-02T10:10:00+00:00"}));
  EXPECT_EQ(p.fires[0].missed_count, 9);
  EXPECT_EQ(p.dropped, 8);
}

TEST(PlanDue, StartAndEndBound) {
  auto c = Config(
      R"({"schedule":"0 * * * *","start":"2026-03-02T12:00:00Z","end":"2026-03-02T14:00:00Z",
          "misfire":"catch_up","catch_up_max":100})");
  TriggerCursor cur{0, 0, Ms("2026-03-02T00:00:00Z"), Ms("2026-03-02T00:00:00Z")};
  auto p = PlanDue(c, cur, FromMs(Ms("2026-03-03T00:00:00Z")), Grace5());
  EXPECT_EQ(Times(p),
            (std::vector<std::string>{"2026-03-02T12:00:00+00:00", "2026-03-02T13:00:00+00:00",
                                      "2026-03-02T14:00:00+00:00"}));
  EXPECT_EQ(p.next_after_ms, 0);  // the schedule has ended
}

TEST(PlanDue, DateOnlyStartIsMidnightInTheZone) {
  auto c = Config(R"({"schedule":"0 * * * *","timezone":"Europe/Paris","start":"2026-03-02"})");
  ASSERT_TRUE(c.start);
  EXPECT_EQ(ToMs(*c.start), Ms("2026-03-01T23:00:00Z"));
}

TEST(PlanDue, SpringForwardGapFiresOnceAfterTheGap) {
  auto c =
      Config(R"({"schedule":"30 2 * * *","timezone":"America/New_York","misfire":"catch_up"})");
  TriggerCursor cur{0, 0, Ms("2026-03-07T12:00:00Z"), Ms("2026-03-07T12:00:00Z")};
  auto p = PlanDue(c, cur, FromMs(Ms("2026-03-09T12:00:00Z")), Grace5());
  EXPECT_EQ(Times(p, "America/New_York"),
            (std::vector<std::string>{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}));
}

TEST(PlanDue, FallBackOverlapFiresOnce) {
  auto c =
      Config(R"({"schedule":"30 1 * * *","timezone":"America/New_York","misfire":"catch_up"})");
  TriggerCursor cur{0, 0, Ms("2026-10-31T12:00:00Z"), Ms("2026-10-31T12:00:00Z")};
  auto p = PlanDue(c, cur, FromMs(Ms("2026-11-02T12:00:00Z")), Grace5());
  EXPECT_EQ(Times(p, "America/New_York"),
            (std::vector<std::string>{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}));
}

TEST(PlanDue, EveryHourScheduleSeesBothPassesOfTheRepeatedHour) {
  auto c = Config(
      R"({"schedule":"0 * * * *","timezone":"America/New_York","misfire":"catch_up",
          "catch_up_max":10})");
  TriggerCursor cur{0, 0, Ms("2026-11-01T04:30:00Z"), Ms("2026-11-01T04:30:00Z")};
  auto p = PlanDue(c, cur, FromMs(Ms("2026-11-01T07:30:00Z")), Grace5());
  EXPECT_EQ(Times(p, "America/New_York"),
            (std::vector<std::string>{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
                                      "2026-11-01T02:00:00-05:00"}));
}

TEST(PlanDue, DenseScheduleAfterLongDowntimeIsBounded) {
  auto c = Config(R"({"schedule":"* * * * * *","misfire":"catch_up","catch_up_max":5})");
  TriggerCursor cur{0, Ms("2026-03-01T00:00:01Z"), Ms("2026-03-01T00:00:00Z"), 0};
  PlanOptions o = Grace5();
  o.max_scan = 10'000;
  auto p = PlanDue(c, cur, FromMs(Ms("2026-03-08T00:00:00Z")), o);
  EXPECT_TRUE(p.truncated);
  ASSERT_EQ(p.fires.size(), 5u + 6u);  // 5 caught up + the 6 inside the 5 s grace
  EXPECT_GT(p.dropped, 3600);
}

TEST(PlanDue, EveryScheduleIsAnchoredAtCreation) {
  auto c = Config(R"({"schedule":"@every 90s"})");
  TriggerCursor cur{0, 0, Ms("2026-03-02T10:00:10Z"), Ms("2026-03-02T10:00:10Z")};
  auto p = PlanDue(c, cur, FromMs(Ms("2026-03-02T10:01:41Z")), Grace5());
  EXPECT_EQ(Times(p), (std::vector<std::string>{"2026-03-02T10:01:40+00:00"}));
}

TEST(DecideOverlap, Table) {
  using engine::OverlapPolicy;
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kAllow, 3), OverlapAction::kFire);
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kSkip, 0), OverlapAction::kFire);
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kSkip, 1), OverlapAction::kSkip);
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kQueue, 0), OverlapAction::kFire);
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kQueue, 2), OverlapAction::kHold);
}

TEST(CronTriggerConfig, ParsesDefaultsAndRejectsNonsense) {
  auto c = Config(R"({"schedule":"*/5 * * * *"})");
  EXPECT_EQ(c.spec.timezone, "UTC");
  EXPECT_EQ(c.spec.misfire, engine::MisfirePolicy::kSkip);
  EXPECT_EQ(c.spec.overlap, engine::OverlapPolicy::kAllow);
  for (const char* bad : {R"({})", R"([1])", R"({"schedule":"61 * * * *"})",
                          R"({"schedule":"* * * * *","timezone":"Mars/Olympus"})",
                          R"({"schedule":"* * * * *","misfire":"later"})",
                          R"({"schedule":"* * * * *","overlap":"maybe"})",
                          R"({"schedule":"* * * * *","catch_up_max":0})",
                          R"({"schedule":"* * * * *","start":"yesterday"})", "not json"}) {
    auto r = ParseCronTriggerConfig(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << bad;
  }
  auto r = ParseCronTriggerConfig(R"({"schedule":"61 * * * *"})");
  EXPECT_NE(r.error().message.find("minute"), std::string::npos) << r.error().message;
}

TEST(CronTriggerConfig, RoundTripsThroughTheSpecJson) {
  engine::CronTrigger t;
  t.schedule = "0 9 * * MON-FRI";
  t.timezone = "Europe/Paris";
  t.misfire = engine::MisfirePolicy::kCatchUp;
  t.catch_up_max = 7;
  t.overlap = engine::OverlapPolicy::kQueue;
  t.start = "2026-01-01";
  auto c = Config(CronTriggerConfigJson(t));
  EXPECT_EQ(c.spec.schedule, t.schedule);
  EXPECT_EQ(c.spec.timezone, t.timezone);
  EXPECT_EQ(c.spec.misfire, t.misfire);
  EXPECT_EQ(c.spec.catch_up_max, 7);
  EXPECT_EQ(c.spec.overlap, t.overlap);
  EXPECT_TRUE(c.start);
}

}  // namespace
}  // namespace ferry::scheduler
