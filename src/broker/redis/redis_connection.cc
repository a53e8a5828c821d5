#include "broker/redis/redis_connection.h"

#include <sys/time.h>

#include <algorithm>

namespace ferry::redis_broker {

namespace scripts {
extern const std::string_view k_submit;
extern const std::string_view k_claim;
extern const std::string_view k_reclaim;
extern const std::string_view k_renew;
extern const std::string_view k_complete;
extern const std::string_view k_cancel;
extern const std::string_view k_retry;
extern const std::string_view k_promote;
extern const std::string_view k_events;
}  // namespace scripts

namespace {

std::string_view ScriptText(Script s) {
  switch (s) {
    case Script::kSubmit:
      return scripts::k_submit;
    case Script::kClaim:
      return scripts::k_claim;
    case Script::kReclaim:
      return scripts::k_reclaim;
    case Script::kRenew:
      return scripts::k_renew;
    case Script::kComplete:
      return scripts::k_complete;
    case Script::kCancel:
      return scripts::k_cancel;
    case Script::kRetry:
      return scripts::k_retry;
    case Script::kPromote:
      return scripts::k_promote;
    case Script::kEvents:
      return scripts::k_events;
    case Script::kCount:
      break;
  }
  return {};
}

timeval ToTimeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

std::string Where(const RedisEndpoint& ep) {
  if (!ep.unix_socket.empty()) return ep.unix_socket;
  return ep.host + ":" + std::to_string(ep.port);
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool IsNoScript(const redisReply& r) {
  return r.type == REDIS_REPLY_ERROR && StartsWith(ReplyText(r), "NOSCRIPT");
}

}  // namespace

void Args::Views(std::vector<const char*>& argv, std::vector<size_t>& lens) const {
  argv.clear();
  lens.clear();
  argv.reserve(spans_.size());
  lens.reserve(spans_.size());
  for (const auto& [off, len] : spans_) {
    argv.push_back(buf_.data() + off);
    lens.push_back(len);
  }
}

bool IsError(const redisReply& reply) { return reply.type == REDIS_REPLY_ERROR; }

std::string_view ReplyText(const redisReply& reply) {
  if (reply.str == nullptr) return {};
  return {reply.str, reply.len};
}

int64_t ReplyInt(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_INTEGER) return reply.integer;
  if (reply.type == REDIS_REPLY_STRING) {
    int64_t v = 0;
    std::string_view t = ReplyText(reply);
    for (char c : t) {
      if (c < '0' || c > '9') return v;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  return 0;
}

Error ReplyError(const redisReply& reply) {
  std::string text(ReplyText(reply));
  static constexpr std::string_view kUnavailablePrefixes[] = {
      "LOADING", "BUSY", "MASTERDOWN", "READONLY", "OOM", "TRYAGAIN", "CLUSTERDOWN"};
  if (StartsWith(text, "NOAUTH") || StartsWith(text, "WRONGPASS")) {
    return Error{ErrorCode::kUnauthenticated, "Redis rejected the request: " + text};
  }
  for (auto p : kUnavailablePrefixes) {
    if (StartsWith(text, p)) return Error{ErrorCode::kUnavailable, "Redis is unavailable: " + text};
  }
  return Error{ErrorCode::kInternal, "Redis error: " + text};
}

Connection::Connection(RedisEndpoint endpoint, std::chrono::milliseconds io_timeout)
    : endpoint_(std::move(endpoint)), io_timeout_(io_timeout), where_(Where(endpoint_)) {}

Status Connection::Connect() {
  ctx_.reset();
  timeval tv = ToTimeval(io_timeout_);
  ContextPtr ctx(endpoint_.unix_socket.empty()
                     ? redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv)
                     : redisConnectUnixWithTimeout(endpoint_.unix_socket.c_str(), tv));
  if (!ctx)
    return Fail(ErrorCode::kUnavailable,
                "cannot connect to Redis at " + where_ + ": out of memory");
  if (ctx->err != 0) {
    return Fail(ErrorCode::kUnavailable,
                "cannot connect to Redis at " + where_ + ": " + std::string(ctx->errstr));
  }
  if (redisSetTimeout(ctx.get(), tv) != REDIS_OK) {
    return Fail(ErrorCode::kUnavailable, "cannot set the socket timeout for Redis at " + where_);
  }
  if (endpoint_.unix_socket.empty()) redisEnableKeepAlive(ctx.get());
  ctx_ = std::move(ctx);

  auto simple = [&](const Args& args, std::string_view what) -> Status {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    args.Views(argv, lens);
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r) return Fail(Broken(what));
    if (IsError(*r)) {
      std::string text(ReplyText(*r));
      ctx_.reset();
      if (what == "AUTH") {
        std::string user = endpoint_.username.empty() ? "default" : endpoint_.username;
        // The reply never echoes the password, so it is safe to pass on.
        return Fail(ErrorCode::kUnauthenticated, "Redis rejected the password for user '" + user +
                                                     "' at " + where_ + ": " + text);
      }
      if (StartsWith(text, "NOAUTH")) {
        return Fail(ErrorCode::kUnauthenticated,
                    "Redis at " + where_ +
                        " requires a password: put it in the URL (redis://:PASSWORD@host:port)");
      }
      Error e = ReplyError(*r);
      e.message = std::string(what) + " failed on Redis at " + where_ + ": " + text;
      return Fail(std::move(e));
    }
    return {};
  };

