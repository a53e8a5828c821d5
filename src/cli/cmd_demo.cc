// `ferry demo`: the README's quick start. A private redis-server, an in-process worker, a batch of
// example tasks (one fails, retries and is dead-lettered; one unique key is submitted twice),
// their outcomes and the `worker list` table, then a clean drain.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "cli/commands.h"
#include "cli/signals.h"
#include "core/time_util.h"
#include "devstack/embedded_redis.h"
#include "worker/worker.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

struct DemoTask {
  std::string note;  // what it shows
  SubmitRequest request;
  TaskStatus expect = TaskStatus::kSucceeded;
};

std::vector<DemoTask> DemoTasks() {
  auto req = [](std::string kind, Json payload) {
    SubmitRequest r;
    r.kind = std::move(kind);
    r.payload = std::move(payload);
    return r;
  };
  std::vector<DemoTask> tasks;
  tasks.push_back({"returns its payload", req("echo", {{"message", "hello from ferry"}}),
                   TaskStatus::kSucceeded});
  tasks.push_back({"sleeps 1 s", req("sleep", {{"ms", 1000}}), TaskStatus::kSucceeded});
  tasks.push_back({"runs a program (no shell)", req("shell", {{"argv", {"uname", "-a"}}}),
                   TaskStatus::kSucceeded});
  DemoTask fail{"fails, retries twice, then is dead-lettered",
                req("fail", {{"message", "simulated failure"}, {"retryable", true}}),
                TaskStatus::kFailed};
  fail.request.max_attempts = 3;
  tasks.push_back(fail);
  DemoTask unique{"unique key demo-order-42", req("echo", {{"order", 42}}), TaskStatus::kSucceeded};
  unique.request.unique_key = "demo-order-42";
  tasks.push_back(unique);
  DemoTask again = unique;
  again.note = "same unique key again: deduplicated";
  tasks.push_back(again);
  tasks.push_back({"does nothing", req("noop", Json::object()), TaskStatus::kSucceeded});
  return tasks;
}

}  // namespace

