// Pure helpers of the Redis broker: key names and conversions between Redis field lists and the
// Broker's structs. No I/O, so unit tests cover them without a server.
// Thread-safety: every function is stateless.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/broker.h"

namespace ferry::redis_broker {

// The consumer group every queue's stream uses.
inline constexpr std::string_view kGroup = "ferry";

// Field/value pairs as Redis returns them (HGETALL, stream entries).
using FieldList = std::vector<std::pair<std::string, std::string>>;

// "<prefix>:{<queue>}": the prefix of every per-queue key. The braces are the Redis Cluster hash
// tag, so all keys of one queue live in one slot and one Lua script may touch them all.
std::string QueuePrefix(std::string_view prefix, std::string_view queue);
// Per-queue keys, spelled out once here and in the scripts (which derive them from QueuePrefix).
std::string StreamKey(std::string_view prefix, std::string_view queue);
std::string TaskKey(std::string_view prefix, std::string_view queue, std::string_view id);
std::string EventsKey(std::string_view prefix, std::string_view queue, std::string_view id);
std::string DelayedKey(std::string_view prefix, std::string_view queue);
std::string DeadKey(std::string_view prefix, std::string_view queue);
std::string StatsKey(std::string_view prefix, std::string_view queue);
std::string IndexKey(std::string_view prefix, std::string_view queue);
// Global keys (no hash tag): the set of queue names, the worker registry.
std::string QueuesKey(std::string_view prefix);
std::string WorkersKey(std::string_view prefix);
std::string WorkerKey(std::string_view prefix, std::string_view worker_id);
// A task listing's cursor too long for a URL, kept for its next page (ListTasks).
std::string CursorKey(std::string_view prefix, std::string_view token);

// The milliseconds part of a stream entry id ("1700000000000-3" -> 1700000000000); 0 if malformed.
int64_t StreamIdMs(std::string_view entry_id);
// Parses an integer field; `fallback` when empty or malformed.
int64_t ToInt(std::string_view text, int64_t fallback = 0);

// A task record from its hash fields. Unknown statuses read as pending.
TaskRecord RecordFromFields(const std::string& id, const FieldList& fields);

// The worker registry hash of `info`, including its TTL (so readers can judge liveness).
FieldList WorkerToFields(const WorkerInfo& info, int64_t ttl_ms, int64_t now_ms);
// alive = now - last_heartbeat < ttl.
WorkerInfo WorkerFromFields(const FieldList& fields, int64_t now_ms);

// "a,b" <-> {"a", "b"}; empty items are dropped.
std::vector<std::string> SplitList(std::string_view text, char sep = ',');
std::string JoinList(const std::vector<std::string>& items, char sep = ',');

// A task event from a stream entry with fields type and data (JSON text). Data that is not
// valid JSON is kept as a JSON string.
TaskEvent EventFromEntry(const std::string& entry_id, const FieldList& fields);

// Stream ids compare by (ms, seq); "0" and "0-0" are the smallest. Malformed ids read as 0-0.
bool StreamIdLess(std::string_view a, std::string_view b);

// The routine events of a task without an event stream, derived from its record: submitted
// (id <created_ms>-1), running (<started_ms>-2), succeeded (<finished_ms>-3). The scripts open a
// stream with the same ids (open_events), so resume points stay valid when one appears.
std::vector<TaskEvent> DerivedEvents(const FieldList& record_fields);

// INFO output ("# Server\r\nredis_version:7.0.15\r\n...") as key -> value.
std::map<std::string, std::string> ParseInfo(std::string_view text);

}  // namespace ferry::redis_broker
