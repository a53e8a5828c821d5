#include "api/server.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

#include "api/http_util.h"
#include "api/openapi.h"
#include "api/server_internal.h"
#include "console/routes.h"
#include "core/crypto.h"
#include "core/json_fields.h"
#include "engine/ingest.h"
#include "service/query.h"

namespace ferry::api {

using http::Request;
using http::Response;
using service::Allows;
using service::Scope;
using service::ScopeName;

namespace server_internal {

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

Result<service::Query> QueryOf(const Request& req) {
  service::Query query;
  for (const auto& [name, value] : req.query) {
    if (!query.emplace(name, value).second) {
      return Fail(ErrorCode::kInvalidArgument, "query parameter '" + name + "' given twice");
    }
  }
  return query;
}

void SendError(Response& res, ErrorCode code, const std::string& message) {
  SendError(res, Error{code, message});
}

}  // namespace server_internal

using namespace server_internal;

namespace {

// /readyz or /metrics requests served at once (probes and scrapes come one at a time).
constexpr int kProbesAtOnce = 2;

// What the apply route admits at least (Routes): a definition of the largest size, escaped.
constexpr int64_t kApplyBodyBytes = 3 * static_cast<int64_t>(engine::kMaxSourceBytes) + (64 << 10);

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

// For a POST route that reads no body: none, or an empty JSON object (what many clients send by
// default), else 400. A body such a route would ignore is refused, not silently dropped: a client
// that believes it sends options (`{"dry_run": true}` to a purge) learns that it does not.
http::Handler NoBody(http::Handler handler) {
  return [handler = std::move(handler)](Request& req) {
    if (req.body.empty()) return handler(req);
    auto body = ParseJsonObject(req.body);
    if (body && body->empty()) return handler(req);
    Response res;
    SendError(res, ErrorCode::kInvalidArgument,
              req.method + " " + req.path + " takes no body (send none, or {})" +
                  (body ? "" : ": " + body.error().message));
    return res;
  };
}

// At most `max` of a route's requests at once; one more is answered 503 at once instead of
// taking a handler thread to wait (for a slow Redis, say) that webhooks and /healthz need.
http::Handler AtMost(int max, std::atomic<int>& in_flight, http::Handler handler) {
  return [max, &in_flight, handler = std::move(handler)](Request& req) {
    struct Leave {
      std::atomic<int>& n;
      ~Leave() { --n; }
    } leave{in_flight};
    if (++in_flight > max) {
      Response res;
      SendError(res, ErrorCode::kUnavailable,
                std::to_string(max) + " " + req.path + " requests are already in progress");
      res.SetHeader("Retry-After", "1");
      return res;
    }
    return handler(req);
  };
}

// An address literal in 127.0.0.0/8 or ::1, or "localhost": not a name that merely starts with
// "127." (127.example.com resolves wherever its owner likes).
bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

// `ferry dev` answers /api/v1 without a token, to whoever reaches its loopback port: a browser
// too, on behalf of any page it shows. So such a server refuses what only another site's page
// would send: a Host that is not a loopback name (a name the attacker's DNS pointed at 127.0.0.1,
// which makes its page same-origin with the API: DNS rebinding), and an Origin other than the
// server's own (a cross-site POST; a text/plain one needs no CORS preflight, so the browser sends
// it whatever the answer). Clients that are not browsers send no Origin.
std::optional<Response> RefuseForeignRequest(const Request& req) {
  auto refuse = [](const std::string& why) {
    Response res;
    SendError(res, ErrorCode::kPermissionDenied,
              why +
                  "; this server answers without authentication, so it takes requests only "
                  "from this machine's own clients and pages");
    return std::optional<Response>(std::move(res));
  };
  const std::optional<std::string> host = req.Header("Host");
  if (host) {
    // "[::1]:8080" names ::1; "127.0.0.1:8080" and "localhost" name what is before any colon.
    std::string name = *host;
    if (!name.empty() && name.front() == '[') {
      const size_t close = name.find(']');
      name = close == std::string::npos ? std::string() : name.substr(1, close - 1);
    } else if (auto colon = name.rfind(':'); colon != std::string::npos) {
      name.resize(colon);
    }
    if (!IsLoopbackHost(name)) return refuse("Host '" + *host + "' is not a loopback address");
  }
  if (auto origin = req.Header("Origin")) {
    if (!host || *origin != "http://" + *host) {
      return refuse("a request from another origin ('" + *origin + "') is refused");
    }
  }
  return std::nullopt;
}

}  // namespace

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
  // /api/v1 routes: a bearer token with the route's scope first (before the body is read, unless
  // it came with the head), then the API body limit. The token's scopes go to the handler
  // (Request::context).
  auto api = [this](Scope needed) {
    return [this, needed](Request& req, int64_t& limit) -> std::optional<Response> {
      limit = options.max_body_bytes;
      if (!options.require_auth) {
        if (auto refused = RefuseForeignRequest(req)) return refused;
        req.context = Granted{{std::string(ScopeName(Scope::kAdmin))}, ""};
        return std::nullopt;
      }
      return Authenticate(req, needed);
    };
  };
  const auto read = api(Scope::kRead);
  const auto run = api(Scope::kRun);
  const auto apply = api(Scope::kApply);
  const auto admin = api(Scope::kAdmin);
  // A definition may be engine::kMaxSourceBytes, and as a JSON string it takes up to three times
  // that (a two-byte UTF-8 character escaped as \uXXXX is six): the apply route admits that much
  // besides author and notes, and ingestion then names the definition's own limit.
  const auto apply_definition = [this, apply](Request& req,
                                              int64_t& limit) -> std::optional<Response> {
    auto refused = apply(req, limit);
    limit = std::max<int64_t>(options.max_body_bytes, kApplyBodyBytes);
    return refused;
  };
  http::Router r;
  // Liveness: answered on the I/O thread, so a pool busy with webhooks waiting for a slow Redis
  // does not make a healthy process look dead (and get it restarted).
  r.GetOnIoThread("/healthz", bind(&Impl::Healthz));
  // The API's description needs no token: clients and code generators read it before they have
  // one, and it describes the routes, not any data.
  r.Get("/api/v1/openapi.json", NoQuery([](Request&) {
          Response res;
          res.body = std::string(OpenApiDocument());
          return res;
        }));
  r.Get("/readyz", AtMost(kProbesAtOnce, readyz_in_flight, bind(&Impl::Readyz)));
  // Routes that read filters from the query string check them in the service (an unknown one is
  // refused); every other /api/v1 route refuses any query parameter (NoQuery).
  r.Get("/api/v1/workflows", NoQuery(bind(&Impl::ListWorkflows)), read);
  r.Post("/api/v1/workflows", NoQuery(bind(&Impl::ApplyWorkflow)), apply_definition);
  r.Get("/api/v1/workflows/{name}", NoQuery(bind(&Impl::GetWorkflow)), read);
  r.Get("/api/v1/workflows/{name}/versions", NoQuery(bind(&Impl::ListVersions)), read);
  r.Get("/api/v1/workflows/{name}/versions/{version}", NoQuery(bind(&Impl::GetVersion)), read);
  r.Get("/api/v1/runs", bind(&Impl::ListRuns), read);
  r.Post("/api/v1/runs", NoQuery(bind(&Impl::CreateRun)), run);
  // Before /runs/{id}: the router takes the first pattern that matches ("counts" is no run id).
  r.Get("/api/v1/runs/counts", NoQuery(bind(&Impl::CountRuns)), read);
  r.Get("/api/v1/runs/{id}", NoQuery(bind(&Impl::GetRun)), read);
  r.Post("/api/v1/runs/{id}/cancel", NoQuery(NoBody(bind(&Impl::CancelRun))), run);
  r.Post("/api/v1/runs/{id}/retry", NoQuery(bind(&Impl::RetryRun)), run);
  r.Get("/api/v1/runs/{id}/events", bind(&Impl::RunEvents), read);
  r.Get("/api/v1/tasks", bind(&Impl::ListTasks), read);
  r.Post("/api/v1/tasks", NoQuery(bind(&Impl::SubmitTask)), run);
  r.Post("/api/v1/tasks/batch", NoQuery(bind(&Impl::SubmitTasks)), run);
  r.Get("/api/v1/tasks/{id}", NoQuery(bind(&Impl::GetTask)), read);
  r.Post("/api/v1/tasks/{id}/cancel", NoQuery(NoBody(bind(&Impl::CancelTask))), run);
  r.Post("/api/v1/tasks/{id}/retry", NoQuery(NoBody(bind(&Impl::RetryTask))), run);
  r.Get("/api/v1/tasks/{id}/events", bind(&Impl::TaskEvents), read);
  r.Get("/api/v1/workers", NoQuery(bind(&Impl::ListWorkers)), read);
  r.Get("/api/v1/queues", NoQuery(bind(&Impl::ListQueues)), read);
  r.Get("/api/v1/queues/{name}", NoQuery(bind(&Impl::GetQueue)), read);
  r.Get("/api/v1/queues/{name}/dead", bind(&Impl::ListDead), read);
  // Purging dead letters deletes task records for good, beyond what any retry can undo.
  r.Post("/api/v1/queues/{name}/dead/purge", NoQuery(NoBody(bind(&Impl::PurgeDead))), admin);
  // Retrying them all is what retrying each is (a task's retry route), at once.
  r.Post("/api/v1/queues/{name}/dead/retry", NoQuery(NoBody(bind(&Impl::RetryDead))), run);
  // Deleting a queue forgets its finished tasks' listing, and frees a place under max_queues.
  r.Post("/api/v1/queues/{name}/delete", NoQuery(NoBody(bind(&Impl::DeleteQueue))), admin);
  // Schedules: pausing a workflow's schedules changes what runs, as applying one does.
  r.Get("/api/v1/schedules", NoQuery(bind(&Impl::ListSchedules)), read);
  r.Post("/api/v1/workflows/{name}/pause", NoQuery(NoBody(bind(&Impl::PauseSchedules))), apply);
  r.Post("/api/v1/workflows/{name}/resume", NoQuery(NoBody(bind(&Impl::ResumeSchedules))), apply);
  // Tokens: whoever may make tokens may grant any scope, so only admin tokens may.
  r.Get("/api/v1/tokens", NoQuery(bind(&Impl::ListTokens)), admin);
  r.Post("/api/v1/tokens", NoQuery(bind(&Impl::CreateToken)), admin);
  r.Post("/api/v1/tokens/{id}/revoke", NoQuery(NoBody(bind(&Impl::RevokeToken))), admin);
  // Remediation candidates (the service calls src/remediation/actions.h). A reopened
  // candidate may end in a new workflow version: the apply scope.
  r.Get("/api/v1/remediations", bind(&Impl::ListRemediations), read);
  r.Get("/api/v1/remediations/{id}", NoQuery(bind(&Impl::GetRemediation)), read);
  r.Get("/api/v1/remediations/{id}/diff", NoQuery(bind(&Impl::RemediationDiff)), read);
  r.Post("/api/v1/remediations/{id}/dismiss", NoQuery(bind(&Impl::DismissRemediation)), apply);
  r.Post("/api/v1/remediations/{id}/reopen", NoQuery(NoBody(bind(&Impl::ReopenRemediation))),
         apply);
  // One cron dispatch tick on demand (src/scheduler): exactly once through the store's
  // (trigger, fire time) record, so racing the scheduler's leader is harmless.
  r.Post("/api/v1/triggers/cron/dispatch", NoQuery(NoBody(bind(&Impl::DispatchCron))), run);
  if (options.metrics) {
    r.Get("/metrics", AtMost(kProbesAtOnce, metrics_in_flight, bind(&Impl::Metrics)));
  }
  if (options.alerts) r.Get("/api/v1/alerts", NoQuery(bind(&Impl::Alerts)), read);
  // The checks name hosts, users and settings of the deployment: for operators.
  if (options.doctor) r.Get("/api/v1/doctor", NoQuery(bind(&Impl::Doctor)), admin);
  // The web console's page and files (src/console); its data comes from the routes above.
  console::AddRoutes(r);
  // Webhooks: the trigger decides the methods and the body limit (before the body is read,
  // unless it came with the head: http::Admit).
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
  auto scopes = ScopesOf(hash);
  if (!scopes) {
    SendError(res, scopes.error());
    return res;
  }
  if (!*scopes) {
    res.SetHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    SendError(res, ErrorCode::kUnauthenticated, "invalid or revoked token");
    return res;
  }
  if (!Allows(**scopes, needed)) {
    std::string has;
    for (const auto& g : **scopes) has += (has.empty() ? "" : " ") + g;
    res.SetHeader("WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"" +
                                          std::string(ScopeName(needed)) + "\"");
    SendError(res, ErrorCode::kPermissionDenied,
              req.method + " " + req.path + " needs a token with the " +
                  std::string(ScopeName(needed)) + " scope; this one has: " + has);
    return res;
  }
  req.context = Granted{std::move(**scopes), hash};
  return std::nullopt;
}

