#include "views/views.h"

#include <algorithm>

#include "core/time_util.h"

namespace ferry::views {

Json Time(int64_t ms) { return ms == 0 ? Json(nullptr) : Json(FormatIsoMs(ms)); }

Json Text(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

Json Embedded(const std::string& text) {
  if (text.empty()) return nullptr;
  auto parsed = ParseStoredJson(text);
  if (parsed) return std::move(*parsed);
  return text;
}

Json Page(const std::string& plural, Json items, const std::string& next_cursor) {
  return Json{{plural, std::move(items)}, {"next_cursor", Text(next_cursor)}};
}

namespace {

Json AgeMs(int64_t then_ms, int64_t now_ms) {
  if (then_ms == 0) return nullptr;
  return std::max<int64_t>(0, now_ms - then_ms);
}

Json DurationMs(int64_t started_ms, int64_t finished_ms) {
  if (started_ms == 0 || finished_ms < started_ms) return nullptr;
  return finished_ms - started_ms;
}

}  // namespace

Json Task(const TaskRecord& t) {
  // `error` is why the task failed, was cancelled or waits to retry, and null otherwise, so a
  // client's `if task.error` means a failure; `last_error` is the latest attempt's error in any
  // status (a task that succeeded on its third attempt keeps its second's there).
  const bool failing = t.status == TaskStatus::kFailed || t.status == TaskStatus::kCancelled ||
                       t.status == TaskStatus::kRetrying;
  return Json{{"id", t.id},
              {"queue", t.queue},
              {"kind", t.kind},
              {"status", TaskStatusName(t.status)},
              {"payload", Embedded(t.payload)},
              {"attempts", t.attempts},
              {"max_attempts", t.max_attempts},
              {"reclaims", t.reclaims},
              {"epoch", t.epoch},
              {"timeout_ms", t.timeout_ms},
              {"worker", Text(t.worker)},
              {"unique_key", Text(t.unique_key)},
              {"created_at", Time(t.created_ms)},
              {"eta_at", Time(t.eta_ms)},
              {"started_at", Time(t.started_ms)},
              {"finished_at", Time(t.finished_ms)},
              {"result", Embedded(t.result)},
              {"error", failing ? Text(t.error) : Json(nullptr)},
              {"last_error", Text(t.error)},
              {"cancel_requested", t.cancel_requested}};
}

Json TaskEvent(const ferry::TaskEvent& e) {
  return Json{{"id", e.id}, {"at", Time(e.ts_ms)}, {"type", e.type}, {"data", e.data}};
}

Json Worker(const WorkerInfo& w, int64_t now_ms) {
  return Json{{"id", w.id},
              // A worker whose heartbeat lapsed is dead whatever it last reported; one that shut
              // down cleanly said so last ("stopped") and is not alive either, but not dead.
              {"status", w.alive || w.status == "stopped" ? w.status : std::string("dead")},
              {"reported_status", w.status},
              {"alive", w.alive},
              {"hostname", w.hostname},
              {"pid", w.pid},
              {"version", Text(w.version)},
              {"queues", w.queues},
              {"concurrency", w.concurrency},
              {"tasks_processed", w.tasks_processed},
              {"tasks_failed", w.tasks_failed},
              {"current_tasks", w.current_tasks},
              {"started_at", Time(w.started_ms)},
              {"last_heartbeat_at", Time(w.last_heartbeat_ms)},
              {"heartbeat_age_ms", AgeMs(w.last_heartbeat_ms, now_ms)}};
}

Json Queue(const QueueStats& q, int64_t now_ms) {
  Json counters = Json::object();
  for (const auto& [k, v] : q.counters) counters[k] = v;
  return Json{{"queue", q.queue},
              {"pending", q.pending},
              {"running", q.running},
              {"scheduled", q.scheduled},
              {"dead", q.dead},
              {"oldest_pending_at", Time(q.oldest_pending_ms)},
              {"oldest_pending_age_ms", AgeMs(q.oldest_pending_ms, now_ms)},
              {"counters", std::move(counters)}};
}

Json Workflow(const ferry::Workflow& w) {
  return Json{{"id", w.id},
              {"name", w.name},
              {"description", Text(w.description)},
              {"current_version", w.current_version},
              {"paused", w.paused},
              {"created_at", Time(w.created_ms)},
              {"updated_at", Time(w.updated_ms)}};
}

Json Version(const WorkflowVersion& v, bool full) {
  Json j{{"workflow_id", v.workflow_id},    {"version", v.version},     {"format", v.format},
         {"checksum", v.checksum},          {"author", Text(v.author)}, {"notes", Text(v.notes)},
         {"created_at", Time(v.created_ms)}};
  if (full) {
    j["source"] = v.source;
    j["graph"] = Embedded(v.graph);
  }
  return j;
}

Json Trigger(const ferry::Trigger& t) {
  return Json{{"id", t.id},
              {"workflow", t.workflow_name.empty() ? Json(nullptr) : Json(t.workflow_name)},
              {"kind", TriggerKindName(t.kind)},
              {"key", t.key},
              {"config", Embedded(t.config)},
              {"enabled", t.enabled},
              {"last_fire_at", Time(t.last_fire_ms)},
              {"next_fire_at", Time(t.next_fire_ms)}};
}

Json Run(const ferry::Run& r) {
  return Json{{"id", r.id},
              {"workflow", r.workflow_name},
              {"workflow_id", r.workflow_id},
              {"version", r.version},
              {"status", RunStatusName(r.status)},
              {"attempt", r.attempt},
              {"epoch", r.epoch},
              {"inputs", Embedded(r.inputs)},
              {"output", Embedded(r.output)},
              {"error", Text(r.error)},
              {"failed_node", Text(r.failed_node)},
              {"triggered_by", TriggeredByName(r.triggered_by)},
              {"trigger_id", Text(r.trigger_id)},
              {"retry_of", Text(r.retry_of)},
              {"worker", Text(r.worker)},
              {"created_at", Time(r.created_ms)},
              {"started_at", Time(r.started_ms)},
              {"finished_at", Time(r.finished_ms)},
              {"updated_at", Time(r.updated_ms)},
              {"duration_ms", DurationMs(r.started_ms, r.finished_ms)}};
}

Json Step(const RunStep& s, RunStatus run_status) {
  // A delay's stored deadline outlives a run that ended during the wait (cancelled, or failed
  // by a node beside it): shown as the wait it was, cut short.
  const bool cut = s.status == kStepWaiting && IsTerminal(run_status);
  return Json{{"node", s.node_id},
              {"status", cut ? "interrupted" : s.status},
              {"attempt", s.attempt},
              {"output", Embedded(s.output)},
              {"error", Text(s.error)},
              {"started_at", Time(s.started_ms)},
              {"finished_at", Time(s.finished_ms)},
              {"duration_ms", DurationMs(s.started_ms, s.finished_ms)}};
}

Json RunEvent(const ferry::RunEvent& e) {
  return Json{{"seq", e.seq}, {"at", Time(e.ts_ms)}, {"type", e.type}, {"data", Embedded(e.data)}};
}

Json Token(const ApiToken& t) {
  return Json{{"id", t.id},
              {"name", t.name},
              {"scopes", t.scopes},
              {"created_at", Time(t.created_ms)},
              {"last_used_at", Time(t.last_used_ms)},
              {"revoked_at", Time(t.revoked_ms)},
              {"revoked", t.revoked_ms != 0}};
}

}  // namespace ferry::views
