// Matching and next-fire computation.
//
// NextAfter works on the zone's offset segments: within one segment [begin, end) the offset is
// constant, so local time is a strictly increasing function of the instant and the calendar walk
// (FindNextLocal) can run in local time with a fixed translation. Gaps and overlaps exist only at
// segment boundaries, which is where the DST policy is applied.
#include <bit>
#include <cstdint>
#include <exception>
#include <string>

#include "cron/cron.h"

namespace ferry::cron {
namespace {

using std::chrono::seconds;

// How far NextAfter looks. Parse guarantees a calendar schedule fires within any 400-year
// cycle; the rarest real combinations (a fifth Friday in February) recur within ~40 years.
constexpr date::days kHorizon{36'525};

// Lowest set bit at or above `from`, or -1.
int NextBit(uint64_t mask, int from) {
  if (from >= 64) return -1;
  uint64_t m = mask & (~uint64_t{0} << from);
  return m == 0 ? -1 : std::countr_zero(m);
}

date::local_seconds ToLocal(date::sys_seconds t, seconds offset) {
  return date::local_seconds{t.time_since_epoch() + offset};
}

date::sys_seconds ToSys(date::local_seconds t, seconds offset) {
  return date::sys_seconds{t.time_since_epoch() - offset};
}

SystemTime ToSystemTime(date::sys_seconds t) {
  return SystemTime{std::chrono::duration_cast<SystemTime::duration>(t.time_since_epoch())};
}

// Earliest possible instant of a zone's first segment: no previous segment to look at.
constexpr date::sys_seconds kFarPast{date::sys_days{date::year{-30000} / 1 / 1}};

}  // namespace

uint32_t CronSchedule::DayMask(date::year_month ym) const {
  if (is_interval() || (months_ & (1u << static_cast<unsigned>(ym.month()))) == 0) return 0;
  const unsigned last = static_cast<unsigned>((ym / date::last).day());
  const uint32_t valid = static_cast<uint32_t>(((uint64_t{1} << (last + 1)) - 1) & ~uint64_t{1});
  const unsigned wd1 = date::weekday{date::sys_days{ym / 1}}.c_encoding();
  auto weekday_of = [wd1](unsigned d) { return (wd1 + d - 1) % 7; };

  uint32_t dom = 0;
  if (dom_restricted_) {
    dom = dom_days_ & valid;
    for (int n = NextBit(dom_from_end_, 0); n >= 0; n = NextBit(dom_from_end_, n + 1)) {
      if (static_cast<unsigned>(n) < last) dom |= 1u << (last - static_cast<unsigned>(n));
    }
    // Nearest weekday to day n, never leaving the month (Quartz semantics); a day the month
    // lacks (31W in April) selects nothing.
    for (int b = NextBit(dom_nearest_weekday_, 1); b >= 0;
         b = NextBit(dom_nearest_weekday_, b + 1)) {
      unsigned n = static_cast<unsigned>(b);
      if (n > last) continue;
      unsigned d = n;
      unsigned wd = weekday_of(n);
      if (wd == 6) d = n > 1 ? n - 1 : n + 2;
      if (wd == 0) d = n < last ? n + 1 : n - 2;
      dom |= 1u << d;
    }
    if (dom_last_weekday_) {
      unsigned wd = weekday_of(last);
      unsigned d = wd == 6 ? last - 1 : wd == 0 ? last - 2 : last;
      dom |= 1u << d;
    }
  }

  uint32_t dow = 0;
  if (dow_restricted_) {
    for (unsigned d = 1; d <= last; ++d) {
      if (dow_days_ & (1u << weekday_of(d))) dow |= 1u << d;
    }
    const unsigned wd_last = weekday_of(last);
    for (unsigned w = 0; w < 7; ++w) {
      if (dow_last_ & (1u << w)) dow |= 1u << (last - (wd_last + 7 - w) % 7);
      const unsigned first = 1 + (w + 7 - wd1) % 7;
      for (unsigned k = 0; k < 5; ++k) {
        if ((dow_nth_[w] & (1u << k)) && first + 7 * k <= last) dow |= 1u << (first + 7 * k);
      }
    }
  }

  // The Vixie rule: OR when both are restricted, otherwise the restricted one alone.
  if (dom_restricted_ && dow_restricted_) return dom | dow;
  if (dom_restricted_) return dom;
  if (dow_restricted_) return dow;
  return valid;
}

bool CronSchedule::Matches(date::local_seconds t) const {
  if (is_interval()) return false;
  const date::local_days day = date::floor<date::days>(t);
  const date::year_month_day ymd{day};
  const date::hh_mm_ss<seconds> hms{t - day};
  const unsigned d = static_cast<unsigned>(ymd.day());
  return (DayMask(ymd.year() / ymd.month()) & (1u << d)) != 0 &&
         (hours_ & (1u << hms.hours().count())) != 0 &&
         (minutes_ & (uint64_t{1} << hms.minutes().count())) != 0 &&
         (seconds_ & (uint64_t{1} << hms.seconds().count())) != 0;
}

std::optional<seconds> CronSchedule::NextTimeOfDay(seconds tod) const {
  const int h = static_cast<int>(tod.count() / 3600);
  const int m = static_cast<int>(tod.count() / 60 % 60);
  const int s = static_cast<int>(tod.count() % 60);
  for (int hh = NextBit(hours_, h); hh >= 0; hh = NextBit(hours_, hh + 1)) {
    for (int mm = NextBit(minutes_, hh == h ? m : 0); mm >= 0; mm = NextBit(minutes_, mm + 1)) {
      int ss = NextBit(seconds_, hh == h && mm == m ? s : 0);
      if (ss >= 0) return seconds{hh * 3600 + mm * 60 + ss};
    }
  }
  return std::nullopt;
}

std::optional<date::local_seconds> CronSchedule::FindNextLocal(date::local_seconds from,
                                                               date::local_seconds until) const {
  if (is_interval() || from >= until) return std::nullopt;
  date::local_days day = date::floor<date::days>(from);
  seconds tod = from - day;
  const date::local_days last_day = date::floor<date::days>(until);
  while (day <= last_day) {
    const date::year_month_day ymd{day};
    const date::year_month ym = ymd.year() / ymd.month();
    const date::local_days next_month{(ym + date::months{1}) / 1};
    const uint32_t mask =
        DayMask(ym) & static_cast<uint32_t>(~uint64_t{0} << static_cast<unsigned>(ymd.day()));
    if (mask == 0) {
      day = next_month;
      tod = seconds{0};
      continue;
    }
    const unsigned d = static_cast<unsigned>(std::countr_zero(mask));
    if (d != static_cast<unsigned>(ymd.day())) {
      day = date::local_days{ym / date::day{d}};
      tod = seconds{0};
    }
    if (auto t = NextTimeOfDay(tod)) {
      const date::local_seconds result = day + *t;
      if (result < until) return result;
      return std::nullopt;
    }
    day += date::days{1};
    tod = seconds{0};
  }
  return std::nullopt;
}

Result<const date::time_zone*> LocateZone(std::string_view name) {
  std::string zone = name.empty() ? std::string("UTC") : std::string(name);
  try {
    return date::locate_zone(zone);
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInvalidArgument, "unknown time zone '" + zone +
                                                 "' (expected an IANA name such as "
                                                 "America/New_York or UTC): " +
                                                 e.what());
  }
}

std::optional<SystemTime> NextAfter(const CronSchedule& schedule, SystemTime after,
                                    const date::time_zone* tz, SystemTime anchor) {
  if (schedule.is_interval()) {
    // anchor + k * interval with the smallest k that lands strictly after `after`.
    const auto step = std::chrono::duration_cast<SystemTime::duration>(schedule.interval());
    const auto delta = (after - anchor).count();
    auto k = delta / step.count();
    if (delta < 0 && delta % step.count() != 0) --k;  // floor division
    if (k + 1 > (SystemTime::max() - anchor) / step) return std::nullopt;
    return anchor + step * (k + 1);
  }

  const date::sys_seconds start = date::floor<seconds>(after) + seconds{1};
  // SystemTime counts nanoseconds in 64 bits and ends in 2262.
  const date::sys_seconds limit =
      std::min(start + kHorizon, date::floor<seconds>(SystemTime::max()));
  if (tz == nullptr) {
    auto t = schedule.FindNextLocal(ToLocal(start, seconds{0}), ToLocal(limit, seconds{0}));
    if (!t) return std::nullopt;
    return ToSystemTime(ToSys(*t, seconds{0}));
  }

  const bool every_hour = schedule.fires_every_hour();
  date::sys_seconds from = start;
  date::sys_info seg = tz->get_info(start);
  while (true) {
    const seconds offset = seg.offset;
    date::local_seconds lower = ToLocal(from, offset);
    if (!every_hour && seg.begin > kFarPast) {
      const date::sys_info prev = tz->get_info(seg.begin - seconds{1});
      if (prev.offset < offset && from == seg.begin) {
        // Spring forward: wall-clock times in [begin + prev, begin + offset) never occur. A
        // fixed-time schedule that selects one fires at the first instant after the gap.
        if (schedule.FindNextLocal(ToLocal(seg.begin, prev.offset), ToLocal(seg.begin, offset))) {
          return ToSystemTime(seg.begin);
        }
      } else if (prev.offset > offset) {
        // Fall back: wall-clock times below begin + prev.offset already occurred in the previous
        // segment, where a fixed-time schedule fired for them.
        lower = std::max(lower, ToLocal(seg.begin, prev.offset));
      }
    }
    const date::sys_seconds seg_end = std::min(seg.end, limit);
    const date::local_seconds upper = ToLocal(seg_end, offset);
    if (lower < upper) {
      if (auto t = schedule.FindNextLocal(lower, upper)) return ToSystemTime(ToSys(*t, offset));
    }
    if (seg.end >= limit) return std::nullopt;
    from = seg.end;
    seg = tz->get_info(seg.end);
  }
}

std::vector<SystemTime> NextN(const CronSchedule& schedule, SystemTime after,
                              const date::time_zone* tz, int count, SystemTime anchor) {
  std::vector<SystemTime> out;
  if (count <= 0) return out;
  out.reserve(static_cast<size_t>(count));
  SystemTime t = after;
  while (static_cast<int>(out.size()) < count) {
    auto next = NextAfter(schedule, t, tz, anchor);
    if (!next) break;
    out.push_back(*next);
    t = *next;
  }
  return out;
}

Result<std::vector<SystemTime>> NextFireTimes(std::string_view expression, std::string_view tz_name,
                                              SystemTime from, int count,
                                              std::optional<SystemTime> anchor) {
  constexpr int kMaxCount = 10'000;
  if (count < 1 || count > kMaxCount) {
    return Fail(ErrorCode::kInvalidArgument, "count must be between 1 and " +
                                                 std::to_string(kMaxCount) + ", got " +
                                                 std::to_string(count));
  }
  auto tz = LocateZone(tz_name);
  if (!tz) return Fail(tz.error());
  auto schedule = CronSchedule::Parse(expression);
  if (!schedule) return Fail(schedule.error());
  return NextN(*schedule, from, *tz, count, anchor.value_or(from));
}

}  // namespace ferry::cron
