// Cron expressions: parsing and next-fire computation in IANA time zones.
//
// Syntax (docs/cron.md is the full reference): five fields `minute hour day-of-month month
// day-of-week`, or six with a leading `second` field; names (JAN-DEC, SUN-SAT), ranges, steps,
// lists; `?` = `*` in the day fields; `L`, `L-n`, `nW`, `LW` in day-of-month; `nL`, `n#k` in
// day-of-week; macros @yearly @annually @monthly @weekly @daily @midnight @hourly and
// `@every <duration>`.
//
// Day matching follows the Vixie rule: when both day fields are restricted (neither is a bare `*`
// or `?`), a day matches if EITHER matches; otherwise only the restricted one counts.
//
// DST policy (NextAfter), for a local wall-clock time the schedule selects:
//  - Fixed-time schedules (the hour field does not select all 24 hours), e.g. `30 2 * * *`:
//    a time inside a spring-forward gap fires once, at the first valid instant after the gap
//    (02:30 on the New York spring day fires at 03:00 EDT); a time inside a fall-back overlap
//    fires once, at its first occurrence.
//  - Every-hour schedules (the hour field selects all 24 hours), e.g. `*/15 * * * *`: they are
//    about elapsed time, so they fire at every wall-clock reading that actually occurs: on both
//    passes through a repeated hour, and not at all for readings skipped by a gap.
//  - `@every` schedules ignore the zone: instants anchor + k * interval, for any integer k.
// Zone rules come from the OS tzdata through date-tz, which reads transitions only up to 2037;
// later instants use the zone's last offset (usually standard time).
//
// Thread-safety: a CronSchedule is immutable after Parse and may be shared between threads.
// All free functions are reentrant. date::time_zone lookups are thread-safe (date-tz loads each
// zone's data once under its own synchronisation).
#pragma once

#include <date/tz.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/result.h"

namespace ferry::cron {

class CronSchedule {
 public:
  // Parses `expression`. Errors are kInvalidArgument and name the field and the 1-based column in
  // `expression`, e.g. "day-of-month field (field 3), position 5: value 32 out of range 1-31".
  // Expressions whose day fields can never select an existing date (`0 0 30 2 *`) are rejected
  // here, so a parsed calendar schedule is guaranteed to fire again.
  static Result<CronSchedule> Parse(std::string_view expression);

  // The text given to Parse.
  const std::string& expression() const { return expression_; }
  // Six-field form (seconds given explicitly). Five-field schedules fire at second 0.
  bool has_seconds_field() const { return has_seconds_; }
  // `@every <duration>`: a fixed interval, no calendar.
  bool is_interval() const { return interval_.count() > 0; }
  std::chrono::seconds interval() const { return interval_; }
  // The hour field selects every hour; decides the DST policy (see above).
  bool fires_every_hour() const { return hours_ == kAllHours; }

  // Whether the local wall-clock time `t` matches (calendar schedules; false for @every).
  bool Matches(date::local_seconds t) const;
  // Bit d (1..31) set for each day of `ym` that the day fields select (after the Vixie rule).
  uint32_t DayMask(date::year_month ym) const;
  // The first matching local time t with from <= t < until, walking months, days, hours,
  // minutes and seconds rather than every second. Calendar schedules only.
  std::optional<date::local_seconds> FindNextLocal(date::local_seconds from,
                                                   date::local_seconds until) const;

 private:
  friend class CronParser;
  static constexpr uint32_t kAllHours = (1u << 24) - 1;

  std::optional<std::chrono::seconds> NextTimeOfDay(std::chrono::seconds tod) const;

  std::string expression_;
  bool has_seconds_ = false;
  std::chrono::seconds interval_{0};
  uint64_t seconds_ = 1;  // bit n: second n
  uint64_t minutes_ = 0;
  uint32_t hours_ = 0;
  uint32_t months_ = 0;  // bits 1..12
  // Day of month: plain days (bits 1..31), `L-n` (bit n, n = 0 for `L`), `nW` (bit n), `LW`.
  uint32_t dom_days_ = 0;
  uint32_t dom_from_end_ = 0;
  uint32_t dom_nearest_weekday_ = 0;
  bool dom_last_weekday_ = false;
  bool dom_restricted_ = false;
  // Day of week (0 = Sunday): plain weekdays, `nL` (last such weekday of the month), and `n#k`
  // (bit k-1 of dow_nth_[n]).
  uint32_t dow_days_ = 0;
  uint32_t dow_last_ = 0;
  std::array<uint8_t, 7> dow_nth_{};
  bool dow_restricted_ = false;
};

// Shorthand for CronSchedule::Parse.
inline Result<CronSchedule> ParseCron(std::string_view expression) {
  return CronSchedule::Parse(expression);
}

// date::locate_zone without exceptions: an unknown name is kInvalidArgument naming it. The empty
// string and "UTC" give the UTC zone.
Result<const date::time_zone*> LocateZone(std::string_view name);

// The first fire instant strictly after `after`, or nullopt if none within 100 years (only
// possible for rare calendar combinations near the end of the horizon; Parse rejects schedules
// that never fire). Fire instants are whole seconds. `tz` == nullptr means UTC. `anchor` is the
// phase of @every schedules (fires at anchor + k * interval) and is ignored otherwise.
std::optional<SystemTime> NextAfter(const CronSchedule& schedule, SystemTime after,
                                    const date::time_zone* tz, SystemTime anchor = SystemTime{});

// Up to `count` consecutive fire instants after `after` (fewer only if the horizon is reached).
std::vector<SystemTime> NextN(const CronSchedule& schedule, SystemTime after,
                              const date::time_zone* tz, int count,
                              SystemTime anchor = SystemTime{});

// The core of `ferry schedule next EXPR [--timezone TZ] [--from ISO8601] [--count N]`: parses the
// expression and zone and returns the next `count` (1..10000) fire instants after `from`.
// @every schedules are anchored at `anchor`, or at `from` when not given.
Result<std::vector<SystemTime>> NextFireTimes(std::string_view expression, std::string_view tz_name,
                                              SystemTime from, int count,
                                              std::optional<SystemTime> anchor = std::nullopt);

// "2026-03-08T03:00:00-04:00": the instant as wall-clock time in `tz` (nullptr = UTC, printed as
// "+00:00") with that zone's offset at the instant. Sub-second parts are truncated.
std::string FormatIso8601(SystemTime t, const date::time_zone* tz);

// Whether a time must carry Z or an offset (a time that outlives the machine's zone, such as a
// task's eta) or may be wall-clock time in a zone.
enum class ZoneRule { kOptional, kRequired };

// Parses "2026-03-08T01:30:00-05:00", "...Z", "2026-03-08T01:30[:00[.123]]" or "2026-03-08"
// (a space may replace 'T'). Without an offset the text is wall-clock time in `tz` (nullptr =
// UTC): a time in a DST gap resolves to the first instant after the gap, a repeated time to its
// first occurrence; with ZoneRule::kRequired it is refused. The error's examples are forms the
// call takes.
Result<SystemTime> ParseIso8601(std::string_view text, const date::time_zone* tz,
                                ZoneRule zone = ZoneRule::kOptional);

}  // namespace ferry::cron
