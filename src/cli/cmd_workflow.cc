// `ferry workflow apply|list|show|versions|run`.
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/runs_common.h"
#include "core/time_util.h"
#include "engine/ingest.h"
#include "runs/apply.h"
#include "runs/runs.h"
#include "views/views.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;

Error NoWorkflow(const std::string& name) {
  return Error{ErrorCode::kNotFound, "no workflow " + name};
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(ErrorCode::kInvalidArgument, "cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<Workflow> FindWorkflow(Store& store, const std::string& name) {
  auto wf = store.GetWorkflow(name);
  if (!wf) return Fail(wf.error());
  if (!*wf) return Fail(NoWorkflow(name));
  return **wf;
}

std::string NodeSummary(const engine::NodeDef& n) {
  std::string s = n.id + " (" + std::string(engine::NodeKindName(n.kind)) + ")";
  if (!n.needs.empty()) {
    s += " needs ";
    for (size_t i = 0; i < n.needs.size(); ++i) s += (i ? ", " : "") + n.needs[i];
  }
  if (!n.when.empty()) s += " when " + n.when;
  return s;
}

}  // namespace

int RunWorkflowApply(Context& ctx, const StoreFlags& sf, const WorkflowApplyArgs& args) {
  const Output& out = ctx.out();
  auto source = ReadFile(args.file);
  if (!source) return out.Fail(source.error());
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  runs::ApplySourceRequest req;
  req.source = *source;
  req.author = args.author;
  req.notes = args.notes;
  std::vector<engine::Diagnostic> diags;
  auto applied_source = runs::ApplyWorkflowSource(**store, req, &diags);
  if (!applied_source && !diags.empty()) {
    if (out.json()) {
      Json arr = Json::array();
      for (const auto& d : diags) {
        arr.push_back(
            Json{{"line", d.line}, {"column", d.column}, {"path", d.path}, {"message", d.message}});
      }
      out.PrintJson(Json{{"error",
                          {{"code", "invalid_argument"},
                           {"message", args.file + " is not a valid workflow"},
                           {"diagnostics", arr}}}});
    } else {
      std::string text = args.file + " is not a valid workflow (" + std::to_string(diags.size()) +
                         " problem" + (diags.size() == 1 ? "" : "s") + "):\n";
      for (const auto& d : diags) text += "  " + args.file + ": " + d.ToString() + "\n";
      std::fputs(text.c_str(), stderr);
    }
    return kExitUsage;
  }
  if (!applied_source) return out.Fail(applied_source.error());
  const ApplyWorkflowResult* applied = &applied_source->applied;
  const std::vector<Trigger>* triggers = &applied_source->triggers;

  const int version = applied->version.version;
  if (out.json()) {
    Json tj = Json::array();
    for (const auto& t : *triggers) {
      tj.push_back(Json{{"kind", TriggerKindName(t.kind)}, {"key", t.key}});
    }
    out.PrintJson(Json{{"workflow", applied->workflow.name},
                       {"version", version},
                       {"created", applied->created},
                       {"checksum", applied->version.checksum},
                       {"triggers", tj}});
  } else if (applied->created) {
    out.Print(applied->workflow.name + ": created version " + std::to_string(version) + "\n");
  } else {
    out.Print(applied->workflow.name + ": unchanged (version " + std::to_string(version) + ")\n");
  }
  return kExitOk;
}

