// Cron expressions (src/cron): Parse, then the next fire times in a zone with DST, and
// the ISO 8601 parser the CLI's --from uses. Input: one byte picks the zone, the rest is text.
#include <array>
#include <chrono>

#include "cron/cron.h"
#include "fuzz_check.h"

namespace {

using ferry::fuzz::Check;

// UTC, a 1-hour DST zone, a 30-minute DST zone, a zone with a 45-minute offset, one south of the
// equator.
constexpr std::array<const char*, 5> kZones = {"UTC", "America/New_York", "Australia/Lord_Howe",
                                               "Asia/Kathmandu", "America/Santiago"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto zone = ferry::cron::LocateZone(kZones[data[0] % kZones.size()]);
  Check(zone.has_value(), "the fixed zones exist");
  const std::string_view text = ferry::fuzz::Text(data + 1, size - 1);

  // 2026-03-08T06:59:00Z, a minute before New York's spring-forward gap.
  const ferry::SystemTime from{std::chrono::seconds(1772953140)};
  if (auto schedule = ferry::cron::ParseCron(text)) {
    Check(schedule->expression() == text, "expression() is the parsed text");
    ferry::SystemTime previous = from;
    for (const auto& t : ferry::cron::NextN(*schedule, from, *zone, 3, from)) {
      Check(t > previous, "fire times strictly increase");
      previous = t;
    }
    if (!schedule->is_interval()) {
      // Parse promises that a calendar schedule fires again.
      Check(ferry::cron::NextAfter(*schedule, from, *zone).has_value(), "a parsed schedule fires");
    }
  }
  if (auto t = ferry::cron::ParseIso8601(text, *zone)) {
    (void)ferry::cron::FormatIso8601(*t, *zone);
  }
  return 0;
}
