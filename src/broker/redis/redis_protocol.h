// RESP, the Redis protocol, through hiredis: command arguments and their encoding
// (redisFormatSdsCommandArgv), replies (redisReply) and the incremental reply parser (redisReader)
// with limits, since a reply is input from outside. No I/O here: redis_transport.h moves the
// bytes, redis_connection.h puts the two together.
//
// Thread-safety: Args and Reader are plain values owned by one thread; the functions are pure.
// Only broker/redis/ includes this header (it pulls in hiredis).
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ferry::redis_broker {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

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
  std::string_view at(size_t i) const { return {buf_.data() + spans_[i].first, spans_[i].second}; }
  // The command name as given ("EVALSHA"); "" when empty.
  std::string_view name() const { return spans_.empty() ? std::string_view() : at(0); }
  // Fills argv/lens for hiredis; valid until this object changes.
  void Views(std::vector<const char*>& argv, std::vector<size_t>& lens) const;
  // Appends the command's RESP encoding to `out`.
  void AppendEncoded(std::string& out) const;

 private:
  std::string buf_;
  std::vector<std::pair<size_t, size_t>> spans_;
};

// Limits on one reply (a server, or something posing as one, must not make us allocate
// without bound): elements of one array, and bytes buffered while a reply is incomplete.
struct ReplyLimits {
  int64_t max_elements = int64_t{1} << 24;
  size_t max_pending_bytes = size_t{1} << 30;
};

// hiredis' reply parser with ReplyLimits. Feed bytes as they arrive; Next() yields complete
// replies in order.
class Reader {
 public:
  explicit Reader(ReplyLimits limits = {});
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Errors (kInternal) on a protocol error or a limit; the stream is unusable afterwards.
  Status Feed(const char* data, size_t len);
  // A complete reply, or null when more bytes are needed.
  Result<ReplyPtr> Next();

 private:
  Status Broken();

  redisReader* reader_;
  ReplyLimits limits_;
  bool over_limit_ = false;  // set by the element-count hook
};

// Maps an error reply to an Error: NOAUTH/WRONGPASS -> kUnauthenticated; NOPERM ->
// kPermissionDenied; LOADING, BUSY, MASTERDOWN, READONLY, OOM, TRYAGAIN, CLUSTERDOWN, MOVED,
// ASK -> kUnavailable; others kInternal.
Error ReplyError(const redisReply& reply);
bool IsError(const redisReply& reply);
// True when the error reply starts with `prefix` ("READONLY", "MOVED").
bool ErrorIs(const redisReply& reply, std::string_view prefix);
std::string_view ReplyText(const redisReply& reply);
// An integer reply's value, or the leading decimal digits of a string reply; 0 otherwise,
// including for digits that do not fit in int64_t.
int64_t ReplyInt(const redisReply& reply);

}  // namespace ferry::redis_broker
