// SqlStore: workflows and their versions.
#include <utility>

#include "core/ids.h"
#include "store/sql_store_impl.h"

namespace ferry::store_internal {
namespace {

using P = SqlParam;

constexpr std::string_view kWorkflowCols =
    "id, name, description, current_version, paused, created_ms, updated_ms";
constexpr std::string_view kVersionCols =
    "workflow_id, version, source, format, graph, checksum, author, notes, created_ms";

Workflow WorkflowFromRow(const SqlRow& r) {
  Workflow w;
  w.id = r.Text(0);
  w.name = r.Text(1);
  w.description = r.Text(2);
  w.current_version = ToInt(r.Int(3));
  w.paused = r.Bool(4);
  w.created_ms = r.Int(5);
  w.updated_ms = r.Int(6);
  return w;
}

WorkflowVersion VersionFromRow(const SqlRow& r) {
  WorkflowVersion v;
  v.workflow_id = r.Text(0);
  v.version = ToInt(r.Int(1));
  v.source = r.Text(2);
  v.format = r.Text(3);
  v.graph = r.Text(4);
  v.checksum = r.Text(5);
  v.author = r.Text(6);
  v.notes = r.Text(7);
  v.created_ms = r.Int(8);
  return v;
}

}  // namespace

Result<ApplyWorkflowResult> SqlStore::ApplyWorkflow(const ApplyWorkflowRequest& req) {
  if (req.name.empty() || req.name.size() > kMaxNameBytes) {
    return Invalid("workflow name must be 1.." + std::to_string(kMaxNameBytes) + " bytes");
  }
  if (req.format != "yaml" && req.format != "json") {
    return Invalid("workflow format must be yaml or json, not \"" + req.format + "\"");
  }
  if (req.graph.empty()) return Invalid("workflow graph is required");
  if (req.checksum.empty()) return Invalid("workflow checksum is required");
  return InTx([&]() -> Result<ApplyWorkflowResult> {
    int64_t now = NowMs();
    auto ins = Exec(
        "INSERT INTO workflows (id, name, description, current_version, paused, created_ms, "
        "updated_ms) VALUES ($1, $2, $3, 0, $4, $5, $5) ON CONFLICT (name) DO NOTHING",
        {P::Text(NewId(now)), P::Text(req.name), P::Text(req.description), P::Bool(false),
         P::Int(now)});
    if (!ins) return Fail(ins.error());
    // Also the row lock (PostgreSQL) that serializes concurrent applies of one workflow.
    auto locked =
        Exec("UPDATE workflows SET description = $2 WHERE name = $1 RETURNING id, current_version",
             {P::Text(req.name), P::Text(req.description)});
    if (!locked) return Fail(locked.error());
    if (locked->rows.empty()) return Fail(ErrorCode::kInternal, "store: workflow vanished");
    std::string id = locked->rows[0].Text(0);
    int current = ToInt(locked->rows[0].Int(1));
    bool created = true;
    if (current > 0) {
      auto latest =
          Exec("SELECT checksum FROM workflow_versions WHERE workflow_id = $1 AND version = $2",
               {P::Text(id), P::Int(current)});
      if (!latest) return Fail(latest.error());
      created = latest->rows.empty() || latest->rows[0].Text(0) != req.checksum;
    }
    int version = current;
    if (created) {
      version = current + 1;
      auto v = Exec(Cat("INSERT INTO workflow_versions (", kVersionCols) +
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    {P::Text(id), P::Int(version), P::Text(req.source), P::Text(req.format),
                     P::Text(req.graph), P::Text(req.checksum), P::Text(req.author),
                     P::Text(req.notes), P::Int(now)});
      if (!v) return Fail(v.error());
      auto w = Exec("UPDATE workflows SET current_version = $2, updated_ms = $3 WHERE id = $1",
                    {P::Text(id), P::Int(version), P::Int(now)});
      if (!w) return Fail(w.error());
    }
    ApplyWorkflowResult out;
    out.created = created;
    auto wf = GetWorkflowById(id);
    if (!wf) return Fail(wf.error());
    auto ver = GetWorkflowVersion(id, version);
    if (!ver) return Fail(ver.error());
    if (!*wf || !*ver) return Fail(ErrorCode::kInternal, "store: applied workflow not found");
    out.workflow = std::move(**wf);
    out.version = std::move(**ver);
    return out;
  });
}

Result<std::optional<Workflow>> SqlStore::GetWorkflow(const std::string& name) {
  return One<Workflow>(Cat("SELECT ", kWorkflowCols) + " FROM workflows WHERE name = $1",
                       {P::Text(name)}, WorkflowFromRow);
}

Result<std::optional<Workflow>> SqlStore::GetWorkflowById(const std::string& id) {
  return One<Workflow>(Cat("SELECT ", kWorkflowCols) + " FROM workflows WHERE id = $1",
                       {P::Text(id)}, WorkflowFromRow);
}

Result<std::vector<Workflow>> SqlStore::ListWorkflows() {
  return Many<Workflow>(Cat("SELECT ", kWorkflowCols) + " FROM workflows ORDER BY name", {},
                        WorkflowFromRow);
}

Result<std::optional<WorkflowVersion>> SqlStore::GetWorkflowVersion(const std::string& workflow_id,
                                                                    int version) {
  if (version == 0) {
    return One<WorkflowVersion>(Cat("SELECT ", kVersionCols) +
                                    " FROM workflow_versions WHERE workflow_id = $1 AND version = "
                                    "(SELECT current_version FROM workflows WHERE id = $1)",
                                {P::Text(workflow_id)}, VersionFromRow);
  }
  return One<WorkflowVersion>(Cat("SELECT ", kVersionCols) +
                                  " FROM workflow_versions WHERE workflow_id = $1 AND version = $2",
                              {P::Text(workflow_id), P::Int(version)}, VersionFromRow);
}

Result<std::vector<WorkflowVersion>> SqlStore::ListWorkflowVersions(
    const std::string& workflow_id) {
  return Many<WorkflowVersion>(Cat("SELECT ", kVersionCols) +
                                   " FROM workflow_versions WHERE workflow_id = $1 "
                                   "ORDER BY version DESC",
                               {P::Text(workflow_id)}, VersionFromRow);
}

Result<Workflow> SqlStore::SetWorkflowPaused(const std::string& workflow_id, bool paused) {
  return InTx([&]() -> Result<Workflow> {
    auto r = Exec("UPDATE workflows SET paused = $2, updated_ms = $3 WHERE id = $1",
                  {P::Text(workflow_id), P::Bool(paused), P::Int(NowMs())});
    if (!r) return Fail(r.error());
    if (r->affected == 0) return NotFound("no workflow " + workflow_id);
    auto wf = GetWorkflowById(workflow_id);
    if (!wf) return Fail(wf.error());
    if (!*wf) return NotFound("no workflow " + workflow_id);
    return std::move(**wf);
  });
}

}  // namespace ferry::store_internal