Result<std::optional<std::vector<std::string>>> ApiServer::Impl::ScopesOf(
    const std::string& token_hash) {
  const int64_t now_ms = options.clock->NowMs();
  if (auto cached = tokens.Find(token_hash, now_ms)) return cached;
  auto found = service.TokenScopes(token_hash);
  if (!found) {
    // The store away: a token verified shortly before keeps its scopes (token_cache.h), so what
    // needs only Redis, a task's submission, goes on.
    if (found.error().code == ErrorCode::kUnavailable) {
      if (auto known = tokens.FindDuringOutage(token_hash, now_ms)) return known;
    }
    return Fail(found.error());
  }
  if (*found) tokens.Put(token_hash, **found, now_ms);
  return found;
}

std::function<bool()> ApiServer::Impl::StillGranted(const Request& req, Scope needed) {
  const auto& granted = std::any_cast<const Granted&>(req.context);
  if (granted.token_hash.empty()) return [] { return true; };  // no token needed (ferry dev)
  return [this, hash = granted.token_hash, needed] {
    auto scopes = ScopesOf(hash);
    // The store away: the stream goes on (as its own reads do) and asks again later.
    if (!scopes) return true;
    return *scopes && Allows(**scopes, needed);
  };
}

// ---------------------------------------------------------------------------------------------
// Health

