#include "handlers/http_handler.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <memory>

#include "core/crypto.h"
#include "core/mask.h"
#include "core/time_util.h"
#include "engine/http_client.h"
#include "handlers/envelope.h"
#include "worker/tail_text.h"

namespace ferry::handlers {
namespace {

using std::chrono::milliseconds;

tl::unexpected<HandlerError> Permanent(std::string message) {
  return tl::unexpected<HandlerError>(HandlerError{std::move(message), false});
}
tl::unexpected<HandlerError> Transient(std::string message,
                                       std::optional<milliseconds> after = std::nullopt) {
  return tl::unexpected<HandlerError>(HandlerError{std::move(message), true, after});
}

const std::string* Header(const engine::HttpResponse& r, const std::string& lower_name) {
  for (const auto& [name, value] : r.headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

// A handler's options and its URL as errors show it: a task's error is stored in Redis, read by
// anyone who may read tasks, and logged, so the URL's password and credential parameters are
// masked there (they are still sent).
struct Target {
  HttpHandlerOptions options;
  std::string shown_url;
};

HandlerResult Deliver(const Target& target, engine::HttpConnectionPool& pool, TaskContext& ctx) {
  const HttpHandlerOptions& options = target.options;
  const std::string body = DumpJson(TaskEnvelope(ctx));
  const int64_t now_ms = WallNowMs();
  const std::string ts = std::to_string(now_ms / 1000);
  engine::HttpRequest req;
  req.method = "POST";
  req.url = options.url;
  req.body = body;
  req.has_body = true;
  req.max_response_bytes = options.max_response_bytes;
  req.headers = {{"Content-Type", "application/json"},
                 {"X-Ferry-Task-Id", ctx.id},
                 {"X-Ferry-Attempt", std::to_string(ctx.attempt)},
                 {"X-Ferry-Epoch", std::to_string(ctx.epoch)},
                 {"X-Ferry-Timestamp", ts},
                 {"X-Ferry-Signature", HandlerSignature(options.secret, ts, body)}};
  req.timeout = options.request_timeout;
  if (ctx.deadline_ms > 0) {
    req.headers.emplace_back("X-Ferry-Deadline", std::to_string(ctx.deadline_ms));
    // The worker's watchdog stops the attempt at the deadline too; this ends the transfer there
    // even if the stop arrives between two progress callbacks.
    req.timeout = milliseconds(std::max<int64_t>(1, ctx.deadline_ms - now_ms));
  }

  auto resp = engine::PerformHttp(req, ctx.stop, &pool);
  if (!resp) {
    const Error& e = resp.error();
    switch (e.code) {
      case ErrorCode::kCancelled:
        return Transient("stopped");
      case ErrorCode::kTooLarge:
      case ErrorCode::kInvalidArgument:
        return Permanent(target.shown_url + ": " + e.message);
      default:  // timeout, connection refused or reset, DNS
        return Transient(target.shown_url + ": " + e.message);
    }
  }
  const long status = resp->status;  // NOLINT(google-runtime-int): curl's type
  const std::string what = target.shown_url + " answered " + std::to_string(status);
  auto with_body = [&](std::string why) {
    std::string tail = TailText(resp->body, 300);
    return tail.empty() ? why : why + ": " + tail;
  };
  if (status >= 200 && status < 300) {
    if (resp->body.find_first_not_of(" \t\r\n") == std::string::npos) return Json(nullptr);
    auto result = ParseJson(resp->body);
    if (!result)
      return Permanent(what + " with a body that is not JSON: " + result.error().message);
    return std::move(*result);
  }
  if (status == 408 || status == 429 || status >= 500) {
    std::optional<milliseconds> after;
    if (const std::string* ra = Header(*resp, "retry-after")) {
      after = ParseRetryAfter(*ra, WallNowMs());
      if (after) after = std::min(*after, options.max_retry_after);
    }
    return Transient(with_body(what), after);
  }
  if (status >= 300 && status < 400) {
    return Permanent(what + " (a redirect; the worker does not follow redirects)");
  }
  return Permanent(with_body(what));
}

}  // namespace

std::string HandlerSignature(const std::string& secret, const std::string& timestamp,
                             const std::string& body) {
  return "sha256=" + HmacSha256Hex(secret, timestamp + "." + body);
}

std::optional<milliseconds> ParseRetryAfter(const std::string& value, int64_t now_ms) {
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t seconds = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    // Too many digits for int64: far beyond any cap, so the cap applies.
    if (ec == std::errc::result_out_of_range) return milliseconds::max();
    if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
    if (seconds > INT64_MAX / 1000) return milliseconds::max();
    return milliseconds(seconds * 1000);
  }
  // IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  const char* end = ::strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  int64_t at_ms = static_cast<int64_t>(::timegm(&tm)) * 1000;
  return milliseconds(std::max<int64_t>(0, at_ms - now_ms));
}

Result<Handler> MakeHttpHandler(HttpHandlerOptions options) {
  const std::string shown_url = MaskCredentials(options.url);
  if (options.url.rfind("http://", 0) != 0 && options.url.rfind("https://", 0) != 0) {
    return Fail(ErrorCode::kInvalidArgument,
                "http handler: URL must start with http:// or https://, not '" + shown_url + "'");
  }
  if (options.secret.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "http handler " + shown_url + ": no signing secret: set " + options.secret_name +
                    " (at least " + std::to_string(kMinSecretBytes) + " bytes)");
  }
  if (options.secret.size() < kMinSecretBytes) {
    return Fail(ErrorCode::kInvalidArgument,
                "http handler " + shown_url + ": the signing secret (" + options.secret_name +
                    ") " + "must be at least " + std::to_string(kMinSecretBytes) + " bytes");
  }
  // Every delivery is signed: a missing libcrypto fails the worker's start, not each task.
  if (auto crypto = CryptoAvailable(); !crypto) return Fail(crypto.error());
  auto shared = std::make_shared<const Target>(Target{std::move(options), shown_url});
  auto pool = std::make_shared<engine::HttpConnectionPool>();
  return Handler([shared, pool](TaskContext& ctx) { return Deliver(*shared, *pool, ctx); });
}

}  // namespace ferry::handlers
