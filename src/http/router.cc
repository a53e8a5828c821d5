#include "http/router.h"

#include <algorithm>
#include <stdexcept>

namespace ferry::http {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return out;
  while (true) {
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

void Router::Add(Route route) {
  if (route.pattern.empty() || route.pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + route.pattern);
  }
  if (!route.handler || route.methods.empty()) {
    throw std::invalid_argument("route needs methods and a handler: " + route.pattern);
  }
  if (route.on_io_thread && route.admit) {
    throw std::invalid_argument(
        "a route answered on the I/O thread cannot have an admission "
        "check (it may block): " +
        route.pattern);
  }
  Compiled c;
  for (std::string_view seg : SplitPath(route.pattern)) {
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      c.segments.emplace_back();
    } else if (seg.empty() || seg.find_first_of("{}") != std::string_view::npos) {
      throw std::invalid_argument("malformed route pattern: " + route.pattern);
    } else {
      c.segments.emplace_back(seg);
    }
  }
  if (std::find(route.methods.begin(), route.methods.end(), "GET") != route.methods.end() &&
      std::find(route.methods.begin(), route.methods.end(), "HEAD") == route.methods.end()) {
    route.methods.emplace_back("HEAD");
  }
  routes_.push_back(std::move(route));
  compiled_.push_back(std::move(c));
}

void Router::Get(std::string pattern, Handler handler, Admit admit) {
  Add(Route{{"GET"}, std::move(pattern), std::move(handler), std::move(admit)});
}

void Router::Post(std::string pattern, Handler handler, Admit admit) {
  Add(Route{{"POST"}, std::move(pattern), std::move(handler), std::move(admit)});
}

void Router::GetOnIoThread(std::string pattern, Handler handler) {
  Add(Route{{"GET"}, std::move(pattern), std::move(handler), {}, /*on_io_thread=*/true});
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match match;
  const auto segments = SplitPath(path);
  for (size_t i = 0; i < routes_.size(); ++i) {
    const Compiled& c = compiled_[i];
    if (c.segments.size() != segments.size()) continue;
    std::vector<std::string> params;
    bool ok = true;
    for (size_t s = 0; s < segments.size() && ok; ++s) {
      if (c.segments[s].empty()) {
        if (segments[s].empty())
          ok = false;
        else
          params.emplace_back(segments[s]);
      } else {
        ok = c.segments[s] == segments[s];
      }
    }
    if (!ok) continue;
    const Route& r = routes_[i];
    if (std::find(r.methods.begin(), r.methods.end(), method) != r.methods.end()) {
      match.route = &r;
      match.params = std::move(params);
      match.allowed.clear();
      return match;
    }
    for (const auto& m : r.methods) {
      if (std::find(match.allowed.begin(), match.allowed.end(), m) == match.allowed.end()) {
        match.allowed.push_back(m);
      }
    }
  }
  return match;
}

}  // namespace ferry::http
