#include "worker/health.h"

#include <utility>

#include "http/server.h"

namespace ferry {

struct HealthServer::Impl {
  std::unique_ptr<http::Server> server;
};

HealthServer::HealthServer() : impl_(std::make_unique<Impl>()) {}

HealthServer::~HealthServer() { Stop(); }

Result<int> HealthServer::Start(const std::string& host, int port, Probe probe,
                                std::function<std::string()> metrics) {
  http::Router router;
  router.Get("/healthz", [probe = std::move(probe)](http::Request&) {
    Json body = Json::object();
    const bool ok = !probe || probe(body);
    body["status"] = ok ? "ok" : "unavailable";
    http::Response res;
    res.status = ok ? 200 : 503;
    res.body = DumpJson(body);
    return res;
  });
  if (metrics) {
    router.Get("/metrics", [metrics = std::move(metrics)](http::Request&) {
      http::Response res;
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
      res.body = metrics();
      return res;
    });
  }
  // Probes are tiny and come from one scraper or supervisor: two handler threads and small caps
  // keep the idle process small, and the server's deadlines keep a stuck prober from holding a
  // thread. The listener sets SO_REUSEADDR only, so a port another process holds is an error
  // rather than a silently shared one.
  http::ServerOptions options;
  options.host = host;
  options.port = port;
  options.threads = 2;
  options.max_queued = 64;
  options.max_connections = 64;
  options.max_connections_per_client = 64;
  options.max_streams = 0;
  options.default_body_limit = 0;
  options.max_body_limit = 0;
  impl_->server = std::make_unique<http::Server>(std::move(options), std::move(router));
  auto bound = impl_->server->Start();
  if (!bound) {
    impl_->server.reset();
    return Fail(bound.error());
  }
  return *bound;
}

void HealthServer::Stop() {
  if (impl_->server) impl_->server->Stop();
}

}  // namespace ferry
