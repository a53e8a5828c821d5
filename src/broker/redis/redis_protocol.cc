#include "broker/redis/redis_protocol.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace ferry::redis_broker {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// hiredis' own reply constructors (its static defaultFunctions), taken from a default reader.
const redisReplyObjectFunctions& DefaultFunctions() {
  static const redisReplyObjectFunctions fns = [] {
    redisReader* r = redisReaderCreate();
    redisReplyObjectFunctions copy = *r->fn;
    redisReaderFree(r);
    return copy;
  }();
  return fns;
}

struct LimitState {
  int64_t max_elements;
  bool* over;
};

void* CreateString(const redisReadTask* task, char* str, size_t len) {
  return DefaultFunctions().createString(task, str, len);
}
void* CreateArray(const redisReadTask* task, int elements) {
  const auto* state = static_cast<const LimitState*>(task->privdata);
  if (state != nullptr && elements > state->max_elements) {
    *state->over = true;
    return nullptr;  // hiredis then fails the read
  }
  return DefaultFunctions().createArray(task, elements);
}
void* CreateInteger(const redisReadTask* task, long long value) {
  return DefaultFunctions().createInteger(task, value);
}
void* CreateNil(const redisReadTask* task) { return DefaultFunctions().createNil(task); }
void FreeObject(void* obj) { DefaultFunctions().freeObject(obj); }

redisReplyObjectFunctions kLimitedFunctions = {CreateString, CreateArray, CreateInteger, CreateNil,
                                               FreeObject};

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

void Args::AppendEncoded(std::string& out) const {
  thread_local std::vector<const char*> argv;
  thread_local std::vector<size_t> lens;
  Views(argv, lens);
  // The sds formatter (as redisAppendCommandArgv uses): no printf per argument.
  sds cmd = nullptr;
  int n = redisFormatSdsCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (n > 0 && cmd != nullptr) out.append(cmd, static_cast<size_t>(n));
  if (cmd != nullptr) redisFreeSdsCommand(cmd);
}

Reader::Reader(ReplyLimits limits)
    : reader_(redisReaderCreateWithFunctions(&kLimitedFunctions)), limits_(limits) {
  // The state lives as long as the reader; hiredis hands it to every task as privdata.
  auto* state = new LimitState{limits_.max_elements, &over_limit_};
  reader_->privdata = state;
}

Reader::~Reader() {
  delete static_cast<LimitState*>(reader_->privdata);
  redisReaderFree(reader_);
}

Status Reader::Broken() {
  if (over_limit_) {
    return Fail(ErrorCode::kInternal, "Redis reply with more than " +
                                          std::to_string(limits_.max_elements) +
                                          " elements in one array (over Ferry's limit)");
  }
  return Fail(ErrorCode::kInternal,
              "unreadable Redis reply: " + std::string(redisReaderGetError(reader_)));
}

Status Reader::Feed(const char* data, size_t len) {
  if (reader_->err != 0) return Broken();
  if (reader_->len - reader_->pos + len > limits_.max_pending_bytes) {
    return Fail(ErrorCode::kInternal, "Redis reply larger than " +
                                          std::to_string(limits_.max_pending_bytes >> 20) +
                                          " MiB (over Ferry's limit)");
  }
  if (redisReaderFeed(reader_, data, len) != REDIS_OK) return Broken();
  return {};
}

Result<ReplyPtr> Reader::Next() {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return Fail(Broken().error());
  return ReplyPtr(static_cast<redisReply*>(raw));
}

bool IsError(const redisReply& reply) { return reply.type == REDIS_REPLY_ERROR; }

bool ErrorIs(const redisReply& reply, std::string_view prefix) {
  return reply.type == REDIS_REPLY_ERROR && StartsWith(ReplyText(reply), prefix);
}

std::string_view ReplyText(const redisReply& reply) {
  if (reply.str == nullptr) return {};
  return {reply.str, reply.len};
}

int64_t ReplyInt(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_INTEGER) return reply.integer;
  if (reply.type == REDIS_REPLY_STRING) {
    const std::string_view t = ReplyText(reply);
    const size_t digits = std::min(t.find_first_not_of("0123456789"), t.size());
    int64_t v = 0;
    // No digits, or more than int64_t holds (a reply is outside input): not a usable number.
    if (std::from_chars(t.data(), t.data() + digits, v).ec != std::errc()) return 0;
    return v;
  }
  return 0;
}

Error ReplyError(const redisReply& reply) {
  std::string text(ReplyText(reply));
  static constexpr std::string_view kUnavailablePrefixes[] = {"LOADING",     "BUSY",  "MASTERDOWN",
                                                              "READONLY",    "OOM",   "TRYAGAIN",
                                                              "CLUSTERDOWN", "MOVED", "ASK"};
  if (StartsWith(text, "NOAUTH") || StartsWith(text, "WRONGPASS")) {
    return Error{ErrorCode::kUnauthenticated, "Redis rejected the request: " + text};
  }
  // Inside a script the refusal reads "ERR The user executing the script can't run ...".
  if (StartsWith(text, "NOPERM") ||
      text.find("The user executing the script") != std::string::npos) {
    return Error{ErrorCode::kPermissionDenied,
                 "Redis denied the request (ACL): " + text +
                     " (ferry doctor lists what the Redis user lacks; docs/runbook.md has the ACL "
                     "rule)"};
  }
  for (auto p : kUnavailablePrefixes) {
    if (StartsWith(text, p)) return Error{ErrorCode::kUnavailable, "Redis is unavailable: " + text};
  }
  return Error{ErrorCode::kInternal, "Redis error: " + text};
}

}  // namespace ferry::redis_broker
