// JSON views of store and broker records, as the API returns them (docs/api.md). Stored JSON text
// (inputs, outputs, event data) is embedded as JSON when it parses, else as a string.
//
// Thread-safety: pure functions.
#pragma once

#include <vector>

#include "broker/broker.h"
#include "core/json.h"
#include "store/store.h"

namespace ferry::api {

Json JsonOrString(const std::string& text);
Json WorkflowJson(const Workflow& w);
// Without the source and graph unless `full`.
Json VersionJson(const WorkflowVersion& v, bool full);
Json RunJson(const Run& r);
Json StepJson(const RunStep& s);
Json RunEventJson(const RunEvent& e);
Json TaskJson(const TaskRecord& t);
Json WorkerJson(const WorkerInfo& w);
Json QueueStatsJson(const QueueStats& q);

}  // namespace ferry::api
