// The broker's Lua scripts (scripts/*.lua, embedded at build time) and their SHA1 digests, which
// EVALSHA names them by. Every script takes one key, the queue's key prefix "<prefix>:{<queue>}",
// and derives every key it touches from it, so a script touches one Redis Cluster slot.
//
// Thread-safety: pure functions over constants.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::redis_broker {

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
  kPurge,
  kRetryDead,
  kDeleteQueue,
  kWake,
  kCount,
};

std::string_view ScriptText(Script script);
// The lowercase hex SHA1 of ScriptText(script), as SCRIPT LOAD returns it (computed at build
// time; Connection::Connect checks it against Redis's own).
std::string_view ScriptSha(Script script);
// "submit", "claim", ... for messages.
std::string_view ScriptName(Script script);

// register_queue.lua: the one script outside Script, sent with EVAL on the global set of queue
// names (its header says why).
std::string_view RegisterQueueScriptText();

}  // namespace ferry::redis_broker
