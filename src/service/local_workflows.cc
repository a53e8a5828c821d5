// LocalService: workflows and their versions (on the store).
#include <charconv>

#include "core/json_fields.h"
#include "runs/apply.h"
#include "service/arguments.h"
#include "service/local_service.h"
#include "views/views.h"

namespace ferry::service {

Result<Workflow> LocalService::FindWorkflow(Store& store, const std::string& name) {
  if (auto st = CheckWorkflowName(name); !st) return Fail(st.error());
  auto wf = store.GetWorkflow(name);
  if (!wf) return Fail(wf.error());
  if (!*wf) return Fail(ErrorCode::kNotFound, "no workflow " + name);
  return **wf;
}

Result<Json> LocalService::ApplyWorkflow(const Json& body, const Caller& caller) {
  runs::ApplySourceRequest apply;
  FieldReader f(body);
  apply.source = f.String("source", kRequired).value_or("");
  apply.format = f.String("format").value_or(apply.format);
  apply.author = f.String("author").value_or("");
  apply.notes = f.String("notes").value_or("");
  if (auto st = f.Finish(); !st) return Fail(st.error());
  if (apply.source.empty()) return Fail(ErrorCode::kInvalidArgument, "source is required");
  if (caller.may_use_secret) apply.may_use_secret = caller.may_use_secret;
  return With(stores_, [&](Store& store) -> Result<Json> {
    std::vector<engine::Diagnostic> diagnostics;
    auto applied = runs::ApplyWorkflowSource(store, apply, &diagnostics);
    if (!applied) {
      Error e = applied.error();
      if (!diagnostics.empty()) {
        e.details = DumpJson(Json{{"diagnostics", engine::DiagnosticsJson(diagnostics)}});
      }
      return Fail(std::move(e));
    }
    Json triggers = Json::array();
    for (const auto& t : applied->triggers) triggers.push_back(views::Trigger(t));
    return Json{{"workflow", views::Workflow(applied->applied.workflow)},
                {"version", views::Version(applied->applied.version, false)},
                {"created", applied->applied.created},
                {"triggers", std::move(triggers)}};
  });
}

Result<Json> LocalService::ListWorkflows() {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto list = store.ListWorkflows();
    if (!list) return Fail(list.error());
    Json out = Json::array();
    for (const auto& w : *list) {
      // The latest run of each, so the list answers "is it working?" at a glance.
      RunFilter filter;
      filter.workflow_id = w.id;
      filter.limit = 1;
      auto page = store.ListRuns(filter);
      if (!page) return Fail(page.error());
      Json j = views::Workflow(w);
      j["last_run"] = page->runs.empty() ? Json(nullptr) : views::Run(page->runs.front());
      out.push_back(std::move(j));
    }
    return views::Page("workflows", std::move(out), "");
  });
}

Result<Json> LocalService::GetWorkflow(const std::string& name) {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto wf = FindWorkflow(store, name);
    if (!wf) return Fail(wf.error());
    auto version = store.GetWorkflowVersion(wf->id, 0);
    if (!version) return Fail(version.error());
    if (!*version) return Fail(ErrorCode::kNotFound, "workflow " + name + " has no version");
    auto triggers = store.ListTriggers(TriggerFilter{wf->id, std::nullopt, true});
    if (!triggers) return Fail(triggers.error());
    RunFilter filter;
    filter.workflow_id = wf->id;
    filter.limit = 10;
    auto page = store.ListRuns(filter);
    if (!page) return Fail(page.error());
    Json tj = Json::array();
    for (const auto& t : *triggers) tj.push_back(views::Trigger(t));
    Json runs = Json::array();
    for (const auto& r : page->runs) runs.push_back(views::Run(r));
    return Json{{"workflow", views::Workflow(*wf)},
                {"version", views::Version(**version, true)},
                {"triggers", std::move(tj)},
                {"recent_runs", std::move(runs)}};
  });
}

Result<Json> LocalService::ListVersions(const std::string& name) {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto wf = FindWorkflow(store, name);
    if (!wf) return Fail(wf.error());
    auto versions = store.ListWorkflowVersions(wf->id);
    if (!versions) return Fail(versions.error());
    Json out = Json::array();
    for (const auto& v : *versions) {
      Json j = views::Version(v, false);
      j["current"] = v.version == wf->current_version;
      out.push_back(std::move(j));
    }
    Json body = views::Page("versions", std::move(out), "");
    body["workflow"] = wf->name;
    return body;
  });
}

Result<Json> LocalService::GetVersion(const std::string& name, const std::string& version) {
  int n = 0;
  auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), n);
  if (ec != std::errc() || end != version.data() + version.size() || n < 1) {
    return Fail(ErrorCode::kInvalidArgument,
                "version must be a positive integer, got '" + version + "'");
  }
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto wf = FindWorkflow(store, name);
    if (!wf) return Fail(wf.error());
    auto v = store.GetWorkflowVersion(wf->id, n);
    if (!v) return Fail(v.error());
    if (!*v) return Fail(ErrorCode::kNotFound, "workflow " + name + " has no version " + version);
    return Json{{"version", views::Version(**v, true)}};
  });
}

}  // namespace ferry::service
