// Brute-force cross-check: for varied expressions, step through a year minute by minute (and a
// few days second by second) in UTC and in DST zones, decide with an independent, deliberately
// naive matcher which instants fire, and compare with the chain of NextAfter results.
//
// The reference shares nothing with the library except date-tz for zone offsets and civil dates:
// it re-reads each field's text for every value, computes weekdays and month lengths itself, and
// applies the DST policy by watching the wall clock while time advances.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <vector>

#include "cron/cron.h"

namespace ferry::cron {
namespace {

using std::chrono::seconds;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysIn(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// 0 = Sunday; 1970-01-01 was a Thursday.
int WeekdayOf(int64_t days_since_epoch) {
  return static_cast<int>(((days_since_epoch % 7) + 7 + 4) % 7);
}

int NameOrNumber(std::string s) {
  static const char* kNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                 "AUG", "SEP", "OCT", "NOV", "DEC", "SUN", "MON",
                                 "TUE", "WED", "THU", "FRI", "SAT"};
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (int i = 0; i < 19; ++i) {
    if (s == kNames[i]) return i < 12 ? i + 1 : i - 12;
  }
  return std::stoi(s);
}

// `*`, `?`, `a`, `a-b`, each with an optional `/step`.
bool SimpleMatch(const std::string& element, int v, int min, int max, bool dow) {
  std::vector<std::string> parts = Split(element, '/');
  const int step = parts.size() == 2 ? std::stoi(parts[1]) : 1;
  const std::string& base = parts[0];
  int lo = 0;
  int hi = 0;
  if (base == "*" || base == "?") {
    lo = min;
    hi = dow ? 6 : max;
  } else if (base.find('-') != std::string::npos) {
    std::vector<std::string> r = Split(base, '-');
    lo = NameOrNumber(r[0]);
    hi = NameOrNumber(r[1]);
    if (dow && hi == 0 && lo > 0) hi = 7;
  } else {
    lo = NameOrNumber(base);
    hi = parts.size() == 2 ? (dow ? 6 : max) : lo;
  }
  for (int candidate : {v, dow && v == 0 ? 7 : -1}) {
    if (candidate >= lo && candidate <= hi && (candidate - lo) % step == 0) return true;
  }
  return false;
}

bool IsWeekday(int64_t day) {
  int wd = WeekdayOf(day);
  return wd != 0 && wd != 6;
}

class NaiveCron {
 public:
  explicit NaiveCron(const std::string& expr) {
    std::vector<std::string> f;
    for (const std::string& t : Split(expr, ' ')) {
      if (!t.empty()) f.push_back(t);
    }
    if (f.size() == 5) f.insert(f.begin(), "0");
    fields_ = f;
  }

  bool MatchesTime(int h, int m, int s) const {
    return Any(0, [&](const std::string& e) { return SimpleMatch(e, s, 0, 59, false); }) &&
           Any(1, [&](const std::string& e) { return SimpleMatch(e, m, 0, 59, false); }) &&
           Any(2, [&](const std::string& e) { return SimpleMatch(e, h, 0, 23, false); });
  }

  // `day` counts days since 1970-01-01.
  bool MatchesDay(int64_t day) const {
    const date::year_month_day ymd{date::sys_days{date::days{day}}};
    const int y = static_cast<int>(ymd.year());
    const int m = static_cast<int>(static_cast<unsigned>(ymd.month()));
    const int d = static_cast<int>(static_cast<unsigned>(ymd.day()));
    if (!Any(4, [&](const std::string& e) { return SimpleMatch(e, m, 1, 12, false); })) {
      return false;
    }
    const int last = DaysIn(y, m);
    const int64_t first_day = day - (d - 1);
    const int wd = WeekdayOf(day);
    const bool dom = Any(3, [&](const std::string& e) { return DomMatch(e, d, last, first_day); });
    const bool dow = Any(5, [&](const std::string& e) { return DowMatch(e, d, last, wd); });
    const bool dom_star = Unrestricted(fields_[3]);
    const bool dow_star = Unrestricted(fields_[5]);
    if (!dom_star && !dow_star) return dom || dow;
    if (!dom_star) return dom;
    if (!dow_star) return dow;
    return true;
  }

  bool every_hour() const { return fields_[2] == "*"; }

 private:
  template <typename F>
  bool Any(size_t field, F f) const {
    for (const std::string& e : Split(fields_[field], ',')) {
      if (f(e)) return true;
    }
    return false;
  }

  static bool Unrestricted(const std::string& f) { return f == "*" || f == "?" || f == "*/1"; }

