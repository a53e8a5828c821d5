// The user's actions on remediation candidates, once each, for every surface: `ferry
// remediation list|show|dismiss|reopen|diff` and /api/v1/remediations only parse their input,
// call these and render the result (view.h).
//
// Errors: kInvalidArgument for malformed input (an unknown status, a malformed id, a limit out
// of range), kNotFound for an unknown candidate or workflow, kConflict for a transition the
// candidate's status does not allow, store errors as they come.
//
// Thread-safety: free functions; the Store is used from the caller's thread only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "store/store.h"

namespace ferry::remediation {

// kInvalidArgument unless `id` looks like a candidate's id ("a remediation candidate id is
// required", "malformed remediation candidate id '...'"): what every action below checks first.
Status CheckCandidateId(const std::string& id);

struct ListRequest {
  std::string status;    // "" = any; else a RemediationStatus name
  std::string workflow;  // "" = any; else a workflow name
  int limit = 50;        // 1..1000
  std::string cursor;    // "" = from the newest
};
Result<RemediationPage> List(Store& store, const ListRequest& request);

struct ShowRequest {
  std::string id;
};
struct ShowResult {
  Remediation remediation;
  std::vector<RemediationAttempt> attempts;
};
Result<ShowResult> Show(Store& store, const ShowRequest& request);

struct DismissRequest {
  std::string id;
  std::string reason;  // optional, at most 4096 bytes
  std::string by;      // who: "cli", "api"; logged
};
Result<Remediation> Dismiss(Store& store, const DismissRequest& request);

struct ReopenRequest {
  std::string id;
  std::string by;
};
Result<Remediation> Reopen(Store& store, const ReopenRequest& request);

struct DiffRequest {
  std::string id;
};
struct DiffResult {
  std::string id;
  std::string workflow;
  int from_version = 0;
  int to_version = 0;  // the version the fix created; 0 while it is only proposed
  std::string status;  // the candidate's status
  std::string diff;    // unified diff of the source given to the agent and its proposal
};
// kNotFound when the candidate has no proposed source change.
Result<DiffResult> Diff(Store& store, const DiffRequest& request);

}  // namespace ferry::remediation
