// Cron expression parser. Every error carries the field (name and 1-based index as written) and
// the 1-based column in the whole expression, so the CLI can point at the offending character.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cron/cron.h"

namespace ferry::cron {
namespace {

// Longer input is certainly a mistake, and the cap keeps the parser's work bounded (fuzzing).
constexpr size_t kMaxExpressionLength = 1024;

enum class FieldKind { kSecond, kMinute, kHour, kDayOfMonth, kMonth, kDayOfWeek };

struct FieldSpec {
  FieldKind kind;
  const char* name;
  int min;
  int max;
};

constexpr FieldSpec kSecondSpec{FieldKind::kSecond, "second", 0, 59};
constexpr FieldSpec kMinuteSpec{FieldKind::kMinute, "minute", 0, 59};
constexpr FieldSpec kHourSpec{FieldKind::kHour, "hour", 0, 23};
// Day-of-week accepts 7 as a second Sunday; values are folded to 0..6 when stored.
constexpr FieldSpec kDomSpec{FieldKind::kDayOfMonth, "day-of-month", 1, 31};
constexpr FieldSpec kMonthSpec{FieldKind::kMonth, "month", 1, 12};
constexpr FieldSpec kDowSpec{FieldKind::kDayOfWeek, "day-of-week", 0, 7};

constexpr std::string_view kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::string_view kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

struct Token {
  std::string_view text;
  size_t column;  // 1-based, in the whole expression
};

std::vector<Token> SplitFields(std::string_view expr) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && IsSpace(expr[i])) ++i;
    size_t start = i;
    while (i < expr.size() && !IsSpace(expr[i])) ++i;
    if (i > start) out.push_back({expr.substr(start, i - start), start + 1});
  }
  return out;
}

}  // namespace

// Friend of CronSchedule: fills its private masks.
class CronParser {
 public:
  explicit CronParser(CronSchedule& out) : out_(out) {}

  Status ParseFields(const std::vector<Token>& fields) {
    out_.has_seconds_ = fields.size() == 6;
    size_t k = 0;
    if (out_.has_seconds_) {
      auto st = ParseField(kSecondSpec, fields[k], k + 1);
      if (!st) return st;
      ++k;
    }
    for (const FieldSpec* spec : {&kMinuteSpec, &kHourSpec, &kDomSpec, &kMonthSpec, &kDowSpec}) {
      auto st = ParseField(*spec, fields[k], k + 1);
      if (!st) return st;
      ++k;
    }
    return {};
  }

