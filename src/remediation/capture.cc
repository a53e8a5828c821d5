#include "remediation/capture.h"

#include <spdlog/spdlog.h>

#include "remediation/fingerprint.h"
#include "remediation/redact.h"

namespace ferry::remediation {
namespace {

constexpr size_t kMaxErrorBytes = 16 * 1024;

// Cuts every string of a JSON value to max bytes.
Json CutStrings(const Json& v, size_t max) {
  if (v.is_string()) return Json(Truncate(v.get<std::string>(), max));
  if (v.is_array()) {
    Json out = Json::array();
    for (const auto& e : v) out.push_back(CutStrings(e, max));
    return out;
  }
  if (v.is_object()) {
    Json out = Json::object();
    for (auto it = v.begin(); it != v.end(); ++it) out[it.key()] = CutStrings(it.value(), max);
    return out;
  }
  return v;
}

Json ParsedOrText(const std::string& text) {
  if (text.empty()) return Json(nullptr);
  auto j = ParseJson(text);
  return j ? *j : Json(text);
}

}  // namespace

Result<CaptureResult> Capture(Store& store, const Run& run, const CaptureOptions& options) {
  if (run.status != RunStatus::kFailed) {
    return Fail(ErrorCode::kInvalidArgument,
                "run " + run.id + " is " + std::string(RunStatusName(run.status)) + ", not failed");
  }
  auto version = store.GetWorkflowVersion(run.workflow_id, run.version);
  if (!version) return Fail(version.error());
  if (!*version) {
    return Fail(ErrorCode::kNotFound, "workflow version " + std::to_string(run.version) +
                                          " of run " + run.id + " is gone");
  }
  KnownSecrets known = ResolvedSecrets((*version)->source, options.secrets);
  const Json inputs = ParsedOrText(run.inputs);
  AddSecretLikeValues(inputs, "inputs", known);
  const Redaction redact(std::move(known));

  auto events = store.ListRunEventPage(
      run.id, {.limit = options.max_events, .max_bytes = options.max_event_bytes, .last = true});
  if (!events) return Fail(events.error());
  Json event_list = Json::array();
  for (const auto& e : events->events) {
    event_list.push_back(
        Json{{"seq", e.seq},
             {"ts_ms", e.ts_ms},
             {"type", e.type},
             {"data", CutStrings(redact.Value(ParsedOrText(e.data)), options.max_text_bytes)}});
  }
  Json context{{"run",
                {{"id", run.id},
                 {"triggered_by", TriggeredByName(run.triggered_by)},
                 {"trigger_id", run.trigger_id},
                 {"attempt", run.attempt},
                 {"created_ms", run.created_ms},
                 {"finished_ms", run.finished_ms}}},
               {"inputs", CutStrings(redact.Value(inputs), options.max_text_bytes)},
               {"events", std::move(event_list)}};

  const std::string error = Truncate(redact.Text(run.error), kMaxErrorBytes);
  const std::string normalized = NormalizeError(error);
  RecordRemediationRequest req;
  req.fingerprint = Fingerprint((*version)->checksum, run.failed_node, normalized);
  req.workflow_id = run.workflow_id;
  req.version = run.version;
  req.run_id = run.id;
  req.failed_node = run.failed_node;
  req.error = error;
  req.error_normalized = normalized;
  req.context = DumpJson(context);
  auto recorded = store.RecordRemediation(req);
  if (!recorded) return Fail(recorded.error());
  return CaptureResult{std::move(recorded->remediation), recorded->created};
}

void CaptureFailedRun(Store& store, const Run& run, const CaptureOptions& options) noexcept {
  try {
    auto r = Capture(store, run, options);
    if (!r) {
      spdlog::warn("remediation.capture_failed run={} workflow={}: {}", run.id, run.workflow_name,
                   r.error().message);
      return;
    }
    const Remediation& m = r->remediation;
    spdlog::info(
        "remediation.recorded id={} workflow={} version={} run={} node={} occurrences={} new={}",
        m.id, m.workflow_name, m.version, run.id, m.failed_node.empty() ? "-" : m.failed_node,
        m.occurrences, r->created ? "yes" : "no");
  } catch (const std::exception& e) {
    spdlog::warn("remediation.capture_failed run={}: {}", run.id, e.what());
  }
}

runs::RunFailedHook CaptureHook(const Settings& settings, const engine::SecretResolver* secrets) {
  if (!settings.enabled) return {};
  CaptureOptions options;
  options.secrets = secrets;
  return [options](Store& store, const Run& run) { CaptureFailedRun(store, run, options); };
}

}  // namespace ferry::remediation
