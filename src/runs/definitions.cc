#include "runs/definitions.h"

#include <map>
#include <mutex>
#include <utility>

#include "engine/ingest.h"

namespace ferry::runs {
namespace {

using Key = std::pair<std::string, int>;  // workflow id, version

// Bounded: a process that sees more distinct versions than this starts over, which only costs
// reading and ingesting again.
constexpr size_t kMaxEntries = 1024;

std::mutex cache_mu;
std::map<Key, std::shared_ptr<const engine::Workflow>>& Cache() {
  static auto* cache = new std::map<Key, std::shared_ptr<const engine::Workflow>>();
  return *cache;
}

std::shared_ptr<const engine::Workflow> Cached(const Key& key) {
  std::lock_guard lock(cache_mu);
  auto it = Cache().find(key);
  return it == Cache().end() ? nullptr : it->second;
}

std::mutex seen_mu;
std::map<std::string, SeenWorkflow>& Seen() {
  static auto* seen = new std::map<std::string, SeenWorkflow>();
  return *seen;
}

}  // namespace

std::optional<SeenWorkflow> LastSeenWorkflow(const std::string& name) {
  std::lock_guard lock(seen_mu);
  auto it = Seen().find(name);
  if (it == Seen().end()) return std::nullopt;
  return it->second;
}

void RememberWorkflow(const std::string& name, const SeenWorkflow& seen) {
  std::lock_guard lock(seen_mu);
  if (Seen().size() >= kMaxEntries && Seen().count(name) == 0) Seen().clear();
  Seen()[name] = seen;
}

Result<LoadedDefinition> LoadDefinition(Store& store, const std::string& workflow_id, int version) {
  if (version > 0) {
    if (auto wf = Cached({workflow_id, version})) return LoadedDefinition{version, wf};
  }
  auto row = store.GetWorkflowVersion(workflow_id, version);
  if (!row) return Fail(row.error());
  if (!*row) {
    return Fail(
        ErrorCode::kNotFound,
        "workflow " + workflow_id +
            (version == 0 ? " has no version" : " has no version " + std::to_string(version)));
  }
  const WorkflowVersion& v = **row;
  const Key key{workflow_id, v.version};
  if (auto wf = Cached(key)) return LoadedDefinition{v.version, wf};
  auto ingested = engine::IngestStoredGraph(v.graph);
  if (!ingested) {
    return Fail(ErrorCode::kInternal, "stored graph of workflow " + workflow_id + " v" +
                                          std::to_string(v.version) +
                                          " does not load: " + ingested.error().message);
  }
  auto wf = std::make_shared<const engine::Workflow>(std::move(ingested->workflow));
  std::lock_guard lock(cache_mu);
  if (Cache().size() >= kMaxEntries) Cache().clear();
  Cache().emplace(key, wf);
  return LoadedDefinition{v.version, wf};
}

}  // namespace ferry::runs
