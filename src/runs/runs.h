// Workflow runs on top of the task layer: a run is a row in the Store plus a task of kind
// `ferry.run` (payload {"run_id": ...}, unique key = the run id) in the Broker.
//
// Creation commits the run first and enqueues second, so a failed enqueue leaves a pending run
// that the sweeper re-enqueues (the unique key makes that idempotent): no run is ever lost.
//
// Thread-safety: free functions; the Store and Broker passed in are used from the caller's thread
// only (each is one connection).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/json.h"
#include "core/result.h"
#include "store/store.h"

namespace ferry::runs {

inline constexpr std::string_view kRunTaskKind = "ferry.run";

struct StartRunRequest {
  std::string workflow;  // name
  Json inputs = Json::object();
  TriggeredBy triggered_by = TriggeredBy::kApi;
  std::string trigger_id;
  std::string queue = "default";  // the queue the run's task goes to
};

struct StartRunResult {
  Run run;
  // false when the run was stored but enqueueing failed; the sweeper will enqueue it.
  bool enqueued = false;
  std::string enqueue_error;
};

// Validates inputs against the workflow's current version, creates the pending run and enqueues
// its task. kNotFound for an unknown workflow, kInvalidArgument for bad inputs.
Result<StartRunResult> StartRun(Store& store, Broker& broker, const StartRunRequest& request);

// Enqueues the task of an existing pending run (idempotent through the unique key).
Status EnqueueRun(Broker& broker, const Run& run, const std::string& queue = "default");

}  // namespace ferry::runs
