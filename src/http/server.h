// Ferry's HTTP/1.1 server: event-driven network I/O on one thread, handlers on a fixed pool.
//
// Why this shape: a thread-per-connection server lets 40 clients that trickle their headers, or
// a few hundred idle keep-alive connections, occupy every thread while webhooks wait. Here no
// thread ever waits on a client: one I/O thread (Boost.Asio) reads request heads and bodies and
// writes answers asynchronously, each under a deadline, and the handler pool only ever runs
// handlers on complete requests. Connections are capped in total and per client address (503
// beyond either), request heads must arrive whole within `header_timeout`, bodies within
// `body_timeout`, idle keep-alive connections close after `idle_timeout`. Streams (SSE) hold no
// thread between their steps.
//
// Thread-safety: Start() once, from one thread. Stop() from any thread, more than once; it
// closes every connection, waits for running handlers and returns once the I/O thread ended.
// The destructor calls Stop(). Handlers run concurrently on the pool (those of routes marked
// on_io_thread on the I/O thread) and must be thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "http/router.h"

namespace ferry::http {

struct ServerOptions {
  // Listen address ("0.0.0.0", "127.0.0.1", "::", a host name). port 0 = any free port.
  std::string host = "127.0.0.1";
  int port = 0;

  // Threads that run handlers (and admission checks, and stream steps).
  int threads = 16;
  // Requests waiting for a handler thread; one more is answered 503 at once.
  int max_queued = 4096;
  // Threads that run the work a route leaves for after its answer (Response::after: a webhook's
  // enqueue), so work waiting on a slow dependency holds none of the threads that answer
  // requests. Work that would wait behind more than `max_after_queued` others runs on its
  // handler thread instead; queued work not started when the server stops is dropped.
  int after_threads = 4;
  int max_after_queued = 4096;

  // Open connections, in total and from one client address; one more gets 503 and is closed.
  int max_connections = 10000;
  int max_connections_per_client = 4000;
  // Open streams (SSE); one more gets 503.
  int max_streams = 512;

  // The whole request head (request line and headers) must arrive within this, counted from its
  // first byte; else 408 and close.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
  // The whole body must arrive within this, counted from the end of the head; else 408.
  std::chrono::milliseconds body_timeout = std::chrono::seconds(30);
  // A connection with no request in progress closes after this (keep-alive and fresh ones).
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(5);
  // Each write (an answer, a stream chunk) must be taken by the client within this.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);

  // Largest request head, in bytes, counted over all the reads it takes; larger is 431.
  uint32_t max_header_bytes = 16 * 1024;
  // The body limit a route starts from (its Admit may change it); larger is 413.
  int64_t default_body_limit = 1 << 20;
  // No Admit may raise a body limit above this.
  int64_t max_body_limit = (int64_t{64} << 20) + 1;

  // Called after each answer on the I/O thread (keep it cheap): metrics, access logs.
  std::function<void(const Request& request, int status, double seconds)> on_response;
};

class Server {
 public:
  Server(ServerOptions options, Router router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving. Returns the bound port. kInvalidArgument for bad options,
  // kNotFound when the host does not resolve, kConflict when the address cannot be bound (taken,
  // or not this machine's).
  Result<int> Start();
  void Stop();

  int port() const;
  // Open connections right now (tests, metrics).
  int connections() const;
  // How long the oldest request waiting for a handler thread has waited; zero when none waits.
  // Thread-safe. A liveness probe on the I/O thread reads it to tell a pool that stopped taking
  // work (every thread stuck) from one that is merely busy.
  std::chrono::milliseconds OldestQueuedWait() const;

  // Opaque; public only so the implementation's connection type can name it.
  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ferry::http
