// The scheduler side's runner with a real agent process: a candidate dismissed while its agent
// runs loses the claim at the next renewal and the agent is stopped; a scheduler that stops
// releases its claims at once without counting the attempt.
#include "remediation/runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/ids.h"
#include "files.h"
#include "fixture.h"

namespace ferry::testing {
namespace {

namespace fs = std::filesystem;

int ProcessesWith(const std::string& marker) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = ReadAll(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(marker) != std::string::npos &&
        cmd.find("remediation_integration_tests") == std::string::npos) {
      ++n;
    }
  }
  return n;
}

class RunnerTest : public RemediationTest {
 protected:
  std::unique_ptr<remediation::Runner> Start(const std::string& marker) {
    Workflow wf = Apply("name: wf\nnodes:\n  a:\n    kind: fail\n    message: x\n");
    candidate_ = Capture(FailRun(wf, "a", "boom"));
    remediation::RunnerOptions o;
    o.attempt.settings =
        Settings({Script("hang.sh", "sh -c 'sleep 600; echo " + marker + "'\n"), "{workspace}"});
    o.attempt.settings.idle_load = 1e6;
    o.attempt.settings.claim_lease = std::chrono::milliseconds(1500);
    o.attempt.owner = "runner-test";
    auto runner = std::make_unique<remediation::Runner>(*stores_, *brokers_, o);
    auto scanned = runner->ScanAndStart(*store_, *broker_);
    EXPECT_TRUE(scanned) << scanned.error().message;
    EXPECT_EQ(scanned->claimed.size(), 1u) << scanned->skipped << " " << scanned->detail;
    EXPECT_TRUE(Eventually([&] { return ProcessesWith(marker) > 0; }, std::chrono::seconds(10)));
    return runner;
  }
  Remediation candidate_;
};

TEST_P(RunnerTest, DismissingStopsTheAgent) {
  const std::string marker = "ferry-runner-" + RandomHex(6);
  auto runner = Start(marker);
  EXPECT_EQ(runner->active(), 1);
  ASSERT_TRUE(store_->DismissRemediation(candidate_.id, "stop it"));
  EXPECT_TRUE(Eventually([&] { return ProcessesWith(marker) == 0; }, std::chrono::seconds(10)));
  EXPECT_TRUE(Eventually([&] { return runner->active() == 0; }, std::chrono::seconds(10)));
  auto m = store_->GetRemediation(candidate_.id);
  EXPECT_EQ((*m)->status, RemediationStatus::kDismissed);
  EXPECT_EQ((*m)->reason, "stop it");
}

TEST_P(RunnerTest, StoppingReleasesTheClaimWithoutCountingIt) {
  const std::string marker = "ferry-runner-" + RandomHex(6);
  auto runner = Start(marker);
  EXPECT_EQ((*store_->GetRemediation(candidate_.id))->status, RemediationStatus::kClaimed);
  runner->Stop();
  EXPECT_EQ(runner->active(), 0);
  EXPECT_TRUE(Eventually([&] { return ProcessesWith(marker) == 0; }, std::chrono::seconds(10)));
  auto m = store_->GetRemediation(candidate_.id);
  EXPECT_EQ((*m)->status, RemediationStatus::kPending);
  EXPECT_EQ((*m)->attempts, 0);
  EXPECT_TRUE(store_->ListRemediationAttempts(candidate_.id)->empty());
  // A stopped runner claims nothing more.
  auto again = runner->ScanAndStart(*store_, *broker_);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->claimed.empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, RunnerTest, ::testing::Values("sqlite"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace ferry::testing