  static bool DomMatch(const std::string& e, int d, int last, int64_t first_day) {
    if (e == "L") return d == last;
    if (e == "LW") {
      int w = last;
      while (!IsWeekday(first_day + w - 1)) --w;
      return d == w;
    }
    if (e.rfind("L-", 0) == 0) return d == last - std::stoi(e.substr(2));
    if (e.back() == 'W') {
      const int n = std::stoi(e.substr(0, e.size() - 1));
      if (n > last) return false;
      int best = -1;
      for (int x = 1; x <= last; ++x) {
        if (IsWeekday(first_day + x - 1) && (best < 0 || std::abs(x - n) < std::abs(best - n))) {
          best = x;
        }
      }
      return d == best;
    }
    return SimpleMatch(e, d, 1, 31, false);
  }

  static bool DowMatch(const std::string& e, int d, int last, int wd) {
    const size_t hash = e.find('#');
    if (hash != std::string::npos) {
      return wd == NameOrNumber(e.substr(0, hash)) % 7 &&
             (d - 1) / 7 + 1 == std::stoi(e.substr(hash + 1));
    }
    if (e.size() > 1 && e.back() == 'L') {
      return wd == NameOrNumber(e.substr(0, e.size() - 1)) % 7 && d + 7 > last;
    }
    return SimpleMatch(e, wd, 0, 7, true);
  }

  std::vector<std::string> fields_;
};

// Precomputed per local day and per time of day, so a year of minutes costs little.
class Reference {
 public:
  Reference(const NaiveCron& cron, date::local_seconds from, date::local_seconds to, seconds step)
      : cron_(cron), step_(step) {
    first_day_ = date::floor<date::days>(from).time_since_epoch().count() - 2;
    const int64_t last_day = date::floor<date::days>(to).time_since_epoch().count() + 2;
    for (int64_t d = first_day_; d <= last_day; ++d) day_ok_.push_back(cron.MatchesDay(d));
    for (int64_t t = 0; t < 86'400; t += step.count()) {
      tod_ok_.push_back(cron.MatchesTime(static_cast<int>(t / 3600), static_cast<int>(t / 60 % 60),
                                         static_cast<int>(t % 60)));
    }
  }

  bool Matches(date::local_seconds t) const {
    const auto day = date::floor<date::days>(t);
    const int64_t tod = (t - day).count();
    return day_ok_[static_cast<size_t>(day.time_since_epoch().count() - first_day_)] &&
           tod_ok_[static_cast<size_t>(tod / step_.count())];
  }

  // The instants in [from, to) that fire under the DST policy, found by advancing time in
  // `step`s and watching the wall clock: a reading already seen is a repeat (fixed-time
  // schedules skip it); a jump forward skips readings (fixed-time schedules fire for them now).
  std::vector<SystemTime> Fires(const date::time_zone* tz, date::sys_seconds from,
                                date::sys_seconds to) const {
    std::vector<SystemTime> out;
    std::optional<date::local_seconds> prev;
    std::optional<date::local_seconds> max_seen;
    for (date::sys_seconds t = from; t < to; t += step_) {
      const date::local_seconds local =
          tz ? tz->to_local(t) : date::local_seconds{t.time_since_epoch()};
      bool fire = false;
      if (!cron_.every_hour() && prev && local > *prev + step_) {
        for (date::local_seconds l = *prev + step_; l < local && !fire; l += step_) {
          fire = Matches(l);
        }
      }
      const bool repeat = max_seen && local <= *max_seen;
      if (Matches(local) && (cron_.every_hour() || !repeat)) fire = true;
      if (fire) out.push_back(SystemTime{t.time_since_epoch()});
      prev = local;
      max_seen = max_seen ? std::max(*max_seen, local) : local;
    }
    return out;
  }

