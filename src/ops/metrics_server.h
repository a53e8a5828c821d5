// A minimal HTTP server for processes that have no other (the scheduler): GET /metrics and
// GET /healthz. The API server and the worker's health port mount /metrics themselves.
//
// Thread-safety: Start/Stop from one thread; the callbacks run on the server's threads and must
// be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/result.h"

namespace ferry::ops {

class MetricsServer {
 public:
  MetricsServer();
  ~MetricsServer();  // Stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds host:port (0 = any free port) and serves on a background thread; returns the port.
  // `healthy` may be empty (always healthy).
  Result<int> Start(const std::string& host, int port, std::function<std::string()> metrics,
                    std::function<bool()> healthy = {});
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::ops
