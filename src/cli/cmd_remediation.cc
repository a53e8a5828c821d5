// `ferry remediation list|show|dismiss|reopen|diff`: parse the arguments, call the service
// (locally, or the server's /api/v1/remediations with --server), print its answer: tables here,
// --json as the API answers (remediation/view.h).
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/json_text.h"
#include "ops/config.h"
#include "remediation/settings.h"

namespace ferry::cli {
namespace {

Color StatusColorOf(const std::string& s) {
  if (s == "fixed") return Color::kGreen;
  if (s == "failed") return Color::kRed;
  if (s == "claimed") return Color::kBlue;
  if (s == "pending") return Color::kYellow;
  return Color::kDim;
}

int RunList(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  service::Query query{{"limit", std::to_string(a.limit)}};
  if (a.status) query["status"] = *a.status;
  if (a.workflow) query["workflow"] = *a.workflow;
  if (a.cursor) query["cursor"] = *a.cursor;
  auto page = (*svc)->ListRemediations(query);
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  const bool u = out.style().unicode;
  Table t({"ID", "Status", "Workflow", "Ver", "Node", "Seen", "Tries", "Class", "Error"});
  for (const auto& m : (*page)["remediations"]) {
    const std::string status = Field(m, "status");
    t.AddRow({Field(m, "id"), Cell(status, StatusColorOf(status)), Field(m, "workflow"),
              Field(m, "version"), Field(m, "failed_node"), Field(m, "occurrences"),
              Field(m, "attempts"), Field(m, "classification"),
              Ellipsize(Field(m, "error"), 48, u)});
  }
  out.PrintTable(t);
  if (const std::string next = Field(*page, "next_cursor"); next != "-") {
    out.Message("more: --cursor " + next);
  }
  return kExitOk;
}

int RunShow(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto shown = (*svc)->GetRemediation(a.id);
  if (!shown) return out.Fail(shown.error());
  if (out.json()) {
    out.PrintJson(*shown);
    return kExitOk;
  }
  const Json& m = (*shown)["remediation"];
  const std::string run_id = Field(m, "run_id");
  const std::string last_run_id = Field(m, "last_run_id");
  std::vector<std::pair<std::string, std::string>> kv = {
      {"ID", Field(m, "id")},
      {"Status", Field(m, "status")},
      {"Workflow", Field(m, "workflow") + " (version " + Field(m, "version") + ")"},
      {"Failed node", Field(m, "failed_node")},
      {"Error", Field(m, "error")},
      {"Runs", run_id + (last_run_id != run_id ? " ... " + last_run_id : "")},
      {"Occurrences", Field(m, "occurrences")},
      {"First seen", FieldTime(m, "first_seen_at")},
      {"Last seen", FieldTime(m, "last_seen_at")},
      {"Attempts", Field(m, "attempts")},
      {"Classification", Field(m, "classification")},
      {"Summary", Field(m, "summary")},
      {"Confidence", Field(m, "confidence")},
      {"Reason", Field(m, "reason")},
  };
  if (m.contains("claim") && m["claim"].is_object()) {
    kv.emplace_back("Claimed by",
                    Field(m["claim"], "owner") + " until " + FieldTime(m["claim"], "deadline"));
  }
  if (Field(m, "status") == "failed" && FieldMs(m, "next_attempt_at") > 0) {
    kv.emplace_back("Next attempt", FieldTime(m, "next_attempt_at"));
  }
  if (FieldInt(m, "fixed_version") > 0) {
    kv.emplace_back("Fixed in", "version " + Field(m, "fixed_version"));
  }
  if (Field(m, "retry_run_id") != "-") kv.emplace_back("Retry run", Field(m, "retry_run_id"));
  if (Field(m, "retry_error") != "-") kv.emplace_back("Retry error", Field(m, "retry_error"));
  if (m.value("has_proposed_source", false)) {
    kv.emplace_back("Source change", "ferry remediation diff " + Field(m, "id"));
  }
  std::string text = RenderKeyValues(kv);
  if (const std::string note = Field(m, "note"); note != "-") {
    text += "\nDeveloper note:\n" + note + (note.back() == '\n' ? "" : "\n");
  }
  const Json& history = m.contains("attempt_history") ? m["attempt_history"] : Json::array();
  if (!history.empty()) {
    Table t({"Attempt", "Owner", "Outcome", "Agent", "Started", "Detail"});
    for (const auto& at : history) {
      const std::string agent = Field(at, "agent_ms");
      t.AddRow({Field(at, "attempt"), Field(at, "owner"), Field(at, "outcome"),
                agent == "-" ? agent : agent + "ms", FieldTime(at, "started_at"),
                Ellipsize(Field(at, "detail"), 60, out.style().unicode)});
    }
    out.Print(text + "\n");
    out.PrintTable(t);
    return kExitOk;
  }
  out.Print(text);
  return kExitOk;
}

// dismiss and reopen: the candidate as it is after the change.
int PrintChanged(const Output& out, const Result<Json>& changed, const std::string& what) {
  if (!changed) return out.Fail(changed.error());
  if (out.json()) {
    out.PrintJson(*changed);
  } else {
    // The command's result, on stdout as `run cancel`'s is (stderr is for errors and notes).
    out.Print("remediation candidate " + Field((*changed)["remediation"], "id") + " " + what +
              "\n");
  }
  return kExitOk;
}

int RunDismiss(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  auto svc = ctx.Service(sf);
  if (!svc) return ctx.out().Fail(svc.error());
  Json body = Json::object();
  if (!a.reason.empty()) body["reason"] = a.reason;
  return PrintChanged(ctx.out(), (*svc)->DismissRemediation(a.id, body, Context::Caller()),
                      "dismissed");
}

int RunReopen(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  auto svc = ctx.Service(sf);
  if (!svc) return ctx.out().Fail(svc.error());
  return PrintChanged(ctx.out(), (*svc)->ReopenRemediation(a.id, Context::Caller()),
                      "reopened (pending)");
}

int RunDiff(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto d = (*svc)->RemediationDiff(a.id);
  if (!d) return out.Fail(d.error());
  if (out.json()) {
    out.PrintJson(*d);
  } else {
    out.Print((*d)["diff"].get<std::string>());
  }
  return kExitOk;
}

}  // namespace

void AddRemediationFlags(CLI::App* cmd, std::map<std::string, std::string>& flags,
                         SettingsGiven& given) {
  for (const auto& s : remediation::SettingSpecs()) {
    AddSettingFlag(cmd, s.key, flags, given)->group("Remediation");
  }
}

void AddRemediationCommands(CLI::App& app, StoreFlags& sf, SettingsGiven& given,
                            std::function<int(Context&)>& run) {
  // Static: CLI11 writes into these during parse, after this function returned.
  static RemediationArgs args;
  auto add_store = [&](CLI::App* cmd) { AddSettingFlag(cmd, "store", sf.store, given); };
  auto* rem = app.add_subcommand(
      "remediation", "Remediation candidates of failed runs: list, inspect, dismiss, reopen");
  rem->require_subcommand(1);

  auto* list = rem->add_subcommand("list", "Candidates, newest first");
  list->add_option("--status", args.status,
                   "pending|claimed|fixed|note_only|failed|dismissed (default any)");
  list->add_option("--workflow", args.workflow, "Only this workflow's candidates");
  AddLimitFlag(list, "--limit,-n", args.limit);
  list->add_option("--cursor", args.cursor, "Continue after a previous page");
  add_store(list);
  list->callback([&] { run = [&sf](Context& ctx) { return RunList(ctx, sf, args); }; });

  auto* show = rem->add_subcommand(
      "show", "A candidate: the failure, the agent's classification and note, its attempts");
  show->add_option("ID", args.id, "Candidate id")->required();
  add_store(show);
  show->callback([&] { run = [&sf](Context& ctx) { return RunShow(ctx, sf, args); }; });

  auto* dismiss = rem->add_subcommand(
      "dismiss",
      "Stop working on a candidate (pending, claimed or failed); a running attempt "
      "is stopped");
  dismiss->add_option("ID", args.id, "Candidate id")->required();
  dismiss->add_option("--reason", args.reason, "Why (kept with the candidate)");
  add_store(dismiss);
  dismiss->callback([&] { run = [&sf](Context& ctx) { return RunDismiss(ctx, sf, args); }; });

  auto* reopen = rem->add_subcommand(
      "reopen",
      "Make a dismissed, failed or note_only candidate pending again, with fresh "
      "attempts");
  reopen->add_option("ID", args.id, "Candidate id")->required();
  add_store(reopen);
  reopen->callback([&] { run = [&sf](Context& ctx) { return RunReopen(ctx, sf, args); }; });

  auto* diff = rem->add_subcommand(
      "diff",
      "The source change the agent proposed (or that made the fixed version), as a "
      "unified diff");
  diff->add_option("ID", args.id, "Candidate id")->required();
  add_store(diff);
  diff->callback([&] { run = [&sf](Context& ctx) { return RunDiff(ctx, sf, args); }; });
}

}  // namespace ferry::cli