 private:
  // One field: a comma-separated list of elements.
  Status ParseField(const FieldSpec& spec, const Token& field, size_t index) {
    spec_ = &spec;
    index_ = index;
    uint64_t mask = 0;
    std::string_view text = field.text;
    size_t pos = 0;
    size_t elements = 0;
    bool only_star = false;
    while (true) {
      size_t comma = text.find(',', pos);
      std::string_view element =
          text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
      size_t column = field.column + pos;
      if (element.empty()) return Err(column, "empty list element");
      bool star = false;
      auto st = ParseElement(element, column, mask, star);
      if (!st) return st;
      ++elements;
      only_star = elements == 1 && star;
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
    // Vixie rule input: a day field is unrestricted only when it is a lone `*` / `?` (`*/1`
    // included). `*/2` counts as restricted, as in robfig/cron, unlike Vixie's first-character
    // test; see docs/cron.md.
    switch (spec.kind) {
      case FieldKind::kSecond:
        out_.seconds_ = mask;
        break;
      case FieldKind::kMinute:
        out_.minutes_ = mask;
        break;
      case FieldKind::kHour:
        out_.hours_ = static_cast<uint32_t>(mask);
        break;
      case FieldKind::kDayOfMonth:
        out_.dom_days_ = static_cast<uint32_t>(mask);
        out_.dom_restricted_ = !only_star;
        break;
      case FieldKind::kMonth:
        out_.months_ = static_cast<uint32_t>(mask);
        break;
      case FieldKind::kDayOfWeek:
        // Fold 7 (Sunday) onto 0.
        if (mask & (1u << 7)) mask = (mask | 1u) & ~(uint64_t{1} << 7);
        out_.dow_days_ = static_cast<uint32_t>(mask);
        out_.dow_restricted_ = !only_star;
        break;
    }
    return {};
  }

  Status ParseElement(std::string_view e, size_t column, uint64_t& mask, bool& star) {
    const FieldKind kind = spec_->kind;
    const bool day_field = kind == FieldKind::kDayOfMonth || kind == FieldKind::kDayOfWeek;
    if (e == "?") {
      if (!day_field) {
        return Err(column, "'?' is only allowed in the day-of-month and day-of-week fields");
      }
      star = true;
      mask |= RangeMask(spec_->min, kind == FieldKind::kDayOfWeek ? 6 : spec_->max, 1);
      return {};
    }
    if (kind == FieldKind::kDayOfMonth) {
      auto special = ParseDomSpecial(e, column);
      if (!special) return Fail(special.error());
      if (*special) return {};
    }
    if (kind == FieldKind::kDayOfWeek) {
      auto special = ParseDowSpecial(e, column);
      if (!special) return Fail(special.error());
      if (*special) return {};
    }

    // General form: (`*` | value | value-value) [/step]
    size_t i = 0;
    int lo = 0;
    int hi = 0;
    bool is_star = false;
    bool single = false;
    if (e[0] == '*') {
      is_star = true;
      lo = spec_->min;
      hi = kind == FieldKind::kDayOfWeek ? 6 : spec_->max;
      i = 1;
    } else {
      auto v = ParseValue(e, i, column);
      if (!v) return Fail(v.error());
      lo = *v;
      if (i < e.size() && e[i] == '-') {
        ++i;
        if (i >= e.size()) return Err(column + i, "range is missing its end value");
        auto w = ParseValue(e, i, column);
        if (!w) return Fail(w.error());
        hi = *w;
        // SAT-SUN and 5-0 mean Friday..Sunday: Sunday as a range end is 7.
        if (kind == FieldKind::kDayOfWeek && hi == 0 && lo > 0) hi = 7;
        if (lo > hi) {
          return Err(column, "range " + std::to_string(lo) + "-" + std::to_string(hi) +
                                 " is reversed (start is greater than end)");
        }
      } else {
        hi = lo;
        single = true;
      }
    }
    int step = 1;
    if (i < e.size() && e[i] == '/') {
      size_t step_col = column + i + 1;
      ++i;
      if (i >= e.size() || !IsDigit(e[i])) {
        return Err(step_col, "'/' must be followed by a step number, e.g. */5");
      }
      auto s = ParseNumber(e, i, column);
      if (!s) return Fail(s.error());
      const int span = spec_->max - spec_->min + 1;
      if (*s < 1 || *s > span) {
        return Err(step_col,
                   "step " + std::to_string(*s) + " out of range 1-" + std::to_string(span));
      }
      step = *s;
      // `5/10` means 5-max/10.
      if (single) hi = kind == FieldKind::kDayOfWeek ? 6 : spec_->max;
    }
    if (i < e.size()) return Unexpected(e, i, column);
    star = is_star && step == 1;
    mask |= RangeMask(lo, hi, step);
    return {};
  }

  // `L`, `L-n`, `LW`, `nW`. Returns true when `e` was one of them.
  Result<bool> ParseDomSpecial(std::string_view e, size_t column) {
    std::string u = Upper(e);
    if (u == "L") {
      out_.dom_from_end_ |= 1u;
      return true;
    }
    if (u == "LW") {
      out_.dom_last_weekday_ = true;
      return true;
    }
    if (u.size() >= 2 && u[0] == 'L' && u[1] == '-') {
      size_t i = 2;
      if (i >= e.size() || !IsDigit(e[i])) {
        return Err(column + 2, "'L-' must be followed by a number of days, e.g. L-3");
      }
      auto n = ParseNumber(e, i, column);
      if (!n) return Fail(n.error());
      if (*n > 30) return Err(column + 2, "value " + std::to_string(*n) + " out of range 0-30");
      if (i < e.size()) return Unexpected(e, i, column);
      out_.dom_from_end_ |= 1u << *n;
      return true;
    }
    if (u[0] == 'L') return Err(column, "'L' must stand alone or be written L-n or LW");
    if (u.back() == 'W' && IsDigit(u[0])) {
      size_t i = 0;
      auto n = ParseNumber(e, i, column);
      if (!n) return Fail(n.error());
      if (i != e.size() - 1) return Unexpected(e, i, column);
      if (*n < 1 || *n > 31) {
        return Err(column, "value " + std::to_string(*n) + " out of range 1-31");
      }
      out_.dom_nearest_weekday_ |= 1u << *n;
      return true;
    }
    return false;
  }

  // `nL` / `FRIL` (last such weekday), `n#k` / `FRI#k` (k-th such weekday).
  Result<bool> ParseDowSpecial(std::string_view e, size_t column) {
    size_t hash = e.find('#');
    const bool last = e.size() >= 2 && (e.back() == 'L' || e.back() == 'l');
    if (hash == std::string_view::npos && !last) {
      if (e == "L" || e == "l") {
        return Err(column, "'L' alone is not supported in day-of-week; write e.g. 5L or FRIL");
      }
      return false;
    }
    size_t i = 0;
    auto v =
        ParseValue(e.substr(0, hash == std::string_view::npos ? e.size() - 1 : hash), i, column);
    if (!v) return Fail(v.error());
    int day = *v % 7;
    if (hash == std::string_view::npos) {
      if (i != e.size() - 1) return Unexpected(e, i, column);
      out_.dow_last_ |= 1u << day;
      return true;
    }
    if (i != hash) return Unexpected(e, i, column);
    i = hash + 1;
    size_t n_col = column + i;
    if (i >= e.size() || !IsDigit(e[i])) {
      return Err(n_col, "'#' must be followed by an occurrence 1-5, e.g. 1#2");
    }
    auto n = ParseNumber(e, i, column);
    if (!n) return Fail(n.error());
    if (*n < 1 || *n > 5) {
      return Err(n_col, "occurrence " + std::to_string(*n) + " out of range 1-5");
    }
    if (i < e.size()) return Unexpected(e, i, column);
    out_.dow_nth_[static_cast<size_t>(day)] |= static_cast<uint8_t>(1u << (*n - 1));
    return true;
  }

  // A number or (month and day-of-week fields) a three-letter name, range-checked.
  Result<int> ParseValue(std::string_view e, size_t& i, size_t column) {
    size_t start = i;
    if (i < e.size() && IsAlpha(e[i])) {
      while (i < e.size() && IsAlpha(e[i])) ++i;
      std::string name = Upper(e.substr(start, i - start));
      if (spec_->kind == FieldKind::kMonth) {
        for (int m = 0; m < 12; ++m) {
          if (name == kMonthNames[m]) return m + 1;
        }
      } else if (spec_->kind == FieldKind::kDayOfWeek) {
        for (int d = 0; d < 7; ++d) {
          if (name == kDayNames[d]) return d;
        }
      } else {
        return Err(column + start, "names are not allowed here, got '" +
                                       std::string(e.substr(start, i - start)) + "'");
      }
      return Err(column + start,
                 "unknown name '" + std::string(e.substr(start, i - start)) + "' (expected " +
                     (spec_->kind == FieldKind::kMonth ? "JAN-DEC" : "SUN-SAT") + ")");
    }
    if (i >= e.size() || !IsDigit(e[i])) return Unexpected(e, i, column);
    auto n = ParseNumber(e, i, column);
    if (!n) return n;
    if (*n < spec_->min || *n > spec_->max) {
      return Err(column + start, "value " + std::to_string(*n) + " out of range " +
                                     std::to_string(spec_->min) + "-" + std::to_string(spec_->max));
    }
    return *n;
  }

  Result<int> ParseNumber(std::string_view e, size_t& i, size_t column) {
    size_t start = i;
    int64_t v = 0;
    while (i < e.size() && IsDigit(e[i])) {
      v = v * 10 + (e[i] - '0');
      if (v > 1'000'000) return Err(column + start, "number too large");
      ++i;
    }
    return static_cast<int>(v);
  }

  static uint64_t RangeMask(int lo, int hi, int step) {
    uint64_t m = 0;
    for (int v = lo; v <= hi; v += step) m |= uint64_t{1} << v;
    return m;
  }

  tl::unexpected<Error> Unexpected(std::string_view e, size_t i, size_t column) {
    if (i >= e.size()) return Err(column + i, "unexpected end of element");
    return Err(column + i, "unexpected character '" + std::string(1, e[i]) + "'");
  }

  tl::unexpected<Error> Err(size_t column, const std::string& what) {
    return Fail(ErrorCode::kInvalidArgument, std::string(spec_->name) + " field (field " +
                                                 std::to_string(index_) + "), position " +
                                                 std::to_string(column) + ": " + what);
  }

  CronSchedule& out_;
  const FieldSpec* spec_ = nullptr;
  size_t index_ = 0;
};

namespace {

// `@every 1h30m`: whole seconds, units d h m s, each number followed by its unit.
Result<std::chrono::seconds> ParseEvery(std::string_view text, size_t column) {
  auto err = [&](size_t col, const std::string& what) {
    return Fail(ErrorCode::kInvalidArgument,
                "@every duration, position " + std::to_string(col) + ": " + what);
  };
  if (text.empty()) return err(column, "missing duration, e.g. @every 90s or @every 1h30m");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && IsDigit(text[i])) {
      n = n * 10 + (text[i] - '0');
      if (n > 1'000'000'000) return err(column + start, "number too large");
      ++i;
    }
    if (i == start) {
      return err(column + i, "expected a number, got '" + std::string(1, text[i]) + "'");
    }
    if (i >= text.size())
      return err(column + i, "missing unit after " + std::to_string(n) + " (use d, h, m or s)");
    int64_t scale = 0;
    if (text.substr(i, 2) == "ms") {
      return err(column + i, "sub-second intervals are not supported");
    }
    switch (text[i]) {
      case 'd':
        scale = 86'400;
        break;
      case 'h':
        scale = 3'600;
        break;
      case 'm':
        scale = 60;
        break;
      case 's':
        scale = 1;
        break;
      default:
        return err(column + i, "unknown unit '" + std::string(1, text[i]) + "' (use d, h, m or s)");
    }
    ++i;
    total += n * scale;
    // A century is far beyond any useful interval and keeps arithmetic far from overflow.
    if (total > int64_t{100} * 366 * 86'400) return err(column, "interval longer than 100 years");
  }
  if (total == 0) return err(column, "interval must be positive");
  return std::chrono::seconds(total);
}

std::string_view MacroExpansion(const std::string& upper) {
  if (upper == "@YEARLY" || upper == "@ANNUALLY") return "0 0 1 1 *";
  if (upper == "@MONTHLY") return "0 0 1 * *";
  if (upper == "@WEEKLY") return "0 0 * * 0";
  if (upper == "@DAILY" || upper == "@MIDNIGHT") return "0 0 * * *";
  if (upper == "@HOURLY") return "0 * * * *";
  return {};
}

// Parse-time "never fires" check. The Gregorian calendar repeats every 400 years, and every
// time-of-day field selects at least one value, so a schedule fires iff some month of one
// 400-year cycle has a selected day.
bool SelectsSomeDay(const CronSchedule& s) {
  for (int y = 2000; y < 2400; ++y) {
    for (unsigned m = 1; m <= 12; ++m) {
      if (s.DayMask(date::year{y} / date::month{m}) != 0) return true;
    }
  }
  return false;
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view expression) {
  if (expression.size() > kMaxExpressionLength) {
    return Fail(
        ErrorCode::kInvalidArgument,
        "cron expression longer than " + std::to_string(kMaxExpressionLength) + " characters");
  }
  CronSchedule out;
  out.expression_ = std::string(expression);
  std::vector<Token> fields = SplitFields(expression);
  if (fields.empty()) return Fail(ErrorCode::kInvalidArgument, "empty cron expression");

  if (fields[0].text[0] == '@') {
    std::string macro = Upper(fields[0].text);
    if (macro == "@EVERY") {
      if (fields.size() != 2) {
        return Fail(ErrorCode::kInvalidArgument,
                    "@every takes exactly one duration, e.g. @every 90s or @every 1h30m");
      }
      auto interval = ParseEvery(fields[1].text, fields[1].column);
      if (!interval) return Fail(interval.error());
      out.interval_ = *interval;
      return out;
    }
    std::string_view expansion = MacroExpansion(macro);
    if (expansion.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "position " + std::to_string(fields[0].column) + ": unknown macro '" +
                      std::string(fields[0].text) +
                      "' (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, "
                      "@hourly or @every <duration>)");
    }
    if (fields.size() != 1) {
      return Fail(ErrorCode::kInvalidArgument, "position " + std::to_string(fields[1].column) +
                                                   ": " + std::string(fields[0].text) +
                                                   " takes no further fields");
    }
    auto st = CronParser(out).ParseFields(SplitFields(expansion));
    if (!st) return Fail(ErrorCode::kInternal, "macro expansion: " + st.error().message);
    return out;
  }

  if (fields.size() != 5 && fields.size() != 6) {
    return Fail(ErrorCode::kInvalidArgument,
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with a "
                "leading second), got " +
                    std::to_string(fields.size()));
  }
  auto st = CronParser(out).ParseFields(fields);
  if (!st) return Fail(st.error());
  if (!SelectsSomeDay(out)) {
    const Token& dom = fields[fields.size() - 3];
    return Fail(ErrorCode::kInvalidArgument,
                "day-of-month field (field " + std::to_string(fields.size() - 2) + "), position " +
                    std::to_string(dom.column) +
                    ": the schedule never fires: no date it selects exists in the selected "
                    "months");
  }
  return out;
}

}  // namespace ferry::cron
