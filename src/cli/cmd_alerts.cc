// `ferry alerts`: the alert rules (src/ops/alerts.h) evaluated now, straight from Redis and the
// store, with firing-since times from the shared state in Redis.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/time_util.h"
#include "ops/alerts.h"
#include "ops/config.h"
#include "store/store.h"

namespace ferry::cli {

void AddAlertFlags(CLI::App* cmd, std::map<std::string, std::string>& flags) {
  for (const auto& s : ops::Settings()) {
    if (s.key.rfind("alert-", 0) != 0) continue;
    const std::string key = s.key;
    cmd->add_option_function<std::string>(
           "--" + key, [&flags, key](const std::string& v) { flags[key] = v; },
           s.help + " (env " + ops::EnvNameOf(key) + "; default " +
               (s.default_text.empty() ? std::string("none") : s.default_text) + ")")
        ->group("Alerts");
  }
}

int RunAlerts(Context& ctx, const StoreFlags& sf, const OpsFlags& flags) {
  const Output& out = ctx.out();
  auto thresholds = ops::ResolveThresholds(flags.values, ctx.env());
  if (!thresholds) return out.Fail(thresholds.error());
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  // The store is read only when one is configured: a default ./.ferry is not created for this.
  std::unique_ptr<Store> store;
  std::optional<std::string> location = sf.store;
  if (!location) location = ctx.env()("FERRY_STORE");
  if (location) {
    StoreOptions so;
    so.migrate = false;
    auto opened = OpenStore(*location, so);
    if (!opened) {
      return out.Fail(opened.error().code, "cannot open the store: " + opened.error().message);
    }
    store = std::move(*opened);
  }
  ops::AlertEvaluator evaluator(*thresholds);
  auto report = evaluator.Evaluate(**broker, store.get());
  if (!report) return out.Fail(report.error());
  const int code = report->firing.empty() ? kExitOk : kExitFailure;
  if (out.json()) {
    out.PrintJson(ops::AlertReportJson(*report));
    return code;
  }
  if (report->firing.empty()) {
    out.Print("No alerts firing.\n");
  } else {
    Table table({"Severity", "Alert", "Queue", "Since", "Summary"});
    for (const auto& a : report->firing) {
      table.AddRow(
          {Cell(a.severity, a.severity == "critical" ? Color::kRed : Color::kYellow), a.name,
           a.queue.empty() ? "-" : a.queue,
           HumanTime(a.since_ms) + " (" + AgeSince(a.since_ms, report->evaluated_ms) + " ago)",
           a.summary});
    }
    out.PrintTable(table);
  }
  for (const auto& a : report->resolved) {
    out.Message("resolved: " + a.Key() + " (firing since " + HumanTime(a.since_ms) + ")");
  }
  if (!report->store_checked) {
    out.Message("note: no store configured (--store / FERRY_STORE): PendingRunsStale not checked");
  }
  return code;
}

}  // namespace ferry::cli
