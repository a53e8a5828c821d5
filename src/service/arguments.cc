#include "service/arguments.h"

#include <charconv>
#include <cstdint>
#include <string_view>

#include "core/ids.h"
#include "remediation/actions.h"

namespace ferry::service {

Status CheckTaskId(const std::string& id) { return RequireId("task", id, "ferry task list"); }
Status CheckRunId(const std::string& id) { return RequireId("run", id, "ferry run list"); }
Status CheckTokenId(const std::string& id) { return RequireId("token", id, "ferry token list"); }
Status CheckRemediationId(const std::string& id) { return remediation::CheckCandidateId(id); }

bool IsTaskEventId(const std::string& id) {
  const auto dash = id.find('-');
  // Each part is what Redis takes: an unsigned 64-bit number (20 digits may be more). from_chars
  // takes digits only (no sign, no space), and none is an error.
  auto digits = [](std::string_view d) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), v);
    return ec == std::errc() && end == d.data() + d.size();
  };
  if (dash == std::string::npos) return digits(id);
  return digits(std::string_view(id).substr(0, dash)) &&
         digits(std::string_view(id).substr(dash + 1));
}

Status CheckWorkflowName(const std::string& name) {
  if (name.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "workflow name must not be empty: name a workflow");
  }
  return {};
}

}  // namespace ferry::service
