// Stored workflow definitions, read and parsed once per process. A stored version never changes:
// versions are only ever inserted (a new content makes a new version, nothing updates or deletes
// one) and workflow ids are drawn fresh, never reused. So the parsed form is cached by (workflow
// id, version), and starting or executing a run on a version this process has seen reads
// nothing; only "the current version" (0) must ask the store which one that is. (A process that
// is pointed at a restored or copied database while it runs could meet an id it cached with
// other content; Ferry does neither.)
//
// Thread-safety: LoadDefinition may be called from any thread; the cache is internally locked and
// the returned definitions are immutable.
#pragma once

#include <memory>
#include <optional>
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

// What a workflow's name was last seen as in this process: its id (a name keeps its id: workflows
// are never deleted) and the version that was then current. StartRun starts from it without
// reading the workflow, creating the run only if that version is still current
// (CreateRunRequest::only_if_current) and reading afresh when it is not, or when the id is not
// in the store it uses (the memory is per process, not per database). Bounded like the cache of
// definitions.
struct SeenWorkflow {
  std::string id;
  int version = 0;
};
std::optional<SeenWorkflow> LastSeenWorkflow(const std::string& name);
void RememberWorkflow(const std::string& name, const SeenWorkflow& seen);

}  // namespace ferry::runs