int RunWorkflowList(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto wfs = (*store)->ListWorkflows();
  if (!wfs) return out.Fail(wfs.error());
  // The latest run of each, so the list answers "is it working?" at a glance.
  std::vector<std::optional<Run>> latest;
  for (const auto& w : *wfs) {
    RunFilter f;
    f.workflow_id = w.id;
    f.limit = 1;
    auto page = (*store)->ListRuns(f);
    if (!page) return out.Fail(page.error());
    latest.push_back(page->runs.empty() ? std::nullopt : std::optional<Run>(page->runs[0]));
  }
  if (out.json()) {
    Json arr = Json::array();
    for (size_t i = 0; i < wfs->size(); ++i) {
      const auto& w = (*wfs)[i];
      Json j = views::Workflow(w);
      j["last_run"] = latest[i] ? views::Run(*latest[i]) : Json(nullptr);
      arr.push_back(std::move(j));
    }
    out.PrintJson(views::Page("workflows", std::move(arr), ""));
    return kExitOk;
  }
  if (wfs->empty()) {
    out.Print("No workflows. Apply one: ferry workflow apply FILE\n");
    return kExitOk;
  }
  Table table({"Name", "Version", "Description", "Last Run", "Status", "Updated"});
  for (size_t i = 0; i < wfs->size(); ++i) {
    const auto& w = (*wfs)[i];
    std::string status = latest[i] ? std::string(RunStatusName(latest[i]->status)) : "-";
    table.AddRow({w.name + (w.paused ? " (paused)" : ""), "v" + std::to_string(w.current_version),
                  Ellipsize(w.description.empty() ? "-" : w.description, 40, out.style().unicode),
                  latest[i] ? HumanTime(latest[i]->created_ms) : "-",
                  Cell(status, StatusColor(status)), HumanTime(w.updated_ms)});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunWorkflowShow(Context& ctx, const StoreFlags& sf, const std::string& name) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto wf = FindWorkflow(**store, name);
  if (!wf) return out.Fail(wf.error());
  auto version = (*store)->GetWorkflowVersion(wf->id, 0);
  if (!version) return out.Fail(version.error());
  if (!*version) return out.Fail(ErrorCode::kNotFound, "workflow " + name + " has no version");
  auto def = engine::IngestStoredGraph((*version)->graph);
  RunFilter f;
  f.workflow_id = wf->id;
  f.limit = 10;
  auto page = (*store)->ListRuns(f);
  if (!page) return out.Fail(page.error());
  auto counts_page = (*store)->ListTriggers(TriggerFilter{wf->id, std::nullopt, true});
  std::vector<Trigger> triggers = counts_page ? *counts_page : std::vector<Trigger>{};

  if (out.json()) {
    Json runs = Json::array();
    for (const auto& r : page->runs) runs.push_back(views::Run(r));
    Json nodes = Json::array();
    if (def) {
      for (const auto& n : def->workflow.nodes) {
        nodes.push_back(Json{{"id", n.id},
                             {"kind", engine::NodeKindName(n.kind)},
                             {"needs", n.needs},
                             {"when", n.when.empty() ? Json(nullptr) : Json(n.when)}});
      }
    }
    Json tj = Json::array();
    for (const auto& t : triggers) {
      tj.push_back(Json{{"kind", TriggerKindName(t.kind)},
                        {"key", t.key},
                        {"config", views::Embedded(t.config)}});
    }
    out.PrintJson(Json{{"name", wf->name},
                       {"description", wf->description},
                       {"version", (*version)->version},
                       {"checksum", (*version)->checksum},
                       {"author", (*version)->author},
                       {"paused", wf->paused},
                       {"nodes", nodes},
                       {"triggers", tj},
                       {"recent_runs", runs}});
    return kExitOk;
  }
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Name", wf->name},
      {"Description", wf->description.empty() ? "-" : wf->description},
      {"Version", std::to_string((*version)->version) + " (" + HumanTime((*version)->created_ms) +
                      ((*version)->author.empty() ? "" : ", by " + (*version)->author) + ")"},
      {"Paused", wf->paused ? "yes" : "no"},
  };
  if (def) {
    std::string inputs;
    for (const auto& in : def->workflow.inputs) {
      inputs += (inputs.empty() ? "" : ", ") + in.name + ": " +
                std::string(engine::InputTypeName(in.type)) + (in.required ? " (required)" : "");
    }
    rows.emplace_back("Inputs", inputs.empty() ? "-" : inputs);
    std::string nodes;  // one per line, under the value column
    for (const auto& n : def->workflow.nodes) nodes += (nodes.empty() ? "" : "\n") + NodeSummary(n);
    rows.emplace_back("Nodes", nodes.empty() ? "-" : nodes);
  }
  std::string trig;
  for (const auto& t : triggers) {
    trig += (trig.empty() ? "" : ", ") + std::string(TriggerKindName(t.kind)) +
            (t.kind == TriggerKind::kWebhook ? " /hooks/" + wf->name : " " + t.key);
  }
  rows.emplace_back("Triggers", trig.empty() ? "-" : trig);
  out.Print(RenderKeyValues(rows));
  out.Print("\nRecent runs:\n");
  if (page->runs.empty()) {
    out.Print("No runs yet. Start one: ferry workflow run " + wf->name + "\n");
  } else {
    out.PrintTable(RunsTable(page->runs, out.style().unicode));
  }
  return kExitOk;
}

