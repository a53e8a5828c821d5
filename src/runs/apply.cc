#include "runs/apply.h"

#include <cctype>

#include "cron/cron.h"
#include "runs/definitions.h"

namespace ferry::runs {

std::vector<TriggerSpec> TriggerSpecs(const Json& canonical) {
  std::vector<TriggerSpec> specs;
  const Json triggers = canonical.value("triggers", Json::object());
  if (!triggers.is_object()) return specs;
  const Json webhook = triggers.value("webhook", Json());
  if (webhook.is_object()) {
    specs.push_back(TriggerSpec{TriggerKind::kWebhook, "webhook", DumpJson(webhook)});
  }
  const Json cron = triggers.value("cron", Json::array());
  for (size_t i = 0; cron.is_array() && i < cron.size(); ++i) {
    specs.push_back(
        TriggerSpec{TriggerKind::kCron, "cron:" + std::to_string(i), DumpJson(cron[i])});
  }
  return specs;
}

engine::IngestOptions ApplyIngestOptions() {
  engine::IngestOptions options;
  options.validate_cron = [](std::string_view expression) -> std::optional<std::string> {
    auto parsed = cron::ParseCron(expression);
    if (!parsed) return parsed.error().message;
    return std::nullopt;
  };
  options.validate_zone = [](std::string_view zone) -> std::optional<std::string> {
    auto found = cron::LocateZone(zone);
    if (!found) return found.error().message;
    return std::nullopt;
  };
  // The calendar and the clock only: which zone a time without an offset is read in changes
  // the instant, not whether there is one.
  options.validate_time = [](std::string_view time) -> std::optional<std::string> {
    auto parsed = cron::ParseIso8601(time, nullptr);
    if (!parsed) return parsed.error().message;
    return std::nullopt;
  };
  return options;
}

Result<PreparedApply> PrepareApply(const ApplySourceRequest& request,
                                   std::vector<engine::Diagnostic>* diagnostics) {
  std::string format = request.format;
  if (format.empty()) {
    size_t i = 0;
    while (i < request.source.size() && std::isspace(static_cast<unsigned char>(request.source[i])))
      ++i;
    format = i < request.source.size() && request.source[i] == '{' ? "json" : "yaml";
  }
  if (format != "yaml" && format != "json") {
    return Fail(ErrorCode::kInvalidArgument, "format must be yaml or json");
  }
  auto ingested = engine::Ingest(request.source, ApplyIngestOptions());
  if (!ingested) {
    if (diagnostics != nullptr) *diagnostics = ingested.error();
    return Fail(ErrorCode::kInvalidArgument, engine::FormatDiagnostics(ingested.error()));
  }
  if (request.may_use_secret) {
    for (const auto& secret : ingested->workflow.secret_names) {
      if (!(*request.may_use_secret)(secret)) {
        return Fail(ErrorCode::kPermissionDenied,
                    "workflow " + ingested->workflow.name + " uses secret " + secret +
                        ": applying it needs a token with the secret:" + secret +
                        " (or admin) scope");
      }
    }
  }
  PreparedApply out;
  ApplyWorkflowRequest& apply = out.apply;
  apply.name = ingested->workflow.name;
  apply.description = ingested->workflow.description;
  apply.source = request.source;
  apply.format = format;
  apply.graph = DumpJson(ingested->canonical);
  apply.checksum = ingested->checksum;
  apply.author = request.author;
  apply.notes = request.notes;
  out.triggers = TriggerSpecs(ingested->canonical);
  return out;
}

Result<ApplySourceResult> ApplyPrepared(Store& store, const PreparedApply& prepared) {
  auto applied = store.ApplyWorkflow(prepared.apply);
  if (!applied) return Fail(applied.error());
  // Runs started in this process go to the new version without asking (definitions.h).
  RememberWorkflow(applied->workflow.name,
                   {applied->workflow.id, applied->workflow.current_version});
  auto triggers = store.SyncTriggers(applied->workflow.id, prepared.triggers);
  if (!triggers) return Fail(triggers.error());
  return ApplySourceResult{std::move(*applied), std::move(*triggers)};
}

Result<ApplySourceResult> ApplyWorkflowSource(Store& store, const ApplySourceRequest& request,
                                              std::vector<engine::Diagnostic>* diagnostics) {
  auto prepared = PrepareApply(request, diagnostics);
  if (!prepared) return Fail(prepared.error());
  auto tx = store.Begin();
  if (!tx) return Fail(tx.error());
  auto applied = ApplyPrepared(store, *prepared);
  if (!applied) return Fail(applied.error());
  if (auto st = (*tx)->Commit(); !st) return Fail(st.error());
  return applied;
}

}  // namespace ferry::runs
