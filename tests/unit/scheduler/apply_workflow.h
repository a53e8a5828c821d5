// Test helper: ingest a workflow document, store it and sync its triggers, the way `ferry
// workflow apply` does (scheduler::WorkflowTriggerSpecs gives the trigger specs).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/json.h"
#include "engine/ingest.h"
#include "scheduler/plan.h"
#include "store/store.h"

namespace ferry::testing {

inline Workflow ApplyWorkflowSource(Store& store, const std::string& source) {
  auto ing = engine::IngestWorkflow(source);
  EXPECT_TRUE(ing) << (ing ? "" : ing.error().message);
  if (!ing) return {};
  ApplyWorkflowRequest req;
  req.name = ing->workflow.name;
  req.source = source;
  req.graph = DumpJson(ing->canonical);
  req.checksum = ing->checksum;
  auto applied = store.ApplyWorkflow(req);
  EXPECT_TRUE(applied) << (applied ? "" : applied.error().message);
  if (!applied) return {};
  auto synced =
      store.SyncTriggers(applied->workflow.id, scheduler::WorkflowTriggerSpecs(ing->workflow));
  EXPECT_TRUE(synced) << (synced ? "" : synced.error().message);
  return applied->workflow;
}

// A workflow named `name` with one cron trigger and one quick node (or a delay node).
inline std::string CronWorkflow(const std::string& name, const std::string& schedule,
                                const std::string& extra_trigger_fields = "",
                                const std::string& delay = "") {
  std::string s = "name: " + name + "\ntriggers:\n  cron:\n    schedule: \"" + schedule + "\"\n";
  if (!extra_trigger_fields.empty()) s += extra_trigger_fields;
  s += "nodes:\n";
  if (delay.empty()) {
    s += "  hello:\n    kind: lua\n    script: return 1\n";
  } else {
    s += "  wait:\n    kind: delay\n    duration: " + delay + "\n";
  }
  return s;
}

}  // namespace ferry::testing
