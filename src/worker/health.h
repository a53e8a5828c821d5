// The worker's /healthz endpoint (internal to ferry_worker; the only file that includes httplib).
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
  // Returns true when healthy, and fills `body` with details either way.
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
