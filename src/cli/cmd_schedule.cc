// `ferry schedule list | pause | resume | next`.
#include "cli/commands.h"
#include "cli/runs_common.h"
#include "core/time_util.h"
#include "scheduler/plan.h"
#include "views/views.h"

namespace ferry::cli {
namespace {

constexpr int kListedFireTimes = 3;

std::string ZonedTime(int64_t ms, const date::time_zone* zone) {
  if (ms <= 0) return "";
  return cron::FormatIso8601(scheduler::FromMs(ms), zone);
}

}  // namespace

int RunScheduleList(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  TriggerFilter filter;
  filter.kind = TriggerKind::kCron;
  auto triggers = (*store)->ListTriggers(filter);
  if (!triggers) return out.Fail(triggers.error());
  const SystemTime now = SystemClock::Instance().Now();

  Json list = Json::array();
  Table table({"Workflow", "Trigger", "Schedule", "Timezone", "Next Fire Times", "Last Fire",
               "Misfire", "Overlap", "Paused"});
  for (const Trigger& t : *triggers) {
    auto config = scheduler::ParseCronTriggerConfig(t.config);
    if (!config) {
      list.push_back(Json{
          {"workflow", t.workflow_name}, {"trigger", t.key}, {"error", config.error().message}});
      table.AddRow({t.workflow_name, t.key, "?", "", Cell(config.error().message, Color::kRed)});
      continue;
    }
    const auto anchor = scheduler::AnchorOf(*config, scheduler::CursorOf(t));
    std::vector<std::string> next;
    // A queued occurrence still waiting (overlap: queue) comes first.
    if (config->spec.overlap == engine::OverlapPolicy::kQueue && t.next_fire_ms > 0 &&
        t.next_fire_ms <= scheduler::ToMs(now)) {
      next.push_back(ZonedTime(t.next_fire_ms, config->zone) + " (waiting)");
    }
    SystemTime after = now;
    while (static_cast<int>(next.size()) < kListedFireTimes) {
      auto n = scheduler::NextOccurrence(*config, after, anchor);
      if (!n) break;
      next.push_back(cron::FormatIso8601(*n, config->zone));
      after = *n;
    }
    std::string misfire(engine::MisfirePolicyName(config->spec.misfire));
    if (config->spec.misfire == engine::MisfirePolicy::kCatchUp) {
      misfire += " (max " + std::to_string(config->spec.catch_up_max) + ")";
    }
    Json j{{"workflow", t.workflow_name},
           {"trigger", t.key},
           {"trigger_id", t.id},
           {"schedule", config->spec.schedule},
           {"timezone", config->spec.timezone},
           {"next_fire_times", next},
           {"last_fire_at",
            t.last_fire_ms > 0 ? Json(ZonedTime(t.last_fire_ms, config->zone)) : Json(nullptr)},
           {"misfire", engine::MisfirePolicyName(config->spec.misfire)},
           {"catch_up_max", config->spec.catch_up_max},
           {"overlap", engine::OverlapPolicyName(config->spec.overlap)},
           {"paused", t.workflow_paused}};
    if (!config->spec.start.empty()) j["start"] = config->spec.start;
    if (!config->spec.end.empty()) j["end"] = config->spec.end;
    list.push_back(std::move(j));
    std::string next_text;
    for (size_t i = 0; i < next.size(); ++i) next_text += (i > 0 ? ", " : "") + next[i];
    table.AddRow({t.workflow_name, t.key, config->spec.schedule, config->spec.timezone,
                  next_text.empty() ? "- (ended)" : next_text,
                  t.last_fire_ms > 0 ? ZonedTime(t.last_fire_ms, config->zone) : "-", misfire,
                  std::string(engine::OverlapPolicyName(config->spec.overlap)),
                  t.workflow_paused ? Cell("yes", Color::kYellow) : Cell("no")});
  }
  if (out.json()) {
    out.PrintJson(views::Page("schedules", std::move(list), ""));
  } else if (triggers->empty()) {
    out.Print("No cron triggers. Declare one under triggers.cron in a workflow.\n");
  } else {
    out.PrintTable(table);
  }
  return kExitOk;
}

int RunSchedulePause(Context& ctx, const StoreFlags& sf, const std::string& workflow, bool paused) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto wf = (*store)->GetWorkflow(workflow);
  if (!wf) return out.Fail(wf.error());
  if (!*wf) return out.Fail(ErrorCode::kNotFound, "no workflow " + workflow);
  auto updated = (*store)->SetWorkflowPaused((*wf)->id, paused);
  if (!updated) return out.Fail(updated.error());
  if (out.json()) {
    out.PrintJson(Json{{"workflow", updated->name}, {"paused", updated->paused}});
  } else {
    out.Print("Workflow " + updated->name +
              (paused ? ": schedules paused.\n"
                      : ": schedules resumed (occurrences "
                        "passed while paused are not run).\n"));
  }
  return kExitOk;
}

int RunScheduleNext(Context& ctx, const ScheduleNextArgs& args) {
  const Output& out = ctx.out();
  auto zone = cron::LocateZone(args.timezone);
  if (!zone) return out.Fail(zone.error());
  SystemTime from = SystemClock::Instance().Now();
  if (args.from) {
    auto t = cron::ParseIso8601(*args.from, *zone);
    if (!t) {
      return out.Fail(ErrorCode::kInvalidArgument, "--from: " + t.error().message);
    }
    from = *t;
  }
  auto times = cron::NextFireTimes(args.expression, args.timezone, from, args.count);
  if (!times) return out.Fail(times.error());
  if (out.json()) {
    Json list = Json::array();
    for (auto t : *times) list.push_back(cron::FormatIso8601(t, *zone));
    out.PrintJson(Json{{"fire_times", std::move(list)}});
    return kExitOk;
  }
  std::string text;
  for (auto t : *times) text += cron::FormatIso8601(t, *zone) + "\n";
  out.Print(text);
  return kExitOk;
}

}  // namespace ferry::cli
