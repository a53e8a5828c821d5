// What Ferry asks of a Redis ACL user, and a probe that finds what the user lacks (for
// `ferry doctor`). docs/runbook.md "Redis ACL user" gives the rule that grants exactly this.
//
// Thread-safety: pure functions, and a probe on the caller's client.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "broker/redis/redis_client.h"
#include "core/result.h"

namespace ferry::redis_broker {

// The commands the broker's Lua scripts run (redis.call / redis.pcall), upper case.
const std::vector<std::string_view>& ScriptCommands();
// The commands Ferry sends itself (broker, leader lease, health, doctor), upper case; with
// sentinel or cluster, the commands those need too.
std::vector<std::string_view> DirectCommands(RedisTopology topology);

// Runs every command of both lists on keys "<prefix>:{ferry-doctor}:*" (removed afterwards) and
// returns those the ACL refused: "xautoclaim" (the command) or "hset on <prefix>:* keys" (the
// keys). Empty: the user may run everything Ferry needs.
Result<std::vector<std::string>> ProbePermissions(Client& client, const std::string& prefix,
                                                  RedisTopology topology);

}  // namespace ferry::redis_broker
