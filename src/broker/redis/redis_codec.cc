#include "broker/redis/redis_codec.h"

#include <algorithm>
#include <charconv>

#include "core/utf8.h"

namespace ferry::redis_broker {
namespace {

std::string Join(std::string_view a, std::string_view b) {
  std::string out;
  out.reserve(a.size() + b.size());
  out.append(a).append(b);
  return out;
}

}  // namespace

std::string QueuePrefix(std::string_view prefix, std::string_view queue) {
  std::string out;
  out.reserve(prefix.size() + queue.size() + 3);
  out.append(prefix).append(":{").append(queue).append("}");
  return out;
}

std::string StreamKey(std::string_view prefix, std::string_view queue) {
  return QueuePrefix(prefix, queue) + ":stream";
}
std::string TaskKey(std::string_view prefix, std::string_view queue, std::string_view id) {
  return Join(QueuePrefix(prefix, queue) + ":task:", id);
}
std::string EventsKey(std::string_view prefix, std::string_view queue, std::string_view id) {
  return Join(QueuePrefix(prefix, queue) + ":events:", id);
}
std::string DelayedKey(std::string_view prefix, std::string_view queue) {
  return QueuePrefix(prefix, queue) + ":delayed";
}
std::string DeadKey(std::string_view prefix, std::string_view queue) {
  return QueuePrefix(prefix, queue) + ":dead";
}
std::string StatsKey(std::string_view prefix, std::string_view queue) {
  return QueuePrefix(prefix, queue) + ":stats";
}
std::string IndexKey(std::string_view prefix, std::string_view queue) {
  return QueuePrefix(prefix, queue) + ":index";
}
std::string QueuesKey(std::string_view prefix) { return Join(prefix, ":queues"); }
std::string WorkersKey(std::string_view prefix) { return Join(prefix, ":workers"); }
std::string WorkerKey(std::string_view prefix, std::string_view worker_id) {
  return Join(Join(prefix, ":worker:"), worker_id);
}
std::string CursorKey(std::string_view prefix, std::string_view token) {
  return Join(Join(prefix, ":cursor:"), token);
}

int64_t ToInt(std::string_view text, int64_t fallback) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return fallback;
  return v;
}

int64_t StreamIdMs(std::string_view entry_id) {
  return ToInt(entry_id.substr(0, entry_id.find('-')), 0);
}

TaskRecord RecordFromFields(const std::string& id, const FieldList& fields) {
  TaskRecord r;
  r.id = id;
  for (const auto& [k, v] : fields) {
    if (k == "queue") {
      r.queue = v;
    } else if (k == "kind") {
      r.kind = v;
    } else if (k == "payload") {
      r.payload = v;
    } else if (k == "status") {
      r.status = ParseTaskStatus(v).value_or(TaskStatus::kPending);
    } else if (k == "attempts") {
      r.attempts = static_cast<int>(ToInt(v));
    } else if (k == "max_attempts") {
      r.max_attempts = static_cast<int>(ToInt(v, 1));
    } else if (k == "reclaims") {
      r.reclaims = static_cast<int>(ToInt(v));
    } else if (k == "epoch") {
      r.epoch = ToInt(v);
    } else if (k == "timeout_ms") {
      r.timeout_ms = ToInt(v);
    } else if (k == "worker") {
      r.worker = v;
    } else if (k == "unique_key") {
      r.unique_key = v;
    } else if (k == "created_ms") {
      r.created_ms = ToInt(v);
    } else if (k == "eta_ms") {
      r.eta_ms = ToInt(v);
    } else if (k == "started_ms") {
      r.started_ms = ToInt(v);
    } else if (k == "finished_ms") {
      r.finished_ms = ToInt(v);
    } else if (k == "result") {
      r.result = v;
    } else if (k == "error") {
      r.error = v;
    } else if (k == "cancel_requested") {
      r.cancel_requested = v == "1";
    }
  }
  return r;
}

FieldList WorkerToFields(const WorkerInfo& info, int64_t ttl_ms, int64_t now_ms) {
  int64_t beat = info.last_heartbeat_ms > 0 ? info.last_heartbeat_ms : now_ms;
  return {
      {"id", info.id},
      {"status", info.status},
      {"hostname", info.hostname},
      {"pid", std::to_string(info.pid)},
      {"version", info.version},
      {"queues", JoinList(info.queues)},
      {"concurrency", std::to_string(info.concurrency)},
      {"tasks_processed", std::to_string(info.tasks_processed)},
      {"tasks_failed", std::to_string(info.tasks_failed)},
      {"current_tasks", DumpJson(Json(info.current_tasks))},
      {"started_ms", std::to_string(info.started_ms)},
      {"last_heartbeat_ms", std::to_string(beat)},
      {"ttl_ms", std::to_string(ttl_ms)},
  };
}

