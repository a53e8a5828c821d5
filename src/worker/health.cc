#include "worker/health.h"

#include <httplib.h>
#include <sys/socket.h>

#include <utility>

namespace ferry {

struct HealthServer::Impl {
  httplib::Server server;
  std::thread thread;
};

HealthServer::HealthServer() : impl_(std::make_unique<Impl>()) {}

HealthServer::~HealthServer() { Stop(); }

Result<int> HealthServer::Start(const std::string& host, int port, Probe probe,
                                std::function<std::string()> metrics) {
  // Probes are tiny; two pool threads are plenty and keep the idle worker small.
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  impl_->server.set_keep_alive_max_count(1);
  // httplib's default sets SO_REUSEPORT, which lets a second worker bind the same port and
  // silently share probes; SO_REUSEADDR alone makes a taken port an error.
  impl_->server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  impl_->server.Get("/healthz",
                    [probe = std::move(probe)](const httplib::Request&, httplib::Response& res) {
                      Json body = Json::object();
                      bool ok = probe(body);
                      body["status"] = ok ? "ok" : "unavailable";
                      res.status = ok ? 200 : 503;
                      res.set_content(DumpJson(body), "application/json");
                    });
  if (metrics) {
    impl_->server.Get("/metrics", [metrics = std::move(metrics)](const httplib::Request&,
                                                                 httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
    });
  }
  int bound = port;
  if (port == 0) {
    bound = impl_->server.bind_to_any_port(host);
    if (bound < 0) return Fail(ErrorCode::kUnavailable, "cannot bind a health port on " + host);
  } else if (!impl_->server.bind_to_port(host, port)) {
    return Fail(ErrorCode::kUnavailable,
                "cannot bind the health port " + host + ":" + std::to_string(port) + " (in use?)");
  }
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  return bound;
}

void HealthServer::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace ferry
