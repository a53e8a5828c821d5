// `ferry workflow apply|list|show|versions|run`.
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "cli/commands.h"
#include "cli/json_text.h"
#include "cli/runs_common.h"
#include "core/files.h"
#include "core/time_util.h"
#include "engine/ingest.h"
#include "runs/apply.h"

namespace ferry::cli {
namespace {

std::string NodeSummary(const engine::NodeDef& n) {
  std::string s = n.id + " (" + std::string(engine::NodeKindName(n.kind)) + ")";
  if (!n.needs.empty()) {
    s += " needs ";
    for (size_t i = 0; i < n.needs.size(); ++i) s += (i ? ", " : "") + n.needs[i];
  }
  if (!n.when.empty()) s += " when " + n.when;
  return s;
}

// An apply refused: with diagnostics, "FILE is not a valid workflow (N problems):" and each as
// "FILE: line L, column C: ..." (--json: the error with its diagnostics); otherwise the error.
int ReportInvalid(const Output& out, const std::string& file, Error e,
                  const std::vector<engine::Diagnostic>& diagnostics) {
  if (diagnostics.empty()) return out.Fail(e);
  e.message = file + " is not a valid workflow";
  if (out.json()) {
    e.details = DumpJson(Json{{"diagnostics", engine::DiagnosticsJson(diagnostics)}});
    return out.Fail(e);
  }
  std::string text = e.message + " (" + std::to_string(diagnostics.size()) + " problem" +
                     (diagnostics.size() == 1 ? "" : "s") + "):\n";
  for (const auto& d : diagnostics) text += "  " + file + ": " + d.ToString() + "\n";
  std::fputs(text.c_str(), stderr);
  return ErrorExitCode(e.code);
}

}  // namespace

int RunWorkflowApply(Context& ctx, const StoreFlags& sf, const WorkflowApplyArgs& args) {
  const Output& out = ctx.out();
  // A file larger than ingestion takes is refused in its words before it is read whole (a
  // wrong path such as a log must not be read into memory, nor sent to a server).
  std::error_code ec;
  if (const auto size = std::filesystem::file_size(args.file, ec);
      !ec && size > engine::kMaxSourceBytes) {
    return out.Fail(ErrorCode::kInvalidArgument,
                    args.file + ": " + engine::SourceTooLarge(engine::kMaxSourceBytes));
  }
  auto source = ReadSmallFile(args.file, engine::kMaxSourceBytes);
  if (!source) {
    return out.Fail(ErrorCode::kInvalidArgument,
                    "cannot read " + args.file + ": " + source.error().message);
  }
  // Locally, a file that is no workflow is refused before the store is opened, so it makes no
  // store where there was none (a server checks what it is sent itself).
  if (!ctx.remote()) {
    runs::ApplySourceRequest check;
    check.source = *source;
    std::vector<engine::Diagnostic> diagnostics;
    if (auto prepared = runs::PrepareApply(check, &diagnostics); !prepared) {
      return ReportInvalid(out, args.file, prepared.error(), diagnostics);
    }
  }
  Json body{{"source", *source}};
  if (!args.author.empty()) body["author"] = args.author;
  if (!args.notes.empty()) body["notes"] = args.notes;
  auto svc = ctx.Service(Creating(sf));
  if (!svc) return out.Fail(svc.error());
  auto applied = (*svc)->ApplyWorkflow(body, Context::Caller());
  if (!applied) {
    const Error& e = applied.error();
    auto details = ParseJson(e.details.empty() ? "{}" : e.details);
    const Json diagnostics =
        details && details->contains("diagnostics") ? (*details)["diagnostics"] : Json::array();
    return ReportInvalid(out, args.file, e, engine::DiagnosticsFromJson(diagnostics));
  }
  if (out.json()) {
    out.PrintJson(*applied);
    return kExitOk;
  }
  const std::string name = Field((*applied)["workflow"], "name");
  const std::string version = Field((*applied)["version"], "version");
  if (applied->value("created", false)) {
    out.Print(name + ": created version " + version + "\n");
  } else {
    out.Print(name + ": unchanged (version " + version + ")\n");
  }
  return kExitOk;
}

int RunWorkflowList(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListWorkflows();
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  const Json& workflows = (*page)["workflows"];
  if (workflows.empty()) {
    out.Print("No workflows. Apply one: ferry workflow apply FILE\n");
    return kExitOk;
  }
  Table table({"Name", "Version", "Description", "Last Run", "Status", "Updated"});
  for (const auto& w : workflows) {
    const Json last = w.value("last_run", Json());
    const std::string status = last.is_object() ? Field(last, "status") : "-";
    table.AddRow({Field(w, "name") + (w.value("paused", false) ? " (paused)" : ""),
                  "v" + Field(w, "current_version"),
                  Ellipsize(Field(w, "description"), 40, out.style().unicode),
                  last.is_object() ? FieldTime(last, "created_at") : "-",
                  Cell(status, StatusColor(status)), FieldTime(w, "updated_at")});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunWorkflowShow(Context& ctx, const StoreFlags& sf, const std::string& name) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto shown = (*svc)->GetWorkflow(name);
  if (!shown) return out.Fail(shown.error());
  if (out.json()) {
    out.PrintJson(*shown);
    return kExitOk;
  }
  const Json& wf = (*shown)["workflow"];
  const Json& version = (*shown)["version"];
  const std::string author = Field(version, "author");
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Name", Field(wf, "name")},
      {"Description", Field(wf, "description")},
      {"Version", Field(version, "version") + " (" + FieldTime(version, "created_at") +
                      (author == "-" ? "" : ", by " + author) + ")"},
      {"Paused", wf.value("paused", false) ? "yes" : "no"},
  };
  // The nodes and inputs as the stored graph says (the same parse the worker does).
  auto def = engine::IngestStoredGraph(DumpJson(version.value("graph", Json::object())));
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
  for (const auto& t : (*shown)["triggers"]) {
    const std::string kind = Field(t, "kind");
    std::string what = kind == "webhook" ? "/hooks/" + Field(wf, "name") : Field(t, "key");
    // A cron trigger by its schedule and zone ("cron 0 9 * * * Europe/Paris"), not its key.
    const Json config = t.value("config", Json::object());
    if (kind == "cron" && config.is_object() && config.contains("schedule")) {
      what = Field(config, "schedule") + " " + config.value("timezone", std::string("UTC"));
    }
    trig += (trig.empty() ? "" : ", ") + kind + " " + what;
  }
  rows.emplace_back("Triggers", trig.empty() ? "-" : trig);
  out.Print(RenderKeyValues(rows));
  out.Print("\nRecent runs:\n");
  if ((*shown)["recent_runs"].empty()) {
    out.Print("No runs yet. Start one: ferry workflow run " + Field(wf, "name") + "\n");
  } else {
    out.PrintTable(RunsTable((*shown)["recent_runs"], out.style().unicode));
  }
  return kExitOk;
}

int RunWorkflowVersions(Context& ctx, const StoreFlags& sf, const std::string& name) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListVersions(name);
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  Table table({"Version", "Created", "Author", "Checksum", "Notes"});
  for (const auto& v : (*page)["versions"]) {
    table.AddRow({Field(v, "version") + (v.value("current", false) ? " *" : ""),
                  FieldTime(v, "created_at"), Field(v, "author"),
                  Field(v, "checksum").substr(0, 12),
                  Ellipsize(Field(v, "notes"), 50, out.style().unicode)});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunWorkflowRun(Context& ctx, const StoreFlags& sf, const WorkflowRunArgs& args) {
  const Output& out = ctx.out();
  Json body{{"workflow", args.name}, {"queue", args.queue}};
  if (args.input) {
    auto j = ParseJson(*args.input);
    if (!j || !j->is_object()) {
      return out.Fail(ErrorCode::kInvalidArgument,
                      "--input must be a JSON object" + (j ? "" : ": " + j.error().message));
    }
    body["inputs"] = *j;
  }
  WaitRunOptions wo;
  if (args.timeout) {
    if (!args.wait) return out.Fail(ErrorCode::kInvalidArgument, "--timeout needs --wait");
    auto d = ParseDuration(*args.timeout);
    if (!d) return out.Fail(ErrorCode::kInvalidArgument, "--timeout: " + d.error().message);
    wo.timeout = *d;
  }
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto started = (*svc)->StartRun(body, Context::Caller());
  if (!started) return out.Fail(started.error());
  const std::string id = Field((*started)["run"], "id");
  if (!started->value("enqueued", false)) {
    out.Message("run " + id + " is stored as pending, but enqueueing failed (" +
                Field(*started, "enqueue_error") + "); the sweeper will enqueue it");
  }
  if (!args.wait) {
    if (out.json()) {
      out.PrintJson(*started);
    } else {
      out.Print(id + "\n");
    }
    return kExitOk;
  }
  if (!out.json()) out.Print(id + "\n");
  auto run = WaitForRun(out, **svc, id, wo);
  if (!run) return out.Fail(run.error());
  if (out.json()) {
    Json answer = *started;
    answer["run"] = *run;
    out.PrintJson(answer);
  } else {
    const bool succeeded = Field(*run, "status") == "succeeded";
    out.Print((succeeded ? "succeeded in " + RunDuration(*run) : RunEndText(*run)) + "\n");
  }
  return RunExitCode(*run);
}

}  // namespace ferry::cli
