// Routes: a method set and a path pattern ("/api/v1/runs/{id}/cancel") per handler, matched
// segment by segment. The router answers 404 for an unknown path and 405 (with Allow) for a known
// path with another method; GET routes answer HEAD too.
//
// Thread-safety: build the router on one thread, then hand it to the Server; after that it is
// only read, from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace ferry::http {

// Runs on a handler thread with the request's body read (on the I/O thread for a route marked
// on_io_thread).
using Handler = std::function<Response(Request& request)>;

// Runs on a handler thread once the request head has arrived: it may answer at once (401, 404,
// 413 ...) or set the largest body this request may send (`body_limit`, preset to the server's
// default). When the body has not all arrived with the head, this runs before it is read (an
// answer here means it is never read); when it has, this runs in the same job as the handler,
// just before it, and the body is then checked against `body_limit`. It may do blocking I/O.
using Admit = std::function<std::optional<Response>(Request& request, int64_t& body_limit)>;

struct Route {
  std::vector<std::string> methods;  // "GET" implies "HEAD"
  // Literal segments and "{name}" segments, each of which matches one non-empty segment.
  std::string pattern;
  Handler handler;
  Admit admit;  // optional
  // The handler answers at once from what the process holds (a liveness probe): it runs on the
  // I/O thread, so it answers while every handler thread is busy or the pool's queue is full.
  // It must not block, take locks others hold long, stream or use Response::after, and the
  // route may have no admit (Add refuses one).
  bool on_io_thread = false;
};

class Router {
 public:
  // Adds a route. Patterns are checked when added: a malformed one is a programming error and
  // throws std::invalid_argument.
  void Add(Route route);
  // Shorthands.
  void Get(std::string pattern, Handler handler, Admit admit = {});
  void Post(std::string pattern, Handler handler, Admit admit = {});
  // A GET route whose handler runs on the I/O thread (Route::on_io_thread).
  void GetOnIoThread(std::string pattern, Handler handler);

  struct Match {
    const Route* route = nullptr;      // null: no route for this method (see allowed)
    std::vector<std::string> params;   // the {name} segments' values, in order
    std::vector<std::string> allowed;  // when route is null but the path exists: the methods
  };
  // The route for `method` on `path` (already percent-decoded).
  Match Find(std::string_view method, std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Compiled {
    std::vector<std::string> segments;  // "" marks a {name} segment
  };
  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;
};

// Splits "/a/b/c" into {"a","b","c"}; "/" into {}. A trailing slash makes an empty last segment.
std::vector<std::string_view> SplitPath(std::string_view path);

}  // namespace ferry::http
