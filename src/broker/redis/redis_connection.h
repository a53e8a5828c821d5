// One hiredis connection with the broker's Lua scripts loaded: RAII handles, transparent
// reconnect after an I/O error, EVALSHA with reload on NOSCRIPT, pipelines.
//
// Thread-safety: not thread-safe (REQUIRES: external synchronization); hiredis contexts must not
// be shared between threads. Only broker/redis/ includes this header (it pulls in hiredis).
#pragma once

#include <hiredis/hiredis.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/redis_url.h"
#include "core/result.h"

namespace ferry::redis_broker {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

// The arguments of one command, kept in one buffer so the hot paths (batch submit, claim,
// complete) build thousands of them without an allocation per argument.
class Args {
 public:
  Args() = default;
  explicit Args(std::initializer_list<std::string_view> parts) {
    for (auto p : parts) Add(p);
  }
  Args& Add(std::string_view s) {
    spans_.emplace_back(buf_.size(), s.size());
    buf_.append(s);
    return *this;
  }
  Args& Add(int64_t v) { return Add(std::string_view(std::to_string(v))); }
  size_t size() const { return spans_.size(); }
  // Fills argv/lens for hiredis; valid until this object changes.
  void Views(std::vector<const char*>& argv, std::vector<size_t>& lens) const;

 private:
  std::string buf_;
  std::vector<std::pair<size_t, size_t>> spans_;
};

// The Lua scripts in scripts/, loaded at connect.
enum class Script : size_t {
  kSubmit,
  kClaim,
  kReclaim,
  kRenew,
  kComplete,
  kCancel,
  kRetry,
  kPromote,
  kEvents,
  kCount,
};

class Connection {
 public:
  // Does not connect; the first call (or Connect()) does.
  Connection(RedisEndpoint endpoint, std::chrono::milliseconds io_timeout);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects, authenticates, selects the database and loads the scripts. Errors: kUnavailable,
  // kUnauthenticated.
  Status Connect();
  // Reconnects when a previous call broke the connection; no-op otherwise.
  Status Ready();
  // Bumped by every successful Connect(): callers drop per-connection caches when it changes.
  uint64_t generation() const { return generation_; }
  // The endpoint for messages ("127.0.0.1:6379"); never holds the password.
  const std::string& where() const { return where_; }

  // One command. An error reply becomes an Error (see ReplyError). `extra` is added to the
  // socket timeout for this call (the BLOCK time of a blocking read).
  Result<ReplyPtr> Command(const Args& args, std::chrono::milliseconds extra = {});
  // Sends every command, then reads every reply (raw: error replies are returned as replies).
  // EVALSHA replies failing with NOSCRIPT are retried once after reloading the scripts.
  Result<std::vector<ReplyPtr>> Pipeline(const std::vector<Args>& commands);
  // Args for EVALSHA of `script` with one key; append the script's ARGV to it.
  Args EvalArgs(Script script, std::string_view key) const;

 private:
  Status EnsureConnected();
  Status LoadScripts();
  // Marks the connection broken after an I/O error and describes it.
  Error Broken(std::string_view during);
  Status SetTimeout(std::chrono::milliseconds timeout);

  // Constant after construction.
  const RedisEndpoint endpoint_;
  const std::chrono::milliseconds io_timeout_;
  const std::string where_;

  ContextPtr ctx_;  // null while disconnected
  uint64_t generation_ = 0;
  std::array<std::string, static_cast<size_t>(Script::kCount)> shas_;
};

// Maps an error reply to an Error: NOAUTH/WRONGPASS -> kUnauthenticated; LOADING, BUSY,
// MASTERDOWN, READONLY, OOM, TRYAGAIN -> kUnavailable; others kInternal.
Error ReplyError(const redisReply& reply);
bool IsError(const redisReply& reply);
std::string_view ReplyText(const redisReply& reply);
int64_t ReplyInt(const redisReply& reply);

}  // namespace ferry::redis_broker
