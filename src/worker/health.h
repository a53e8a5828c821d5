// A small probe server: GET /healthz and, optionally, GET /metrics. The worker's health port and
// the scheduler's metrics port. Built on Ferry's own HTTP server (http/), so the server's
// deadlines and caps apply and no other HTTP library is loaded into a worker.
//
// Thread-safety: Start and Stop are called by the worker's driving thread; `probe` is called on
// the server's own threads and must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/json.h"
#include "core/result.h"

namespace ferry {

class HealthServer {
 public:
  // Returns true when healthy, and fills `body` with details either way. May be empty: always
  // healthy.
  using Probe = std::function<bool(Json& body)>;

  HealthServer();
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  // Binds host:port (0 = any free port) and serves on a background thread. Returns the port.
  // `metrics` (optional) is the body of GET /metrics, Prometheus text format.
  Result<int> Start(const std::string& host, int port, Probe probe,
                    std::function<std::string()> metrics = {});
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
