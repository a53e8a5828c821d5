#include "cli/output.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/time_util.h"

namespace ferry::cli {

bool LocaleIsUtf8() {
  for (const char* var : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* v = std::getenv(var);
    if (v == nullptr || *v == '\0') continue;
    std::string s(v);
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s.find("utf-8") != std::string::npos || s.find("utf8") != std::string::npos;
  }
  return false;
}

TableStyle TerminalStyle(bool ascii, bool no_color) {
  TableStyle style;
  style.unicode = !ascii && LocaleIsUtf8();
  const char* nc = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  style.color = !no_color && ::isatty(STDOUT_FILENO) == 1 && (nc == nullptr || *nc == '\0') &&
                (term == nullptr || std::string(term) != "dumb");
  return style;
}

void Output::Print(const std::string& text) const {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void Output::PrintJson(const Json& j) const { Print(DumpJson(j, 2) + "\n"); }

void Output::PrintJsonLine(const Json& j) const { Print(DumpJson(j) + "\n"); }

void Output::Message(const std::string& text) const {
  std::fflush(stdout);
  std::string line = "ferry: " + text + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

int Output::Fail(const Error& error) const {
  Message(error.message);
  if (json_) {
    PrintJson(Json{{"error", {{"code", ErrorCodeName(error.code)}, {"message", error.message}}}});
  }
  return ErrorExitCode(error.code);
}

Json JsonOrString(const std::string& text) {
  if (text.empty()) return nullptr;
  auto j = ParseJson(text);
  if (j) return *j;
  return text;
}

namespace {

Json TimeField(int64_t ms) {
  if (ms == 0) return nullptr;
  return FormatIsoMs(ms);
}

}  // namespace

Json TaskToJson(const TaskRecord& t) {
  return Json{
      {"id", t.id},
      {"queue", t.queue},
      {"kind", t.kind},
      {"status", TaskStatusName(t.status)},
      {"payload", JsonOrString(t.payload)},
      {"attempts", t.attempts},
      {"max_attempts", t.max_attempts},
      {"reclaims", t.reclaims},
      {"epoch", t.epoch},
      {"timeout_ms", t.timeout_ms},
      {"worker", t.worker.empty() ? Json(nullptr) : Json(t.worker)},
      {"unique_key", t.unique_key.empty() ? Json(nullptr) : Json(t.unique_key)},
      {"created_at", TimeField(t.created_ms)},
      {"eta", TimeField(t.eta_ms)},
      {"started_at", TimeField(t.started_ms)},
      {"finished_at", TimeField(t.finished_ms)},
      {"result", JsonOrString(t.result)},
      {"error", t.error.empty() ? Json(nullptr) : Json(t.error)},
      {"cancel_requested", t.cancel_requested},
  };
}

Json WorkerToJson(const WorkerInfo& w) {
  return Json{
      {"id", w.id},
      {"status", w.alive ? w.status : std::string("dead")},
      {"reported_status", w.status},
      {"alive", w.alive},
      {"hostname", w.hostname},
      {"pid", w.pid},
      {"version", w.version},
      {"queues", w.queues},
      {"concurrency", w.concurrency},
      {"tasks_processed", w.tasks_processed},
      {"tasks_failed", w.tasks_failed},
      {"current_tasks", w.current_tasks},
      {"started_at", TimeField(w.started_ms)},
      {"last_heartbeat", TimeField(w.last_heartbeat_ms)},
  };
}

Json QueueStatsToJson(const QueueStats& q) {
  Json counters = Json::object();
  for (const auto& [k, v] : q.counters) counters[k] = v;
  int64_t now = WallNowMs();
  return Json{
      {"queue", q.queue},
      {"pending", q.pending},
      {"running", q.running},
      {"scheduled", q.scheduled},
      {"dead", q.dead},
      {"oldest_pending_at", TimeField(q.oldest_pending_ms)},
      {"oldest_pending_age_ms", q.oldest_pending_ms == 0
                                    ? Json(nullptr)
                                    : Json(std::max<int64_t>(0, now - q.oldest_pending_ms))},
      {"counters", counters},
  };
}

Json EventToJson(const TaskEvent& e) {
  return Json{{"id", e.id}, {"ts", TimeField(e.ts_ms)}, {"type", e.type}, {"data", e.data}};
}

std::string AgeSince(int64_t then_ms, int64_t now_ms) {
  if (then_ms == 0) return "-";
  return FormatDuration(std::chrono::milliseconds(std::max<int64_t>(0, now_ms - then_ms)));
}

std::string HumanTime(int64_t ms) { return ms == 0 ? "-" : FormatHumanUtc(ms); }

Color StatusColor(std::string_view status) {
  if (status == "succeeded" || status == "running") return Color::kGreen;
  if (status == "failed" || status == "dead") return Color::kRed;
  if (status == "retrying" || status == "draining" || status == "cancelled") return Color::kYellow;
  if (status == "scheduled" || status == "pending") return Color::kBlue;
  return Color::kNone;
}

}  // namespace ferry::cli