 private:
  const NaiveCron& cron_;
  seconds step_;
  int64_t first_day_ = 0;
  std::vector<bool> day_ok_;
  std::vector<bool> tod_ok_;
};

std::vector<SystemTime> Chain(const CronSchedule& s, const date::time_zone* tz,
                              date::sys_seconds from, date::sys_seconds to) {
  std::vector<SystemTime> out;
  SystemTime t{(from - seconds{1}).time_since_epoch()};
  const SystemTime end{to.time_since_epoch()};
  while (true) {
    auto next = NextAfter(s, t, tz);
    if (!next || *next >= end) break;
    out.push_back(*next);
    t = *next;
  }
  return out;
}

void CrossCheck(const std::string& expr, const char* zone, date::sys_seconds from,
                date::sys_seconds to, seconds step) {
  SCOPED_TRACE(expr + " in " + (zone ? zone : "UTC (nullptr)"));
  auto schedule = CronSchedule::Parse(expr);
  ASSERT_TRUE(schedule) << schedule.error().message;
  const date::time_zone* tz = nullptr;
  if (zone) {
    auto z = LocateZone(zone);
    ASSERT_TRUE(z) << z.error().message;
    tz = *z;
  }
  const NaiveCron naive(expr);
  const date::local_seconds lfrom{from.time_since_epoch() - date::days{1}};
  const date::local_seconds lto{to.time_since_epoch() + date::days{1}};
  const Reference reference(naive, lfrom, lto, step);
  const std::vector<SystemTime> expected = reference.Fires(tz, from, to);
  const std::vector<SystemTime> actual = Chain(*schedule, tz, from, to);
  const auto mismatch =
      std::mismatch(expected.begin(), expected.end(), actual.begin(), actual.end());
  if (mismatch.first != expected.end() || mismatch.second != actual.end()) {
    ADD_FAILURE()
        << "first difference at index " << (mismatch.first - expected.begin()) << ": reference "
        << (mismatch.first != expected.end() ? FormatIso8601(*mismatch.first, tz) : "<end>")
        << ", NextAfter "
        << (mismatch.second != actual.end() ? FormatIso8601(*mismatch.second, tz) : "<end>")
        << " (reference " << expected.size() << " fires, NextAfter " << actual.size() << ")";
  }
}

date::sys_seconds Utc(int y, unsigned m, unsigned d) {
  return date::sys_seconds{
      date::sys_days{date::year{y} / date::month{m} / date::day{d}}.time_since_epoch()};
}

// ---------------------------------------------------------------------------------------------
// Minute resolution, one year (July 2027 - July 2028: a leap day and both DST transitions in
// each hemisphere), in UTC, New York, and Lord Howe (30-minute DST).

class CronBruteForceMinutes : public ::testing::TestWithParam<const char*> {};

TEST_P(CronBruteForceMinutes, AgreesWithNaiveMatcherForAYear) {
  const auto from = Utc(2027, 7, 1);
  const auto to = Utc(2028, 7, 1);
  for (const char* zone :
       {static_cast<const char*>(nullptr), "America/New_York", "Australia/Lord_Howe"}) {
    CrossCheck(GetParam(), zone, from, to, std::chrono::minutes{1});
  }
}

INSTANTIATE_TEST_SUITE_P(
    Expressions, CronBruteForceMinutes,
    ::testing::Values("* * * * *", "*/7 * * * *", "0 * * * *", "30 * * * *", "15,45 2 * * *",
                      "30 2 * * *", "0 1-3 * * *", "0,30 1,2 * * *", "0 0 29 2 *", "0 0 L * *",
                      "0 12 L-2 * *", "0 9 15W * *", "0 9 1W,31W * *", "0 9 LW * *", "0 18 * * 5L",
                      "0 10 * * 1#2,FRI#5", "0 0 13 * FRI", "0 0 */10 * MON",
                      "*/20 9-17 * * MON-FRI", "5 4 * * SUN", "0 0 1 JAN,JUL *", "0 0 ? * SAT-SUN",
                      "10-50/20 */3 1-15 */2 *", "59 23 31 * *", "45 1 * * 0-3"));

// Second resolution, three days around each New York transition and Lord Howe's.

class CronBruteForceSeconds : public ::testing::TestWithParam<const char*> {};

TEST_P(CronBruteForceSeconds, AgreesWithNaiveMatcherAroundTransitions) {
  CrossCheck(GetParam(), nullptr, Utc(2027, 11, 6), Utc(2027, 11, 8), seconds{1});
  CrossCheck(GetParam(), "America/New_York", Utc(2027, 11, 6), Utc(2027, 11, 8), seconds{1});
  CrossCheck(GetParam(), "America/New_York", Utc(2028, 3, 11), Utc(2028, 3, 13), seconds{1});
  CrossCheck(GetParam(), "Australia/Lord_Howe", Utc(2028, 4, 1), Utc(2028, 4, 3), seconds{1});
}

INSTANTIATE_TEST_SUITE_P(Expressions, CronBruteForceSeconds,
                         ::testing::Values("* * * * * *", "*/20 * * * * *", "30 30 1 * * *",
                                           "0 */15 * * * *", "15-20 0 2 * * *", "10 0 2 * * *",
                                           "0 30 1,2 * * *", "5 45 1 * * *"));

}  // namespace
}  // namespace ferry::cron
