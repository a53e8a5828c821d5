#include "remediation/view.h"

#include "views/views.h"

namespace ferry::remediation {
// The record conventions of every view: views/views.h.
using views::Embedded;
using views::Text;
using views::Time;

Json CandidateJson(const Remediation& m) {
  Json confidence = nullptr;
  if (!m.confidence.empty()) {
    auto c = ParseJson(m.confidence);
    confidence = c && c->is_number() ? *c : Json(m.confidence);
  }
  return Json{{"id", m.id},
              {"status", RemediationStatusName(m.status)},
              {"workflow", m.workflow_name},
              {"workflow_id", m.workflow_id},
              {"version", m.version},
              {"run_id", m.run_id},
              {"last_run_id", m.last_run_id},
              {"failed_node", Text(m.failed_node)},
              {"error", m.error},
              {"fingerprint", m.fingerprint},
              {"occurrences", m.occurrences},
              {"attempts", m.attempts - m.attempt_base},
              {"classification", Text(m.classification)},
              {"summary", Text(m.summary)},
              {"confidence", confidence},
              {"fixed_version", m.fixed_version == 0 ? Json(nullptr) : Json(m.fixed_version)},
              {"retry_run_id", Text(m.retry_run_id)},
              {"first_seen_at", Time(m.first_seen_ms)},
              {"last_seen_at", Time(m.last_seen_ms)},
              {"updated_at", Time(m.updated_ms)}};
}

Json CandidateDetailJson(const Remediation& m, const std::vector<RemediationAttempt>& attempts) {
  Json j = CandidateJson(m);
  j["error_normalized"] = m.error_normalized;
  j["context"] = Embedded(m.context);
  j["note"] = Text(m.note);
  j["reason"] = Text(m.reason);
  j["result"] = Embedded(m.result);
  j["retry_error"] = Text(m.retry_error);
  j["attempts_total"] = m.attempts;
  j["next_attempt_at"] = Time(m.next_attempt_ms);
  j["claim"] = m.claim_owner.empty()
                   ? Json(nullptr)
                   : Json{{"owner", m.claim_owner}, {"deadline", Time(m.claim_deadline_ms)}};
  j["has_proposed_source"] = !m.proposed_source.empty();
  j["created_at"] = Time(m.created_ms);
  Json list = Json::array();
  for (const auto& a : attempts) list.push_back(AttemptJson(a));
  j["attempt_history"] = std::move(list);
  return j;
}

Json AttemptJson(const RemediationAttempt& a) {
  return Json{{"attempt", a.attempt},
              {"owner", a.owner},
              {"outcome", a.outcome},
              {"detail", Text(a.detail)},
              {"agent_ms", a.agent_ms < 0 ? Json(nullptr) : Json(a.agent_ms)},
              {"started_at", Time(a.started_ms)},
              {"finished_at", Time(a.finished_ms)}};
}

Json PageJson(const RemediationPage& page) {
  Json list = Json::array();
  for (const auto& m : page.remediations) list.push_back(CandidateJson(m));
  return views::Page("remediations", std::move(list), page.next_cursor);
}

Json DiffJson(const DiffResult& d) {
  return Json{{"id", d.id},
              {"workflow", d.workflow},
              {"from_version", d.from_version},
              {"to_version", d.to_version == 0 ? Json(nullptr) : Json(d.to_version)},
              {"status", d.status},
              {"diff", d.diff}};
}

}  // namespace ferry::remediation
