#include "api/server.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <any>
#include <atomic>
#include <charconv>
#include <mutex>
#include <utility>

#include "api/event_streams.h"
#include "api/http_util.h"
#include "api/openapi.h"
#include "api/token_cache.h"
#include "api/webhook_auth.h"
#include "console/routes.h"
#include "core/crypto.h"
#include "core/json_fields.h"
#include "core/pool.h"
#include "http/server.h"
#include "service/local_service.h"
#include "service/query.h"
#include "service/scopes.h"

namespace ferry::api {

using service::Allows;
using service::AllowsSecret;
using service::FirstDeniedSecret;
using service::Scope;
using service::ScopeName;

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

// The request's query parameters; one given twice is refused rather than guessed at.
Result<service::Query> QueryOf(const Request& req) {
  service::Query query;
  for (const auto& [name, value] : req.query) {
    if (!query.emplace(name, value).second) {
      return Fail(ErrorCode::kInvalidArgument, "query parameter '" + name + "' given twice");
    }
  }
  return query;
}

// Wraps the handler of a route that reads no query parameters: any given is refused with the
// service's words for an unknown filter, so a misspelt filter is an error on every route rather
// than ignored on some.
http::Handler NoQuery(http::Handler handler) {
  return [handler = std::move(handler)](Request& req) {
    if (req.query.empty()) return handler(req);
    Response res;
    auto query = QueryOf(req);
    SendError(res, query ? service::QueryReader(*query).Finish().error() : query.error());
    return res;
  };
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

// What an /api/v1 route's admission step found: the token's scopes (Request::context).
struct Granted {
  std::vector<std::string> scopes;
};

// What a webhook's admission step found, for its handler (Request::context).
struct AdmittedHook {
  service::WebhookTarget target;
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
            std::max(4, options.threads)),
        service(stores, brokers, ServiceOptions(options)),
        tokens(options.token_cache_ttl) {}

  static service::LocalServiceOptions ServiceOptions(const ApiServerOptions& o) {
    service::LocalServiceOptions s;
    s.run_queue = o.run_queue;
    if (o.broker_factory != nullptr) s.broker = o.broker_factory->options();
    s.clock = o.clock;
    s.alerts = o.alerts;
    s.doctor = o.doctor;
    return s;
  }

  // Constant after construction.
  const ApiServerOptions options;
  engine::EnvSecretResolver env_secrets;
  Pool<Store> stores;
  Pool<Broker> brokers;
  // Every action and query of the /api/v1 resource routes.
  service::LocalService service;
  // Bearer tokens verified within options.token_cache_ttl.
  TokenCache tokens;

  std::unique_ptr<http::Server> server;
  std::vector<std::string> route_list;  // ApiServer::Routes(); set by Start()

  std::mutex lifecycle_mu;  // serializes Start and Stop
  bool running = false;     // Guarded by lifecycle_mu
  bool stopped = false;     // Guarded by lifecycle_mu

  const engine::SecretResolver& secrets() const {
    return options.secrets != nullptr ? *options.secrets : env_secrets;
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
  void CountRuns(const Request& req, Response& res);
  void GetRun(const Request& req, Response& res);
  void CancelRun(const Request& req, Response& res);
  void RetryRun(const Request& req, Response& res);
  void RunEvents(const Request& req, Response& res);
  void SubmitTask(const Request& req, Response& res);
  void SubmitTasks(const Request& req, Response& res);
  void ListTasks(const Request& req, Response& res);
  void GetTask(const Request& req, Response& res);
  void CancelTask(const Request& req, Response& res);
  void RetryTask(const Request& req, Response& res);
  void ListWorkers(const Request& req, Response& res);
  void ListQueues(const Request& req, Response& res);
  void GetQueue(const Request& req, Response& res);
  void ListDead(const Request& req, Response& res);
  void PurgeDead(const Request& req, Response& res);
  void ListSchedules(const Request& req, Response& res);
  void PauseSchedules(const Request& req, Response& res);
  void ResumeSchedules(const Request& req, Response& res);
  void ListTokens(const Request& req, Response& res);
  void CreateToken(const Request& req, Response& res);
  void RevokeToken(const Request& req, Response& res);
  void TaskEvents(const Request& req, Response& res);
  void ListRemediations(const Request& req, Response& res);
  void GetRemediation(const Request& req, Response& res);
  void DismissRemediation(const Request& req, Response& res);
  void ReopenRemediation(const Request& req, Response& res);
  void RemediationDiff(const Request& req, Response& res);
  void DispatchCron(const Request& req, Response& res);
  void Metrics(const Request& req, Response& res);
  void Alerts(const Request& req, Response& res);
  void Doctor(const Request& req, Response& res);
  std::optional<Response> AdmitHook(Request& req, int64_t& body_limit);
  void Hook(const Request& req, Response& res);

  // The token's identity for the service: actor "api", and the secrets its scopes allow.
  service::Caller CallerOf(const Request& req) const;
  // The service's answer with `status`, or its error.
  static void Answer(Response& res, const Result<Json>& result, int status = 200);
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
  const auto admin = api(Scope::kAdmin);
  http::Router r;
  r.Get("/healthz", bind(&Impl::Healthz));
  // The API's description needs no token: clients and code generators read it before they have
  // one, and it describes the routes, not any data.
  r.Get("/api/v1/openapi.json", [](Request&) {
    Response res;
    res.body = std::string(OpenApiDocument());
    return res;
  });
  r.Get("/readyz", bind(&Impl::Readyz));
  // Routes that read filters from the query string check them in the service (an unknown one is
  // refused); every other /api/v1 route refuses any query parameter (NoQuery).
  r.Get("/api/v1/workflows", NoQuery(bind(&Impl::ListWorkflows)), read);
  r.Post("/api/v1/workflows", NoQuery(bind(&Impl::ApplyWorkflow)), apply);
  r.Get("/api/v1/workflows/{name}", NoQuery(bind(&Impl::GetWorkflow)), read);
  r.Get("/api/v1/workflows/{name}/versions", NoQuery(bind(&Impl::ListVersions)), read);
  r.Get("/api/v1/workflows/{name}/versions/{version}", NoQuery(bind(&Impl::GetVersion)), read);
  r.Get("/api/v1/runs", bind(&Impl::ListRuns), read);
  r.Post("/api/v1/runs", NoQuery(bind(&Impl::CreateRun)), run);
  // Before /runs/{id}: the router takes the first pattern that matches ("counts" is no run id).
  r.Get("/api/v1/runs/counts", NoQuery(bind(&Impl::CountRuns)), read);
  r.Get("/api/v1/runs/{id}", NoQuery(bind(&Impl::GetRun)), read);
  r.Post("/api/v1/runs/{id}/cancel", NoQuery(bind(&Impl::CancelRun)), run);
  r.Post("/api/v1/runs/{id}/retry", NoQuery(bind(&Impl::RetryRun)), run);
  r.Get("/api/v1/runs/{id}/events", bind(&Impl::RunEvents), read);
  r.Get("/api/v1/tasks", bind(&Impl::ListTasks), read);
  r.Post("/api/v1/tasks", NoQuery(bind(&Impl::SubmitTask)), run);
  r.Post("/api/v1/tasks/batch", NoQuery(bind(&Impl::SubmitTasks)), run);
  r.Get("/api/v1/tasks/{id}", NoQuery(bind(&Impl::GetTask)), read);
  r.Post("/api/v1/tasks/{id}/cancel", NoQuery(bind(&Impl::CancelTask)), run);
  r.Post("/api/v1/tasks/{id}/retry", NoQuery(bind(&Impl::RetryTask)), run);
  r.Get("/api/v1/tasks/{id}/events", bind(&Impl::TaskEvents), read);
  r.Get("/api/v1/workers", NoQuery(bind(&Impl::ListWorkers)), read);
  r.Get("/api/v1/queues", NoQuery(bind(&Impl::ListQueues)), read);
  r.Get("/api/v1/queues/{name}", NoQuery(bind(&Impl::GetQueue)), read);
  r.Get("/api/v1/queues/{name}/dead", bind(&Impl::ListDead), read);
  // Purging dead letters deletes task records for good, beyond what any retry can undo.
  r.Post("/api/v1/queues/{name}/dead/purge", NoQuery(bind(&Impl::PurgeDead)), admin);
  // Schedules: pausing a workflow's schedules changes what runs, as applying one does.
  r.Get("/api/v1/schedules", NoQuery(bind(&Impl::ListSchedules)), read);
  r.Post("/api/v1/workflows/{name}/pause", NoQuery(bind(&Impl::PauseSchedules)), apply);
  r.Post("/api/v1/workflows/{name}/resume", NoQuery(bind(&Impl::ResumeSchedules)), apply);
  // Tokens: whoever may make tokens may grant any scope, so only admin tokens may.
  r.Get("/api/v1/tokens", NoQuery(bind(&Impl::ListTokens)), admin);
  r.Post("/api/v1/tokens", NoQuery(bind(&Impl::CreateToken)), admin);
  r.Post("/api/v1/tokens/{id}/revoke", NoQuery(bind(&Impl::RevokeToken)), admin);
  // Remediation candidates (the service calls src/remediation/actions.h). A reopened
  // candidate may end in a new workflow version: the apply scope.
  r.Get("/api/v1/remediations", bind(&Impl::ListRemediations), read);
  r.Get("/api/v1/remediations/{id}", NoQuery(bind(&Impl::GetRemediation)), read);
  r.Get("/api/v1/remediations/{id}/diff", NoQuery(bind(&Impl::RemediationDiff)), read);
  r.Post("/api/v1/remediations/{id}/dismiss", NoQuery(bind(&Impl::DismissRemediation)), apply);
  r.Post("/api/v1/remediations/{id}/reopen", NoQuery(bind(&Impl::ReopenRemediation)), apply);
  // One cron dispatch tick on demand (src/scheduler): exactly once through the store's
  // (trigger, fire time) record, so racing the scheduler's leader is harmless.
  r.Post("/api/v1/triggers/cron/dispatch", NoQuery(bind(&Impl::DispatchCron)), run);
  if (options.metrics) r.Get("/metrics", bind(&Impl::Metrics));
  if (options.alerts) r.Get("/api/v1/alerts", NoQuery(bind(&Impl::Alerts)), read);
  // The checks name hosts, users and settings of the deployment: for operators.
  if (options.doctor) r.Get("/api/v1/doctor", NoQuery(bind(&Impl::Doctor)), admin);
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
  const std::string hash = Sha256Hex(*token);
  const int64_t now_ms = options.clock->NowMs();
  std::optional<std::vector<std::string>> scopes = tokens.Find(hash, now_ms);
  if (!scopes) {
    auto found = service.TokenScopes(hash);
    if (!found) {
      SendError(res, found.error());
      return res;
    }
    if (!*found) {
      res.SetHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      SendError(res, ErrorCode::kUnauthenticated, "invalid or revoked token");
      return res;
    }
    scopes = std::move(*found);
    tokens.Put(hash, *scopes, now_ms);
  }
  if (!Allows(*scopes, needed)) {
    std::string has;
    for (const auto& g : *scopes) has += (has.empty() ? "" : " ") + g;
    res.SetHeader("WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"" +
                                          std::string(ScopeName(needed)) + "\"");
    SendError(res, ErrorCode::kPermissionDenied,
              req.method + " " + req.path + " needs a token with the " +
                  std::string(ScopeName(needed)) + " scope; this one has: " + has);
    return res;
  }
  req.context = Granted{std::move(*scopes)};
  return std::nullopt;
}

void ApiServer::Impl::DispatchCron(const Request&, Response& res) {
  Answer(res, service.DispatchCron());
}

void ApiServer::Impl::Metrics(const Request&, Response& res) {
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = options.metrics();
}

void ApiServer::Impl::Alerts(const Request&, Response& res) { Answer(res, service.Alerts()); }

void ApiServer::Impl::Doctor(const Request&, Response& res) { Answer(res, service.Doctor()); }

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Health

void ApiServer::Impl::Healthz(const Request&, Response& res) {
  SendJson(res, 200, Json{{"status", "ok"}});
}

void ApiServer::Impl::Readyz(const Request&, Response& res) {
  const Json body = service.Readiness();
  SendJson(res, body["status"] == "ok" ? 200 : 503, body);
}

// ---------------------------------------------------------------------------------------------
// Workflows, runs, tasks, workers, queues: the service's answers (src/service), as they are.

namespace {

// An optional JSON object body: none is {}.
Result<Json> OptionalBody(const Request& req) {
  if (req.body.empty()) return Json::object();
  return ParseJsonObject(req.body);
}

// Whether the client asked for a JSON page rather than an event stream.
bool WantsJson(const Request& req) {
  auto accept = req.Header("Accept").value_or("");
  return accept.find("application/json") != std::string::npos &&
         accept.find("text/event-stream") == std::string::npos;
}

}  // namespace

service::Caller ApiServer::Impl::CallerOf(const Request& req) const {
  service::Caller caller;
  caller.actor = "api";
  const auto& granted = std::any_cast<const Granted&>(req.context).scopes;
  caller.may_use_secret = [granted](const std::string& secret) {
    return AllowsSecret(granted, secret);
  };
  return caller;
}

void ApiServer::Impl::Answer(Response& res, const Result<Json>& result, int status) {
  if (!result) return SendError(res, result.error());
  SendJson(res, status, *result);
}

void ApiServer::Impl::ApplyWorkflow(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  auto applied = service.ApplyWorkflow(*body, CallerOf(req));
  Answer(res, applied, applied && (*applied)["created"] == true ? 201 : 200);
}

void ApiServer::Impl::ListWorkflows(const Request&, Response& res) {
  Answer(res, service.ListWorkflows());
}

void ApiServer::Impl::GetWorkflow(const Request& req, Response& res) {
  Answer(res, service.GetWorkflow(req.params[0]));
}

void ApiServer::Impl::ListVersions(const Request& req, Response& res) {
  Answer(res, service.ListVersions(req.params[0]));
}

void ApiServer::Impl::GetVersion(const Request& req, Response& res) {
  Answer(res, service.GetVersion(req.params[0], req.params[1]));
}

void ApiServer::Impl::CreateRun(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  Answer(res, service.StartRun(*body, CallerOf(req)), 201);
}

void ApiServer::Impl::ListRuns(const Request& req, Response& res) {
  auto query = QueryOf(req);
  if (!query) return SendError(res, query.error());
  Answer(res, service.ListRuns(*query));
}

void ApiServer::Impl::CountRuns(const Request&, Response& res) { Answer(res, service.CountRuns()); }

void ApiServer::Impl::GetRun(const Request& req, Response& res) {
  Answer(res, service.GetRun(req.params[0]));
}

void ApiServer::Impl::CancelRun(const Request& req, Response& res) {
  Answer(res, service.CancelRun(req.params[0], CallerOf(req)));
}

void ApiServer::Impl::RetryRun(const Request& req, Response& res) {
  auto body = OptionalBody(req);
  if (!body) return SendError(res, body.error());
  Answer(res, service.RetryRun(req.params[0], *body), 201);
}

void ApiServer::Impl::SubmitTask(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  auto submitted = service.SubmitTask(*body);
  Answer(res, submitted, submitted && (*submitted)["existing"] == true ? 200 : 201);
}

void ApiServer::Impl::ListTasks(const Request& req, Response& res) {
  auto query = QueryOf(req);
  if (!query) return SendError(res, query.error());
  Answer(res, service.ListTasks(*query));
}

void ApiServer::Impl::SubmitTasks(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  auto answer = service.SubmitTasks(*body);
  // 201 when the batch made at least one task, 200 when every one existed (unique keys).
  const bool created = answer && (*answer)["created"].get<int64_t>() > 0;
  Answer(res, answer, created ? 201 : 200);
}

void ApiServer::Impl::GetTask(const Request& req, Response& res) {
  Answer(res, service.GetTask(req.params[0]));
}

void ApiServer::Impl::CancelTask(const Request& req, Response& res) {
  Answer(res, service.CancelTask(req.params[0]));
}

void ApiServer::Impl::RetryTask(const Request& req, Response& res) {
  Answer(res, service.RetryTask(req.params[0]));
}

void ApiServer::Impl::ListWorkers(const Request&, Response& res) {
  Answer(res, service.ListWorkers());
}

void ApiServer::Impl::ListQueues(const Request&, Response& res) {
  Answer(res, service.ListQueues());
}

void ApiServer::Impl::PurgeDead(const Request& req, Response& res) {
  Answer(res, service.PurgeDead(req.params[0]));
}

void ApiServer::Impl::ListSchedules(const Request&, Response& res) {
  Answer(res, service.ListSchedules());
}

void ApiServer::Impl::PauseSchedules(const Request& req, Response& res) {
  Answer(res, service.SetSchedulesPaused(req.params[0], true));
}

void ApiServer::Impl::ResumeSchedules(const Request& req, Response& res) {
  Answer(res, service.SetSchedulesPaused(req.params[0], false));
}

void ApiServer::Impl::ListTokens(const Request&, Response& res) {
  Answer(res, service.ListTokens());
}

void ApiServer::Impl::CreateToken(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  Answer(res, service.CreateToken(*body), 201);
}

void ApiServer::Impl::RevokeToken(const Request& req, Response& res) {
  Answer(res, service.RevokeToken(req.params[0]));
}

void ApiServer::Impl::GetQueue(const Request& req, Response& res) {
  Answer(res, service.GetQueue(req.params[0]));
}

void ApiServer::Impl::ListDead(const Request& req, Response& res) {
  auto query = QueryOf(req);
  if (!query) return SendError(res, query.error());
  Answer(res, service.ListDead(req.params[0], *query));
}

// ---------------------------------------------------------------------------------------------
// Remediation candidates

void ApiServer::Impl::ListRemediations(const Request& req, Response& res) {
  auto query = QueryOf(req);
  if (!query) return SendError(res, query.error());
  Answer(res, service.ListRemediations(*query));
}

void ApiServer::Impl::GetRemediation(const Request& req, Response& res) {
  Answer(res, service.GetRemediation(req.params[0]));
}

void ApiServer::Impl::DismissRemediation(const Request& req, Response& res) {
  auto body = OptionalBody(req);
  if (!body) return SendError(res, body.error());
  Answer(res, service.DismissRemediation(req.params[0], *body, CallerOf(req)));
}

void ApiServer::Impl::ReopenRemediation(const Request& req, Response& res) {
  Answer(res, service.ReopenRemediation(req.params[0], CallerOf(req)));
}

void ApiServer::Impl::RemediationDiff(const Request& req, Response& res) {
  Answer(res, service.RemediationDiff(req.params[0]));
}

// ---------------------------------------------------------------------------------------------
// Event streams (SSE: api/event_streams.h), or a JSON page with Accept: application/json

namespace {

void StartStream(Response& res, std::shared_ptr<http::Stream> stream) {
  res.status = 200;
  res.content_type = "text/event-stream";
  res.SetHeader("Cache-Control", "no-cache");
  res.SetHeader("X-Accel-Buffering", "no");
  res.stream = std::move(stream);
}

}  // namespace

void ApiServer::Impl::RunEvents(const Request& req, Response& res) {
  if (WantsJson(req)) {
    auto query = QueryOf(req);
    if (!query) return SendError(res, query.error());
    return Answer(res, service.RunEvents(req.params[0], *query));
  }
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
  if (auto run = service.GetRun(req.params[0]); !run) return SendError(res, run.error());
  StartStream(res, MakeRunEventStream(stores, req.params[0], after, options.sse_poll_interval,
                                      options.sse_keep_alive));
}

void ApiServer::Impl::TaskEvents(const Request& req, Response& res) {
  if (WantsJson(req)) {
    auto query = QueryOf(req);
    if (!query) return SendError(res, query.error());
    return Answer(res, service.TaskEvents(req.params[0], *query));
  }
  std::string after = req.Header("Last-Event-ID").value_or("");
  if (after.empty()) after = req.Query("last_event_id");
  if (after.empty()) after = "0";
  // The service checks the id's shape and that the task exists.
  if (auto page = service.TaskEvents(req.params[0], {{"after", after}, {"limit", "1"}}); !page) {
    return SendError(res, page.error());
  }
  StartStream(res, MakeTaskEventStream(brokers, req.params[0], after, options.sse_poll_interval,
                                       options.sse_keep_alive));
}

// ---------------------------------------------------------------------------------------------
// Webhooks

std::optional<Response> ApiServer::Impl::AdmitHook(Request& req, int64_t& body_limit) {
  Response res;
  const std::string& name = req.params[0];
  auto target = service.FindWebhook(name);
  if (!target) {
    SendError(res, target.error());
    return res;
  }
  if (!target->trigger) {
    SendError(res, ErrorCode::kNotFound, "workflow " + name + " has no webhook trigger");
    return res;
  }
  const engine::WebhookTrigger& trigger = *target->trigger;
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
  req.context = AdmittedHook{std::move(*target)};
  return std::nullopt;
}

void ApiServer::Impl::Hook(const Request& req, Response& res) {
  auto fail = [&](const Error& e) { SendError(res, e); };
  const std::string& name = req.params[0];
  const service::WebhookTarget& target = std::any_cast<const AdmittedHook&>(req.context).target;
  const engine::WebhookTrigger& trigger = *target.trigger;
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  const std::string& body = req.body;
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

  service::WebhookDelivery delivery;
  delivery.data = std::move(data);
  delivery.nonce = verified->nonce;
  delivery.nonce_expires_ms = verified->nonce_expires_ms;
  Answer(res, service.StartWebhookRun(name, target, std::move(delivery)), 202);
}
// ---------------------------------------------------------------------------------------------
// ApiServer

ApiServer::ApiServer(ApiServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ApiServer::~ApiServer() { Stop(); }

int ApiServer::port() const { return impl_->server ? impl_->server->port() : 0; }

int ApiServer::connections() const { return impl_->server ? impl_->server->connections() : 0; }

std::vector<std::string> ApiServer::Routes() const { return impl_->route_list; }

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
  http::Router router = s.Routes();
  for (const auto& route : router.routes()) {
    for (const auto& method : route.methods) {
      if (method != "HEAD") s.route_list.push_back(method + " " + route.pattern);
    }
  }
  s.server = std::make_unique<http::Server>(std::move(h), std::move(router));
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
