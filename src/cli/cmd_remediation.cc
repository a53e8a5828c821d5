// `ferry remediation list|show|dismiss|reopen|diff`: parse the arguments, call the action in
// src/remediation/actions.h, print its result (tables here; --json is remediation/view.h's
// shape, the same as the API's).
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/runs_common.h"
#include "ops/config.h"
#include "remediation/actions.h"
#include "remediation/settings.h"
#include "remediation/view.h"

namespace ferry::cli {
namespace {

Color StatusColorOf(RemediationStatus s) {
  switch (s) {
    case RemediationStatus::kFixed:
      return Color::kGreen;
    case RemediationStatus::kFailed:
      return Color::kRed;
    case RemediationStatus::kClaimed:
      return Color::kBlue;
    case RemediationStatus::kPending:
      return Color::kYellow;
    default:
      return Color::kDim;
  }
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

int RunList(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto page = remediation::List(**store, {a.status, a.workflow, a.limit, a.cursor});
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(remediation::PageJson(*page));
    return kExitOk;
  }
  const bool u = out.style().unicode;
  Table t({"ID", "Status", "Workflow", "Ver", "Node", "Seen", "Tries", "Class", "Error"});
  for (const auto& m : page->remediations) {
    t.AddRow({m.id, Cell(std::string(RemediationStatusName(m.status)), StatusColorOf(m.status)),
              m.workflow_name, std::to_string(m.version), OrDash(m.failed_node),
              std::to_string(m.occurrences), std::to_string(m.attempts - m.attempt_base),
              OrDash(m.classification), Ellipsize(m.error, 48, u)});
  }
  out.PrintTable(t);
  if (!page->next_cursor.empty()) out.Message("more: --cursor " + page->next_cursor);
  return kExitOk;
}

int RunShow(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto shown = remediation::Show(**store, {a.id});
  if (!shown) return out.Fail(shown.error());
  const Remediation& m = shown->remediation;
  if (out.json()) {
    out.PrintJson(remediation::CandidateDetailJson(m, shown->attempts));
    return kExitOk;
  }
  std::vector<std::pair<std::string, std::string>> kv = {
      {"ID", m.id},
      {"Status", std::string(RemediationStatusName(m.status))},
      {"Workflow", m.workflow_name + " (version " + std::to_string(m.version) + ")"},
      {"Failed node", OrDash(m.failed_node)},
      {"Error", m.error},
      {"Runs", m.run_id + (m.last_run_id != m.run_id ? " ... " + m.last_run_id : "")},
      {"Occurrences", std::to_string(m.occurrences)},
      {"First seen", HumanTime(m.first_seen_ms)},
      {"Last seen", HumanTime(m.last_seen_ms)},
      {"Attempts", std::to_string(m.attempts - m.attempt_base)},
      {"Classification", OrDash(m.classification)},
      {"Summary", OrDash(m.summary)},
      {"Confidence", OrDash(m.confidence)},
      {"Reason", OrDash(m.reason)},
  };
  if (!m.claim_owner.empty()) {
    kv.emplace_back("Claimed by", m.claim_owner + " until " + HumanTime(m.claim_deadline_ms));
  }
  if (m.next_attempt_ms > 0 && m.status == RemediationStatus::kFailed) {
    kv.emplace_back("Next attempt", HumanTime(m.next_attempt_ms));
  }
  if (m.fixed_version > 0)
    kv.emplace_back("Fixed in", "version " + std::to_string(m.fixed_version));
  if (!m.retry_run_id.empty()) kv.emplace_back("Retry run", m.retry_run_id);
  if (!m.retry_error.empty()) kv.emplace_back("Retry error", m.retry_error);
  if (!m.proposed_source.empty()) {
    kv.emplace_back("Source change", "ferry remediation diff " + m.id);
  }
  std::string text = RenderKeyValues(kv);
  if (!m.note.empty()) text += "\nDeveloper note:\n" + m.note + (m.note.back() == '\n' ? "" : "\n");
  if (!shown->attempts.empty()) {
    Table t({"Attempt", "Owner", "Outcome", "Agent", "Started", "Detail"});
    for (const auto& at : shown->attempts) {
      t.AddRow({std::to_string(at.attempt), at.owner, at.outcome,
                at.agent_ms < 0 ? "-" : std::to_string(at.agent_ms) + "ms",
                HumanTime(at.started_ms), Ellipsize(at.detail, 60, out.style().unicode)});
    }
    text += "\n" + t.Render(out.style());
  }
  out.Print(text);
  return kExitOk;
}

int RunDismiss(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto m = remediation::Dismiss(**store, {a.id, a.reason, "cli"});
  if (!m) return out.Fail(m.error());
  if (out.json()) {
    out.PrintJson(remediation::CandidateJson(*m));
  } else {
    out.Message("remediation candidate " + m->id + " dismissed");
  }
  return kExitOk;
}

int RunReopen(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto m = remediation::Reopen(**store, {a.id, "cli"});
  if (!m) return out.Fail(m.error());
  if (out.json()) {
    out.PrintJson(remediation::CandidateJson(*m));
  } else {
    out.Message("remediation candidate " + m->id + " reopened (pending)");
  }
  return kExitOk;
}

int RunDiff(Context& ctx, const StoreFlags& sf, const RemediationArgs& a) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto d = remediation::Diff(**store, {a.id});
  if (!d) return out.Fail(d.error());
  if (out.json()) {
    out.PrintJson(remediation::DiffJson(*d));
  } else {
    out.Print(d->diff);
  }
  return kExitOk;
}

}  // namespace

void AddRemediationFlags(CLI::App* cmd, std::map<std::string, std::string>& flags) {
  for (const auto& s : remediation::SettingSpecs()) {
    const std::string key = s.key;
    const std::string env = ops::EnvNameForKey(key);
    cmd->add_option_function<std::string>(
           "--" + key, [&flags, key](const std::string& v) { flags[key] = v; },
           s.help + " (env " + env + "; default " +
               (s.default_text.empty() ? std::string("none") : s.default_text) + ")")
        ->group("Remediation");
  }
}

void AddRemediationCommands(CLI::App& app, StoreFlags& sf, std::function<int(Context&)>& run) {
  // Static: CLI11 writes into these during parse, after this function returned.
  static RemediationArgs args;
  auto add_store = [&](CLI::App* cmd) {
    cmd->add_option_function<std::string>(
        "--store", [&sf](const std::string& v) { sf.store = v; },
        "Workflow/run store: sqlite file path or postgresql://... (env FERRY_STORE; default "
        "./.ferry/ferry.db)");
  };
  auto* rem = app.add_subcommand(
      "remediation", "Remediation candidates of failed runs: list, inspect, dismiss, reopen");
  rem->require_subcommand(1);

  auto* list = rem->add_subcommand("list", "Candidates, newest first");
  list->add_option("--status", args.status,
                   "pending|claimed|fixed|note_only|failed|dismissed (default any)");
  list->add_option("--workflow", args.workflow, "Only this workflow's candidates");
  list->add_option("--limit,-n", args.limit, "At most this many (1..1000; default 50)");
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
