// LocalService: remediation candidates (the actions in src/remediation/actions.h, the views in
// src/remediation/view.h).
#include "core/json_fields.h"
#include "remediation/actions.h"
#include "remediation/view.h"
#include "service/local_service.h"
#include "service/query.h"

namespace ferry::service {

Result<Json> LocalService::ListRemediations(const Query& query) {
  QueryReader q(query);
  remediation::ListRequest list;
  list.limit = q.Limit(50, kMaxPageLimit);
  list.status = q.Text("status");
  list.workflow = q.Text("workflow");
  list.cursor = q.Text("cursor");
  if (auto st = q.Finish(); !st) return Fail(st.error());
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto page = remediation::List(store, list);
    if (!page) return Fail(page.error());
    return remediation::PageJson(*page);
  });
}

Result<Json> LocalService::GetRemediation(const std::string& id) {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto shown = remediation::Show(store, {id});
    if (!shown) return Fail(shown.error());
    return Json{
        {"remediation", remediation::CandidateDetailJson(shown->remediation, shown->attempts)}};
  });
}

Result<Json> LocalService::DismissRemediation(const std::string& id, const Json& body,
                                              const Caller& caller) {
  FieldReader f(body);
  const std::string reason = f.String("reason").value_or("");
  if (auto st = f.Finish(); !st) return Fail(st.error());
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto m = remediation::Dismiss(store, {id, reason, caller.actor});
    if (!m) return Fail(m.error());
    return Json{{"remediation", remediation::CandidateJson(*m)}};
  });
}

Result<Json> LocalService::ReopenRemediation(const std::string& id, const Caller& caller) {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto m = remediation::Reopen(store, {id, caller.actor});
    if (!m) return Fail(m.error());
    return Json{{"remediation", remediation::CandidateJson(*m)}};
  });
}

Result<Json> LocalService::RemediationDiff(const std::string& id) {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto d = remediation::Diff(store, {id});
    if (!d) return Fail(d.error());
    return remediation::DiffJson(*d);
  });
}

}  // namespace ferry::service
