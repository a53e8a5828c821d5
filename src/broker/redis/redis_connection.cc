#include "broker/redis/redis_connection.h"

#include <algorithm>
#include <cctype>

namespace ferry::redis_broker {
namespace {

// Commands per write: bounds the client's output buffer (and Redis' reply buffer) for huge
// batches.
constexpr size_t kWindow = 256;

bool IsNoScript(const redisReply& r) { return ErrorIs(r, "NOSCRIPT"); }

std::string PasswordHint(const std::string& where) {
  return "Redis at " + where +
         " requires a password: put it in the URL (redis://:PASSWORD@host:port, or "
         "redis://USER:PASSWORD@host:port for an ACL user)";
}

// Commands that change nothing on the server (XREADGROUP does: it claims entries). Only these
// leave a lost call's outcome known.
bool IsReadOnly(std::string_view name) {
  static constexpr std::string_view kReads[] = {
      "EXISTS", "GET",    "HGET",      "HGETALL",   "HMGET",    "INFO",  "PING",
      "PTTL",   "ROLE",   "SCARD",     "SISMEMBER", "SMEMBERS", "TIME",  "TTL",
      "TYPE",   "XINFO",  "XLEN",      "XPENDING",  "XRANGE",   "XREAD", "XREVRANGE",
      "ZCARD",  "ZRANGE", "ZREVRANGE", "ZSCORE"};
  for (std::string_view r : kReads) {
    if (r.size() == name.size() && std::equal(r.begin(), r.end(), name.begin(), [](char a, char b) {
          return a == std::toupper(static_cast<unsigned char>(b));
        })) {
      return true;
    }
  }
  return false;
}

}  // namespace

Args EvalArgs(Script script, std::string_view key) {
  return Args{"EVALSHA", ScriptSha(script), "1", key};
}

Connection::Connection(Address address, std::shared_ptr<const ConnectionSettings> settings)
    : settings_(std::move(settings)), address_(std::move(address)), where_(address_.ToString()) {}

void Connection::Close() {
  transport_.reset();
  reader_.reset();
}

void Connection::Retarget(Address address) {
  if (connected() || address == address_) return;
  address_ = std::move(address);
  where_ = address_.ToString();
}

Error Connection::HandshakeError(std::string_view what, const redisReply& reply) const {
  std::string text(ReplyText(reply));
  if (what == "AUTH") {
    std::string user = settings_->username.empty() ? "default" : settings_->username;
    // The reply never echoes the password, so it is safe to pass on.
    return Error{ErrorCode::kUnauthenticated, settings_->kind +
                                                  " rejected the password for user '" + user +
                                                  "' at " + where_ + ": " + text};
  }
  if (text.rfind("NOAUTH", 0) == 0) return Error{ErrorCode::kUnauthenticated, PasswordHint(where_)};
  // The server has fewer databases (its `databases` setting) than the URL's index asks for: the
  // URL is wrong, and trying again cannot help.
  if (what == "SELECT" && text.find("DB index is out of range") != std::string::npos) {
    return Error{ErrorCode::kInvalidArgument,
                 "the URL's database index " + std::to_string(settings_->db) +
                     " is out of range for " + settings_->kind + " at " + where_ + " (" + text +
                     "; its `databases` setting says how many it has, numbered from 0)"};
  }
  Error e = ReplyError(reply);
  e.message = std::string(what) + " failed on " + settings_->kind + " at " + where_ + ": " + text;
  return e;
}

Status Connection::Connect() {
  Close();
  auto t = Transport::Open(address_, settings_->tls.get(), settings_->io_timeout);
  if (!t) {
    Error e = t.error();
    if (settings_->kind != "Redis") {
      e.message.replace(0, std::string("cannot connect to Redis").size(),
                        "cannot connect to " + settings_->kind);
    }
    return Fail(std::move(e));
  }
  transport_ = std::move(*t);
  reader_ = std::make_unique<Reader>();

  std::vector<Args> hs;
  std::vector<std::string_view> names;
  if (!settings_->password.empty() || !settings_->username.empty()) {
    Args auth{"AUTH"};
    if (!settings_->username.empty()) auth.Add(settings_->username);
    auth.Add(settings_->password);
    hs.push_back(std::move(auth));
    names.push_back("AUTH");
  }
  if (settings_->db != 0) {
    hs.push_back(Args{"SELECT", std::to_string(settings_->db)});
    names.push_back("SELECT");
  }
  size_t role_at = hs.size();
  if (settings_->require_master) {
    hs.push_back(Args{"ROLE"});
    names.push_back("ROLE");
  }
  size_t scripts_at = hs.size();
  if (settings_->load_scripts) {
    for (size_t i = 0; i < static_cast<size_t>(Script::kCount); ++i) {
      hs.push_back(Args{"SCRIPT", "LOAD", ScriptText(static_cast<Script>(i))});
      names.push_back("SCRIPT LOAD");
    }
  }
  if (!hs.empty()) {
    std::vector<const Args*> ptrs;
    for (const auto& a : hs) ptrs.push_back(&a);
    auto replies = Exchange(ptrs, names.front());
    if (!replies) return Fail(replies.error());
    for (size_t i = 0; i < replies->size(); ++i) {
      const redisReply& r = *(*replies)[i];
      if (settings_->require_master && i == role_at) {
        // A user without +role cannot ask; the sentinels' answer and READONLY replies still
        // lead to the master.
        if (ErrorIs(r, "NOPERM")) continue;
        if (IsError(r)) {
          Error e = HandshakeError(names[i], r);
          Close();
          return Fail(std::move(e));
        }
        std::string role = r.type == REDIS_REPLY_ARRAY && r.elements > 0
                               ? std::string(ReplyText(*r.element[0]))
                               : std::string("unknown");
        if (role != "master") {
          Close();
          return Fail(ErrorCode::kUnavailable,
                      "Redis at " + where_ + " is a " + (role == "slave" ? "replica" : role) +
                          ", not the master (a failover may be under way)");
        }
        continue;
      }
      if (IsError(r)) {
        Error e = HandshakeError(names[i], r);
        Close();
        return Fail(std::move(e));
      }
      if (i >= scripts_at && ReplyText(r) != ScriptSha(static_cast<Script>(i - scripts_at))) {
        Close();
        return Fail(ErrorCode::kInternal,
                    "Redis at " + where_ + " loaded the " +
                        std::string(ScriptName(static_cast<Script>(i - scripts_at))) +
                        " script under an unexpected SHA1");
      }
    }
  }
  ++generation_;
  return {};
}

Status Connection::LoadScripts() {
  std::vector<Args> loads;
  for (size_t i = 0; i < static_cast<size_t>(Script::kCount); ++i) {
    loads.push_back(Args{"SCRIPT", "LOAD", ScriptText(static_cast<Script>(i))});
  }
  std::vector<const Args*> ptrs;
  for (const auto& a : loads) ptrs.push_back(&a);
  auto replies = Exchange(ptrs, "SCRIPT LOAD");
  if (!replies) return Fail(replies.error());
  for (const auto& r : *replies) {
    if (IsError(*r)) return Fail(HandshakeError("SCRIPT LOAD", *r));
  }
  return {};
}

Status Connection::Ready() {
  if (transport_) return {};
  return Connect();
}

Error Connection::Broken(std::string_view during, std::string why) {
  Close();  // (why may be the transport's own text: taken by value before it goes)
  return Error{ErrorCode::kUnavailable, "lost the connection to " + settings_->kind + " at " +
                                            where_ + " during " + std::string(during) + ": " + why +
                                            " (will reconnect on the next call)"};
}

Status Connection::SetTimeout(std::chrono::milliseconds timeout) {
  if (!transport_->SetTimeout(timeout)) {
    return Fail(Broken("setting the socket timeout", transport_->error()));
  }
  return {};
}

Result<std::vector<ReplyPtr>> Connection::Exchange(const std::vector<const Args*>& commands,
                                                   std::string_view what, bool* written) {
  out_.clear();
  for (const Args* a : commands) a->AppendEncoded(out_);
  size_t sent = 0;
  const bool all = transport_->WriteAll(out_.data(), out_.size(), &sent);
  if (written != nullptr && (all || sent > 0)) *written = true;
  if (!all) return Fail(Broken(what, transport_->error()));
  if (out_.capacity() > (size_t{1} << 20)) std::string().swap(out_);  // do not keep huge buffers
  std::vector<ReplyPtr> replies;
  replies.reserve(commands.size());
  char buf[16 * 1024];
  while (replies.size() < commands.size()) {
    auto next = reader_->Next();
    if (!next) return Fail(Broken(what, next.error().message));
    if (*next) {
      replies.push_back(std::move(*next));
      continue;
    }
    size_t n = transport_->Read(buf, sizeof buf);
    if (n == 0) return Fail(Broken(what, transport_->error()));
    if (auto st = reader_->Feed(buf, n); !st) return Fail(Broken(what, st.error().message));
  }
  return replies;
}

Result<ReplyPtr> Connection::Command(const Args& args, std::chrono::milliseconds extra) {
  auto replies = Pipeline(std::vector<const Args*>{&args}, extra);
  if (!replies) return Fail(replies.error());
  ReplyPtr r = std::move(replies->front());
  if (IsError(*r)) return Fail(ReplyError(*r));
  return r;
}

Result<std::vector<ReplyPtr>> Connection::Pipeline(const std::vector<Args>& commands,
                                                   std::chrono::milliseconds extra) {
  std::vector<const Args*> ptrs;
  ptrs.reserve(commands.size());
  for (const auto& a : commands) ptrs.push_back(&a);
  return Pipeline(ptrs, extra);
}

Result<std::vector<ReplyPtr>> Connection::Pipeline(const std::vector<const Args*>& commands,
                                                   std::chrono::milliseconds extra) {
  if (auto st = Ready(); !st) return Fail(st.error());
  std::vector<ReplyPtr> replies;
  replies.reserve(commands.size());
  if (extra.count() > 0) {
    if (auto st = SetTimeout(settings_->io_timeout + extra); !st) return Fail(st.error());
  }
  bool written = false;
  // Once anything went out, what was sent may have been applied though its answer is lost;
  // a call of reads only changed nothing, whatever became of it (looked at only on failure).
  const auto unknown = [&written, &commands](Error e) {
    const bool reads_only = std::all_of(commands.begin(), commands.end(),
                                        [](const Args* a) { return IsReadOnly(a->name()); });
    return written && !reads_only ? OutcomeUnknown(std::move(e)) : e;
  };
  for (size_t begin = 0; begin < commands.size(); begin += kWindow) {
    size_t end = std::min(commands.size(), begin + kWindow);
    std::vector<const Args*> window(commands.begin() + static_cast<std::ptrdiff_t>(begin),
                                    commands.begin() + static_cast<std::ptrdiff_t>(end));
    // Args packs its arguments into one buffer: name() is a view, not NUL-terminated.
    auto part =
        Exchange(window, commands.size() == 1 ? commands[0]->name() : "a pipeline", &written);
    if (!part) return Fail(unknown(part.error()));
    for (auto& r : *part) replies.push_back(std::move(r));
  }
  std::vector<size_t> again;
  bool readonly = false;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (IsNoScript(*replies[i])) again.push_back(i);
    if (ErrorIs(*replies[i], "READONLY")) readonly = true;
  }
  if (extra.count() > 0) {
    // Every answer is in: a connection that cannot restore its timeout is closed (Broken), to
    // be made again by the next call, and the answers stand unless some must be sent again.
    if (auto st = SetTimeout(settings_->io_timeout); !st) {
      if (again.empty()) return replies;
      return Fail(unknown(st.error()));
    }
  }
  if (!again.empty()) {
    // Only a SCRIPT FLUSH or a restart without persistence gets here; a NOSCRIPT call did
    // nothing, so sending it again is safe.
    if (auto st = LoadScripts(); !st) return Fail(unknown(st.error()));
    std::vector<const Args*> retry;
    for (size_t i : again) retry.push_back(commands[i]);
    auto part = Exchange(retry, "a pipeline");
    if (!part) return Fail(unknown(part.error()));
    for (size_t k = 0; k < again.size(); ++k) replies[again[k]] = std::move((*part)[k]);
  }
  if (readonly) Close();
  return replies;
}

}  // namespace ferry::redis_broker
