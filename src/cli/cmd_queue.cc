// `ferry queue list|stats|dead|purge|delete` and `ferry version`.
#include <chrono>

#include "cli/commands.h"
#include "cli/json_text.h"
#include "core/dynamic_library.h"
#include "core/time_util.h"

namespace ferry::cli {
namespace {

int64_t Counter(const Json& q, const std::string& name) {
  const Json& counters = q.contains("counters") ? q["counters"] : Json();
  return counters.is_object() ? FieldInt(counters, name) : 0;
}

std::string Age(const Json& q) {
  const int64_t ms = FieldInt(q, "oldest_pending_age_ms");
  return q.value("oldest_pending_age_ms", Json()).is_null()
             ? "-"
             : FormatDuration(std::chrono::milliseconds(ms));
}

}  // namespace

int RunQueueList(Context& ctx) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListQueues();
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  const Json& queues = (*page)["queues"];
  if (queues.empty()) {
    out.Print("No queues yet (a queue appears with its first task).\n");
    return kExitOk;
  }
  Table table({"Queue", "Pending", "Running", "Scheduled", "Dead", "Oldest Pending", "Succeeded",
               "Failed"});
  for (const auto& q : queues) {
    table.AddRow(
        {Field(q, "queue"), Field(q, "pending"), Field(q, "running"), Field(q, "scheduled"),
         Cell(Field(q, "dead"), FieldInt(q, "dead") > 0 ? Color::kRed : Color::kNone), Age(q),
         std::to_string(Counter(q, "succeeded")), std::to_string(Counter(q, "failed"))});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunQueueStats(Context& ctx, const std::string& queue) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto shown = (*svc)->GetQueue(queue);
  if (!shown) return out.Fail(shown.error());
  if (out.json()) {
    out.PrintJson(*shown);
    return kExitOk;
  }
  const Json& q = (*shown)["queue"];
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Queue", Field(q, "queue")},
      {"Pending", Field(q, "pending")},
      {"Running", Field(q, "running")},
      {"Scheduled", Field(q, "scheduled")},
      {"Dead", Field(q, "dead")},
      {"Oldest pending", FieldMs(q, "oldest_pending_at") == 0
                             ? "-"
                             : Age(q) + " ago (" + FieldTime(q, "oldest_pending_at") + ")"},
  };
  if (q.contains("counters") && q["counters"].is_object()) {
    for (const auto& [name, value] : q["counters"].items())
      rows.emplace_back(name, DumpJson(value));
  }
  out.Print(RenderKeyValues(rows));
  return kExitOk;
}

int RunQueueDead(Context& ctx, const std::string& queue, int limit) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListDead(queue, {{"limit", std::to_string(limit)}});
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  const Json& dead = (*page)["tasks"];
  if (dead.empty()) {
    out.Print("No dead-lettered tasks in queue " + queue + ".\n");
    return kExitOk;
  }
  Table table({"ID", "Kind", "Attempts", "Finished", "Error"});
  for (const auto& t : dead) {
    table.AddRow({Field(t, "id"), Field(t, "kind"),
                  Field(t, "attempts") + "/" + Field(t, "max_attempts"),
                  FieldTime(t, "finished_at"),
                  Cell(Ellipsize(Field(t, "error"), 60, out.style().unicode), Color::kRed)});
  }
  out.PrintTable(table);
  out.Print("Re-run one with: ferry task retry ID, or all with: ferry queue retry " + queue + "\n");
  return kExitOk;
}

int RunQueueRetry(Context& ctx, const std::string& queue) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto retried = (*svc)->RetryDead(queue);
  if (!retried) return out.Fail(retried.error());
  if (out.json()) {
    out.PrintJson(*retried);
    return kExitOk;
  }
  const int64_t n = FieldInt(*retried, "retried");
  out.Print("Retried " + std::to_string(n) + " dead-lettered task" + (n == 1 ? "" : "s") +
            " of queue " + queue + ".\n");
  return kExitOk;
}

int RunQueuePurge(Context& ctx, const std::string& queue, bool confirmed) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  if (!confirmed) {
    auto shown = (*svc)->GetQueue(queue);
    if (!shown) return out.Fail(shown.error());
    const int64_t dead = FieldInt((*shown)["queue"], "dead");
    return out.Fail(ErrorCode::kInvalidArgument, "this deletes the " + std::to_string(dead) +
                                                     " dead-lettered task" +
                                                     (dead == 1 ? "" : "s") + " of queue " + queue +
                                                     " for good; pass --yes to confirm");
  }
  auto purged = (*svc)->PurgeDead(queue);
  if (!purged) return out.Fail(purged.error());
  if (out.json()) {
    out.PrintJson(*purged);
    return kExitOk;
  }
  const int64_t n = FieldInt(*purged, "purged");
  out.Print("Purged " + std::to_string(n) + " dead-lettered task" + (n == 1 ? "" : "s") +
            " of queue " + queue + ".\n");
  return kExitOk;
}

int RunQueueDelete(Context& ctx, const std::string& queue) {
  const Output& out = ctx.out();
  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  auto deleted = (*svc)->DeleteQueue(queue);
  if (!deleted) return out.Fail(deleted.error());
  if (out.json()) {
    out.PrintJson(*deleted);
    return kExitOk;
  }
  out.Print("Deleted queue " + queue + ".\n");
  return kExitOk;
}

int RunVersion(Context& ctx) {
  const Output& out = ctx.out();
  if (out.json()) {
    // The libraries loaded on first use, which `ldd` does not show: the container build installs
    // their packages from this list (deploy/docker/runtime-packages.sh).
    Json on_demand = Json::array();
    for (const auto& l : kOnDemandLibraries) {
      on_demand.push_back({{"library", l.file}, {"package", l.package}, {"for", l.purpose}});
    }
    out.PrintJson(Json{{"version", FERRY_VERSION}, {"loads_on_demand", on_demand}});
  } else {
    out.Print(std::string("ferry ") + FERRY_VERSION + "\n");
  }
  return kExitOk;
}

}  // namespace ferry::cli
