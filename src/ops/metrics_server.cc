#include "ops/metrics_server.h"

#include <httplib.h>

#include <thread>

#include "ops/metrics.h"

namespace ferry::ops {

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
};

MetricsServer::MetricsServer() : impl_(std::make_unique<Impl>()) {}

MetricsServer::~MetricsServer() { Stop(); }

Result<int> MetricsServer::Start(const std::string& host, int port,
                                 std::function<std::string()> metrics,
                                 std::function<bool()> healthy) {
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  impl_->server.set_keep_alive_max_count(1);
  impl_->server.Get(
      "/metrics", [metrics = std::move(metrics)](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics(), Metrics::kContentType);
      });
  impl_->server.Get(
      "/healthz", [healthy = std::move(healthy)](const httplib::Request&, httplib::Response& res) {
        const bool ok = !healthy || healthy();
        res.status = ok ? 200 : 503;
        res.set_content(ok ? "{\"status\":\"ok\"}" : "{\"status\":\"unavailable\"}",
                        "application/json");
      });
  int bound = port;
  if (port == 0) {
    bound = impl_->server.bind_to_any_port(host);
    if (bound < 0) return Fail(ErrorCode::kUnavailable, "cannot bind a metrics port on " + host);
  } else if (!impl_->server.bind_to_port(host, port)) {
    return Fail(ErrorCode::kUnavailable,
                "cannot bind the metrics port " + host + ":" + std::to_string(port) + " (in use?)");
  }
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  return bound;
}

void MetricsServer::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace ferry::ops
