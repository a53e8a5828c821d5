// Internal to the API server (server*.cc): ApiServer::Impl and the helpers its handlers share.
// Its parts live in one file each:
//   server.cc            construction, the routes with their scopes, bearer-token auth, health,
//                        start and stop
//   server_resources.cc  the /api/v1 resource routes: thin calls into the service
//   server_events.cc     the event routes: an SSE stream, or a JSON page
//   server_webhooks.cc   webhooks: admission (method, body limit), then signature and run
// Nothing outside src/api/server*.cc includes this header.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/server.h"
#include "api/token_cache.h"
#include "core/pool.h"
#include "engine/secrets.h"
#include "http/router.h"
#include "http/server.h"
#include "service/local_service.h"
#include "service/scopes.h"

namespace ferry::api {
namespace server_internal {

void SendJson(http::Response& res, int status, const Json& body);
// The error's response; keeps res.close (set when the request body was not read).
void SendError(http::Response& res, const Error& error);
void SendError(http::Response& res, ErrorCode code, const std::string& message);
// The request's query parameters; one given twice is refused rather than guessed at.
Result<service::Query> QueryOf(const http::Request& req);

// What an /api/v1 route's admission step found: the token's scopes (Request::context).
struct Granted {
  std::vector<std::string> scopes;
  std::string token_hash;  // "" when the server needs no token (ferry dev)
};

// What a webhook's admission step found, for its handler (Request::context).
struct AdmittedHook {
  service::WebhookTarget target;
};

}  // namespace server_internal

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
  // The service's connections: the server itself reads no store and no broker.
  Pool<Store> stores;
  Pool<Broker> brokers;
  // Every action and query of the /api/v1 resource routes.
  service::LocalService service;
  // Bearer tokens verified within options.token_cache_ttl.
  TokenCache tokens;
  // /readyz and /metrics in progress: they need no token and wait for Redis and the store, so
  // a few of each at once, not a handler pool's worth (the rest get 503 at once).
  std::atomic<int> readyz_in_flight{0};
  std::atomic<int> metrics_in_flight{0};

  std::unique_ptr<http::Server> server;
  std::vector<std::string> route_list;  // ApiServer::Routes(); set by Start()

  std::mutex lifecycle_mu;  // serializes Start and Stop
  bool running = false;     // Guarded by lifecycle_mu
  bool stopped = false;     // Guarded by lifecycle_mu

  const engine::SecretResolver& secrets() const {
    return options.secrets != nullptr ? *options.secrets : env_secrets;
  }

  http::Router Routes();
  std::optional<http::Response> Authenticate(http::Request& req, service::Scope needed);
  // A token's scopes (by its SHA-256), from the cache or the store; nothing when it is unknown
  // or revoked.
  Result<std::optional<std::vector<std::string>>> ScopesOf(const std::string& token_hash);
  // Whether the request's token still has `needed`: an event stream asks now and then, so a
  // revoked token's streams end as its new requests are refused.
  std::function<bool()> StillGranted(const http::Request& req, service::Scope needed);

  // Routes.
  void Healthz(const http::Request& req, http::Response& res);
  void Readyz(const http::Request& req, http::Response& res);
  void ApplyWorkflow(const http::Request& req, http::Response& res);
  void ListWorkflows(const http::Request& req, http::Response& res);
  void GetWorkflow(const http::Request& req, http::Response& res);
  void ListVersions(const http::Request& req, http::Response& res);
  void GetVersion(const http::Request& req, http::Response& res);
  void CreateRun(const http::Request& req, http::Response& res);
  void ListRuns(const http::Request& req, http::Response& res);
  void CountRuns(const http::Request& req, http::Response& res);
  void GetRun(const http::Request& req, http::Response& res);
  void CancelRun(const http::Request& req, http::Response& res);
  void RetryRun(const http::Request& req, http::Response& res);
  void RunEvents(const http::Request& req, http::Response& res);
  void SubmitTask(const http::Request& req, http::Response& res);
  void SubmitTasks(const http::Request& req, http::Response& res);
  void ListTasks(const http::Request& req, http::Response& res);
  void GetTask(const http::Request& req, http::Response& res);
  void CancelTask(const http::Request& req, http::Response& res);
  void RetryTask(const http::Request& req, http::Response& res);
  void ListWorkers(const http::Request& req, http::Response& res);
  void ListQueues(const http::Request& req, http::Response& res);
  void GetQueue(const http::Request& req, http::Response& res);
  void ListDead(const http::Request& req, http::Response& res);
  void PurgeDead(const http::Request& req, http::Response& res);
  void RetryDead(const http::Request& req, http::Response& res);
  void DeleteQueue(const http::Request& req, http::Response& res);
  void ListSchedules(const http::Request& req, http::Response& res);
  void PauseSchedules(const http::Request& req, http::Response& res);
  void ResumeSchedules(const http::Request& req, http::Response& res);
  void ListTokens(const http::Request& req, http::Response& res);
  void CreateToken(const http::Request& req, http::Response& res);
  void RevokeToken(const http::Request& req, http::Response& res);
  void TaskEvents(const http::Request& req, http::Response& res);
  void ListRemediations(const http::Request& req, http::Response& res);
  void GetRemediation(const http::Request& req, http::Response& res);
  void DismissRemediation(const http::Request& req, http::Response& res);
  void ReopenRemediation(const http::Request& req, http::Response& res);
  void RemediationDiff(const http::Request& req, http::Response& res);
  void DispatchCron(const http::Request& req, http::Response& res);
  void Metrics(const http::Request& req, http::Response& res);
  void Alerts(const http::Request& req, http::Response& res);
  void Doctor(const http::Request& req, http::Response& res);
  std::optional<http::Response> AdmitHook(http::Request& req, int64_t& body_limit);
  void Hook(const http::Request& req, http::Response& res);

  // The token's identity for the service: actor "api", and the secrets its scopes allow.
  service::Caller CallerOf(const http::Request& req) const;
  // The service's answer with `status`, or its error.
  static void Answer(http::Response& res, const Result<Json>& result, int status = 200);
};

}  // namespace ferry::api
