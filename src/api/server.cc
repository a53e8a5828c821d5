#include "api/server.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <any>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <utility>

#include "api/http_util.h"
#include "api/scopes.h"
#include "api/webhook_auth.h"
#include "console/routes.h"
#include "core/crypto.h"
#include "core/json_fields.h"
#include "core/pool.h"
#include "core/time_util.h"
#include "engine/ingest.h"
#include "http/server.h"
#include "remediation/actions.h"
#include "remediation/view.h"
#include "runs/apply.h"
#include "runs/runs.h"
#include "scheduler/dispatch.h"
#include "views/views.h"

namespace ferry::api {
namespace {

using http::Request;
using http::Response;
using namespace std::chrono_literals;

void SendJson(Response& res, int status, const Json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = DumpJson(body);
}

void SendError(Response& res, const Error& error) {
  const bool close = res.close;
  res = http::ErrorResponse(error);
  res.close = close;
}

void SendError(Response& res, ErrorCode code, const std::string& message) {
  SendError(res, Error{code, message});
}

std::optional<int64_t> ParseInt64(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

bool IsLoopbackHost(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

struct WebhookEntry {
  int version = 0;
  std::optional<engine::WebhookTrigger> trigger;
  std::string trigger_id;
};

// What an /api/v1 route's admission step found: the token's scopes (Request::context).
struct Granted {
  std::vector<std::string> scopes;
};

// What a webhook's admission step found, for its handler (Request::context).
struct AdmittedHook {
  std::string workflow_id;
  WebhookEntry entry;
};

// The state of one SSE stream, shared by its provider calls.
struct SseStream {
  std::string run_id;
  int64_t last_seq = 0;
  int empty_polls = 0;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
  bool started = false;
};

}  // namespace

struct ApiServer::Impl {
  explicit Impl(ApiServerOptions o)
      : options(std::move(o)),
        stores([this]() -> Result<std::unique_ptr<Store>> { return options.store_factory->Open(); },
               std::max(4, options.threads)),
        brokers(
            [this]() -> Result<std::unique_ptr<Broker>> { return options.broker_factory->Open(); },
            std::max(4, options.threads)) {}

  // Constant after construction.
  const ApiServerOptions options;
  engine::EnvSecretResolver env_secrets;
  Pool<Store> stores;
  Pool<Broker> brokers;

  std::unique_ptr<http::Server> server;

  std::mutex lifecycle_mu;  // serializes Start and Stop
  bool running = false;     // Guarded by lifecycle_mu
  bool stopped = false;     // Guarded by lifecycle_mu

  std::mutex cache_mu;
  std::map<std::string, WebhookEntry> webhooks;  // by workflow id; Guarded by cache_mu

  const engine::SecretResolver& secrets() const {
    return options.secrets != nullptr ? *options.secrets : env_secrets;
  }

  // A connection that saw an unavailable or internal error may be broken: close it.
  template <typename Lease>
  static void Check(Lease& lease, const Error& e) {
    if (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kInternal) lease.MarkBad();
  }

  // True (and the error answered, the connection checked) when `result` failed.
  template <typename Lease, typename T>
  static bool Failed(Lease& lease, const Result<T>& result, Response& res) {
    if (result) return false;
    Check(lease, result.error());
    SendError(res, result.error());
    return true;
  }

  http::Router Routes();
  std::optional<Response> Authenticate(Request& req, Scope needed);

  // Routes.
  void Healthz(const Request& req, Response& res);
  void Readyz(const Request& req, Response& res);
  void ApplyWorkflow(const Request& req, Response& res);
  void ListWorkflows(const Request& req, Response& res);
  void GetWorkflow(const Request& req, Response& res);
  void ListVersions(const Request& req, Response& res);
  void GetVersion(const Request& req, Response& res);
  void CreateRun(const Request& req, Response& res);
  void ListRuns(const Request& req, Response& res);
  void GetRun(const Request& req, Response& res);
  void CancelRun(const Request& req, Response& res);
  void RetryRun(const Request& req, Response& res);
  void RunEvents(const Request& req, Response& res);
  void SubmitTask(const Request& req, Response& res);
  void ListTasks(const Request& req, Response& res);
  void GetTask(const Request& req, Response& res);
  void CancelTask(const Request& req, Response& res);
  void RetryTask(const Request& req, Response& res);
  void ListWorkers(const Request& req, Response& res);
  void ListQueues(const Request& req, Response& res);
  void GetQueue(const Request& req, Response& res);
  void ListRemediations(const Request& req, Response& res);
  void GetRemediation(const Request& req, Response& res);
  void DismissRemediation(const Request& req, Response& res);
  void ReopenRemediation(const Request& req, Response& res);
  void RemediationDiff(const Request& req, Response& res);
  void DispatchCron(const Request& req, Response& res);
  void Metrics(const Request& req, Response& res);
  void Alerts(const Request& req, Response& res);
  std::optional<Response> AdmitHook(Request& req, int64_t& body_limit);
  void Hook(const Request& req, Response& res);

  Result<WebhookEntry> WebhookFor(Store& store, const Workflow& wf);
};

// ---------------------------------------------------------------------------------------------
// Registration, routing, auth

http::Router ApiServer::Impl::Routes() {
  using Method = void (Impl::*)(const Request&, Response&);
  auto bind = [this](Method m) {
    return [this, m](Request& req) {
      Response res;
      (this->*m)(req, res);
      return res;
    };
  };
  // /api/v1 routes: a bearer token with the route's scope first (before the body is read), then
  // the API body limit. The token's scopes go to the handler (Request::context).
  auto api = [this](Scope needed) {
    return [this, needed](Request& req, int64_t& limit) -> std::optional<Response> {
      limit = options.max_body_bytes;
      if (!options.require_auth) {
        req.context = Granted{{std::string(ScopeName(Scope::kAdmin))}};
        return std::nullopt;
      }
      return Authenticate(req, needed);
    };
  };
  const auto read = api(Scope::kRead);
  const auto run = api(Scope::kRun);
  const auto apply = api(Scope::kApply);
  http::Router r;
  r.Get("/healthz", bind(&Impl::Healthz));
  r.Get("/readyz", bind(&Impl::Readyz));
  r.Get("/api/v1/workflows", bind(&Impl::ListWorkflows), read);
  r.Post("/api/v1/workflows", bind(&Impl::ApplyWorkflow), apply);
  r.Get("/api/v1/workflows/{name}", bind(&Impl::GetWorkflow), read);
  r.Get("/api/v1/workflows/{name}/versions", bind(&Impl::ListVersions), read);
  r.Get("/api/v1/workflows/{name}/versions/{version}", bind(&Impl::GetVersion), read);
  r.Get("/api/v1/runs", bind(&Impl::ListRuns), read);
  r.Post("/api/v1/runs", bind(&Impl::CreateRun), run);
  r.Get("/api/v1/runs/{id}", bind(&Impl::GetRun), read);
  r.Post("/api/v1/runs/{id}/cancel", bind(&Impl::CancelRun), run);
  r.Post("/api/v1/runs/{id}/retry", bind(&Impl::RetryRun), run);
  r.Get("/api/v1/runs/{id}/events", bind(&Impl::RunEvents), read);
  r.Get("/api/v1/tasks", bind(&Impl::ListTasks), read);
  r.Post("/api/v1/tasks", bind(&Impl::SubmitTask), run);
  r.Get("/api/v1/tasks/{id}", bind(&Impl::GetTask), read);
  r.Post("/api/v1/tasks/{id}/cancel", bind(&Impl::CancelTask), run);
  r.Post("/api/v1/tasks/{id}/retry", bind(&Impl::RetryTask), run);
  r.Get("/api/v1/workers", bind(&Impl::ListWorkers), read);
  r.Get("/api/v1/queues", bind(&Impl::ListQueues), read);
  r.Get("/api/v1/queues/{name}", bind(&Impl::GetQueue), read);
  // Remediation candidates (src/remediation/actions.h does the work; view.h the shapes). A reopened
  // candidate may end in a new workflow version: the apply scope.
  r.Get("/api/v1/remediations", bind(&Impl::ListRemediations), read);
  r.Get("/api/v1/remediations/{id}", bind(&Impl::GetRemediation), read);
  r.Get("/api/v1/remediations/{id}/diff", bind(&Impl::RemediationDiff), read);
  r.Post("/api/v1/remediations/{id}/dismiss", bind(&Impl::DismissRemediation), apply);
  r.Post("/api/v1/remediations/{id}/reopen", bind(&Impl::ReopenRemediation), apply);
  // One cron dispatch tick on demand (src/scheduler): exactly once through the store's
  // (trigger, fire time) record, so racing the scheduler's leader is harmless.
  r.Post("/api/v1/triggers/cron/dispatch", bind(&Impl::DispatchCron), run);
  if (options.metrics) r.Get("/metrics", bind(&Impl::Metrics));
  if (options.alerts) r.Get("/api/v1/alerts", bind(&Impl::Alerts), read);
  // The web console's page and files (src/console); its data comes from the routes above.
  console::AddRoutes(r);
  // Webhooks: the trigger decides the methods and the body limit, before the body is read.
  r.Add(http::Route{{"GET", "POST", "PUT", "PATCH", "DELETE"},
                    "/hooks/{workflow}",
                    bind(&Impl::Hook),
                    [this](Request& req, int64_t& limit) { return AdmitHook(req, limit); }});
  return r;
}

std::optional<Response> ApiServer::Impl::Authenticate(Request& req, Scope needed) {
  Response res;
  auto header = req.Header("Authorization");
  if (!header) {
    res.SetHeader("WWW-Authenticate", "Bearer");
    SendError(res, ErrorCode::kUnauthenticated,
              "missing bearer token (Authorization: Bearer fy_...; see `ferry token create`)");
    return res;
  }
  auto token = BearerToken(*header);
  if (!token) {
    res.SetHeader("WWW-Authenticate", "Bearer");
    SendError(res, ErrorCode::kUnauthenticated, "Authorization must be 'Bearer <token>'");
    return res;
  }
  auto store = stores.Acquire();
  if (!store) {
    SendError(res, store.error());
    return res;
  }
  auto found = (*store)->VerifyApiToken(Sha256Hex(*token));
  if (!found) {
    Check(*store, found.error());
    SendError(res, found.error());
    return res;
  }
  if (!*found) {
    res.SetHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    SendError(res, ErrorCode::kUnauthenticated, "invalid or revoked token");
    return res;
  }
  if (!Allows((*found)->scopes, needed)) {
    std::string has;
    for (const auto& g : (*found)->scopes) has += (has.empty() ? "" : " ") + g;
    res.SetHeader("WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"" +
                                          std::string(ScopeName(needed)) + "\"");
    SendError(res, ErrorCode::kPermissionDenied,
              req.method + " " + req.path + " needs a token with the " +
                  std::string(ScopeName(needed)) + " scope; this one has: " + has);
    return res;
  }
  req.context = Granted{(*found)->scopes};
  return std::nullopt;
}

void ApiServer::Impl::DispatchCron(const Request&, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  scheduler::DispatchOptions d;
  d.queue = options.run_queue;
  auto report = scheduler::DispatchCron(**store, **broker, *options.clock, d);
  if (Failed(*store, report, res)) return;
  SendJson(res, 200, report->ToJson());
}

void ApiServer::Impl::Metrics(const Request&, Response& res) {
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = options.metrics();
}

void ApiServer::Impl::Alerts(const Request&, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto body = options.alerts(**broker, **store);
  if (Failed(*broker, body, res)) return;
  SendJson(res, 200, *body);
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Health

void ApiServer::Impl::Healthz(const Request&, Response& res) {
  SendJson(res, 200, Json{{"status", "ok"}});
}

void ApiServer::Impl::Readyz(const Request&, Response& res) {
  Json body = Json::object();
  bool ok = true;
  if (auto store = stores.Acquire(); !store) {
    ok = false;
    body["store"] = store.error().message;
  } else if (auto st = (*store)->Ping(); !st) {
    store->MarkBad();
    ok = false;
    body["store"] = st.error().message;
  } else {
    body["store"] = "ok";
  }
  if (auto broker = brokers.Acquire(); !broker) {
    ok = false;
    body["redis"] = broker.error().message;
  } else if (auto st = (*broker)->Ping(); !st) {
    broker->MarkBad();
    ok = false;
    body["redis"] = st.error().message;
  } else {
    body["redis"] = "ok";
  }
  body["status"] = ok ? "ok" : "unavailable";
  if (!ok) {
    std::string failed;
    for (const char* part : {"store", "redis"}) {
      if (body[part] != "ok") failed += (failed.empty() ? "" : ", ") + std::string(part);
    }
    body["error"] = {{"code", "unavailable"}, {"message", failed + " unreachable"}};
  }
  SendJson(res, ok ? 200 : 503, body);
}

// ---------------------------------------------------------------------------------------------
// Workflows

void ApiServer::Impl::ApplyWorkflow(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  runs::ApplySourceRequest apply;
  FieldReader f(*body);
  apply.source = f.String("source", kRequired).value_or("");
  apply.format = f.String("format").value_or(apply.format);
  apply.author = f.String("author").value_or("");
  apply.notes = f.String("notes").value_or("");
  const auto& granted = std::any_cast<const Granted&>(req.context).scopes;
  apply.may_use_secret = [&granted](const std::string& secret) {
    return AllowsSecret(granted, secret);
  };
  if (auto st = f.Finish(); !st) return SendError(res, st.error());
  if (apply.source.empty()) {
    return SendError(res, ErrorCode::kInvalidArgument, "source is required");
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  std::vector<engine::Diagnostic> diagnostics;
  auto applied = runs::ApplyWorkflowSource(**store, apply, &diagnostics);
  if (!applied) {
    Check(*store, applied.error());
    const int status = ErrorHttpStatus(applied.error().code);
    Json out = http::ErrorBody(ErrorCodeName(applied.error().code), applied.error().message);
    if (!diagnostics.empty()) {
      Json list = Json::array();
      for (const auto& d : diagnostics) {
        list.push_back(
            {{"line", d.line}, {"column", d.column}, {"path", d.path}, {"message", d.message}});
      }
      out["error"]["diagnostics"] = std::move(list);
    }
    return SendJson(res, status, out);
  }
  SendJson(res, applied->applied.created ? 201 : 200,
           Json{{"workflow", views::Workflow(applied->applied.workflow)},
                {"version", views::Version(applied->applied.version, false)},
                {"created", applied->applied.created}});
}

void ApiServer::Impl::ListWorkflows(const Request&, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto list = (*store)->ListWorkflows();
  if (Failed(*store, list, res)) return;
  Json out = Json::array();
  for (const auto& w : *list) out.push_back(views::Workflow(w));
  SendJson(res, 200, views::Page("workflows", std::move(out), ""));
}

void ApiServer::Impl::GetWorkflow(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto wf = (*store)->GetWorkflow(req.params[0]);
  if (Failed(*store, wf, res)) return;
  if (!*wf) return SendError(res, ErrorCode::kNotFound, "no workflow " + req.params[0]);
  Json out{{"workflow", views::Workflow(**wf)}};
  if (auto v = (*store)->GetWorkflowVersion((*wf)->id, 0); v && *v) {
    out["version"] = views::Version(**v, true);
  }
  RunFilter filter;
  filter.workflow_id = (*wf)->id;
  filter.limit = 10;
  if (auto page = (*store)->ListRuns(filter)) {
    Json runs = Json::array();
    for (const auto& r : page->runs) runs.push_back(views::Run(r));
    out["recent_runs"] = std::move(runs);
  }
  SendJson(res, 200, out);
}

void ApiServer::Impl::ListVersions(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto wf = (*store)->GetWorkflow(req.params[0]);
  if (Failed(*store, wf, res)) return;
  if (!*wf) return SendError(res, ErrorCode::kNotFound, "no workflow " + req.params[0]);
  auto versions = (*store)->ListWorkflowVersions((*wf)->id);
  if (Failed(*store, versions, res)) return;
  Json out = Json::array();
  for (const auto& v : *versions) out.push_back(views::Version(v, false));
  Json body = views::Page("versions", std::move(out), "");
  body["workflow"] = (*wf)->name;
  SendJson(res, 200, body);
}

void ApiServer::Impl::GetVersion(const Request& req, Response& res) {
  auto n = ParseInt64(req.params[1]);
  if (!n || *n < 1 || *n > 1'000'000'000) {
    return SendError(res, ErrorCode::kInvalidArgument, "bad version number");
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto wf = (*store)->GetWorkflow(req.params[0]);
  if (Failed(*store, wf, res)) return;
  if (!*wf) return SendError(res, ErrorCode::kNotFound, "no workflow " + req.params[0]);
  auto v = (*store)->GetWorkflowVersion((*wf)->id, static_cast<int>(*n));
  if (Failed(*store, v, res)) return;
  if (!*v) return SendError(res, ErrorCode::kNotFound, "no such version");
  SendJson(res, 200, Json{{"version", views::Version(**v, true)}});
}

// ---------------------------------------------------------------------------------------------
// Runs

void ApiServer::Impl::CreateRun(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  runs::StartRunRequest start;
  FieldReader f(*body);
  start.workflow = f.String("workflow", kRequired).value_or("");
  start.inputs = f.Object("inputs").value_or(Json::object());
  if (auto st = f.Finish(); !st) return SendError(res, st.error());
  start.triggered_by = TriggeredBy::kApi;
  start.queue = options.run_queue;
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto started = runs::StartRun(**store, **broker, start);
  if (Failed(*store, started, res)) return;
  if (!started->enqueued) broker->MarkBad();
  SendJson(res, 201,
           Json{{"run", views::Run(started->run)},
                {"enqueued", started->enqueued},
                {"task_id", started->task_id}});
}

void ApiServer::Impl::ListRuns(const Request& req, Response& res) {
  RunFilter filter;
  auto limit = ParseLimit(req.Query("limit"), 50, 1000);
  if (!limit) return SendError(res, limit.error());
  filter.limit = *limit;
  filter.cursor = req.Query("cursor");
  if (auto s = req.Query("status"); !s.empty()) {
    filter.status = ParseRunStatus(s);
    if (!filter.status) return SendError(res, ErrorCode::kInvalidArgument, "unknown status " + s);
  }
  if (auto t = req.Query("triggered_by"); !t.empty()) {
    filter.triggered_by = ParseTriggeredBy(t);
    if (!filter.triggered_by) {
      return SendError(res, ErrorCode::kInvalidArgument, "unknown triggered_by " + t);
    }
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  if (auto w = req.Query("workflow"); !w.empty()) {
    auto wf = (*store)->GetWorkflow(w);
    if (Failed(*store, wf, res)) return;
    if (!*wf) return SendError(res, ErrorCode::kNotFound, "no workflow " + w);
    filter.workflow_id = (*wf)->id;
  }
  auto page = (*store)->ListRuns(filter);
  if (Failed(*store, page, res)) return;
  Json out = Json::array();
  for (const auto& r : page->runs) out.push_back(views::Run(r));
  SendJson(res, 200, views::Page("runs", std::move(out), page->next_cursor));
}

void ApiServer::Impl::GetRun(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto run = (*store)->GetRun(req.params[0]);
  if (Failed(*store, run, res)) return;
  if (!*run) return SendError(res, ErrorCode::kNotFound, "no run " + req.params[0]);
  auto steps = (*store)->ListSteps((*run)->id);
  if (Failed(*store, steps, res)) return;
  Json out = views::Run(**run);
  Json list = Json::array();
  for (const auto& s : *steps) list.push_back(views::Step(s));
  out["steps"] = std::move(list);
  SendJson(res, 200, Json{{"run", std::move(out)}});
}

void ApiServer::Impl::CancelRun(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  const std::string id = req.params[0];
  auto run = (*store)->CancelRun(id);
  if (Failed(*store, run, res)) return;
  // The store decides; the broker cancel only stops the work sooner (the handler also polls the
  // run's status), so its failure does not fail the request.
  Json out{{"run", views::Run(*run)}};
  (void)(*store)->AppendRunEvent(id, std::string(runs::kEventCancelled), DumpJson({{"by", "api"}}));
  if (auto task = runs::LatestRunTask(**store, id); task && *task) {
    out["task_id"] = (*task)->task_id;
    if (auto broker = brokers.Acquire()) {
      if (auto c = (*broker)->Cancel((*task)->task_id); !c) {
        Check(*broker, c.error());
        out["task_cancel"] = c.error().message;
      } else {
        out["task_cancel"] = TaskStatusName(*c);
      }
    }
  }
  SendJson(res, 200, out);
}

void ApiServer::Impl::RetryRun(const Request& req, Response& res) {
  RetryRunOptions retry;
  if (!req.body.empty()) {
    auto body = ParseJsonObject(req.body);
    if (!body) return SendError(res, body.error());
    FieldReader f(*body);
    retry.latest_version = f.Bool("latest_version").value_or(false);
    if (auto st = f.Finish(); !st) return SendError(res, st.error());
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto run = (*store)->RetryRun(req.params[0], retry);
  if (Failed(*store, run, res)) return;
  Json out{{"run", views::Run(*run)}, {"enqueued", false}};
  if (auto broker = brokers.Acquire()) {
    runs::EnsureTaskOptions task;
    task.queue = options.run_queue;
    if (auto ensured = runs::EnsureRunTask(**store, **broker, *run, task)) {
      out["enqueued"] = true;
      out["task_id"] = ensured->task_id;
    } else {
      Check(*broker, ensured.error());
      out["enqueue_error"] = ensured.error().message;
    }
  }
  SendJson(res, 201, out);
}

// ---------------------------------------------------------------------------------------------
// Remediation candidates

void ApiServer::Impl::ListRemediations(const Request& req, Response& res) {
  auto limit = ParseLimit(req.Query("limit"), 50, 1000);
  if (!limit) return SendError(res, limit.error());
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto page = remediation::List(
      **store, {req.Query("status"), req.Query("workflow"), *limit, req.Query("cursor")});
  if (Failed(*store, page, res)) return;
  SendJson(res, 200, remediation::PageJson(*page));
}

void ApiServer::Impl::GetRemediation(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto shown = remediation::Show(**store, {req.params[0]});
  if (Failed(*store, shown, res)) return;
  SendJson(
      res, 200,
      Json{{"remediation", remediation::CandidateDetailJson(shown->remediation, shown->attempts)}});
}

void ApiServer::Impl::DismissRemediation(const Request& req, Response& res) {
  std::string reason;
  if (!req.body.empty()) {
    auto body = ParseJsonObject(req.body);
    if (!body) return SendError(res, body.error());
    if (auto it = body->find("reason"); it != body->end() && !it->is_null()) {
      if (!it->is_string()) {
        return SendError(res, ErrorCode::kInvalidArgument, "reason must be a string");
      }
      reason = it->get<std::string>();
    }
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto m = remediation::Dismiss(**store, {req.params[0], reason, "api"});
  if (Failed(*store, m, res)) return;
  SendJson(res, 200, Json{{"remediation", remediation::CandidateJson(*m)}});
}

void ApiServer::Impl::ReopenRemediation(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto m = remediation::Reopen(**store, {req.params[0], "api"});
  if (Failed(*store, m, res)) return;
  SendJson(res, 200, Json{{"remediation", remediation::CandidateJson(*m)}});
}

void ApiServer::Impl::RemediationDiff(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto d = remediation::Diff(**store, {req.params[0]});
  if (Failed(*store, d, res)) return;
  SendJson(res, 200, remediation::DiffJson(*d));
}

// ---------------------------------------------------------------------------------------------
// Tasks, workers, queues

void ApiServer::Impl::SubmitTask(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  SubmitRequest submit;
  FieldReader f(*body);
  submit.kind = f.String("kind", kRequired).value_or("");
  submit.payload = f.Any("payload").value_or(Json::object());
  submit.queue = f.String("queue").value_or(submit.queue);
  submit.max_attempts = static_cast<int>(f.Int("max_attempts", 1, kMaxTaskAttempts).value_or(3));
  submit.unique_key = f.String("unique_key").value_or("");
  submit.timeout = f.Duration("timeout", 1ms, kMaxTaskTimeout).value_or(0ms);
  const int64_t now_ms = options.clock->NowMs();
  auto delay = f.Duration("delay", 0ms, kMaxTaskEtaHorizon);
  auto eta = f.Int("eta_ms", 0, now_ms + kMaxTaskEtaHorizon.count());
  if (auto st = f.Finish(); !st) return SendError(res, st.error());
  if (delay && eta) {
    return SendError(res, ErrorCode::kInvalidArgument, "give delay or eta_ms, not both");
  }
  if (delay) submit.eta_ms = now_ms + delay->count();
  if (eta) submit.eta_ms = *eta;
  if (submit.kind == runs::kRunTaskKind) {
    return SendError(res, ErrorCode::kInvalidArgument,
                     "ferry.run tasks are made by POST /api/v1/runs");
  }
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  if (auto st = ValidateSubmit(submit, options.broker_factory->options()); !st) {
    return SendError(res, st.error());
  }
  auto submitted = (*broker)->Submit(submit);
  if (Failed(*broker, submitted, res)) return;
  SendJson(res, submitted->existing ? 200 : 201,
           Json{{"id", submitted->id}, {"existing", submitted->existing}});
}

void ApiServer::Impl::ListTasks(const Request& req, Response& res) {
  TaskListFilter filter;
  auto limit = ParseLimit(req.Query("limit"), 50, 1000);
  if (!limit) return SendError(res, limit.error());
  filter.limit = *limit;
  if (auto s = req.Query("status"); !s.empty()) {
    filter.status = ParseTaskStatus(s);
    if (!filter.status) return SendError(res, ErrorCode::kInvalidArgument, "unknown status " + s);
  }
  if (auto q = req.Query("queue"); !q.empty()) {
    if (auto st = ValidateQueueName(q); !st) return SendError(res, st.error());
    filter.queue = q;
  }
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto tasks = (*broker)->ListTasks(filter);
  if (Failed(*broker, tasks, res)) return;
  Json out = Json::array();
  for (const auto& t : *tasks) out.push_back(views::Task(t));
  SendJson(res, 200, views::Page("tasks", std::move(out), ""));
}

void ApiServer::Impl::GetTask(const Request& req, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto task = (*broker)->GetTask(req.params[0]);
  if (Failed(*broker, task, res)) return;
  if (!*task) return SendError(res, ErrorCode::kNotFound, "no task " + req.params[0]);
  SendJson(res, 200, Json{{"task", views::Task(**task)}});
}

void ApiServer::Impl::CancelTask(const Request& req, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto status = (*broker)->Cancel(req.params[0]);
  if (Failed(*broker, status, res)) return;
  SendJson(res, 200, Json{{"id", req.params[0]}, {"status", TaskStatusName(*status)}});
}

void ApiServer::Impl::RetryTask(const Request& req, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  if (auto st = (*broker)->Retry(req.params[0]); !st) {
    Check(*broker, st.error());
    return SendError(res, st.error());
  }
  SendJson(res, 200, Json{{"id", req.params[0]}, {"status", "pending"}});
}

void ApiServer::Impl::ListWorkers(const Request&, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto workers = (*broker)->ListWorkers();
  if (Failed(*broker, workers, res)) return;
  Json out = Json::array();
  for (const auto& w : *workers) out.push_back(views::Worker(w, WallNowMs()));
  SendJson(res, 200, views::Page("workers", std::move(out), ""));
}

void ApiServer::Impl::ListQueues(const Request&, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto names = (*broker)->ListQueues();
  if (Failed(*broker, names, res)) return;
  Json out = Json::array();
  for (const auto& q : *names) {
    auto stats = (*broker)->GetQueueStats(q);
    if (Failed(*broker, stats, res)) return;
    out.push_back(views::Queue(*stats, WallNowMs()));
  }
  SendJson(res, 200, views::Page("queues", std::move(out), ""));
}

void ApiServer::Impl::GetQueue(const Request& req, Response& res) {
  if (auto st = ValidateQueueName(req.params[0]); !st) return SendError(res, st.error());
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto stats = (*broker)->GetQueueStats(req.params[0]);
  if (Failed(*broker, stats, res)) return;
  SendJson(res, 200, Json{{"queue", views::Queue(*stats, WallNowMs())}});
}

// ---------------------------------------------------------------------------------------------//
// Run events (SSE)

namespace {

// A run's events as Server-Sent Events: each step sends what is new since the last one, or a
// keep-alive comment now and then, and ends after run.finished (or once the run is terminal and
// nothing more arrived). Between steps it holds no thread (http::Stream).
class RunEventStream : public http::Stream {
 public:
  RunEventStream(Pool<Store>& stores, std::string run_id, int64_t after,
                 std::chrono::milliseconds poll, std::chrono::milliseconds keep_alive)
      : stores_(stores),
        run_id_(std::move(run_id)),
        last_seq_(after),
        poll_(poll),
        keep_alive_(keep_alive) {}

  Step Next(std::string& out, bool stopping) override {
    if (stopping) return {true, {}};
    if (!started_) {
      started_ = true;
      out += "retry: 1000\n\n";
    }
    bool finished = false;
    if (auto store = stores_.Acquire()) {
      auto events = (*store)->ListRunEvents(run_id_, last_seq_, 500);
      if (!events) {
        store->MarkBad();  // the store is away: keep the stream, try again next poll
      } else {
        for (const auto& e : *events) {
          out += "id: " + std::to_string(e.seq) + "\nevent: " + e.type +
                 "\ndata: " + DumpJson(views::RunEvent(e)) + "\n\n";
          last_seq_ = e.seq;
          if (e.type == runs::kEventFinished) finished = true;
        }
        if (events->empty() && ++empty_polls_ % 5 == 0) {
          // No run.finished seen (cancelled before a worker started it, or history trimmed):
          // end once the run is terminal and nothing more arrived.
          if (auto run = (*store)->GetRun(run_id_); run && *run && IsTerminal((*run)->status)) {
            auto rest = (*store)->ListRunEvents(run_id_, last_seq_, 500);
            if (rest && rest->empty()) finished = true;
          } else if (run && !*run) {
            finished = true;  // deleted by retention
          }
        }
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - last_write_ >= keep_alive_) out = ": keep-alive\n\n";
    if (!out.empty()) last_write_ = now;
    if (finished) return {true, {}};
    // More may be waiting when a full page came back: ask again at once.
    return {false, out.empty() ? poll_ : std::chrono::milliseconds(0)};
  }

 private:
  Pool<Store>& stores_;
  const std::string run_id_;
  int64_t last_seq_;
  const std::chrono::milliseconds poll_;
  const std::chrono::milliseconds keep_alive_;
  int empty_polls_ = 0;
  bool started_ = false;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
};

}  // namespace

void ApiServer::Impl::RunEvents(const Request& req, Response& res) {
  int64_t after = 0;
  std::string last_id = req.Header("Last-Event-ID").value_or("");
  if (last_id.empty()) last_id = req.Query("last_event_id");
  if (!last_id.empty()) {
    auto n = ParseInt64(last_id);
    if (!n || *n < 0) {
      return SendError(res, ErrorCode::kInvalidArgument, "Last-Event-ID must be an event seq");
    }
    after = *n;
  }
  {
    auto store = stores.Acquire();
    if (!store) return SendError(res, store.error());
    auto run = (*store)->GetRun(req.params[0]);
    if (Failed(*store, run, res)) return;
    if (!*run) return SendError(res, ErrorCode::kNotFound, "no run " + req.params[0]);
  }
  res.status = 200;
  res.content_type = "text/event-stream";
  res.SetHeader("Cache-Control", "no-cache");
  res.SetHeader("X-Accel-Buffering", "no");
  res.stream = std::make_shared<RunEventStream>(stores, req.params[0], after,
                                                options.sse_poll_interval, options.sse_keep_alive);
}

// ---------------------------------------------------------------------------------------------
// Webhooks

Result<WebhookEntry> ApiServer::Impl::WebhookFor(Store& store, const Workflow& wf) {
  {
    std::lock_guard lock(cache_mu);
    auto it = webhooks.find(wf.id);
    if (it != webhooks.end() && it->second.version == wf.current_version) return it->second;
  }
  auto version = store.GetWorkflowVersion(wf.id, wf.current_version);
  if (!version) return Fail(version.error());
  if (!*version) return Fail(ErrorCode::kNotFound, "workflow " + wf.name + " has no version");
  auto ingested = engine::IngestStoredGraph((*version)->graph);
  if (!ingested) {
    return Fail(ErrorCode::kInternal,
                "stored graph of " + wf.name + " does not load: " + ingested.error().message);
  }
  WebhookEntry entry;
  entry.version = (*version)->version;
  entry.trigger = ingested->workflow.webhook;
  if (entry.trigger) {
    TriggerFilter filter;
    filter.workflow_id = wf.id;
    filter.kind = TriggerKind::kWebhook;
    if (auto triggers = store.ListTriggers(filter); triggers && !triggers->empty()) {
      entry.trigger_id = triggers->front().id;
    }
  }
  std::lock_guard lock(cache_mu);
  webhooks[wf.id] = entry;
  return entry;
}

std::optional<Response> ApiServer::Impl::AdmitHook(Request& req, int64_t& body_limit) {
  Response res;
  const std::string& name = req.params[0];
  auto store = stores.Acquire();
  if (!store) {
    SendError(res, store.error());
    return res;
  }
  auto wf = (*store)->GetWorkflow(name);
  if (Failed(*store, wf, res)) return res;
  if (!*wf) {
    SendError(res, ErrorCode::kNotFound, "no workflow " + name);
    return res;
  }
  auto entry = WebhookFor(**store, **wf);
  if (Failed(*store, entry, res)) return res;
  if (!entry->trigger) {
    SendError(res, ErrorCode::kNotFound, "workflow " + name + " has no webhook trigger");
    return res;
  }
  const engine::WebhookTrigger& trigger = *entry->trigger;
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  if (std::find(trigger.methods.begin(), trigger.methods.end(), method) == trigger.methods.end()) {
    std::string allow;
    for (const auto& m : trigger.methods) allow += (allow.empty() ? "" : ", ") + m;
    res.SetHeader("Allow", allow);
    SendJson(res, 405,
             http::ErrorBody("method_not_allowed",
                             "webhook " + name + " accepts " + allow + ", not " + req.method));
    return res;
  }
  body_limit = trigger.max_body_bytes;
  req.context = AdmittedHook{(*wf)->id, std::move(*entry)};
  return std::nullopt;
}

void ApiServer::Impl::Hook(const Request& req, Response& res) {
  auto fail = [&](const Error& e) { SendError(res, e); };
  const std::string& name = req.params[0];
  const auto& admitted = std::any_cast<const AdmittedHook&>(req.context);
  const WebhookEntry* entry = &admitted.entry;
  const engine::WebhookTrigger& trigger = *entry->trigger;
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  const std::string& body = req.body;
  auto store = stores.Acquire();
  if (!store) return fail(store.error());
  const HeaderList& headers = req.headers;
  std::vector<std::string> secret_values;
  for (const auto& secret_name : trigger.secrets) {
    secret_values.push_back(secrets().Resolve(secret_name).value_or(""));
  }
  if (trigger.auth != engine::WebhookAuth::kNone &&
      std::all_of(secret_values.begin(), secret_values.end(),
                  [](const std::string& v) { return v.empty(); })) {
    spdlog::error(
        "webhook {}: none of its secrets ({}) is set on this server (FERRY_SECRET_<NAME> or the "
        "secrets file)",
        name, fmt::join(trigger.secrets, ", "));
    return fail(
        Error{ErrorCode::kInternal, "this webhook's secret is not configured on the server"});
  }
  auto verified = VerifyWebhook(trigger, secret_values, headers, body, options.clock->NowMs());
  if (!verified) return fail(verified.error());

  auto parsed = WebhookTriggerData(trigger, method, headers, req.query, body);
  if (!parsed) return fail(parsed.error());
  Json data = std::move(*parsed);
  if (trigger.slack_url_verification) {
    if (auto challenge = UrlVerificationChallenge(data["body"])) {
      return SendJson(res, 200, Json{{"challenge", *challenge}});
    }
  }

  runs::StartRunRequest start;
  start.workflow = name;
  start.inputs = data["body"].is_object() ? data["body"] : Json::object();
  start.allow_unknown_inputs = true;
  start.triggered_by = TriggeredBy::kWebhook;
  start.trigger_id = entry->trigger_id;
  start.queue = options.run_queue;
  start.trigger = std::move(data);
  if (!verified->nonce.empty()) {
    start.nonce = runs::StartRunRequest::Nonce{"webhook:" + admitted.workflow_id, verified->nonce,
                                               verified->nonce_expires_ms};
  }
  auto broker = brokers.Acquire();
  if (!broker) return fail(broker.error());
  auto started = runs::StartRun(**store, **broker, start);
  if (!started) {
    Check(*store, started.error());
    return fail(started.error());
  }
  if (!started->enqueued) broker->MarkBad();
  SendJson(res, 202,
           Json{{"run_id", started->run.id}, {"status", RunStatusName(started->run.status)}});
}
// ---------------------------------------------------------------------------------------------
// ApiServer

ApiServer::ApiServer(ApiServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ApiServer::~ApiServer() { Stop(); }

int ApiServer::port() const { return impl_->server ? impl_->server->port() : 0; }

int ApiServer::connections() const { return impl_->server ? impl_->server->connections() : 0; }

Result<int> ApiServer::Start() {
  Impl& s = *impl_;
  const ApiServerOptions& o = s.options;
  std::lock_guard lock(s.lifecycle_mu);
  if (s.running || s.stopped) return Fail(ErrorCode::kInvalidArgument, "Start() called twice");
  if (o.store_factory == nullptr || o.broker_factory == nullptr) {
    return Fail(ErrorCode::kInvalidArgument, "store_factory and broker_factory are required");
  }
  if (!o.require_auth && (!o.dev_mode || !IsLoopbackHost(o.host))) {
    return Fail(ErrorCode::kInvalidArgument,
                "authentication can be disabled only by `ferry dev` on a loopback address");
  }
  if (o.max_body_bytes < 1 || o.sse_poll_interval.count() < 1) {
    return Fail(ErrorCode::kInvalidArgument, "max_body_bytes and sse_poll_interval must be > 0");
  }

  http::ServerOptions h = o.http;
  h.host = o.host;
  h.port = o.port;
  h.threads = o.threads;
  h.max_streams = o.max_sse_clients;
  h.default_body_limit = o.max_body_bytes;
  // Webhook metrics: the workflow name is a bounded label; a 404 names none.
  if (o.on_webhook) {
    h.on_response = [&s](const Request& req, int status, double seconds) {
      if (req.path.rfind("/hooks/", 0) != 0) return;
      s.options.on_webhook(status == 404 || req.params.empty() ? std::string() : req.params[0],
                           status, seconds);
    };
  }
  s.server = std::make_unique<http::Server>(std::move(h), s.Routes());
  auto bound = s.server->Start();
  if (!bound) return Fail(bound.error());
  s.running = true;
  return *bound;
}

void ApiServer::Stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mu);
  if (s.stopped) return;
  s.stopped = true;
  if (!s.running) return;
  s.server->Stop();
}

}  // namespace ferry::api