WorkerInfo WorkerFromFields(const FieldList& fields, int64_t now_ms) {
  WorkerInfo w;
  int64_t ttl_ms = 0;
  for (const auto& [k, v] : fields) {
    if (k == "id") {
      w.id = v;
    } else if (k == "status") {
      w.status = v;
    } else if (k == "hostname") {
      w.hostname = v;
    } else if (k == "pid") {
      w.pid = ToInt(v);
    } else if (k == "version") {
      w.version = v;
    } else if (k == "queues") {
      w.queues = SplitList(v);
    } else if (k == "concurrency") {
      w.concurrency = static_cast<int>(ToInt(v));
    } else if (k == "tasks_processed") {
      w.tasks_processed = ToInt(v);
    } else if (k == "tasks_failed") {
      w.tasks_failed = ToInt(v);
    } else if (k == "current_tasks") {
      auto j = ParseJson(v);
      if (j && j->is_array()) {
        for (const auto& item : *j) {
          if (item.is_string()) w.current_tasks.push_back(item.get<std::string>());
        }
      }
    } else if (k == "started_ms") {
      w.started_ms = ToInt(v);
    } else if (k == "last_heartbeat_ms") {
      w.last_heartbeat_ms = ToInt(v);
    } else if (k == "ttl_ms") {
      ttl_ms = ToInt(v);
    }
  }
  // A worker that shut down cleanly writes a last "stopped" record: listed, but not alive.
  w.alive =
      w.last_heartbeat_ms > 0 && now_ms - w.last_heartbeat_ms < ttl_ms && w.status != "stopped";
  return w;
}

std::vector<std::string> SplitList(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string JoinList(const std::vector<std::string>& items, char sep) {
  std::string out;
  for (const auto& item : items) {
    if (item.empty()) continue;
    if (!out.empty()) out.push_back(sep);
    out += item;
  }
  return out;
}

TaskEvent EventFromEntry(const std::string& entry_id, const FieldList& fields) {
  TaskEvent e;
  e.id = entry_id;
  e.ts_ms = StreamIdMs(entry_id);
  e.data = Json::object();
  for (const auto& [k, v] : fields) {
    if (k == "type") {
      e.type = v;
    } else if (k == "data") {
      auto j = ParseJson(v);
      // The scripts store a handler's text as it came (an error from its stderr may hold bytes
      // that are not UTF-8), and a JSON parse refuses those: they are shown as U+FFFD, as the
      // task's own error field is, and the data stays an object.
      if (!j && Utf8FirstInvalid(v)) j = ParseJson(Utf8Shown(v));
      e.data = j ? std::move(*j) : Json(v);
    }
  }
  return e;
}

bool StreamIdLess(std::string_view a, std::string_view b) {
  // Both parts are unsigned 64-bit, as Redis has them: past INT64_MAX is still a number.
  auto part = [](std::string_view text) {
    uint64_t v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    return v;
  };
  auto parse = [&](std::string_view id) {
    size_t dash = id.find('-');
    return std::make_pair(part(id.substr(0, dash)),
                          dash == std::string_view::npos ? uint64_t{0} : part(id.substr(dash + 1)));
  };
  return parse(a) < parse(b);
}

std::vector<TaskEvent> DerivedEvents(const FieldList& record_fields) {
  TaskRecord r = RecordFromFields("", record_fields);
  std::vector<TaskEvent> out;
  if (r.created_ms <= 0) return out;
  auto add = [&](int64_t ms, int seq, std::string type, Json data) {
    TaskEvent e;
    e.id = std::to_string(ms) + "-" + std::to_string(seq);
    e.ts_ms = ms;
    e.type = std::move(type);
    e.data = std::move(data);
    out.push_back(std::move(e));
  };
  add(r.created_ms, 1, "submitted", Json::object());
  if (r.started_ms <= 0) return out;
  int64_t started = std::max(r.started_ms, r.created_ms);
  add(started, 2, "running",
      Json{{"worker", r.worker}, {"attempt", r.attempts}, {"epoch", r.epoch}});
  if (r.status == TaskStatus::kSucceeded && r.finished_ms > 0) {
    add(std::max(r.finished_ms, started), 3, "succeeded",
        Json{{"worker", r.worker}, {"attempt", r.attempts}});
  }
  return out;
}

std::map<std::string, std::string> ParseInfo(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = end + 1;
    if (line.empty() || line.front() == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.emplace(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return out;
}

}  // namespace ferry::redis_broker
