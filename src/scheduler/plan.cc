#include "scheduler/plan.h"

#include <algorithm>
#include <deque>

namespace ferry::scheduler {
namespace {

using std::chrono::milliseconds;

tl::unexpected<Error> Invalid(const std::string& message) {
  return Fail(ErrorCode::kInvalidArgument, "cron trigger config: " + message);
}

Result<std::string> OptionalString(const Json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::string();
  if (!j[key].is_string()) return Invalid(std::string(key) + " must be a string");
  return j[key].get<std::string>();
}

std::optional<SystemTime> Next(const CronTriggerConfig& c, SystemTime after, SystemTime anchor) {
  return NextOccurrence(c, after, anchor);
}

}  // namespace

std::optional<SystemTime> NextOccurrence(const CronTriggerConfig& c, SystemTime after,
                                         SystemTime anchor) {
  if (c.start && after < *c.start) after = *c.start - milliseconds(1);
  auto t = cron::NextAfter(c.schedule, after, c.zone, anchor);
  if (!t) return std::nullopt;
  if (c.end && *t > *c.end) return std::nullopt;
  return t;
}

Result<CronTriggerConfig> ParseCronTriggerConfig(std::string_view config_json) {
  auto parsed = ParseJson(config_json);
  if (!parsed) return Invalid(parsed.error().message);
  const Json& j = *parsed;
  if (!j.is_object()) return Invalid("expected a JSON object");
  CronTriggerConfig c;
  auto schedule = OptionalString(j, "schedule");
  if (!schedule) return Fail(schedule.error());
  if (schedule->empty()) return Invalid("schedule is missing");
  c.spec.schedule = *schedule;
  auto sched = cron::ParseCron(c.spec.schedule);
  if (!sched) return Invalid("schedule: " + sched.error().message);
  c.schedule = std::move(*sched);

  auto tz = OptionalString(j, "timezone");
  if (!tz) return Fail(tz.error());
  if (!tz->empty()) c.spec.timezone = *tz;
  auto zone = cron::LocateZone(c.spec.timezone);
  if (!zone) return Invalid("timezone: " + zone.error().message);
  c.zone = *zone;

  for (const char* key : {"start", "end"}) {
    auto text = OptionalString(j, key);
    if (!text) return Fail(text.error());
    if (text->empty()) continue;
    auto t = cron::ParseIso8601(*text, c.zone);
    if (!t) return Invalid(std::string(key) + ": " + t.error().message);
    if (std::string_view(key) == "start") {
      c.spec.start = *text;
      c.start = *t;
    } else {
      c.spec.end = *text;
      c.end = *t;
    }
  }

  auto misfire = OptionalString(j, "misfire");
  if (!misfire) return Fail(misfire.error());
  if (misfire->empty() || *misfire == "skip") {
    c.spec.misfire = engine::MisfirePolicy::kSkip;
  } else if (*misfire == "run_once") {
    c.spec.misfire = engine::MisfirePolicy::kRunOnce;
  } else if (*misfire == "catch_up") {
    c.spec.misfire = engine::MisfirePolicy::kCatchUp;
  } else {
    return Invalid("misfire must be skip, run_once or catch_up, not '" + *misfire + "'");
  }
  if (j.contains("catch_up_max") && !j["catch_up_max"].is_null()) {
    if (!j["catch_up_max"].is_number_integer()) return Invalid("catch_up_max must be an integer");
    int64_t v = j["catch_up_max"].get<int64_t>();
    if (v < 1 || v > 1000) return Invalid("catch_up_max must be 1..1000");
    c.spec.catch_up_max = static_cast<int>(v);
  }
  auto overlap = OptionalString(j, "overlap");
  if (!overlap) return Fail(overlap.error());
  if (overlap->empty() || *overlap == "allow") {
    c.spec.overlap = engine::OverlapPolicy::kAllow;
  } else if (*overlap == "skip") {
    c.spec.overlap = engine::OverlapPolicy::kSkip;
  } else if (*overlap == "queue") {
    c.spec.overlap = engine::OverlapPolicy::kQueue;
  } else {
    return Invalid("overlap must be allow, skip or queue, not '" + *overlap + "'");
  }
  return c;
}

std::string CronTriggerConfigJson(const engine::CronTrigger& t) {
  // The same object as the workflow's canonical form (engine::ToCanonicalJson), so specs made
  // here and by `ferry workflow apply` compare equal in SyncTriggers.
  engine::Workflow wf;
  wf.cron.push_back(t);
  return DumpJson(engine::ToCanonicalJson(wf)["triggers"]["cron"][0]);
}

TriggerCursor CursorOf(const Trigger& t) {
  return TriggerCursor{t.last_fire_ms, t.next_fire_ms, t.updated_ms, t.created_ms};
}

SystemTime AnchorOf(const CronTriggerConfig& config, const TriggerCursor& cursor) {
  if (config.start) return *config.start;
  // Whole seconds, so every scheduler derives the same phase.
  return FromMs(cursor.created_ms - cursor.created_ms % 1000);
}

DuePlan PlanDue(const CronTriggerConfig& config, const TriggerCursor& cursor, SystemTime now,
                const PlanOptions& options) {
  DuePlan plan;
  const SystemTime anchor = AnchorOf(config, cursor);
  const bool seen_before = cursor.next_fire_ms > 0;
  // Held occurrences: seen (and left) by an earlier tick with this config.
  const int64_t last_look = seen_before ? cursor.updated_ms : 0;

  std::optional<SystemTime> o;
  if (seen_before) {
    o = Next(config, FromMs(cursor.next_fire_ms) - milliseconds(1), anchor);
  } else {
    o = Next(config, FromMs(std::max(cursor.last_fire_ms, cursor.updated_ms)), anchor);
  }
  // Never again at or before the newest fired occurrence.
  if (o && cursor.last_fire_ms > 0 && ToMs(*o) <= cursor.last_fire_ms) {
    o = Next(config, FromMs(cursor.last_fire_ms), anchor);
  }

  size_t keep_late = 0;
  switch (config.spec.misfire) {
    case engine::MisfirePolicy::kSkip:
      keep_late = 0;
      break;
    case engine::MisfirePolicy::kRunOnce:
      keep_late = 1;
      break;
    case engine::MisfirePolicy::kCatchUp:
      keep_late = static_cast<size_t>(std::max(config.spec.catch_up_max, 1));
      break;
  }

  std::vector<int64_t> held;
  std::deque<int64_t> late_tail;  // the newest keep_late of held + missed
  int64_t late_count = 0, missed_count = 0, late_first = 0, dropped_last = 0;
  std::vector<int64_t> on_time;
  int64_t scanned = 0;
  const int64_t now_ms = ToMs(now);
  const int64_t grace_ms = options.grace.count();

  while (o && *o <= now) {
    int64_t ms = ToMs(*o);
    if (++scanned > options.max_scan) {
      // Dense schedule, long gap: everything up to an hour before the grace window counts as
      // missed without being enumerated.
      plan.truncated = true;
      SystemTime jump = now - options.grace - std::chrono::hours(1);
      if (*o < jump) {
        missed_count += 1;  // at least the one in hand
        ++late_count;
        if (late_first == 0) late_first = ms;
        o = Next(config, jump, anchor);
        scanned = 0;
        continue;
      }
    }
    if (seen_before && ms <= last_look) {
      held.push_back(ms);
    } else if (now_ms - ms > grace_ms) {
      ++missed_count;
    } else {
      on_time.push_back(ms);
    }
    const bool is_on_time = !(seen_before && ms <= last_look) && now_ms - ms <= grace_ms;
    if (!is_on_time) {
      if (late_first == 0) late_first = ms;
      ++late_count;
      late_tail.push_back(ms);
      if (late_tail.size() > keep_late) {
        dropped_last = late_tail.front();
        late_tail.pop_front();
      }
    }
    o = Next(config, *o, anchor);
  }
  plan.next_after_ms = o ? ToMs(*o) : 0;

  if (missed_count > 0) {
    // The late set (held + missed) goes through the misfire policy as one span.
    int64_t kept = static_cast<int64_t>(late_tail.size());
    plan.dropped = late_count - kept;
    if (plan.dropped > 0) {
      plan.dropped_first_ms = late_first;
      plan.dropped_last_ms = dropped_last;
    }
    for (int64_t ms : late_tail) {
      PlannedFire f;
      f.fire_ms = ms;
      f.late = true;
      if (config.spec.misfire == engine::MisfirePolicy::kRunOnce) f.missed_count = late_count;
      plan.fires.push_back(f);
    }
  } else {
    for (int64_t ms : held) plan.fires.push_back(PlannedFire{ms, 0, true});
  }
  for (int64_t ms : on_time) plan.fires.push_back(PlannedFire{ms, 0, false});
  return plan;
}

std::string_view OverlapActionName(OverlapAction a) {
  switch (a) {
    case OverlapAction::kFire:
      return "fire";
    case OverlapAction::kSkip:
      return "skip";
    case OverlapAction::kHold:
      return "hold";
  }
  return "?";
}

OverlapAction DecideOverlap(engine::OverlapPolicy policy, int64_t active) {
  if (active <= 0) return OverlapAction::kFire;
  switch (policy) {
    case engine::OverlapPolicy::kAllow:
      return OverlapAction::kFire;
    case engine::OverlapPolicy::kSkip:
      return OverlapAction::kSkip;
    case engine::OverlapPolicy::kQueue:
      return OverlapAction::kHold;
  }
  return OverlapAction::kFire;
}

}  // namespace ferry::scheduler