  if (!endpoint_.password.empty()) {
    Args auth{"AUTH"};
    if (!endpoint_.username.empty()) auth.Add(endpoint_.username);
    auth.Add(endpoint_.password);
    if (auto st = simple(auth, "AUTH"); !st) return st;
  }
  if (endpoint_.db != 0) {
    if (auto st = simple(Args{"SELECT", std::to_string(endpoint_.db)}, "SELECT"); !st) return st;
  }
  if (auto st = LoadScripts(); !st) {
    ctx_.reset();
    return st;
  }
  ++generation_;
  return {};
}

Status Connection::LoadScripts() {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  constexpr size_t n = static_cast<size_t>(Script::kCount);
  for (size_t i = 0; i < n; ++i) {
    Args a{"SCRIPT", "LOAD", ScriptText(static_cast<Script>(i))};
    a.Views(argv, lens);
    if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(),
                               lens.data()) != REDIS_OK) {
      return Fail(Broken("SCRIPT LOAD"));
    }
  }
  Status result;
  for (size_t i = 0; i < n; ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK) return Fail(Broken("SCRIPT LOAD"));
    ReplyPtr r(static_cast<redisReply*>(raw));
    if (IsError(*r)) {
      if (result) {
        std::string text(ReplyText(*r));
        if (StartsWith(text, "NOAUTH")) {
          result =
              Fail(ErrorCode::kUnauthenticated,
                   "Redis at " + where_ +
                       " requires a password: put it in the URL (redis://:PASSWORD@host:port)");
        } else {
          Error e = ReplyError(*r);
          e.message = "SCRIPT LOAD failed on Redis at " + where_ + ": " + text;
          result = Fail(std::move(e));
        }
      }
      continue;
    }
    shas_[i] = std::string(ReplyText(*r));
  }
  return result;
}

Status Connection::Ready() { return EnsureConnected(); }

Status Connection::EnsureConnected() {
  if (ctx_) return {};
  return Connect();
}

Error Connection::Broken(std::string_view during) {
  std::string why = ctx_ && ctx_->errstr[0] != '\0' ? std::string(ctx_->errstr) : "I/O error";
  // hiredis reports a socket timeout (SO_RCVTIMEO) as EAGAIN's text.
  if (why.find("temporarily unavailable") != std::string::npos) why = "timed out";
  ctx_.reset();
  return Error{ErrorCode::kUnavailable, "lost the connection to Redis at " + where_ + " during " +
                                            std::string(during) + ": " + why +
                                            " (will reconnect on the next call)"};
}

Status Connection::SetTimeout(std::chrono::milliseconds timeout) {
  if (redisSetTimeout(ctx_.get(), ToTimeval(timeout)) != REDIS_OK) {
    return Fail(Broken("setting the socket timeout"));
  }
  return {};
}

Result<ReplyPtr> Connection::Command(const Args& args, std::chrono::milliseconds extra) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  args.Views(argv, lens);
  // Two rounds at most: the second only after NOSCRIPT made us reload the scripts.
  for (int round = 0;; ++round) {
    if (auto st = EnsureConnected(); !st) return Fail(st.error());
    if (extra.count() > 0) {
      if (auto st = SetTimeout(io_timeout_ + extra); !st) return Fail(st.error());
    }
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
    // Args packs its arguments into one buffer: argv[0] is not NUL-terminated.
    if (!r) return Fail(Broken(argv.empty() ? "a command" : std::string_view(argv[0], lens[0])));
    if (extra.count() > 0) {
      if (auto st = SetTimeout(io_timeout_); !st) return Fail(st.error());
    }
    if (round == 0 && IsNoScript(*r)) {
      if (auto st = LoadScripts(); !st) return Fail(st.error());
      continue;
    }
    if (IsError(*r)) return Fail(ReplyError(*r));
    return r;
  }
}

Result<std::vector<ReplyPtr>> Connection::Pipeline(const std::vector<Args>& commands) {
  if (auto st = EnsureConnected(); !st) return Fail(st.error());
  std::vector<ReplyPtr> replies(commands.size());
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  // Windows bound the client's output buffer (and Redis' reply buffer) for huge batches.
  constexpr size_t kWindow = 256;
  for (size_t begin = 0; begin < commands.size(); begin += kWindow) {
    size_t end = std::min(commands.size(), begin + kWindow);
    for (size_t i = begin; i < end; ++i) {
      commands[i].Views(argv, lens);
      if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(),
                                 lens.data()) != REDIS_OK) {
        return Fail(Broken("a pipeline"));
      }
    }
    for (size_t i = begin; i < end; ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_.get(), &raw) != REDIS_OK) return Fail(Broken("a pipeline"));
      replies[i].reset(static_cast<redisReply*>(raw));
    }
  }
  std::vector<size_t> again;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (IsNoScript(*replies[i])) again.push_back(i);
  }
  if (!again.empty()) {
    // Only a SCRIPT FLUSH or a restart without persistence gets here; a NOSCRIPT call did
    // nothing, so sending it again is safe.
    if (auto st = LoadScripts(); !st) return Fail(st.error());
    for (size_t i : again) {
      commands[i].Views(argv, lens);
      ReplyPtr r(static_cast<redisReply*>(
          redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
      if (!r) return Fail(Broken("a pipeline"));
      replies[i] = std::move(r);
    }
  }
  return replies;
}

Args Connection::EvalArgs(Script script, std::string_view key) const {
  Args a{"EVALSHA", shas_[static_cast<size_t>(script)], "1", key};
  return a;
}

}  // namespace ferry::redis_broker
