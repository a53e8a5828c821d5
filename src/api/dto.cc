#include "api/dto.h"

namespace ferry::api {

Json JsonOrString(const std::string& text) {
  if (text.empty()) return nullptr;
  auto parsed = ParseJson(text);
  if (parsed) return std::move(*parsed);
  return text;
}

Json WorkflowJson(const Workflow& w) {
  return Json{{"id", w.id},
              {"name", w.name},
              {"description", w.description},
              {"current_version", w.current_version},
              {"paused", w.paused},
              {"created_ms", w.created_ms},
              {"updated_ms", w.updated_ms}};
}

Json VersionJson(const WorkflowVersion& v, bool full) {
  Json j{{"workflow_id", v.workflow_id}, {"version", v.version}, {"format", v.format},
         {"checksum", v.checksum},       {"author", v.author},   {"notes", v.notes},
         {"created_ms", v.created_ms}};
  if (full) {
    j["source"] = v.source;
    j["graph"] = JsonOrString(v.graph);
  }
  return j;
}

Json RunJson(const Run& r) {
  return Json{{"id", r.id},
              {"workflow_id", r.workflow_id},
              {"workflow", r.workflow_name},
              {"version", r.version},
              {"status", RunStatusName(r.status)},
              {"attempt", r.attempt},
              {"inputs", JsonOrString(r.inputs)},
              {"output", JsonOrString(r.output)},
              {"error", r.error},
              {"failed_node", r.failed_node},
              {"triggered_by", TriggeredByName(r.triggered_by)},
              {"trigger_id", r.trigger_id},
              {"retry_of", r.retry_of},
              {"worker", r.worker},
              {"created_ms", r.created_ms},
              {"started_ms", r.started_ms},
              {"finished_ms", r.finished_ms},
              {"updated_ms", r.updated_ms}};
}

Json StepJson(const RunStep& s) {
  return Json{{"node", s.node_id},
              {"status", s.status},
              {"output", JsonOrString(s.output)},
              {"error", s.error},
              {"attempt", s.attempt},
              {"started_ms", s.started_ms},
              {"finished_ms", s.finished_ms}};
}

Json RunEventJson(const RunEvent& e) {
  return Json{{"seq", e.seq}, {"ts_ms", e.ts_ms}, {"type", e.type}, {"data", JsonOrString(e.data)}};
}

Json TaskJson(const TaskRecord& t) {
  return Json{{"id", t.id},
              {"queue", t.queue},
              {"kind", t.kind},
              {"payload", JsonOrString(t.payload)},
              {"status", TaskStatusName(t.status)},
              {"attempts", t.attempts},
              {"max_attempts", t.max_attempts},
              {"reclaims", t.reclaims},
              {"epoch", t.epoch},
              {"timeout_ms", t.timeout_ms},
              {"worker", t.worker},
              {"unique_key", t.unique_key},
              {"created_ms", t.created_ms},
              {"eta_ms", t.eta_ms},
              {"started_ms", t.started_ms},
              {"finished_ms", t.finished_ms},
              {"result", JsonOrString(t.result)},
              {"error", t.error},
              {"cancel_requested", t.cancel_requested}};
}

Json WorkerJson(const WorkerInfo& w) {
  return Json{{"id", w.id},
              {"status", w.status},
              {"hostname", w.hostname},
              {"pid", w.pid},
              {"version", w.version},
              {"queues", w.queues},
              {"concurrency", w.concurrency},
              {"tasks_processed", w.tasks_processed},
              {"tasks_failed", w.tasks_failed},
              {"current_tasks", w.current_tasks},
              {"started_ms", w.started_ms},
              {"last_heartbeat_ms", w.last_heartbeat_ms},
              {"alive", w.alive}};
}

Json QueueStatsJson(const QueueStats& q) {
  return Json{{"queue", q.queue},      {"pending", q.pending},
              {"running", q.running},  {"scheduled", q.scheduled},
              {"dead", q.dead},        {"oldest_pending_ms", q.oldest_pending_ms},
              {"counters", q.counters}};
}

}  // namespace ferry::api
