// `ferry alerts`: the alert rules (src/ops/alerts.h) evaluated now, with firing-since times from
// the shared state in Redis: here from Redis and the store, or by the server with --server.
#include <CLI/CLI.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/json_text.h"
#include "core/time_util.h"
#include "ops/alerts.h"
#include "ops/config.h"
#include "service/local_service.h"
#include "store/store.h"

namespace ferry::cli {

void AddAlertFlags(CLI::App* cmd, std::map<std::string, std::string>& flags, SettingsGiven& given) {
  for (const auto& s : ops::Settings()) {
    if (s.key.rfind("alert-", 0) != 0) continue;
    AddSettingFlag(cmd, s.key, flags, given)->group("Alerts");
  }
}

int RunAlerts(Context& ctx, const StoreFlags& sf, const OpsFlags& flags) {
  const Output& out = ctx.out();
  // A server evaluates with its own thresholds: flags here would be silently ignored.
  if (ctx.remote() && !flags.values.empty()) {
    return out.Fail(ErrorCode::kInvalidArgument,
                    "--" + flags.values.begin()->first +
                        ": alert thresholds are the server's; give them to `ferry server start`, "
                        "or drop --server to evaluate here");
  }
  // Only a local evaluation reads thresholds (flags, env): a server has its own, and a threshold
  // set in this shell for a server started from it must not fail a remote call.
  std::optional<ops::AlertEvaluator> evaluator;
  if (!ctx.remote()) {
    auto settings = ops::ResolveAlertSettings(flags.values, ctx.env());
    if (!settings) return out.Fail(settings.error());
    // Thresholds given as flags make a what-if look: it records nothing, so it neither resolves
    // nor restarts what the deployment's evaluators (its config and environment) see firing.
    evaluator.emplace(settings->thresholds, /*record=*/flags.values.empty());
  }
  // Locally the store is read only when one is configured: a default ./.ferry is not created
  // for this.
  auto store = PickStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  const bool store_configured = store->has_value();
  auto svc = ctx.Service(sf, [&](service::LocalServiceOptions& o) {
    o.alerts = [&evaluator](Broker& b, Store* s) { return evaluator->EvaluateJson(b, s); };
    o.alerts_read_store = store_configured;
  });
  if (!svc) return out.Fail(svc.error());
  auto report = (*svc)->Alerts();
  if (!report) return out.Fail(report.error());
  const Json& firing = (*report)["firing"];
  const int code = firing.empty() ? kExitOk : kExitFailure;
  if (out.json()) {
    out.PrintJson(*report);
    return code;
  }
  const int64_t evaluated = (*report)["evaluated_ms"].get<int64_t>();
  auto since = [&](const Json& a) {
    const int64_t ms = a.value("since_ms", int64_t{0});
    return HumanTime(ms) + " (" + AgeSince(ms, evaluated) + " ago)";
  };
  if (firing.empty()) {
    out.Print("No alerts firing.\n");
  } else {
    Table table({"Severity", "Alert", "Queue", "Since", "Summary"});
    for (const auto& a : firing) {
      const std::string severity = Field(a, "severity");
      table.AddRow({Cell(severity, severity == "critical" ? Color::kRed : Color::kYellow),
                    Field(a, "name"), Field(a, "queue"), since(a), Field(a, "summary")});
    }
    out.PrintTable(table);
  }
  for (const auto& a : (*report)["resolved"]) {
    out.Message("resolved: " + Field(a, "key") + " (firing since " +
                HumanTime(a.value("since_ms", int64_t{0})) + ")");
  }
  if (!(*report)["store_checked"].get<bool>()) {
    out.Message("note: no store configured (--store / FERRY_STORE): PendingRunsStale not checked");
  }
  return code;
}

}  // namespace ferry::cli
