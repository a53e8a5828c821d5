// Redis Cluster: hash slots, which key a command is routed by, and the cluster client.
//
// Routing: a command goes to the master that owns its key's slot (the slot map comes from
// CLUSTER SLOTS, asked of any reachable node). Redirects:
//   MOVED  the slot has a new owner: retry there, and refresh the whole map before the next call.
//   ASK    the slot is being migrated and this key already left: a plain command is retried on
//          the target after ASKING. A script is not: Ferry's scripts name one key (the queue's
//          prefix, which never exists) and reach the queue's other keys through it, so on the
//          target they would see only the keys migrated so far. They wait instead, like
//          TRYAGAIN, until the migration of the slot is over (bounded by the I/O timeout).
//   TRYAGAIN  a multi-key command during a migration: retried after a pause, same bound.
// A broken connection to a master marks the map stale; the next call relearns it (after a
// failover, a replica owns the slots).
//
// Thread-safety: KeySlot and RoutingKey are pure; a cluster client is not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "broker/redis/redis_client.h"
#include "broker/redis/redis_protocol.h"

namespace ferry::redis_broker {

inline constexpr int kClusterSlots = 16384;

// The hash slot of `key`: CRC16 of the key, or of its hash tag (the text between the first '{'
// and the next '}', when not empty), modulo 16384.
int KeySlot(std::string_view key);
// The key a command is routed by; none for commands without keys (PING, INFO, WAIT, SCRIPT).
std::optional<std::string_view> RoutingKey(const Args& args);

std::unique_ptr<Client> NewClusterClient(std::shared_ptr<const ClientSetup> setup);

}  // namespace ferry::redis_broker
