// Cron trigger policy, without I/O: a trigger's stored config parsed into what the dispatcher
// needs, and the plan of one dispatch tick (which occurrences are due, which the misfire policy
// keeps, what the overlap policy does with each). dispatch.h applies a plan to a Store.
//
// Terms (docs/scheduler.md has examples):
//  - An occurrence is a fire instant of the schedule within [start, end].
//  - The cursor is the trigger's first occurrence not yet handled: next_fire_ms as stored by the
//    previous tick, or, on first sight of a config (next_fire_ms = 0), the first occurrence after
//    max(last_fire_ms, updated_ms) (creation or last config change).
//  - Due: occurrences from the cursor up to now. A due occurrence is on time when
//    now - occurrence <= grace, and missed otherwise, unless it is held (see below).
//  - Held: due occurrences the previous tick already saw (occurrence <= the trigger's updated_ms)
//    and left for later (overlap queue). They are not misfires: they waited on purpose.
//  - Misfire policy, applied when at least one missed occurrence is due, to the late set (held +
//    missed, oldest first): skip fires none of it; run_once fires one run, for the newest late
//    occurrence, standing for all of them (missed_count); catch_up fires the newest catch_up_max
//    of them, oldest first. Older late occurrences are dropped. On-time occurrences always fire.
//  - Overlap policy, per occurrence to fire, given whether a run from this trigger is pending or
//    running: allow fires; skip records the occurrence as skipped (no run); queue holds it (and
//    every later one) until no run is active, then fires the oldest held one.
//
// Thread-safety: pure functions over values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "core/result.h"
#include "cron/cron.h"
#include "engine/definition.h"
#include "store/store.h"

namespace ferry::scheduler {

// A cron trigger's config (the JSON stored in Trigger::config), parsed and checked.
struct CronTriggerConfig {
  engine::CronTrigger spec;  // as declared (policies, raw strings)
  cron::CronSchedule schedule;
  const date::time_zone* zone = nullptr;  // never null after parsing
  std::optional<SystemTime> start;        // occurrences before it are not due
  std::optional<SystemTime> end;          // occurrences after it are not due
};

// Parses the canonical config JSON ({"schedule", "timezone", "start", "end", "misfire",
// "catch_up_max", "overlap"}). Missing fields take the definition's defaults; a date-only
// start/end is midnight in the trigger's zone. kInvalidArgument naming the field otherwise.
Result<CronTriggerConfig> ParseCronTriggerConfig(std::string_view config_json);

// The config JSON of one declared cron trigger (what ParseCronTriggerConfig reads).
std::string CronTriggerConfigJson(const engine::CronTrigger& trigger);

// What the previous ticks left in the store.
struct TriggerCursor {
  int64_t last_fire_ms = 0;
  int64_t next_fire_ms = 0;  // 0: first sight of this config
  int64_t updated_ms = 0;    // the last time a scheduler wrote the trigger (or the config changed)
  int64_t created_ms = 0;
};
TriggerCursor CursorOf(const Trigger& trigger);

struct PlannedFire {
  int64_t fire_ms = 0;
  // run_once: how many late occurrences (itself included) this run stands for; 0 otherwise.
  int64_t missed_count = 0;
  bool late = false;  // kept by the misfire policy (or held), not on time
};

struct DuePlan {
  std::vector<PlannedFire> fires;  // ascending
  int64_t dropped = 0;             // late occurrences the misfire policy dropped
  int64_t dropped_first_ms = 0;    // the oldest and newest dropped ones, when any
  int64_t dropped_last_ms = 0;
  // The first occurrence after now, or 0 when the schedule has ended.
  int64_t next_after_ms = 0;
  // The scan hit max_scan occurrences and jumped ahead: dropped is a lower bound.
  bool truncated = false;
};

struct PlanOptions {
  std::chrono::milliseconds grace = std::chrono::seconds(5);
  // Occurrences examined per call before jumping ahead (a dense schedule after a long downtime).
  int64_t max_scan = 100'000;
};

// The phase of @every schedules: the trigger's start, else its creation time.
SystemTime AnchorOf(const CronTriggerConfig& config, const TriggerCursor& cursor);

// The first occurrence strictly after `after` within [start, end], or nullopt.
std::optional<SystemTime> NextOccurrence(const CronTriggerConfig& config, SystemTime after,
                                         SystemTime anchor);

// The due occurrences at `now` and what the misfire policy keeps of them.
DuePlan PlanDue(const CronTriggerConfig& config, const TriggerCursor& cursor, SystemTime now,
                const PlanOptions& options = {});

enum class OverlapAction { kFire, kSkip, kHold };
std::string_view OverlapActionName(OverlapAction a);
// What to do with the next occurrence when `active` runs from this trigger are pending/running.
OverlapAction DecideOverlap(engine::OverlapPolicy policy, int64_t active);

// Ms <-> SystemTime.
inline SystemTime FromMs(int64_t ms) { return SystemTime(std::chrono::milliseconds(ms)); }
inline int64_t ToMs(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace ferry::scheduler
