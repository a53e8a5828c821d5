// ISO 8601 with zone offsets, for `ferry schedule next` and anything that shows fire times.
#include <cstdio>
#include <string>

#include "cron/cron.h"

namespace ferry::cron {
namespace {

using std::chrono::seconds;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at `i`.
bool Digits(std::string_view s, size_t& i, size_t n, int& out) {
  if (i + n > s.size()) return false;
  int v = 0;
  for (size_t k = 0; k < n; ++k) {
    if (!IsDigit(s[i + k])) return false;
    v = v * 10 + (s[i + k] - '0');
  }
  i += n;
  out = v;
  return true;
}

}  // namespace

std::string FormatIso8601(SystemTime t, const date::time_zone* tz) {
  const auto sys = date::floor<seconds>(t);
  const seconds offset = tz == nullptr ? seconds{0} : tz->get_info(sys).offset;
  const date::local_seconds local{sys.time_since_epoch() + offset};
  const date::local_days day = date::floor<date::days>(local);
  const date::year_month_day ymd{day};
  const date::hh_mm_ss<seconds> hms{local - day};
  const long long off = offset.count() < 0 ? -offset.count() : offset.count();
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d%c%02lld:%02lld",
                        static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                        static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                        static_cast<int>(hms.minutes().count()),
                        static_cast<int>(hms.seconds().count()), offset.count() < 0 ? '-' : '+',
                        off / 3600, off / 60 % 60);
  std::string out(buf, static_cast<size_t>(n > 0 ? n : 0));
  // Historical local mean time offsets have seconds; keep them exact rather than rounding.
  if (off % 60 != 0) {
    std::snprintf(buf, sizeof buf, ":%02lld", off % 60);
    out += buf;
  }
  return out;
}

Result<SystemTime> ParseIso8601(std::string_view text, const date::time_zone* tz, ZoneRule zone) {
  // The examples are forms this very call takes.
  const char* const examples = zone == ZoneRule::kRequired
                                   ? "2026-03-08T01:30:00Z or 2026-03-08T01:30:00-05:00"
                                   : "2026-03-08T01:30:00-05:00, 2026-03-08T01:30 or 2026-03-08";
  auto bad = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalidArgument, "bad time '" + std::string(text) + "': " + why +
                                                 " (expected e.g. " + examples + ")");
  };
  size_t i = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!Digits(text, i, 4, y) || i >= text.size() || text[i++] != '-' || !Digits(text, i, 2, mo) ||
      i >= text.size() || text[i++] != '-' || !Digits(text, i, 2, d)) {
    return bad("expected a date YYYY-MM-DD");
  }
  const date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)},
                                 date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return bad("no such date");
  // SystemTime counts 64-bit nanoseconds: it covers 1677-09 to 2262-04.
  const date::sys_days first_day = date::ceil<date::days>(SystemTime::min()) + date::days{1};
  const date::sys_days last_day = date::floor<date::days>(SystemTime::max()) - date::days{1};
  if (date::sys_days{ymd} < first_day || date::sys_days{ymd} > last_day) {
    return bad("date out of the representable range " + FormatIso8601(first_day, nullptr) + " to " +
               FormatIso8601(last_day, nullptr));
  }
  SystemTime::duration fraction{0};
  if (i < text.size() && (text[i] == 'T' || text[i] == 't' || text[i] == ' ')) {
    ++i;
    if (!Digits(text, i, 2, h) || i >= text.size() || text[i++] != ':' || !Digits(text, i, 2, mi)) {
      return bad("expected a time HH:MM[:SS]");
    }
    if (i < text.size() && text[i] == ':') {
      ++i;
      if (!Digits(text, i, 2, s)) return bad("expected seconds after ':'");
      if (i < text.size() && (text[i] == '.' || text[i] == ',')) {
        ++i;
        int64_t ns = 0;
        int digits = 0;
        while (i < text.size() && IsDigit(text[i])) {
          if (digits < 9) ns = ns * 10 + (text[i] - '0');
          ++digits;
          ++i;
        }
        if (digits == 0) return bad("expected digits after the decimal point");
        for (int k = digits; k < 9; ++k) ns *= 10;
        fraction = std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(ns));
      }
    }
    if (h > 23 || mi > 59 || s > 59) return bad("time out of range");
  }
  const date::local_seconds local =
      date::local_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} + seconds{s};

  if (i == text.size()) {
    if (zone == ZoneRule::kRequired) return bad("needs a time with a zone");
    // Wall-clock time in `tz`, resolved by the same DST policy as fixed-time schedules.
    if (tz == nullptr) return SystemTime{local.time_since_epoch()} + fraction;
    const date::local_info li = tz->get_info(local);
    date::sys_seconds sys;
    if (li.result == date::local_info::nonexistent) {
      sys = li.second.begin;
    } else {
      sys = date::sys_seconds{local.time_since_epoch() - li.first.offset};
    }
    return SystemTime{sys.time_since_epoch()} + fraction;
  }

  seconds offset{0};
  if (text[i] == 'Z' || text[i] == 'z') {
    ++i;
  } else if (text[i] == '+' || text[i] == '-') {
    const bool negative = text[i] == '-';
    ++i;
    int oh = 0, om = 0;
    if (!Digits(text, i, 2, oh)) return bad("expected an offset like +05:30");
    if (i < text.size() && text[i] == ':') ++i;
    if (i < text.size() && !Digits(text, i, 2, om)) return bad("expected an offset like +05:30");
    if (oh > 23 || om > 59) return bad("offset out of range");
    offset = seconds{oh * 3600 + om * 60};
    if (negative) offset = -offset;
  } else {
    return bad("unexpected '" + std::string(1, text[i]) + "'");
  }
  if (i != text.size()) return bad("trailing characters");
  return SystemTime{local.time_since_epoch() - offset} + fraction;
}

}  // namespace ferry::cron
