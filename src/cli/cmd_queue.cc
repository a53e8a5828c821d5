// `ferry queue list|stats|dead` and `ferry version`.
#include <chrono>

#include "cli/commands.h"
#include "core/time_util.h"
#include "views/views.h"

namespace ferry::cli {
namespace {

int64_t Counter(const QueueStats& q, const std::string& name) {
  auto it = q.counters.find(name);
  return it == q.counters.end() ? 0 : it->second;
}

}  // namespace

int RunQueueList(Context& ctx) {
  const Output& out = ctx.out();
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto names = (*broker)->ListQueues();
  if (!names) return out.Fail(names.error());
  std::vector<QueueStats> stats;
  for (const auto& name : *names) {
    auto q = (*broker)->GetQueueStats(name);
    if (!q) return out.Fail(q.error());
    stats.push_back(*q);
  }
  if (out.json()) {
    Json arr = Json::array();
    for (const auto& q : stats) arr.push_back(views::Queue(q, WallNowMs()));
    out.PrintJson(views::Page("queues", std::move(arr), ""));
    return kExitOk;
  }
  if (stats.empty()) {
    out.Print("No queues yet (a queue appears with its first task).\n");
    return kExitOk;
  }
  int64_t now = WallNowMs();
  Table table({"Queue", "Pending", "Running", "Scheduled", "Dead", "Oldest Pending", "Succeeded",
               "Failed"});
  for (const auto& q : stats) {
    table.AddRow({q.queue, std::to_string(q.pending), std::to_string(q.running),
                  std::to_string(q.scheduled),
                  Cell(std::to_string(q.dead), q.dead > 0 ? Color::kRed : Color::kNone),
                  AgeSince(q.oldest_pending_ms, now), std::to_string(Counter(q, "succeeded")),
                  std::to_string(Counter(q, "failed"))});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunQueueStats(Context& ctx, const std::string& queue) {
  const Output& out = ctx.out();
  if (auto st = ValidateQueueName(queue); !st) return out.Fail(st.error());
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto q = (*broker)->GetQueueStats(queue);
  if (!q) return out.Fail(q.error());
  if (out.json()) {
    out.PrintJson(views::Queue(*q, WallNowMs()));
    return kExitOk;
  }
  int64_t now = WallNowMs();
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Queue", q->queue},
      {"Pending", std::to_string(q->pending)},
      {"Running", std::to_string(q->running)},
      {"Scheduled", std::to_string(q->scheduled)},
      {"Dead", std::to_string(q->dead)},
      {"Oldest pending", q->oldest_pending_ms == 0
                             ? "-"
                             : AgeSince(q->oldest_pending_ms, now) + " ago (" +
                                   HumanTime(q->oldest_pending_ms) + ")"},
  };
  for (const auto& [name, value] : q->counters) rows.emplace_back(name, std::to_string(value));
  out.Print(RenderKeyValues(rows));
  return kExitOk;
}

int RunQueueDead(Context& ctx, const std::string& queue, int limit) {
  const Output& out = ctx.out();
  if (auto st = ValidateQueueName(queue); !st) return out.Fail(st.error());
  if (limit < 1) return out.Fail(ErrorCode::kInvalidArgument, "--limit must be at least 1");
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto dead = (*broker)->ListDead(queue, limit);
  if (!dead) return out.Fail(dead.error());
  if (out.json()) {
    Json arr = Json::array();
    for (const auto& t : *dead) arr.push_back(views::Task(t));
    out.PrintJson(views::Page("tasks", std::move(arr), ""));
    return kExitOk;
  }
  if (dead->empty()) {
    out.Print("No dead-lettered tasks in queue " + queue + ".\n");
    return kExitOk;
  }
  Table table({"ID", "Kind", "Attempts", "Finished", "Error"});
  for (const auto& t : *dead) {
    table.AddRow(
        {t.id, t.kind, std::to_string(t.attempts) + "/" + std::to_string(t.max_attempts),
         HumanTime(t.finished_ms),
         Cell(Ellipsize(t.error.empty() ? "-" : t.error, 60, out.style().unicode), Color::kRed)});
  }
  out.PrintTable(table);
  out.Print("Re-run one with: ferry task retry ID\n");
  return kExitOk;
}

int RunVersion(Context& ctx) {
  const Output& out = ctx.out();
  if (out.json()) {
    out.PrintJson(Json{{"version", FERRY_VERSION}});
  } else {
    out.Print(std::string("ferry ") + FERRY_VERSION + "\n");
  }
  return kExitOk;
}

}  // namespace ferry::cli
