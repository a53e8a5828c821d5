#include "api/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <regex>
#include <thread>
#include <utility>

#include "api/dto.h"
#include "api/http_util.h"
#include "core/time_util.h"
#include "engine/ingest.h"
#include "runs/apply.h"
#include "runs/pool.h"
#include "runs/runs.h"
#include "scheduler/dispatch.h"

namespace ferry::api {
namespace {

using httplib::Request;
using httplib::Response;

// Webhook bodies are limited per trigger (ingestion caps max_body_bytes at 64 MiB); httplib's
// own limit only has to stay above the largest one.
constexpr size_t kMaxAnyBody = (size_t{64} << 20) + 1;
// API bodies over this many times the limit are refused before they are read.
constexpr int64_t kEarlyRejectFactor = 8;

void SendJson(Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(DumpJson(body), "application/json");
}

void SendError(Response& res, const Error& error) {
  auto [status, body] = ErrorResponse(error);
  SendJson(res, status, body);
}

void SendError(Response& res, ErrorCode code, const std::string& message) {
  SendError(res, Error{code, message});
}

// A response sent before the request body was read: the connection cannot be reused.
void CloseAfter(Response& res) { res.set_header("Connection", "close"); }

HeaderList Headers(const Request& req) {
  HeaderList out;
  out.reserve(req.headers.size());
  for (const auto& [k, v] : req.headers) out.emplace_back(k, v);
  return out;
}

std::string Param(const Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : std::string();
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

std::string StatusCodeName(int status) {
  switch (status) {
    case 400:
      return "invalid_argument";
    case 401:
      return "unauthenticated";
    case 403:
      return "permission_denied";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "timeout";
    case 413:
      return "too_large";
    case 414:
      return "too_large";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "invalid_argument";
  }
}

struct Route {
  std::regex pattern;
  std::vector<std::string> methods;
};

struct WebhookEntry {
  int version = 0;
  std::optional<engine::WebhookTrigger> trigger;
  std::string trigger_id;
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
  runs::Pool<Store> stores;
  runs::Pool<Broker> brokers;
  std::vector<Route> routes;

  httplib::Server http;
  std::thread listener;
  std::atomic<int> port{0};
  std::atomic<bool> stopping{false};
  std::atomic<int> sse_clients{0};

  std::mutex lifecycle_mu;  // serializes Start and Stop
  bool running = false;     // Guarded by lifecycle_mu
  bool stopped = false;     // Guarded by lifecycle_mu

  std::mutex stop_mu;  // with stop_cv: wakes SSE streams on Stop
  std::condition_variable stop_cv;

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

  // Runs `f` and answers 500 with the exception's message if it throws.
  template <typename F>
  httplib::Server::Handler Guard(F f) {
    return [this, f = std::move(f)](const Request& req, Response& res) {
      try {
        if (static_cast<int64_t>(req.body.size()) > options.max_body_bytes) {
          return SendError(res, ErrorCode::kTooLarge,
                           "request body of " + std::to_string(req.body.size()) +
                               " bytes is over the limit of " +
                               std::to_string(options.max_body_bytes));
        }
        f(req, res);
      } catch (const std::exception& e) {
        spdlog::error("api: {} {}: {}", req.method, req.path, e.what());
        SendError(res, ErrorCode::kInternal, std::string("unexpected error: ") + e.what());
      }
    };
  }

  void AddRoute(const std::string& pattern, std::vector<std::string> methods) {
    if (std::find(methods.begin(), methods.end(), "GET") != methods.end()) {
      methods.push_back("HEAD");
    }
    routes.push_back(Route{std::regex(pattern), std::move(methods)});
  }

  void Register();
  httplib::Server::HandlerResponse PreRoute(const Request& req, Response& res);
  bool Authenticate(const Request& req, Response& res);

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
  void Hook(const Request& req, Response& res, const httplib::ContentReader* reader);

  bool SseStep(SseStream& s, httplib::DataSink& sink);
  Result<WebhookEntry> WebhookFor(Store& store, const Workflow& wf);
};

// ---------------------------------------------------------------------------------------------
// Registration, routing, auth

void ApiServer::Impl::Register() {
  const std::string name = "([^/]+)";
  AddRoute("/healthz", {"GET"});
  AddRoute("/readyz", {"GET"});
  AddRoute("/api/v1/workflows", {"GET", "POST"});
  AddRoute("/api/v1/workflows/" + name, {"GET"});
  AddRoute("/api/v1/workflows/" + name + "/versions", {"GET"});
  AddRoute("/api/v1/workflows/" + name + "/versions/([0-9]+)", {"GET"});
  AddRoute("/api/v1/runs", {"GET", "POST"});
  AddRoute("/api/v1/runs/" + name, {"GET"});
  AddRoute("/api/v1/runs/" + name + "/cancel", {"POST"});
  AddRoute("/api/v1/runs/" + name + "/retry", {"POST"});
  AddRoute("/api/v1/runs/" + name + "/events", {"GET"});
  AddRoute("/api/v1/tasks", {"GET", "POST"});
  AddRoute("/api/v1/tasks/" + name, {"GET"});
  AddRoute("/api/v1/tasks/" + name + "/cancel", {"POST"});
  AddRoute("/api/v1/tasks/" + name + "/retry", {"POST"});
  AddRoute("/api/v1/workers", {"GET"});
  AddRoute("/api/v1/queues", {"GET"});
  AddRoute("/api/v1/triggers/cron/dispatch", {"POST"});
  AddRoute("/api/v1/queues/" + name, {"GET"});
  // Webhook methods are checked against the trigger, after the route.
  AddRoute("/hooks/" + name, {"GET", "POST", "PUT", "PATCH", "DELETE"});
  if (options.metrics) AddRoute("/metrics", {"GET"});
  if (options.alerts) AddRoute("/api/v1/alerts", {"GET"});

  auto bind = [this](void (Impl::*m)(const Request&, Response&)) {
    return Guard([this, m](const Request& req, Response& res) { (this->*m)(req, res); });
  };
  http.Get("/healthz", bind(&Impl::Healthz));
  http.Get("/readyz", bind(&Impl::Readyz));
  http.Post("/api/v1/workflows", bind(&Impl::ApplyWorkflow));
  http.Get("/api/v1/workflows", bind(&Impl::ListWorkflows));
  http.Get("/api/v1/workflows/" + name, bind(&Impl::GetWorkflow));
  http.Get("/api/v1/workflows/" + name + "/versions", bind(&Impl::ListVersions));
  http.Get("/api/v1/workflows/" + name + "/versions/([0-9]+)", bind(&Impl::GetVersion));
  http.Post("/api/v1/runs", bind(&Impl::CreateRun));
  http.Get("/api/v1/runs", bind(&Impl::ListRuns));
  http.Get("/api/v1/runs/" + name, bind(&Impl::GetRun));
  http.Post("/api/v1/runs/" + name + "/cancel", bind(&Impl::CancelRun));
  http.Post("/api/v1/runs/" + name + "/retry", bind(&Impl::RetryRun));
  http.Get("/api/v1/runs/" + name + "/events", bind(&Impl::RunEvents));
  http.Post("/api/v1/tasks", bind(&Impl::SubmitTask));
  http.Get("/api/v1/tasks", bind(&Impl::ListTasks));
  http.Get("/api/v1/tasks/" + name, bind(&Impl::GetTask));
  http.Post("/api/v1/tasks/" + name + "/cancel", bind(&Impl::CancelTask));
  http.Post("/api/v1/tasks/" + name + "/retry", bind(&Impl::RetryTask));
  http.Get("/api/v1/workers", bind(&Impl::ListWorkers));
  http.Get("/api/v1/queues", bind(&Impl::ListQueues));
  http.Get("/api/v1/queues/" + name, bind(&Impl::GetQueue));
  // One cron dispatch tick on demand (src/scheduler): exactly once through the store's
  // (trigger, fire time) record, so racing the scheduler's leader is harmless.
  http.Post("/api/v1/triggers/cron/dispatch", Guard([this](const Request&, Response& res) {
              auto broker = brokers.Acquire();
              if (!broker) return SendError(res, broker.error());
              auto store = stores.Acquire();
              if (!store) return SendError(res, store.error());
              scheduler::DispatchOptions d;
              d.queue = options.run_queue;
              auto report = scheduler::DispatchCron(**store, **broker, *options.clock, d);
              if (Failed(*store, report, res)) return;
              SendJson(res, 200, report->ToJson());
            }));
  if (options.metrics) {
    http.Get("/metrics", Guard([this](const Request&, Response& res) {
               res.set_content(options.metrics(), "text/plain; version=0.0.4; charset=utf-8");
             }));
  }
  if (options.alerts) {
    http.Get("/api/v1/alerts", Guard([this](const Request&, Response& res) {
               auto broker = brokers.Acquire();
               if (!broker) return SendError(res, broker.error());
               auto store = stores.Acquire();
               if (!store) return SendError(res, store.error());
               auto body = options.alerts(**broker, **store);
               if (Failed(*broker, body, res)) return;
               SendJson(res, 200, *body);
             }));
  }

  // Webhooks read their body themselves, so the trigger's limit applies before reading.
  const std::string hook = "/hooks/" + name;
  // Webhook metrics: the workflow name is a bounded label; a 404 names none.
  auto observe = [this](const Request& req, const Response& res,
                        std::chrono::steady_clock::time_point start) {
    if (!options.on_webhook) return;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    options.on_webhook(res.status == 404 ? std::string() : std::string(req.matches[1]), res.status,
                       took.count());
  };
  http.Get(hook, Guard([this, observe](const Request& req, Response& res) {
             const auto start = std::chrono::steady_clock::now();
             Hook(req, res, nullptr);
             observe(req, res, start);
           }));
  auto with_reader = [this, observe](const Request& req, Response& res,
                                     const httplib::ContentReader& reader) {
    const auto start = std::chrono::steady_clock::now();
    try {
      Hook(req, res, &reader);
    } catch (const std::exception& e) {
      spdlog::error("api: {} {}: {}", req.method, req.path, e.what());
      SendError(res, ErrorCode::kInternal, std::string("unexpected error: ") + e.what());
    }
    observe(req, res, start);
  };
  http.Post(hook, with_reader);
  http.Put(hook, with_reader);
  http.Patch(hook, with_reader);
  http.Delete(hook, with_reader);

  http.set_pre_routing_handler(
      [this](const Request& req, Response& res) { return PreRoute(req, res); });
  // httplib's own errors (unparsable request, over payload_max_length) get the JSON shape too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const Request&, Response& res) {
    if (res.body.empty()) {
      SendJson(res, res.status,
               ErrorBody(StatusCodeName(res.status), "HTTP " + std::to_string(res.status) + " (" +
                                                         StatusCodeName(res.status) + ")"));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
}

httplib::Server::HandlerResponse ApiServer::Impl::PreRoute(const Request& req, Response& res) {
  using HR = httplib::Server::HandlerResponse;
  const Route* route = nullptr;
  for (const auto& r : routes) {
    if (std::regex_match(req.path, r.pattern)) {
      route = &r;
      break;
    }
  }
  if (route == nullptr) {
    CloseAfter(res);
    SendError(res, ErrorCode::kNotFound, "no route " + req.path);
    return HR::Handled;
  }
  if (std::find(route->methods.begin(), route->methods.end(), req.method) == route->methods.end()) {
    std::string allow;
    for (const auto& m : route->methods) allow += (allow.empty() ? "" : ", ") + m;
    res.set_header("Allow", allow);
    CloseAfter(res);
    SendJson(res, 405,
             ErrorBody("method_not_allowed", req.method + " is not allowed on " + req.path +
                                                 " (allowed: " + allow + ")"));
    return HR::Handled;
  }
  if (req.path.rfind("/api/", 0) != 0) return HR::Unhandled;  // health probes and webhooks

  // Far over the limit: answer without reading it (the client may see the connection close
  // before the answer). Moderately over: read it, so the client surely gets its 413 (Guard).
  if (auto len = ParseInt64(req.get_header_value("Content-Length"));
      len && *len > kEarlyRejectFactor * options.max_body_bytes) {
    CloseAfter(res);
    SendError(res, ErrorCode::kTooLarge,
              "request body of " + std::to_string(*len) + " bytes is over the limit of " +
                  std::to_string(options.max_body_bytes));
    return HR::Handled;
  }
  if (options.require_auth && !Authenticate(req, res)) {
    CloseAfter(res);
    return HR::Handled;
  }
  return HR::Unhandled;
}

bool ApiServer::Impl::Authenticate(const Request& req, Response& res) {
  if (!req.has_header("Authorization")) {
    res.set_header("WWW-Authenticate", "Bearer");
    SendError(res, ErrorCode::kUnauthenticated,
              "missing bearer token (Authorization: Bearer fy_...; see `ferry token create`)");
    return false;
  }
  auto token = BearerToken(req.get_header_value("Authorization"));
  if (!token) {
    res.set_header("WWW-Authenticate", "Bearer");
    SendError(res, ErrorCode::kUnauthenticated, "Authorization must be 'Bearer <token>'");
    return false;
  }
  auto store = stores.Acquire();
  if (!store) {
    SendError(res, store.error());
    return false;
  }
  auto found = (*store)->VerifyApiToken(engine::Sha256Hex(*token));
  if (!found) {
    Check(*store, found.error());
    SendError(res, found.error());
    return false;
  }
  if (!*found) {
    res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    SendError(res, ErrorCode::kUnauthenticated, "invalid or revoked token");
    return false;
  }
  return true;
}

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
  auto str = [&](const char* key, std::string& dest) -> bool {
    auto it = body->find(key);
    if (it == body->end() || it->is_null()) return true;
    if (!it->is_string()) {
      SendError(res, ErrorCode::kInvalidArgument, std::string(key) + " must be a string");
      return false;
    }
    dest = it->get<std::string>();
    return true;
  };
  if (!str("source", apply.source) || !str("format", apply.format) ||
      !str("author", apply.author) || !str("notes", apply.notes)) {
    return;
  }
  if (apply.source.empty()) {
    return SendError(res, ErrorCode::kInvalidArgument, "source is required");
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  std::vector<engine::Diagnostic> diagnostics;
  auto applied = runs::ApplyWorkflowSource(**store, apply, &diagnostics);
  if (!applied) {
    Check(*store, applied.error());
    auto [status, out] = ErrorResponse(applied.error());
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
           Json{{"workflow", WorkflowJson(applied->applied.workflow)},
                {"version", VersionJson(applied->applied.version, false)},
                {"created", applied->applied.created}});
}

void ApiServer::Impl::ListWorkflows(const Request&, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto list = (*store)->ListWorkflows();
  if (Failed(*store, list, res)) return;
  Json out = Json::array();
  for (const auto& w : *list) out.push_back(WorkflowJson(w));
  SendJson(res, 200, Json{{"workflows", std::move(out)}});
}

void ApiServer::Impl::GetWorkflow(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto wf = (*store)->GetWorkflow(req.matches[1]);
  if (Failed(*store, wf, res)) return;
  if (!*wf) return SendError(res, ErrorCode::kNotFound, "no workflow " + req.matches[1].str());
  Json out{{"workflow", WorkflowJson(**wf)}};
  if (auto v = (*store)->GetWorkflowVersion((*wf)->id, 0); v && *v) {
    out["version"] = VersionJson(**v, true);
  }
  RunFilter filter;
  filter.workflow_id = (*wf)->id;
  filter.limit = 10;
  if (auto page = (*store)->ListRuns(filter)) {
    Json runs = Json::array();
    for (const auto& r : page->runs) runs.push_back(RunJson(r));
    out["recent_runs"] = std::move(runs);
  }
  SendJson(res, 200, out);
}

void ApiServer::Impl::ListVersions(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto wf = (*store)->GetWorkflow(req.matches[1]);
  if (Failed(*store, wf, res)) return;
  if (!*wf) return SendError(res, ErrorCode::kNotFound, "no workflow " + req.matches[1].str());
  auto versions = (*store)->ListWorkflowVersions((*wf)->id);
  if (Failed(*store, versions, res)) return;
  Json out = Json::array();
  for (const auto& v : *versions) out.push_back(VersionJson(v, false));
  SendJson(res, 200, Json{{"workflow", (*wf)->name}, {"versions", std::move(out)}});
}

void ApiServer::Impl::GetVersion(const Request& req, Response& res) {
  auto n = ParseInt64(req.matches[2].str());
  if (!n || *n < 1 || *n > 1'000'000'000) {
    return SendError(res, ErrorCode::kInvalidArgument, "bad version number");
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto wf = (*store)->GetWorkflow(req.matches[1]);
  if (Failed(*store, wf, res)) return;
  if (!*wf) return SendError(res, ErrorCode::kNotFound, "no workflow " + req.matches[1].str());
  auto v = (*store)->GetWorkflowVersion((*wf)->id, static_cast<int>(*n));
  if (Failed(*store, v, res)) return;
  if (!*v) return SendError(res, ErrorCode::kNotFound, "no such version");
  SendJson(res, 200, Json{{"version", VersionJson(**v, true)}});
}

// ---------------------------------------------------------------------------------------------
// Runs

void ApiServer::Impl::CreateRun(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  runs::StartRunRequest start;
  auto wf = body->find("workflow");
  if (wf == body->end() || !wf->is_string() || wf->get<std::string>().empty()) {
    return SendError(res, ErrorCode::kInvalidArgument, "workflow (a name) is required");
  }
  start.workflow = wf->get<std::string>();
  if (auto in = body->find("inputs"); in != body->end() && !in->is_null()) {
    if (!in->is_object()) {
      return SendError(res, ErrorCode::kInvalidArgument, "inputs must be a JSON object");
    }
    start.inputs = *in;
  }
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
           Json{{"run", RunJson(started->run)},
                {"enqueued", started->enqueued},
                {"task_id", started->task_id}});
}

void ApiServer::Impl::ListRuns(const Request& req, Response& res) {
  RunFilter filter;
  auto limit = ParseLimit(Param(req, "limit"), 50, 1000);
  if (!limit) return SendError(res, limit.error());
  filter.limit = *limit;
  filter.cursor = Param(req, "cursor");
  if (auto s = Param(req, "status"); !s.empty()) {
    filter.status = ParseRunStatus(s);
    if (!filter.status) return SendError(res, ErrorCode::kInvalidArgument, "unknown status " + s);
  }
  if (auto t = Param(req, "triggered_by"); !t.empty()) {
    filter.triggered_by = ParseTriggeredBy(t);
    if (!filter.triggered_by) {
      return SendError(res, ErrorCode::kInvalidArgument, "unknown triggered_by " + t);
    }
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  if (auto w = Param(req, "workflow"); !w.empty()) {
    auto wf = (*store)->GetWorkflow(w);
    if (Failed(*store, wf, res)) return;
    if (!*wf) return SendError(res, ErrorCode::kNotFound, "no workflow " + w);
    filter.workflow_id = (*wf)->id;
  }
  auto page = (*store)->ListRuns(filter);
  if (Failed(*store, page, res)) return;
  Json out = Json::array();
  for (const auto& r : page->runs) out.push_back(RunJson(r));
  SendJson(res, 200, Json{{"runs", std::move(out)}, {"next_cursor", page->next_cursor}});
}

void ApiServer::Impl::GetRun(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto run = (*store)->GetRun(req.matches[1]);
  if (Failed(*store, run, res)) return;
  if (!*run) return SendError(res, ErrorCode::kNotFound, "no run " + req.matches[1].str());
  auto steps = (*store)->ListSteps((*run)->id);
  if (Failed(*store, steps, res)) return;
  Json out = RunJson(**run);
  Json list = Json::array();
  for (const auto& s : *steps) list.push_back(StepJson(s));
  out["steps"] = std::move(list);
  SendJson(res, 200, Json{{"run", std::move(out)}});
}

void ApiServer::Impl::CancelRun(const Request& req, Response& res) {
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  const std::string id = req.matches[1];
  auto run = (*store)->CancelRun(id);
  if (Failed(*store, run, res)) return;
  // The store decides; the broker cancel only stops the work sooner (the handler also polls the
  // run's status), so its failure does not fail the request.
  Json out{{"run", RunJson(*run)}};
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
    if (auto it = body->find("latest_version"); it != body->end()) {
      if (!it->is_boolean()) {
        return SendError(res, ErrorCode::kInvalidArgument, "latest_version must be a boolean");
      }
      retry.latest_version = it->get<bool>();
    }
  }
  auto store = stores.Acquire();
  if (!store) return SendError(res, store.error());
  auto run = (*store)->RetryRun(req.matches[1], retry);
  if (Failed(*store, run, res)) return;
  Json out{{"run", RunJson(*run)}, {"enqueued", false}};
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
// Run events (SSE)

void ApiServer::Impl::RunEvents(const Request& req, Response& res) {
  int64_t after = 0;
  std::string last_id = req.get_header_value("Last-Event-ID");
  if (last_id.empty()) last_id = Param(req, "last_event_id");
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
    auto run = (*store)->GetRun(req.matches[1]);
    if (Failed(*store, run, res)) return;
    if (!*run) return SendError(res, ErrorCode::kNotFound, "no run " + req.matches[1].str());
  }
  if (sse_clients.fetch_add(1) >= options.max_sse_clients) {
    sse_clients.fetch_sub(1);
    res.set_header("Retry-After", "5");
    return SendError(res, ErrorCode::kUnavailable,
                     "too many event streams open (max " + std::to_string(options.max_sse_clients) +
                         "); retry later");
  }
  auto stream = std::make_shared<SseStream>();
  stream->run_id = req.matches[1];
  stream->last_seq = after;
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, stream](size_t, httplib::DataSink& sink) { return SseStep(*stream, sink); },
      [this](bool) { sse_clients.fetch_sub(1); });
}

// One provider call: writes what is new, or waits one poll interval. Returns false to abort
// (the client went away), calls sink.done() once the run has ended and everything was sent.
bool ApiServer::Impl::SseStep(SseStream& s, httplib::DataSink& sink) {
  if (stopping.load()) {
    sink.done();
    return true;
  }
  auto write = [&](const std::string& text) {
    s.last_write = std::chrono::steady_clock::now();
    return sink.write(text.data(), text.size());
  };
  if (!s.started) {
    s.started = true;
    if (!write("retry: 1000\n\n")) return false;
  }
  bool finished = false;
  bool wrote = false;
  {
    auto store = stores.Acquire();
    if (!store) {
      // The store is away: keep the stream, try again next poll.
    } else {
      auto events = (*store)->ListRunEvents(s.run_id, s.last_seq, 500);
      if (!events) {
        Check(*store, events.error());
      } else {
        for (const auto& e : *events) {
          std::string frame = "id: " + std::to_string(e.seq) + "\nevent: " + e.type +
                              "\ndata: " + DumpJson(RunEventJson(e)) + "\n\n";
          if (!write(frame)) return false;
          wrote = true;
          s.last_seq = e.seq;
          if (e.type == runs::kEventFinished) finished = true;
        }
        if (events->empty() && ++s.empty_polls % 5 == 0) {
          // No run.finished seen (cancelled before a worker started it, or history trimmed):
          // end once the run is terminal and nothing more arrived.
          if (auto run = (*store)->GetRun(s.run_id); run && *run && IsTerminal((*run)->status)) {
            auto rest = (*store)->ListRunEvents(s.run_id, s.last_seq, 500);
            if (rest && rest->empty()) finished = true;
          } else if (run && !*run) {
            finished = true;  // deleted by retention
          }
        }
      }
    }
  }
  if (finished) {
    sink.done();
    return true;
  }
  if (!wrote) {
    if (std::chrono::steady_clock::now() - s.last_write >= options.sse_keep_alive) {
      if (!write(": keep-alive\n\n")) return false;
    }
    std::unique_lock lock(stop_mu);
    stop_cv.wait_for(lock, options.sse_poll_interval, [this] { return stopping.load(); });
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Tasks, workers, queues

void ApiServer::Impl::SubmitTask(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  SubmitRequest submit;
  try {
    submit.kind = body->value("kind", std::string());
    if (auto p = body->find("payload"); p != body->end()) submit.payload = *p;
    submit.queue = body->value("queue", std::string("default"));
    submit.max_attempts = body->value("max_attempts", 3);
    submit.unique_key = body->value("unique_key", std::string());
    if (auto t = body->find("timeout"); t != body->end()) {
      auto d = ParseDuration(t->get<std::string>());
      if (!d) return SendError(res, d.error());
      submit.timeout = *d;
    }
    if (auto d = body->find("delay"); d != body->end()) {
      auto delay = ParseDuration(d->get<std::string>());
      if (!delay) return SendError(res, delay.error());
      submit.eta_ms = options.clock->NowMs() + delay->count();
    }
    if (auto e = body->find("eta_ms"); e != body->end()) submit.eta_ms = e->get<int64_t>();
  } catch (const Json::exception& e) {
    return SendError(res, ErrorCode::kInvalidArgument, std::string("bad field type: ") + e.what());
  }
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
  auto limit = ParseLimit(Param(req, "limit"), 50, 1000);
  if (!limit) return SendError(res, limit.error());
  filter.limit = *limit;
  if (auto s = Param(req, "status"); !s.empty()) {
    filter.status = ParseTaskStatus(s);
    if (!filter.status) return SendError(res, ErrorCode::kInvalidArgument, "unknown status " + s);
  }
  if (auto q = Param(req, "queue"); !q.empty()) {
    if (auto st = ValidateQueueName(q); !st) return SendError(res, st.error());
    filter.queue = q;
  }
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto tasks = (*broker)->ListTasks(filter);
  if (Failed(*broker, tasks, res)) return;
  Json out = Json::array();
  for (const auto& t : *tasks) out.push_back(TaskJson(t));
  SendJson(res, 200, Json{{"tasks", std::move(out)}});
}

void ApiServer::Impl::GetTask(const Request& req, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto task = (*broker)->GetTask(req.matches[1]);
  if (Failed(*broker, task, res)) return;
  if (!*task) return SendError(res, ErrorCode::kNotFound, "no task " + req.matches[1].str());
  SendJson(res, 200, Json{{"task", TaskJson(**task)}});
}

void ApiServer::Impl::CancelTask(const Request& req, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto status = (*broker)->Cancel(req.matches[1]);
  if (Failed(*broker, status, res)) return;
  SendJson(res, 200, Json{{"id", req.matches[1].str()}, {"status", TaskStatusName(*status)}});
}

void ApiServer::Impl::RetryTask(const Request& req, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  if (auto st = (*broker)->Retry(req.matches[1]); !st) {
    Check(*broker, st.error());
    return SendError(res, st.error());
  }
  SendJson(res, 200, Json{{"id", req.matches[1].str()}, {"status", "pending"}});
}

void ApiServer::Impl::ListWorkers(const Request&, Response& res) {
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto workers = (*broker)->ListWorkers();
  if (Failed(*broker, workers, res)) return;
  Json out = Json::array();
  for (const auto& w : *workers) out.push_back(WorkerJson(w));
  SendJson(res, 200, Json{{"workers", std::move(out)}});
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
    out.push_back(QueueStatsJson(*stats));
  }
  SendJson(res, 200, Json{{"queues", std::move(out)}});
}

void ApiServer::Impl::GetQueue(const Request& req, Response& res) {
  if (auto st = ValidateQueueName(req.matches[1].str()); !st) return SendError(res, st.error());
  auto broker = brokers.Acquire();
  if (!broker) return SendError(res, broker.error());
  auto stats = (*broker)->GetQueueStats(req.matches[1]);
  if (Failed(*broker, stats, res)) return;
  SendJson(res, 200, Json{{"queue", QueueStatsJson(*stats)}});
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
  auto ingested = engine::IngestWorkflow((*version)->graph);
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

void ApiServer::Impl::Hook(const Request& req, Response& res,
                           const httplib::ContentReader* reader) {
  // Until the body is read, an early answer must close the connection.
  bool body_read = reader == nullptr;
  auto fail = [&](const Error& e) {
    if (!body_read) CloseAfter(res);
    SendError(res, e);
  };
  const std::string name = req.matches[1];
  auto store = stores.Acquire();
  if (!store) return fail(store.error());
  auto wf = (*store)->GetWorkflow(name);
  if (!wf) {
    Check(*store, wf.error());
    return fail(wf.error());
  }
  if (!*wf) return fail(Error{ErrorCode::kNotFound, "no workflow " + name});
  auto entry = WebhookFor(**store, **wf);
  if (!entry) {
    Check(*store, entry.error());
    return fail(entry.error());
  }
  if (!entry->trigger) {
    return fail(Error{ErrorCode::kNotFound, "workflow " + name + " has no webhook trigger"});
  }
  const engine::WebhookTrigger& trigger = *entry->trigger;
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  if (std::find(trigger.methods.begin(), trigger.methods.end(), method) == trigger.methods.end()) {
    std::string allow;
    for (const auto& m : trigger.methods) allow += (allow.empty() ? "" : ", ") + m;
    res.set_header("Allow", allow);
    if (!body_read) CloseAfter(res);
    return SendJson(res, 405,
                    ErrorBody("method_not_allowed",
                              "webhook " + name + " accepts " + allow + ", not " + req.method));
  }
  const auto limit = static_cast<size_t>(trigger.max_body_bytes);
  auto too_large = [&] {
    return Error{ErrorCode::kTooLarge,
                 "body over this webhook's limit of " + std::to_string(limit) + " bytes"};
  };
  if (auto len = ParseInt64(req.get_header_value("Content-Length"));
      len && *len > trigger.max_body_bytes) {
    return fail(too_large());
  }
  std::string body;
  if (reader != nullptr) {
    bool over = false;
    (*reader)([&](const char* data, size_t n) {
      if (body.size() + n > limit) {
        over = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (over) return fail(too_large());
    body_read = true;
  } else {
    body = req.body;
  }

  const HeaderList headers = Headers(req);
  if (trigger.auth != engine::WebhookAuth::kNone) {
    auto secret = secrets().Resolve(trigger.secret);
    if (!secret || secret->empty()) {
      spdlog::error(
          "webhook {}: secret {} is not set on this server (FERRY_SECRET_{} or the "
          "secrets file)",
          name, trigger.secret, trigger.secret);
      return fail(Error{ErrorCode::kInternal,
                        "webhook secret " + trigger.secret + " is not configured on the server"});
    }
    if (trigger.auth == engine::WebhookAuth::kHmac) {
      auto check = VerifyHmac(trigger, *secret, headers, body, options.clock->NowMs());
      if (!check) return fail(check.error());
      auto fresh = (*store)->RememberNonce("webhook:" + (*wf)->id, check->signature,
                                           check->nonce_expires_ms);
      if (!fresh) {
        Check(*store, fresh.error());
        return fail(fresh.error());
      }
      if (!*fresh) {
        return fail(Error{ErrorCode::kConflict,
                          "replayed request: this signature was already accepted (sign each "
                          "delivery with a fresh timestamp)"});
      }
    } else if (auto st = VerifySharedSecret(trigger, *secret, headers); !st) {
      return fail(st.error());
    }
  }

  std::vector<std::pair<std::string, std::string>> query(req.params.begin(), req.params.end());
  Json data = WebhookTriggerData(trigger, method, headers, query, body);
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

int ApiServer::port() const { return impl_->port.load(); }

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
  if (o.max_sse_clients < 0 || o.threads < o.max_sse_clients + 4) {
    return Fail(ErrorCode::kInvalidArgument,
                "threads must exceed max_sse_clients by at least 4 (each SSE stream pins a "
                "thread)");
  }
  if (o.port < 0 || o.port > 65535) return Fail(ErrorCode::kInvalidArgument, "bad port");
  if (o.max_body_bytes < 1 || o.sse_poll_interval.count() < 1) {
    return Fail(ErrorCode::kInvalidArgument, "max_body_bytes and sse_poll_interval must be > 0");
  }

  s.Register();
  const int threads = o.threads;
  s.http.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  auto keep_alive = std::chrono::duration_cast<std::chrono::seconds>(o.keep_alive_timeout);
  s.http.set_keep_alive_timeout(std::max<time_t>(1, keep_alive.count()));
  // httplib writes headers and body separately; without TCP_NODELAY the body waits for the
  // client's delayed ACK (~40 ms per answer on a keep-alive connection).
  s.http.set_tcp_nodelay(true);
  s.http.set_keep_alive_max_count(1000);
  s.http.set_read_timeout(10, 0);
  s.http.set_write_timeout(10, 0);
  s.http.set_payload_max_length(kMaxAnyBody);

  int bound = o.port;
  if (o.port == 0) {
    bound = s.http.bind_to_any_port(o.host);
    if (bound < 0) return Fail(ErrorCode::kUnavailable, "cannot bind " + o.host + ":0");
  } else if (!s.http.bind_to_port(o.host, o.port)) {
    return Fail(ErrorCode::kUnavailable,
                "cannot listen on " + o.host + ":" + std::to_string(o.port) + " (in use?)");
  }
  s.port = bound;
  s.running = true;
  s.listener = std::thread([&s] { s.http.listen_after_bind(); });
  return bound;
}

void ApiServer::Stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mu);
  if (s.stopped) return;
  s.stopped = true;
  if (!s.running) return;
  {
    std::lock_guard stop_lock(s.stop_mu);
    s.stopping = true;
  }
  s.stop_cv.notify_all();
  s.http.stop();
  if (s.listener.joinable()) s.listener.join();
}

}  // namespace ferry::api
