// Stored workflow definitions, parsed once per process. A stored version never changes (a new
// content makes a new version), so the parsed form is cached by (workflow id, version, checksum);
// starting or executing a run then costs one row read instead of a full ingestion.
//
// Thread-safety: LoadDefinition may be called from any thread; the cache is internally locked and
// the returned definitions are immutable.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "engine/definition.h"
#include "store/store.h"

namespace ferry::runs {

struct LoadedDefinition {
  int version = 0;
  std::shared_ptr<const engine::Workflow> workflow;
};

// The definition of `workflow_id` at `version` (0 = its current version). kNotFound when the
// version does not exist; kInternal when the stored graph does not load.
Result<LoadedDefinition> LoadDefinition(Store& store, const std::string& workflow_id, int version);

}  // namespace ferry::runs
