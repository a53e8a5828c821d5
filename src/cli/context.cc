#include <mutex>

#include "cli/commands.h"
#include "core/log.h"
#include "core/redis_url.h"

namespace ferry::cli {

Context::Context(GlobalFlags global, EnvLookup env)
    : global_(std::move(global)),
      env_(std::move(env)),
      out_(global_.json, TerminalStyle(global_.ascii, global_.no_color)) {}

Status EnsureLogging(const LogOptions& options) {
  static std::once_flag once;
  Status result;
  std::call_once(once, [&] { result = InitLogging(options); });
  return result;
}

Status Context::Init(const std::string& default_log_level) {
  auto cfg = ResolveClientConfig(global_, env_, default_log_level);
  if (!cfg) return Fail(cfg.error());
  config_ = *cfg;
  return EnsureLogging(config_.log);
}

Error DescribeConnectError(const Error& error, const std::string& redis_url) {
  static const std::string kPrefix = "cannot connect to Redis at ";
  std::string masked = MaskRedisUrl(redis_url);
  std::string reason = error.message;
  if (error.code == ErrorCode::kUnavailable) {
    // Name the server the way the user gave it (masked URL), once, then the broker's reason.
    // (With several hosts the broker's reason names the one that failed: keep it.)
    auto ep = ParseRedisUrl(redis_url);
    bool one_host = ep && ep->topology == RedisTopology::kSingle;
    if (one_host && reason.rfind(kPrefix, 0) == 0) {
      auto colon = reason.find(": ", kPrefix.size());
      if (colon != std::string::npos) reason = reason.substr(colon + 2);
    }
    // A one-shot command does not reconnect; the broker's hint is for its long-lived users.
    static const std::string kHint = " (will reconnect on the next call)";
    if (reason.size() > kHint.size() &&
        reason.compare(reason.size() - kHint.size(), kHint.size(), kHint) == 0) {
      reason.resize(reason.size() - kHint.size());
    }
    return Error{error.code, kPrefix + masked + ": " + reason};
  }
  if (reason.find("Redis") != std::string::npos) return error;  // already names the server
  if (error.code == ErrorCode::kUnauthenticated) {
    return Error{error.code,
                 "Redis at " + masked + " refused the credentials (wrong password?): " + reason};
  }
  return Error{error.code, "Redis at " + masked + ": " + reason};
}

Result<std::unique_ptr<Broker>> Context::Connect() {
  if (!factory_) factory_ = MakeRedisBrokerFactory(config_.broker);
  auto broker = factory_->Open();
  if (!broker) return Fail(DescribeConnectError(broker.error(), config_.broker.redis_url));
  return broker;
}

}  // namespace ferry::cli
