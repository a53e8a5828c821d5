// The JSON shape of each remediation record, shared by the API (/api/v1/remediations), the
// CLI's --json output and its tables' source. Times are ISO 8601 UTC ("...Z") or null.
//
// Thread-safety: pure functions.
#pragma once

#include <vector>

#include "core/json.h"
#include "remediation/actions.h"
#include "store/store.h"

namespace ferry::remediation {

// A candidate as listed: identity, status, counts, the agent's verdict; no sources or context.
Json CandidateJson(const Remediation& m);
// A candidate with everything: context, note, reason, result, claim, sources' presence, and
// its attempts.
Json CandidateDetailJson(const Remediation& m, const std::vector<RemediationAttempt>& attempts);
Json AttemptJson(const RemediationAttempt& a);
// {"remediations": [...], "next_cursor": "..."}
Json PageJson(const RemediationPage& page);
Json DiffJson(const DiffResult& d);

}  // namespace ferry::remediation
