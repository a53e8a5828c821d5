#include <mutex>

#include "cli/commands.h"
#include "cli/runs_common.h"
#include "core/files.h"
#include "core/log.h"
#include "core/redis_url.h"
#include "service/local_service.h"

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

namespace {

// --server / FERRY_SERVER and the token that goes with it; nullopt for local mode.
Result<std::optional<service::RemoteServiceOptions>> ResolveRemote(const GlobalFlags& global,
                                                                   const EnvLookup& env) {
  auto url = PickSettingText(global.server, "server", env);
  auto token = PickSettingText(global.token, "token", env);
  auto token_file = PickSettingText(global.token_file, "token-file", env);
  if (!url || url->empty()) {
    // A token in the environment alone is harmless (scripts may use it with curl); a flag
    // without a server is a mistake worth naming.
    if (global.token || global.token_file) {
      return Fail(ErrorCode::kInvalidArgument,
                  "a token (--token, --token-file, FERRY_TOKEN, FERRY_TOKEN_FILE) is for a "
                  "server: give --server URL (FERRY_SERVER) too");
    }
    return std::optional<service::RemoteServiceOptions>();
  }
  if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) {
    return Fail(ErrorCode::kInvalidArgument,
                "--server must be an http:// or https:// URL, got '" + *url + "'");
  }
  if (url->find_first_of(std::string_view(" \t\r\n\0", 5)) != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument, "--server holds whitespace or a NUL byte");
  }
  // Requests go to URL + "/api/v1/...": a path of the server's own prefix (behind a proxy) is
  // kept, but the API's path itself, a query or a fragment would only make routes that are not.
  if (url->find_first_of("?#") != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "--server must not hold a query or a fragment ('?' or '#'), got '" + *url + "'");
  }
  if (std::string_view path = *url;
      path.substr(0, path.find_last_not_of('/') + 1).ends_with("/api/v1")) {
    return Fail(ErrorCode::kInvalidArgument,
                "--server is the server's address without /api/v1 (Ferry adds it), such as "
                "http://127.0.0.1:8080, got '" +
                    *url + "'");
  }
  if (token && token_file) {
    return Fail(ErrorCode::kInvalidArgument, "give a token or a token file, not both");
  }
  service::RemoteServiceOptions remote;
  remote.url = *url;
  // Given, --io-timeout bounds each request to the server as it bounds each Redis command;
  // otherwise a request gets 30 s, room for the server's own waits on Redis and the store.
  if (auto st =
          PickDuration(global.io_timeout, "io-timeout", env, /*allow_zero=*/false, remote.timeout);
      !st) {
    return Fail(st.error());
  }
  if (token_file) {
    auto text = ReadSmallFile(*token_file, 4096);
    if (!text) {
      return Fail(ErrorCode::kInvalidArgument,
                  "--token-file " + *token_file + ": " + text.error().message);
    }
    token = *text;
  }
  if (token) {
    std::string t = *token;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    if (t.empty()) return Fail(ErrorCode::kInvalidArgument, "the token is empty");
    if (t.find_first_of(std::string_view(" \t\r\n\0", 5)) != std::string::npos) {
      return Fail(ErrorCode::kInvalidArgument, "the token holds whitespace or a NUL byte");
    }
    remote.token = t;
  }
  return std::optional<service::RemoteServiceOptions>(remote);
}

}  // namespace

Status Context::Init(const std::string& default_log_level) {
  auto cfg = ResolveClientConfig(global_, env_, default_log_level);
  if (!cfg) return Fail(cfg.error());
  config_ = *cfg;
  auto remote = ResolveRemote(global_, env_);
  if (!remote) return Fail(remote.error());
  remote_ = *remote;
  return EnsureLogging(config_.log);
}

service::Caller Context::Caller() {
  service::Caller caller;
  caller.actor = "cli";
  return caller;
}

Result<service::Service*> Context::Service(
    const StoreFlags& sf, const std::function<void(service::LocalServiceOptions&)>& local) {
  if (service_) return service_.get();
  if (remote_) {
    service_ = std::make_unique<service::RemoteService>(*remote_);
    return service_.get();
  }
  store_flags_ = sf;
  stores_ = std::make_unique<Pool<Store>>(
      [this]() -> Result<std::unique_ptr<Store>> { return OpenCliStore(*this, store_flags_); }, 1);
  brokers_ = std::make_unique<Pool<Broker>>(
      [this]() -> Result<std::unique_ptr<Broker>> { return Connect(); }, 1);
  service::LocalServiceOptions options;
  options.broker = config_.broker;
  if (local) local(options);
  service_ = std::make_unique<service::LocalService>(*stores_, *brokers_, options);
  return service_.get();
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
  if (!broker) {
    Error e = DescribeConnectError(broker.error(), config_.broker.redis_url);
    // Redis refused the URL itself (a database index it does not have): a bad value of the
    // setting that gave it, named as every bad setting is.
    if (e.code == ErrorCode::kInvalidArgument && !config_.redis_url_source.empty()) {
      e.message = config_.redis_url_source + ": " + e.message;
    }
    return Fail(std::move(e));
  }
  return broker;
}

}  // namespace ferry::cli