int RunDemo(Context& ctx, const DemoArgs& args) {
  const Output& out = ctx.out();
  auto cfg = ResolveClientConfig(ctx.global(), ctx.env(), "warn");
  if (!cfg) return out.Fail(cfg.error());
  if (auto st = EnsureLogging(cfg->log); !st) return out.Fail(st.error());
  auto say = [&](const std::string& line) {
    if (!out.json()) out.Print(line + "\n");
  };

  // Ctrl-C at any point: stop waiting, drain, clean up (the private Redis goes with us).
  std::atomic<bool> interrupted{false};
  std::atomic<Worker*> target{nullptr};
  SignalWatcher signals([&](int, int) {
    interrupted = true;
    if (Worker* w = target.load()) w->Stop();
  });

  auto redis = devstack::EmbeddedRedis::Start();
  if (!redis) return out.Fail(redis.error());
  say("Started a private redis-server at " + (*redis)->url());

  WorkerOptions wo;
  wo.broker = cfg->broker;
  wo.broker.redis_url = (*redis)->url();
  wo.concurrency = 4;
  wo.lease = std::chrono::seconds(10);
  wo.drain_timeout = std::chrono::seconds(5);
  wo.heartbeat_ttl = std::chrono::seconds(3);  // the table at the end shows fresh counters
  wo.block = milliseconds(200);
  wo.backoff_base = milliseconds(200);  // the failing task's retries come quickly
  wo.backoff_cap = std::chrono::seconds(1);
  HandlerRegistry registry;
  RegisterBuiltinHandlers(registry);
  auto worker = MakeWorker(wo, registry);
  if (!worker) return out.Fail(worker.error());
  if (auto st = (*worker)->Start(); !st) return out.Fail(st.error());
  target = worker->get();
  say("Started worker " + (*worker)->id() + " (concurrency 4)");

  auto stop_worker = [&] {
    (*worker)->Stop();
    (*worker)->Wait();
    target = nullptr;
  };
  auto factory = MakeRedisBrokerFactory(wo.broker);
  auto conn = factory->Open();
  if (!conn) {
    stop_worker();
    return out.Fail(conn.error());
  }
  TaskClient client(std::move(*conn));

  std::vector<DemoTask> tasks = DemoTasks();
  std::vector<SubmitResult> submitted;
  say("Submitting " + std::to_string(tasks.size()) + " tasks:");
  for (const auto& t : tasks) {
    auto r = client.Submit(t.request);
    if (!r) {
      stop_worker();
      return out.Fail(r.error());
    }
    say("  " + r->id + "  " + t.request.kind + "  " + t.note +
        (r->existing ? "  -> existing task, not queued again" : ""));
    submitted.push_back(*r);
  }

  // Wait for every distinct task to end; bounded so a broken setup cannot hang the quick start.
  auto deadline = SteadyClock::now() + std::chrono::seconds(30);
  std::vector<TaskRecord> records;
  std::vector<std::string> seen;
  bool as_expected = true;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const std::string& id = submitted[i].id;
    if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
    seen.push_back(id);
    TaskRecord rec;
    while (true) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
      if (interrupted || left.count() <= 0) {
        stop_worker();
        return out.Fail(ErrorCode::kTimeout,
                        interrupted ? "interrupted" : "timed out waiting for task " + id);
      }
      auto r = client.Wait(id, std::min(left, milliseconds(500)));
      if (r) {
        rec = *r;
        break;
      }
      if (r.error().code != ErrorCode::kTimeout) {
        stop_worker();
        return out.Fail(r.error());
      }
    }
    if (rec.status != tasks[i].expect) as_expected = false;
    records.push_back(rec);
  }

  // The registry record is refreshed every heartbeat_ttl/3 (1 s here): show one written after
  // the last task ended, so its counters and current tasks are up to date.
  int64_t all_done_ms = WallNowMs();
  std::vector<WorkerInfo> workers;
  auto hb_deadline = SteadyClock::now() + std::chrono::seconds(3);
  while (true) {
    auto w = client.broker().ListWorkers();
    if (w) workers = *w;
    bool fresh = !workers.empty() && std::all_of(workers.begin(), workers.end(), [&](auto& i) {
      return i.last_heartbeat_ms > all_done_ms;
    });
    if (fresh || SteadyClock::now() >= hb_deadline || interrupted) break;
    std::this_thread::sleep_for(milliseconds(100));
  }

  if (out.json()) {
    Json jt = Json::array();
    for (const auto& r : records) jt.push_back(TaskToJson(r));
    Json jw = Json::array();
    for (const auto& w : workers) jw.push_back(WorkerToJson(w));
    Json subs = Json::array();
    for (size_t i = 0; i < tasks.size(); ++i) {
      subs.push_back({{"id", submitted[i].id},
                      {"kind", tasks[i].request.kind},
                      {"note", tasks[i].note},
                      {"existing", submitted[i].existing}});
    }
    out.PrintJson(Json{{"redis_url", (*redis)->url()},
                       {"submitted", subs},
                       {"tasks", jt},
                       {"workers", jw},
                       {"as_expected", as_expected}});
  } else {
    say("");
    say("Task outcomes:");
    Table table({"ID", "Kind", "Status", "Attempts", "Result / Error"});
    for (const auto& r : records) {
      std::string status(TaskStatusName(r.status));
      std::string detail =
          r.status == TaskStatus::kSucceeded ? (r.result.empty() ? "null" : r.result) : r.error;
      table.AddRow({r.id, r.kind, Cell(status, StatusColor(status)),
                    std::to_string(r.attempts) + "/" + std::to_string(r.max_attempts),
                    Ellipsize(detail, 60, out.style().unicode)});
    }
    out.PrintTable(table);
    say("");
    say("$ ferry worker list");
    out.PrintTable(WorkersTable(workers));
  }

  if (args.keep && !interrupted) {
    say("");
    say("Redis: " + (*redis)->url() + "   worker: " + (*worker)->id());
    say("Try: ferry --redis-url " + (*redis)->url() + " task submit echo --payload '{\"hi\":1}'");
    say("Press Ctrl-C to stop.");
    while (!interrupted) std::this_thread::sleep_for(milliseconds(100));
  }
  stop_worker();
  say("");
  say(as_expected ? "Demo finished: worker drained, private Redis stopped."
                  : "Demo finished, but some tasks did not end as expected (see above).");
  return as_expected ? kExitOk : kExitFailure;
}

}  // namespace ferry::cli
