// `ferry demo`: the README's quick start, on embedded defaults.
//  1. Tasks: a private redis-server, an in-process worker, a batch of example tasks (one fails,
//     retries and is dead-lettered; one unique key is submitted twice), their outcomes and the
//     `worker list` table.
//  2. Workflows: a SQLite store in a temporary directory, the HTTP API on a free loopback port,
//     examples/hello.yaml applied, a signed webhook request that starts a run, and the run's
//     steps once a worker has taken it to succeeded.
// Then a clean drain; the private Redis and the temporary store go with the process.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "api/http_util.h"
#include "api/server.h"
#include "api/webhook_auth.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/time_util.h"
#include "devstack/embedded_redis.h"
#include "engine/http_client.h"
#include "engine/secrets.h"
#include "runs/apply.h"
#include "runs/handler.h"
#include "store/store.h"
#include "views/views.h"
#include "worker/worker.h"

namespace ferry::cli::embedded {
extern const std::string_view k_hello;  // examples/hello.yaml (cmake/FerryEmbed.cmake)
}

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

// A directory under $TMPDIR for the demo's SQLite store, removed when the demo ends.
class ScratchDir {
 public:
  static Result<ScratchDir> Make() {
    const char* base = std::getenv("TMPDIR");
    std::filesystem::path p =
        std::filesystem::path(base ? base : "/tmp") / ("ferry-demo-" + RandomHex(6));
    std::error_code ec;
    if (!std::filesystem::create_directories(p, ec)) {
      return Fail(ErrorCode::kUnavailable, "cannot create " + p.string() + ": " + ec.message());
    }
    return ScratchDir(p);
  }
  ScratchDir(ScratchDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit ScratchDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

// What part 2 shows: the run a signed webhook started, and its steps.
struct WorkflowDemo {
  std::string webhook_url;
  long webhook_status = 0;  // NOLINT(google-runtime-int): curl's type
  std::string webhook_body;
  double webhook_ms = 0;
  std::optional<Run> run;
  std::vector<RunStep> steps;
};

// Applies the embedded hello workflow, signs a webhook request for it like a sender would
// (HMAC-SHA256 over "<unix seconds>.<raw body>"), posts it to the API and waits for the run.
Result<WorkflowDemo> RunWorkflowDemo(Store& store, const std::string& api_base,
                                     const std::string& secret, const std::atomic<bool>& stop) {
  runs::ApplySourceRequest apply;
  apply.source = std::string(embedded::k_hello);
  apply.author = "ferry demo";
  auto applied = runs::ApplyWorkflowSource(store, apply, nullptr);
  if (!applied) return Fail(applied.error());

  WorkflowDemo demo;
  demo.webhook_url = api_base + "/hooks/hello";
  std::string body = R"({"who":"Ferry user","shout":false})";
  std::string ts = std::to_string(WallNowMs() / 1000);
  engine::HttpRequest req;
  req.method = "POST";
  req.url = demo.webhook_url;
  req.body = body;
  req.has_body = true;
  req.timeout = std::chrono::seconds(10);
  req.headers = {
      {"Content-Type", "application/json"},
      {"X-Ferry-Timestamp", ts},
      {"X-Ferry-Signature", "sha256=" + HmacSha256Hex(secret, api::SignedPayload(ts, body))}};
  auto t0 = SteadyClock::now();
  auto resp = engine::PerformHttp(req, {});
  if (!resp) return Fail(resp.error());
  demo.webhook_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
  demo.webhook_status = resp->status;
  demo.webhook_body = resp->body;
  if (resp->status != 202) {
    return Fail(ErrorCode::kInternal,
                "the webhook answered " + std::to_string(resp->status) + ": " + resp->body);
  }
  auto parsed = ParseJson(resp->body);
  if (!parsed || !parsed->contains("run_id")) {
    return Fail(ErrorCode::kInternal, "unexpected webhook answer: " + resp->body);
  }
  std::string run_id = (*parsed)["run_id"].get<std::string>();
  auto deadline = SteadyClock::now() + std::chrono::seconds(30);
  while (SteadyClock::now() < deadline && !stop) {
    auto run = store.GetRun(run_id);
    if (!run) return Fail(run.error());
    if (*run && IsTerminal((*run)->status)) {
      demo.run = **run;
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  if (!demo.run) return Fail(ErrorCode::kTimeout, "run " + run_id + " did not end in 30 s");
  auto steps = store.ListSteps(run_id);
  if (!steps) return Fail(steps.error());
  demo.steps = *steps;
  return demo;
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
  auto scratch = ScratchDir::Make();
  if (!scratch) return out.Fail(scratch.error());
  auto stores = MakeStoreFactory((scratch->path() / "ferry.db").string());
  if (!stores) return out.Fail(stores.error());
  if (auto s = (*stores)->Open(); !s) return out.Fail(s.error());  // applies the migrations
  auto brokers = MakeRedisBrokerFactory(wo.broker);
  // The webhook's HMAC key: the workflow names it (HELLO_WEBHOOK), the server resolves it.
  const std::string webhook_secret = RandomHex(16);
  engine::MapSecretResolver secrets({{"HELLO_WEBHOOK", webhook_secret}});

  HandlerRegistry registry;
  RegisterBuiltinHandlers(registry);
  runs::RunHandlerOptions rho;
  rho.secrets = &secrets;
  runs::RegisterRunHandler(registry, **stores, *brokers, rho);
  auto worker = MakeWorker(wo, registry, MakeRedisBrokerFactory(wo.broker));
  if (!worker) return out.Fail(worker.error());
  if (auto st = (*worker)->Start(); !st) return out.Fail(st.error());
  target = worker->get();
  say("Started worker " + (*worker)->id() + " (concurrency 4)");

  auto stop_worker = [&] {
    (*worker)->Stop();
    (*worker)->Wait();
    target = nullptr;
  };
  auto conn = brokers->Open();
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
    // One JSON document per part: the tasks here, the workflow run below.
    Json jt = Json::array();
    for (const auto& r : records) jt.push_back(views::Task(r));
    Json jw = Json::array();
    for (const auto& w : workers) jw.push_back(views::Worker(w, WallNowMs()));
    Json subs = Json::array();
    for (size_t i = 0; i < tasks.size(); ++i) {
      subs.push_back({{"id", submitted[i].id},
                      {"kind", tasks[i].request.kind},
                      {"note", tasks[i].note},
                      {"existing", submitted[i].existing}});
    }
    out.PrintJsonLine(Json{{"redis_url", (*redis)->url()},
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
    Json jw = Json::array();
    for (const auto& w : workers) jw.push_back(views::Worker(w, WallNowMs()));
    out.PrintTable(WorkersTable(jw));
  }

  // Part 2: a workflow run started by a signed webhook.
  api::ApiServerOptions ao;
  ao.host = "127.0.0.1";
  ao.port = 0;
  ao.require_auth = false;
  ao.dev_mode = true;
  ao.store_factory = stores->get();
  ao.broker_factory = brokers.get();
  ao.secrets = &secrets;
  api::ApiServer server(ao);
  auto port = server.Start();
  if (!port) {
    stop_worker();
    return out.Fail(port.error());
  }
  std::string api_base = "http://127.0.0.1:" + std::to_string(*port);
  auto store = (*stores)->Open();
  if (!store) {
    server.Stop();
    stop_worker();
    return out.Fail(store.error());
  }
  auto wf = RunWorkflowDemo(**store, api_base, webhook_secret, interrupted);
  server.Stop();
  if (!wf) {
    stop_worker();
    return out.Fail(wf.error());
  }
  bool run_ok = wf->run && wf->run->status == RunStatus::kSucceeded;
  as_expected = as_expected && run_ok;
  if (out.json()) {
    Json steps = Json::array();
    for (const auto& st : wf->steps) {
      steps.push_back({{"node", st.node_id},
                       {"status", st.status},
                       {"duration_ms", st.finished_ms - st.started_ms},
                       {"output", st.output}});
    }
    out.PrintJsonLine(Json{{"workflow", "hello"},
                           {"webhook", wf->webhook_url},
                           {"webhook_status", wf->webhook_status},
                           {"webhook_ms", wf->webhook_ms},
                           {"run_id", wf->run->id},
                           {"run_status", RunStatusName(wf->run->status)},
                           {"steps", steps}});
  } else {
    say("");
    say("Workflow: applied examples/hello.yaml to a SQLite store at " +
        (scratch->path() / "ferry.db").string());
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.1f", wf->webhook_ms);
    say("POST " + wf->webhook_url + " (HMAC-SHA256 signed) -> " +
        std::to_string(wf->webhook_status) + " in " + ms + " ms: " + wf->webhook_body);
    say("Run " + wf->run->id +
        " (triggered by webhook): " + std::string(RunStatusName(wf->run->status)) + " in " +
        FormatDuration(milliseconds(wf->run->finished_ms - wf->run->created_ms)));
    Table steps({"Node", "Status", "Took", "Output"});
    for (const auto& st : wf->steps) {
      steps.AddRow({st.node_id, Cell(st.status, StatusColor(st.status)),
                    FormatDuration(milliseconds(st.finished_ms - st.started_ms)),
                    Ellipsize(st.output, 70, out.style().unicode)});
    }
    out.PrintTable(steps);
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
