// The ids and names a Service call takes as its subject, checked in one place: where the local
// service takes them, and in the remote one before a request is sent (an empty one leaves a path
// no route serves, "no route /api/v1/runs/", where the local answer names the mistake). Both
// modes so answer a mistyped or empty argument with the same words and exit code.
#pragma once

#include <string>

#include "core/result.h"

namespace ferry::service {

// kInvalidArgument unless each looks like an id Ferry made (core/ids.h RequireId).
Status CheckTaskId(const std::string& id);
Status CheckRunId(const std::string& id);
Status CheckTokenId(const std::string& id);
Status CheckRemediationId(const std::string& id);
// kInvalidArgument when empty: no workflow has that name (an unset shell variable, not a
// missing record).
Status CheckWorkflowName(const std::string& name);
// A task event's id as the task's event stream in Redis writes it ("1733212800000-0") or "0" (from
// the start): anything else would reach XRANGE and come back as a server error.
bool IsTaskEventId(const std::string& id);

}  // namespace ferry::service
