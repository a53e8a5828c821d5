#include "remediation/actions.h"

#include <spdlog/spdlog.h>

#include "core/ids.h"
#include "remediation/diff.h"
#include "remediation/workspace.h"

namespace ferry::remediation {
Status CheckCandidateId(const std::string& id) {
  return RequireId("remediation candidate", id, "ferry remediation list");
}

namespace {

Result<Remediation> MustGet(Store& store, const std::string& id) {
  if (auto st = CheckCandidateId(id); !st) return Fail(st.error());
  auto m = store.GetRemediation(id);
  if (!m) return Fail(m.error());
  if (!*m) return Fail(ErrorCode::kNotFound, "no remediation candidate " + id);
  return std::move(**m);
}

}  // namespace

Result<RemediationPage> List(Store& store, const ListRequest& req) {
  RemediationFilter filter;
  if (!req.status.empty()) {
    filter.status = ParseRemediationStatus(req.status);
    if (!filter.status) {
      return Fail(ErrorCode::kInvalidArgument,
                  "unknown remediation status '" + req.status +
                      "' (pending, claimed, fixed, note_only, failed, dismissed)");
    }
  }
  if (req.limit < 1 || req.limit > 1000) {
    return Fail(ErrorCode::kInvalidArgument, "limit must be 1..1000");
  }
  filter.limit = req.limit;
  filter.cursor = req.cursor;
  if (!req.workflow.empty()) {
    auto wf = store.GetWorkflow(req.workflow);
    if (!wf) return Fail(wf.error());
    if (!*wf) return Fail(ErrorCode::kNotFound, "no workflow " + req.workflow);
    filter.workflow_id = (*wf)->id;
  }
  return store.ListRemediations(filter);
}

Result<ShowResult> Show(Store& store, const ShowRequest& req) {
  auto m = MustGet(store, req.id);
  if (!m) return Fail(m.error());
  auto attempts = store.ListRemediationAttempts(req.id);
  if (!attempts) return Fail(attempts.error());
  return ShowResult{std::move(*m), std::move(*attempts)};
}

Result<Remediation> Dismiss(Store& store, const DismissRequest& req) {
  if (auto st = CheckCandidateId(req.id); !st) return Fail(st.error());
  if (req.reason.size() > 4096) {
    return Fail(ErrorCode::kInvalidArgument, "the reason is at most 4096 bytes");
  }
  auto m = store.DismissRemediation(req.id, req.reason);
  if (!m) return m;
  spdlog::info("remediation.dismissed id={} workflow={} by={} reason=\"{}\"", m->id,
               m->workflow_name, req.by.empty() ? "-" : req.by, req.reason);
  return m;
}

Result<Remediation> Reopen(Store& store, const ReopenRequest& req) {
  if (auto st = CheckCandidateId(req.id); !st) return Fail(st.error());
  auto m = store.ReopenRemediation(req.id);
  if (!m) return m;
  spdlog::info("remediation.reopened id={} workflow={} by={}", m->id, m->workflow_name,
               req.by.empty() ? "-" : req.by);
  return m;
}

Result<DiffResult> Diff(Store& store, const DiffRequest& req) {
  auto m = MustGet(store, req.id);
  if (!m) return Fail(m.error());
  if (m->proposed_source.empty()) {
    return Fail(ErrorCode::kNotFound,
                "remediation candidate " + m->id + " has no proposed source change (status " +
                    std::string(RemediationStatusName(m->status)) +
                    (m->classification.empty() ? "" : ", classification " + m->classification) +
                    ")");
  }
  auto version = store.GetWorkflowVersion(m->workflow_id, m->version);
  if (!version) return Fail(version.error());
  const std::string file = WorkflowFileName(*version ? (*version)->format : "yaml");
  DiffResult out;
  out.id = m->id;
  out.workflow = m->workflow_name;
  out.from_version = m->version;
  out.to_version = m->fixed_version;
  out.status = std::string(RemediationStatusName(m->status));
  const std::string to_label =
      m->fixed_version > 0 ? "version " + std::to_string(m->fixed_version) : "proposed";
  out.diff = UnifiedDiff(m->base_source, m->proposed_source,
                         "a/" + file + " (version " + std::to_string(m->version) + ")",
                         "b/" + file + " (" + to_label + ")");
  return out;
}

}  // namespace ferry::remediation
