#include "console/routes.h"

#include <string>

#include "console/assets.h"

namespace ferry::console {
namespace {

void SecurityHeaders(http::Response& res) {
  res.SetHeader("Content-Security-Policy", kContentSecurityPolicy);
  res.SetHeader("X-Content-Type-Options", "nosniff");
  res.SetHeader("Referrer-Policy", "no-referrer");
  res.SetHeader("X-Frame-Options", "DENY");
}

// If-None-Match may list several tags ("a", "b") or be "*".
bool Matches(const std::string& if_none_match, std::string_view etag) {
  if (if_none_match == "*") return true;
  size_t pos = 0;
  while (pos < if_none_match.size()) {
    size_t comma = if_none_match.find(',', pos);
    if (comma == std::string::npos) comma = if_none_match.size();
    std::string_view tag(if_none_match.data() + pos, comma - pos);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

http::Response Serve(const http::Request& request, std::string_view name) {
  const Asset* asset = FindAsset(name);
  if (asset == nullptr) {
    return http::ErrorResponse(404, "no console file " + std::string(name));
  }
  http::Response res;
  SecurityHeaders(res);
  res.SetHeader("ETag", std::string(asset->etag));
  // Names carry no version: the browser asks again each time and gets 304 while unchanged.
  res.SetHeader("Cache-Control", "no-cache");
  res.content_type = std::string(asset->content_type);
  if (auto tag = request.Header("If-None-Match"); tag && Matches(*tag, asset->etag)) {
    res.status = 304;
    return res;
  }
  res.status = 200;
  res.body = std::string(asset->bytes);
  return res;
}

void AddRoutes(http::Router& router) {
  router.Get("/", [](http::Request& req) { return Serve(req, "index.html"); });
  router.Get("/assets/{file}", [](http::Request& req) {
    // index.html is the page at /, not an asset.
    if (req.params[0] == "index.html") return Serve(req, "");
    return Serve(req, req.params[0]);
  });
}

}  // namespace ferry::console
