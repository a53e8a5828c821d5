// `http` handlers: the worker POSTs each task to a URL, as Cloud Tasks and QStash push
// (docs/handlers.md "http").
//
// Request: the task envelope as JSON, with headers
//   X-Ferry-Task-Id, X-Ferry-Attempt, X-Ferry-Epoch (fencing: reject an epoch below one seen),
//   X-Ferry-Deadline (Unix ms at which the worker gives up on this attempt; absent without a
//   timeout), X-Ferry-Timestamp (Unix s) and
//   X-Ferry-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body)).
// Answer: 2xx succeeds with the body (JSON; empty = null) as the result; 408, 429 and 5xx, a
// timeout or a connection error fail with retry, after Retry-After when the answer has one;
// other 4xx fail without retry, as do 3xx (redirects are not followed), a body over the cap and
// a 2xx body that is not JSON. Cancel, timeout and lease loss abort the request.
//
// Thread-safety: the returned handler may run on many slot threads at once; connections are
// kept alive and reused between tasks.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "core/result.h"
#include "worker/handler.h"

namespace ferry::handlers {

struct HttpHandlerOptions {
  std::string url;                                   // http:// or https://
  std::string secret;                                // HMAC key; required, at least kMinSecretBytes
  std::string secret_name = "FERRY_HANDLER_SECRET";  // where the key came from, for errors
  size_t max_response_bytes = 1 << 20;
  // Used when the task has no timeout of its own.
  std::chrono::milliseconds request_timeout = std::chrono::minutes(30);
  // Longest Retry-After honoured; longer ones are cut to this (the worker's backoff cap still
  // applies on top).
  std::chrono::milliseconds max_retry_after = std::chrono::hours(1);
};

inline constexpr size_t kMinSecretBytes = 16;

Result<Handler> MakeHttpHandler(HttpHandlerOptions options);

// "sha256=<hex>" for a body sent at `timestamp` (Unix seconds as text).
std::string HandlerSignature(const std::string& secret, const std::string& timestamp,
                             const std::string& body);

// Retry-After as delta-seconds or an HTTP date, relative to `now_ms`; nullopt when malformed.
std::optional<std::chrono::milliseconds> ParseRetryAfter(const std::string& value, int64_t now_ms);

}  // namespace ferry::handlers
