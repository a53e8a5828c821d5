// The HTTP API server: JSON routes under /api/v1 (workflows, runs, tasks, workers, queues), live
// run events over Server-Sent Events, signed webhooks at /hooks/{workflow}, /healthz /readyz, and
// the web console's files at / and /assets/ (src/console, docs/console.md).
// docs/api.md describes every route, the error format and the webhook signing recipe.
//
// Threads: src/http's server reads and writes every connection on one I/O thread and runs the
// handlers on a fixed pool (`threads`); no thread waits on a slow or idle client, and an open
// SSE stream holds no thread between its polls. Store and Broker connections are not
// thread-safe: handlers lease them from pools (reconnected after an unavailable error).
//
// Auth: bearer tokens (store: API tokens, SHA-256 hashes) on everything except /hooks, /healthz
// and /readyz. Auth can be switched off only by `ferry dev`: Start() refuses
// `require_auth = false` unless `dev_mode` is set and the listen host is a loopback address.
//
// Thread-safety: Start() once, from one thread. Stop() may be called from any thread (a signal
// thread, a test) and more than once; it unblocks open SSE streams and returns once the listener
// thread has ended. The destructor calls Stop().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/result.h"
#include "engine/secrets.h"
#include "http/server.h"
#include "store/store.h"

namespace ferry::api {

struct ApiServerOptions {
  // Listen address. port 0 = any free port; Start() returns the bound one.
  std::string host = "127.0.0.1";
  int port = 8080;

  // Bearer tokens required on /api/v1. false is accepted only with dev_mode on a loopback host.
  bool require_auth = true;
  // Set only by `ferry dev`.
  bool dev_mode = false;

  // Open per-thread connections. Not owned; must outlive the server. Required.
  StoreFactory* store_factory = nullptr;
  BrokerFactory* broker_factory = nullptr;

  // Resolves webhook secrets by name (the trigger's `secret` field). Not owned. nullptr = the
  // process environment, FERRY_SECRET_<NAME>.
  const engine::SecretResolver* secrets = nullptr;

  // Handler threads.
  int threads = 16;
  // Concurrent SSE streams; one more gets 503.
  int max_sse_clients = 512;
  // Largest request body on /api/v1 routes (webhooks use their trigger's max_body_bytes).
  int64_t max_body_bytes = 1 << 20;
  // /healthz answers 503 "stalled" once a request has waited this long for a handler thread:
  // no thread has taken work for longer than any handler may legitimately run (Redis and store
  // calls time out well before), so they are stuck and the process should be restarted.
  std::chrono::milliseconds pool_stalled_after = std::chrono::seconds(60);
  // Connection caps, deadlines and limits of the HTTP layer (src/http/server.h). host, port,
  // threads, max_sse_clients and max_body_bytes above take precedence over its fields.
  http::ServerOptions http;

  // The queue run tasks go to.
  std::string run_queue = "default";

  // SSE: how often a stream polls the store for new run events, and how often it sends a
  // keep-alive comment when nothing happened.
  std::chrono::milliseconds sse_poll_interval = std::chrono::milliseconds(150);
  std::chrono::milliseconds sse_keep_alive = std::chrono::seconds(15);

  // Webhook timestamps and nonce expiry, and the token cache. Not owned.
  const Clock* clock = &SystemClock::Instance();

  // A bearer token verified in the store is trusted this long before it is looked up again
  // (api/token_cache.h): also how long a revoked token keeps working here. 0 = every request.
  std::chrono::milliseconds token_cache_ttl = std::chrono::seconds(1);

  // Operations hooks (src/ops, wired by `ferry server start`). Optional; they run on pool
  // threads and must be thread-safe.
  // GET /metrics (no auth, like /healthz): the Prometheus text exposition. Empty: no route.
  std::function<std::string()> metrics;
  // GET /api/v1/alerts: what fires and since when, as JSON. Empty: no route.
  // Called with a store (never null here); see service::LocalServiceOptions::alerts.
  std::function<Result<Json>(Broker& broker, Store* store)> alerts;
  // GET /api/v1/doctor (admin): the deployment checks from this server. Empty: no route.
  std::function<Result<Json>()> doctor;
  // After each webhook request: the workflow name ("" when the path named no workflow), the HTTP
  // status and the seconds it took.
  std::function<void(const std::string& workflow, int status, double seconds)> on_webhook;
};

class ApiServer {
 public:
  explicit ApiServer(ApiServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Validates the options, binds and starts serving on a background thread. Returns the bound
  // port. kInvalidArgument for bad options; http::Server::Start's errors when the address
  // cannot be bound.
  Result<int> Start();
  // Stops accepting, ends SSE streams, waits for the listener. Safe from any thread, idempotent.
  void Stop();

  // The bound port (0 before Start()).
  int port() const;
  // Open client connections right now.
  int connections() const;
  // Every route served, as "METHOD /pattern" ("GET /api/v1/runs/{id}"; HEAD, implied by GET, is
  // not listed), for the contract test against docs/openapi.json. Empty before Start().
  std::vector<std::string> Routes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::api