void ApiServer::Impl::Healthz(const Request&, Response& res) {
  const auto waited = server ? server->OldestQueuedWait() : std::chrono::milliseconds(0);
  if (waited >= options.pool_stalled_after) {
    SendJson(res, 503,
             Json{{"status", "stalled"},
                  {"error",
                   ErrorJson(Error{ErrorCode::kUnavailable,
                                   "a request has waited " + std::to_string(waited.count() / 1000) +
                                       " s for a handler thread: every one is stuck"})["error"]}});
    return;
  }
  SendJson(res, 200, Json{{"status", "ok"}});
}

void ApiServer::Impl::Readyz(const Request&, Response& res) {
  const Json body = service.Readiness();
  SendJson(res, body["status"] == "ok" ? 200 : 503, body);
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
  // Tokens and webhook signatures are hashed on every request: a missing libcrypto is an error
  // now, not a stop at the first request.
  if (auto crypto = CryptoAvailable(); !crypto) return Fail(crypto.error());

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
      // Only a name admission found is a label: a request refused before (an unknown workflow,
      // a coding or length the server refuses, with no token needed) would let anyone fill the
      // label set with names of their own.
      const bool known = std::any_cast<AdmittedHook>(&req.context) != nullptr;
      s.options.on_webhook(known ? req.params[0] : std::string(), status, seconds);
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
