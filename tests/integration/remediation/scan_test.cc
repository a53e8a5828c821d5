// The idle scan's decisions against a real store and redis-server: each reason to skip, and the
// claim when idle.
#include "remediation/scan.h"

#include <gtest/gtest.h>

#include "fixture.h"

namespace ferry::testing {
namespace {

class ScanTest : public RemediationTest {
 protected:
  remediation::ScanRequest Request(double load = 0.1) {
    remediation::ScanRequest r;
    r.settings = Settings({"/bin/true"});
    r.settings.idle_load = 1.0;
    r.owner = "scan-test";
    r.load = [load]() -> std::optional<double> { return load; };
    return r;
  }
  std::string Skipped(const remediation::ScanRequest& r) {
    auto s = remediation::Scan(*store_, *broker_, r);
    EXPECT_TRUE(s) << s.error().message;
    return s ? s->skipped : "error";
  }
};

TEST_P(ScanTest, EveryReasonToSkipAndTheClaim) {
  Workflow wf = Apply("name: wf\nnodes:\n  a:\n    kind: fail\n    message: x\n");
  auto req = Request();
  EXPECT_EQ(Skipped(req), "nothing_due");
  Capture(FailRun(wf, "a", "boom"));

  auto off = req;
  off.settings.enabled = false;
  EXPECT_EQ(Skipped(off), "disabled");
  auto no_agent = req;
  no_agent.settings.agent_argv.clear();
  EXPECT_EQ(Skipped(no_agent), "no_agent");
  // Load: exactly the threshold is idle enough; above is not; unknown depends on the policy.
  EXPECT_EQ(Skipped(Request(1.01)), "load_high");
  auto unknown = Request();
  unknown.load = [] { return std::optional<double>(); };
  EXPECT_EQ(Skipped(unknown), "load_unknown");
  // A pending run is active (max_active_runs 0).
  CreateRunRequest cr;
  cr.workflow_id = wf.id;
  auto pending = store_->CreateRun(cr);
  ASSERT_TRUE(pending);
  EXPECT_EQ(Skipped(req), "runs_active");
  ASSERT_TRUE(store_->CancelRun(pending->id));
  // A task waiting in the run queue.
  SubmitRequest sub;
  sub.kind = "noop";
  sub.queue = "scanq";
  ASSERT_TRUE(broker_->Submit(sub));
  auto busy_queue = req;
  busy_queue.run_queue = "scanq";
  EXPECT_EQ(Skipped(busy_queue), "queue_busy");

  auto at_threshold = Request(1.0);
  auto claimed = remediation::Scan(*store_, *broker_, at_threshold);
  ASSERT_TRUE(claimed) << claimed.error().message;
  EXPECT_EQ(claimed->skipped, "");
  ASSERT_EQ(claimed->claimed.size(), 1u);
  // Max concurrent reached.
  Capture(FailRun(wf, "a", "another error"));
  EXPECT_EQ(Skipped(req), "busy");
  auto allow = unknown;
  allow.settings.unknown_load = remediation::UnknownLoad::kAllow;
  allow.settings.max_concurrent = 2;
  auto second = remediation::Scan(*store_, *broker_, allow);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->claimed.size(), 1u);
  // Daily cap: two attempts today for wf.
  Capture(FailRun(wf, "a", "third error"));
  auto capped = req;
  capped.settings.max_concurrent = 3;
  capped.settings.daily_cap = 2;
  EXPECT_EQ(Skipped(capped), "daily_cap");
}

INSTANTIATE_TEST_SUITE_P(Backends, ScanTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace ferry::testing
