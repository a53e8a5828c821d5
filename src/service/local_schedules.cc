// LocalService: schedules (the cron triggers of applied workflows, in the store) and a cron
// dispatch tick on demand.
#include <string>
#include <vector>

#include "engine/definition.h"
#include "scheduler/dispatch.h"
#include "scheduler/plan.h"
#include "service/local_service.h"
#include "views/views.h"

namespace ferry::service {
namespace {

// Next fire times listed per schedule.
constexpr int kListedFireTimes = 3;

std::string ZonedTime(int64_t ms, const date::time_zone* zone) {
  if (ms <= 0) return "";
  return cron::FormatIso8601(scheduler::FromMs(ms), zone);
}

// One cron trigger as a schedule: its spec, and its next fire times and last fire in its own
// zone. A trigger whose stored config no longer parses is listed with its error.
Json Schedule(const Trigger& t, SystemTime now) {
  auto config = scheduler::ParseCronTriggerConfig(t.config);
  if (!config) {
    return Json{{"workflow", t.workflow_name},
                {"trigger", t.key},
                {"trigger_id", t.id},
                {"error", config.error().message}};
  }
  const auto anchor = scheduler::AnchorOf(*config, scheduler::CursorOf(t));
  // A queued occurrence still waiting for the run before it (overlap: queue) is a field of its
  // own, so every entry of next_fire_times stays a time a client can parse.
  Json waiting = nullptr;
  if (config->spec.overlap == engine::OverlapPolicy::kQueue && t.next_fire_ms > 0 &&
      t.next_fire_ms <= scheduler::ToMs(now)) {
    waiting = ZonedTime(t.next_fire_ms, config->zone);
  }
  std::vector<std::string> next;
  SystemTime after = now;
  while (static_cast<int>(next.size()) < kListedFireTimes) {
    auto n = scheduler::NextOccurrence(*config, after, anchor);
    if (!n) break;
    next.push_back(cron::FormatIso8601(*n, config->zone));
    after = *n;
  }
  Json j{{"workflow", t.workflow_name},
         {"trigger", t.key},
         {"trigger_id", t.id},
         {"schedule", config->spec.schedule},
         {"timezone", config->spec.timezone},
         {"next_fire_times", next},
         {"waiting_fire_at", waiting},
         {"last_fire_at",
          t.last_fire_ms > 0 ? Json(ZonedTime(t.last_fire_ms, config->zone)) : Json(nullptr)},
         {"misfire", engine::MisfirePolicyName(config->spec.misfire)},
         {"catch_up_max", config->spec.catch_up_max},
         {"overlap", engine::OverlapPolicyName(config->spec.overlap)},
         {"paused", t.workflow_paused}};
  if (!config->spec.start.empty()) j["start"] = config->spec.start;
  if (!config->spec.end.empty()) j["end"] = config->spec.end;
  return j;
}

}  // namespace

Result<Json> LocalService::ListSchedules() {
  return With(stores_, [&](Store& store) -> Result<Json> {
    TriggerFilter filter;
    filter.kind = TriggerKind::kCron;
    auto triggers = store.ListTriggers(filter);
    if (!triggers) return Fail(triggers.error());
    const SystemTime now = options_.clock->Now();
    Json list = Json::array();
    for (const Trigger& t : *triggers) list.push_back(Schedule(t, now));
    return views::Page("schedules", std::move(list), "");
  });
}

Result<Json> LocalService::SetSchedulesPaused(const std::string& workflow, bool paused) {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto wf = FindWorkflow(store, workflow);
    if (!wf) return Fail(wf.error());
    // Without a cron trigger there is nothing to pause or resume: saying "schedules paused"
    // would tell the caller something was stopped. (A pause kept from before its trigger was
    // removed still holds when one comes back; `schedule list` shows it, and resume clears it.)
    TriggerFilter filter;
    filter.workflow_id = wf->id;
    filter.kind = TriggerKind::kCron;
    auto crons = store.ListTriggers(filter);
    if (!crons) return Fail(crons.error());
    if (crons->empty()) {
      const std::string action = paused ? "pause" : "resume";
      return Fail(ErrorCode::kNotFound, "workflow " + workflow +
                                            " has no cron trigger, so no schedule to " + action +
                                            " (declare one under triggers.cron)");
    }
    auto updated = store.SetWorkflowPaused(wf->id, paused);
    if (!updated) return Fail(updated.error());
    return Json{{"workflow", updated->name}, {"paused", updated->paused}};
  });
}

Result<Json> LocalService::DispatchCron() {
  return With(brokers_, [&](Broker& broker) -> Result<Json> {
    return With(stores_, [&](Store& store) -> Result<Json> {
      scheduler::DispatchOptions d;
      d.queue = options_.run_queue;
      auto report = scheduler::DispatchCron(store, broker, *options_.clock, d);
      if (!report) return Fail(report.error());
      return report->ToJson();
    });
  });
}

}  // namespace ferry::service
