// `ferry schedule list | pause | resume | next`.
#include "cli/commands.h"
#include "cli/json_text.h"
#include "cli/runs_common.h"
#include "core/time_util.h"
#include "cron/cron.h"

namespace ferry::cli {

int RunScheduleList(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListSchedules();
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  const Json& schedules = (*page)["schedules"];
  if (schedules.empty()) {
    out.Print("No cron triggers. Declare one under triggers.cron in a workflow.\n");
    return kExitOk;
  }
  Table table({"Workflow", "Trigger", "Schedule", "Timezone", "Next Fire Times", "Last Fire",
               "Misfire", "Overlap", "Paused"});
  for (const Json& j : schedules) {
    if (j.contains("error")) {
      table.AddRow({Field(j, "workflow"), Field(j, "trigger"), "?", "",
                    Cell(Field(j, "error"), Color::kRed)});
      continue;
    }
    std::string next_text;
    if (j.value("waiting_fire_at", Json()).is_string()) {
      next_text = j["waiting_fire_at"].get<std::string>() + " (waiting)";
    }
    for (const auto& t : j["next_fire_times"]) {
      next_text += (next_text.empty() ? "" : ", ") + t.get<std::string>();
    }
    std::string misfire = Field(j, "misfire");
    if (misfire == "catch_up") {
      misfire += " (max " + std::to_string(FieldInt(j, "catch_up_max")) + ")";
    }
    const bool paused = j.value("paused", false);
    table.AddRow({Field(j, "workflow"), Field(j, "trigger"), Field(j, "schedule"),
                  Field(j, "timezone"), next_text.empty() ? "- (ended)" : next_text,
                  j["last_fire_at"].is_string() ? j["last_fire_at"].get<std::string>() : "-",
                  misfire, Field(j, "overlap"), paused ? Cell("yes", Color::kYellow) : Cell("no")});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunSchedulePause(Context& ctx, const StoreFlags& sf, const std::string& workflow, bool paused) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto updated = (*svc)->SetSchedulesPaused(workflow, paused);
  if (!updated) return out.Fail(updated.error());
  if (out.json()) {
    out.PrintJson(*updated);
  } else {
    out.Print("Workflow " + Field(*updated, "workflow") +
              (paused ? ": schedules paused.\n"
                      : ": schedules resumed (occurrences "
                        "passed while paused are not run).\n"));
  }
  return kExitOk;
}

int RunScheduleNext(Context& ctx, const ScheduleNextArgs& args) {
  const Output& out = ctx.out();
  // A stored trigger's "" means UTC; given here, it is a mistake (an unset shell variable).
  if (args.timezone.empty()) {
    return out.Fail(ErrorCode::kInvalidArgument,
                    "--timezone must not be empty: name an IANA time zone such as UTC or "
                    "Europe/Paris");
  }
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