int RunWorkflowVersions(Context& ctx, const StoreFlags& sf, const std::string& name) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto wf = FindWorkflow(**store, name);
  if (!wf) return out.Fail(wf.error());
  auto versions = (*store)->ListWorkflowVersions(wf->id);
  if (!versions) return out.Fail(versions.error());
  if (out.json()) {
    Json arr = Json::array();
    for (const auto& v : *versions) {
      Json j = views::Version(v, false);
      j["current"] = v.version == wf->current_version;
      arr.push_back(std::move(j));
    }
    Json body = views::Page("versions", std::move(arr), "");
    body["workflow"] = wf->name;
    out.PrintJson(body);
    return kExitOk;
  }
  Table table({"Version", "Created", "Author", "Checksum", "Notes"});
  for (const auto& v : *versions) {
    table.AddRow({std::to_string(v.version) + (v.version == wf->current_version ? " *" : ""),
                  HumanTime(v.created_ms), v.author.empty() ? "-" : v.author,
                  v.checksum.substr(0, 12),
                  Ellipsize(v.notes.empty() ? "-" : v.notes, 50, out.style().unicode)});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunWorkflowRun(Context& ctx, const StoreFlags& sf, const WorkflowRunArgs& args) {
  const Output& out = ctx.out();
  runs::StartRunRequest req;
  req.workflow = args.name;
  req.triggered_by = TriggeredBy::kCli;
  req.queue = args.queue;
  if (auto st = ValidateQueueName(args.queue); !st) return out.Fail(st.error());
  if (args.input) {
    auto j = ParseJson(*args.input);
    if (!j || !j->is_object()) {
      return out.Fail(ErrorCode::kInvalidArgument,
                      "--input must be a JSON object" + (j ? "" : ": " + j.error().message));
    }
    req.inputs = *j;
  }
  WaitRunOptions wo;
  if (args.timeout) {
    if (!args.wait) return out.Fail(ErrorCode::kInvalidArgument, "--timeout needs --wait");
    auto d = ParseDuration(*args.timeout);
    if (!d) return out.Fail(ErrorCode::kInvalidArgument, "--timeout: " + d.error().message);
    wo.timeout = *d;
  }
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  if (auto wf = FindWorkflow(**store, args.name); !wf) return out.Fail(wf.error());
  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  auto started = runs::StartRun(**store, **broker, req);
  if (!started) return out.Fail(started.error());
  const std::string& id = started->run.id;
  if (!started->enqueued) {
    out.Message("run " + id + " is stored as pending, but enqueueing failed (" +
                started->enqueue_error + "); the sweeper will enqueue it");
  }
  if (!args.wait) {
    if (out.json()) {
      out.PrintJson(
          Json{{"id", id},
               {"enqueued", started->enqueued},
               {"task_id", started->task_id.empty() ? Json(nullptr) : Json(started->task_id)}});
    } else {
      out.Print(id + "\n");
    }
    return kExitOk;
  }
  if (!out.json()) out.Print(id + "\n");
  auto run = WaitForRun(out, **store, id, wo);
  if (!run) return out.Fail(run.error());
  if (out.json()) {
    out.PrintJson(views::Run(*run));
  } else {
    std::string line(RunStatusName(run->status));
    if (run->status == RunStatus::kSucceeded) {
      line += " in " + RunDuration(*run);
    } else {
      if (!run->failed_node.empty()) line += " at node " + run->failed_node;
      if (!run->error.empty()) line += ": " + run->error;
    }
    out.Print(line + "\n");
  }
  return RunExitCode(*run);
}

}  // namespace ferry::cli
