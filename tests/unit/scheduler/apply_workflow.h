// Test helper: store a workflow document and sync its triggers through the one apply path that
// `ferry workflow apply` and the API use (runs::ApplyWorkflowSource).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "runs/apply.h"
#include "store/store.h"

namespace ferry::testing {

inline Workflow ApplyWorkflowSource(Store& store, const std::string& source) {
  runs::ApplySourceRequest req;
  req.source = source;
  auto applied = runs::ApplyWorkflowSource(store, req, nullptr);
  EXPECT_TRUE(applied) << (applied ? "" : applied.error().message);
  if (!applied) return {};
  return applied->applied.workflow;
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
