#include "core/time_util.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "core/decimal.h"

namespace ferry {
namespace {

std::tm UtcTm(int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}

}  // namespace

std::string FormatIsoMs(int64_t epoch_ms) {
  std::tm tm = UtcTm(epoch_ms);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return buf;
}

std::string FormatHumanUtc(int64_t epoch_ms) {
  std::tm tm = UtcTm(epoch_ms);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return Fail(ErrorCode::kInvalidArgument, "empty duration");
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  std::string_view unit = text.substr(i);
  const std::optional<double> number = ParseDecimal(text.substr(0, i));
  if (!number) {
    return Fail(ErrorCode::kInvalidArgument,
                "bad duration '" + std::string(text) + "': expected e.g. 500ms, 30s, 5m, 2h");
  }
  const double value = *number;
  double scale = 1000;  // bare numbers are seconds
  if (unit == "ms")
    scale = 1;
  else if (unit == "s" || unit.empty())
    scale = 1000;
  else if (unit == "m")
    scale = 60'000;
  else if (unit == "h")
    scale = 3'600'000;
  else if (unit == "d")
    scale = 86'400'000;
  else
    return Fail(ErrorCode::kInvalidArgument, "bad duration unit '" + std::string(unit) + "' in '" +
                                                 std::string(text) + "': use ms, s, m, h or d");
  double ms = value * scale;
  if (!std::isfinite(ms) || ms < 0 || ms > 9.0e15) {
    return Fail(ErrorCode::kInvalidArgument, "duration out of range: " + std::string(text));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  char buf[40];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>((ms / 1000) % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>((ms / 60'000) % 60));
  }
  return buf;
}

int64_t WallNowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace ferry
