// Outbound HTTP for `http` nodes, on libcurl's easy interface (one handle per request, owned by
// a unique_ptr). Only http:// and https:// are allowed, redirects are not followed, the response
// body is capped, and the transfer is aborted as soon as the stop token is requested.
//
// libcurl is loaded on the first request (core/dynamic_library.h); without it PerformHttp fails
// with kUnavailable naming the package.
//
// Thread-safety: PerformHttp may run on many threads at once (the library is loaded and
// curl_global_init'ed once, under a function-local static's initialisation, and each call uses
// its own handle with CURLOPT_NOSIGNAL).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace ferry::engine {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool has_body = false;
  std::chrono::milliseconds timeout{0};  // whole transfer; 0: none (the stop token still works)
  size_t max_response_bytes = 10u << 20;
  // When set, the body goes here chunk by chunk as it arrives (a Server-Sent Events stream)
  // instead of into HttpResponse::body, with no size cap; returning false ends the transfer,
  // which PerformHttp then reports as OK with what came so far.
  std::function<bool(std::string_view chunk)> on_body;
};

struct HttpResponse {
  long status = 0;  // NOLINT(google-runtime-int): curl's type
  std::vector<std::pair<std::string, std::string>> headers;  // in arrival order, names lowercased
  std::string body;
};

// Builds the request an http node sends: JSON bodies are serialised and get
// `Content-Type: application/json` unless a content-type header is given; string bodies are
// sent as they are.
HttpRequest BuildHttpRequest(const std::string& method, const std::string& url,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const Json* body);

// Idle curl handles kept for the next request, and with them their open connections: requests
// made through one pool reuse a kept-alive connection to the same host instead of a new TCP
// (and TLS) handshake each. Thread-safe; each request takes a handle of its own.
class HttpConnectionPool {
 public:
  // At most `max_idle` handles are kept between requests; more are closed.
  explicit HttpConnectionPool(size_t max_idle = 16);
  ~HttpConnectionPool();
  HttpConnectionPool(const HttpConnectionPool&) = delete;
  HttpConnectionPool& operator=(const HttpConnectionPool&) = delete;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Errors: kInvalidArgument (bad URL or scheme), kTimeout, kCancelled (stop requested),
// kTooLarge (response over the cap), kUnavailable (connection failures). A timeout or failure
// after a request other than GET or HEAD went out carries details kOutcomeUnknown.
// `pool` (optional) lends a handle whose connections survive the call.
Result<HttpResponse> PerformHttp(const HttpRequest& request, std::stop_token stop,
                                 HttpConnectionPool* pool = nullptr);

// The node's output: {status, headers: {name: value}, body} with body parsed as JSON when it is.
Json HttpResponseToJson(const HttpResponse& response);

}  // namespace ferry::engine
