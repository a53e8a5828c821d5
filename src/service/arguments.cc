#include "service/arguments.h"

#include "core/ids.h"
#include "remediation/actions.h"

namespace ferry::service {

Status CheckTaskId(const std::string& id) { return RequireId("task", id, "ferry task list"); }
Status CheckRunId(const std::string& id) { return RequireId("run", id, "ferry run list"); }
Status CheckTokenId(const std::string& id) { return RequireId("token", id, "ferry token list"); }
Status CheckRemediationId(const std::string& id) { return remediation::CheckCandidateId(id); }

Status CheckWorkflowName(const std::string& name) {
  if (name.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "workflow name must not be empty: name a workflow");
  }
  return {};
}

}  // namespace ferry::service
