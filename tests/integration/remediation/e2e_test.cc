// Remediation end to end with `ferry` processes: a worker captures failed runs, `ferry scheduler
// start` scans when idle, claims, runs the example agent and applies its fix; the retry run of
// the new version succeeds. A scheduler killed with SIGKILL mid-attempt leaves a claim that
// another scheduler takes over once its lease ran out; two schedulers claim a candidate once.
// Real redis-server, SQLite and PostgreSQL.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/ids.h"
#include "core/json.h"
#include "files.h"
#include "fixture.h"
#include "postgres.h"

namespace ferry::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

bool Has(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

int Count(const std::string& s, const std::string& n) {
  int c = 0;
  for (size_t p = s.find(n); p != std::string::npos; p = s.find(n, p + 1)) ++c;
  return c;
}

int ProcessesWith(const std::string& marker) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = ReadAll(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (Has(cmd, marker) && !Has(cmd, "remediation_integration_tests")) ++n;
  }
  return n;
}

class RemediationE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      if (!PostgresServer::Available()) GTEST_SKIP() << "PostgreSQL binaries not installed";
      store_ = SharedPostgres().CreateDatabase();
    } else {
      store_ = (dir_.path() / "ferry.db").string();
    }
    prefix_ = "e2e" + RandomHex(4);
  }

  std::vector<std::string> Global() {
    return {FerryBinary(), "--redis-url", SharedRedis().url(), "--prefix", prefix_};
  }

  CommandResult Ferry(std::vector<std::string> args) {
    std::vector<std::string> argv = Global();
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--store", store_});
    return RunCommand(argv, seconds(60));
  }

  Json FerryJson(std::vector<std::string> args) {
    args.push_back("--json");
    auto r = Ferry(args);
    auto j = ParseJson(r.out);
    EXPECT_TRUE(j) << r.out << r.err;
    return j ? *j : Json();
  }

  std::unique_ptr<Process> Worker() {
    Process::Options o;
    o.argv = Global();
    o.argv.insert(o.argv.end(), {"worker", "start", "--store", store_, "--concurrency", "2",
                                 "--remediation-enabled", "yes"});
    auto p = std::make_unique<Process>(o);
    EXPECT_TRUE(p->WaitForOutput("worker.started", seconds(20))) << p->Stderr();
    return p;
  }

  std::unique_ptr<Process> Scheduler(const std::string& id, const std::string& agent,
                                     std::vector<std::string> extra = {}) {
    Process::Options o;
    o.argv = Global();
    o.argv.insert(o.argv.end(), {"scheduler",
                                 "start",
                                 "--store",
                                 store_,
                                 "--scheduler-id",
                                 id,
                                 "--tick",
                                 "200ms",
                                 "--lease",
                                 "1s",
                                 "--remediation-enabled",
                                 "yes",
                                 "--remediation-dry-run",
                                 "no",
                                 "--remediation-retry-after-fix",
                                 "yes",
                                 "--remediation-scan-interval",
                                 "1s",
                                 "--remediation-idle-load",
                                 "1000000",
                                 "--remediation-claim-lease",
                                 "2s",
                                 "--remediation-agent",
                                 agent + " {workspace}",
                                 "--remediation-agent-read-paths",
                                 std::string(FERRY_SOURCE_DIR) + "/examples/remediation",
                                 "--remediation-workspace-dir",
                                 (dir_.path() / "ws").string()});
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(o);
  }

  std::string Example(const std::string& name) {
    return std::string(FERRY_SOURCE_DIR) + "/examples/remediation/" + name;
  }

  Json Candidates() { return FerryJson({"remediation", "list"})["remediations"]; }

  // The candidate of `workflow` once `pred` holds for it.
  Json WaitCandidate(const std::string& workflow, const std::function<bool(const Json&)>& pred,
                     std::chrono::milliseconds timeout) {
    Json found;
    Eventually(
        [&] {
          for (const auto& c : Candidates()) {
            if (c["workflow"] == workflow && pred(c)) {
              found = c;
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }

  std::string Script(const std::string& name, const std::string& body) {
    const auto path = dir_.path() / name;
    std::ofstream(path) << "#!/bin/sh\nset -eu\n" << body;
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  }

  TempDir dir_;
  std::string store_;
  std::string prefix_;
};

TEST_P(RemediationE2E, FailureToFixedVersionAndSucceedingRetry) {
  auto worker = Worker();
  for (const auto& f : {Example("typo.yaml"), Example("unreachable.yaml")}) {
    auto r = Ferry({"workflow", "apply", f});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::ofstream(dir_.path() / "slow.yaml") << "name: slow\nnodes:\n  wait:\n    kind: delay\n"
                                              "    duration: 4s\n";
  ASSERT_EQ(Ferry({"workflow", "apply", (dir_.path() / "slow.yaml").string()}).exit_code, 0);

  // Two identical failures make one candidate.
  for (int i = 0; i < 2; ++i) {
    auto r = Ferry({"workflow", "run", "typo", "--wait", "--timeout", "30s"});
    ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  }
  ASSERT_EQ(Ferry({"workflow", "run", "unreachable", "--wait", "--timeout", "30s"}).exit_code, 1);
  Json typo = WaitCandidate(
      "typo", [](const Json& c) { return c["occurrences"] == 2; }, seconds(10));
  ASSERT_FALSE(typo.is_null()) << Candidates().dump();
  EXPECT_EQ(typo["status"], "pending");
  EXPECT_EQ(typo["failed_node"], "greet");
  EXPECT_EQ(Candidates().size(), 2u);
  EXPECT_TRUE(worker->WaitForOutput("remediation.recorded", seconds(5)));

  // A run is active: the scheduler skips, and says why.
  auto slow = Ferry({"workflow", "run", "slow"});
  ASSERT_EQ(slow.exit_code, 0) << slow.err;
  std::string slow_id = slow.out.substr(0, slow.out.find('\n'));
  ASSERT_TRUE(Eventually(
      [&] {
        return FerryJson({"run", "show", slow_id})["run"]["status"] == "running";
      },
      seconds(10)));
  auto sched = Scheduler("sched-a", Example("agent.sh"));
  ASSERT_TRUE(sched->WaitForOutput("remediation.skipped reason=runs_active", seconds(15)))
      << sched->Stderr();
  for (const auto& c : Candidates()) EXPECT_EQ(c["status"], "pending") << c.dump();

  // Idle again: the typo is fixed, the retry run of version 2 succeeds.
  Json fixed = WaitCandidate(
      "typo", [](const Json& c) { return c["status"] == "fixed"; }, seconds(60));
  ASSERT_FALSE(fixed.is_null()) << Candidates().dump() << sched->Stderr();
  EXPECT_EQ(fixed["classification"], "workflow_fixable");
  EXPECT_EQ(fixed["fixed_version"], 2);
  Json versions = FerryJson({"workflow", "versions", "typo"});
  ASSERT_TRUE(versions.contains("versions")) << versions.dump();
  const std::string vtext = versions.dump();
  EXPECT_TRUE(Has(vtext, "ferry-remediation")) << vtext;
  const std::string retry = fixed["retry_run_id"].get<std::string>();
  ASSERT_TRUE(Eventually(
      [&] {
        return FerryJson({"run", "show", retry})["run"]["status"] == "succeeded";
      },
      seconds(30)));
  Json retry_run = FerryJson({"run", "show", retry})["run"];
  EXPECT_EQ(retry_run["triggered_by"], "remediation");
  EXPECT_EQ(retry_run["version"], 2);
  auto diff = Ferry({"remediation", "diff", fixed["id"].get<std::string>()});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_TRUE(Has(diff.out, "+    argv: [echo,")) << diff.out;

  // The connection refused: a note, no version.
  Json note = WaitCandidate(
      "unreachable", [](const Json& c) { return c["status"] == "note_only"; }, seconds(60));
  ASSERT_FALSE(note.is_null()) << Candidates().dump() << sched->Stderr();
  EXPECT_EQ(note["classification"], "external_dependency");
  EXPECT_EQ(FerryJson({"workflow", "show", "unreachable"})["version"]["version"], 1);

  const std::string log = sched->Stderr() + sched->Stdout();
  EXPECT_TRUE(Has(log, "remediation.claimed")) << log;
  EXPECT_TRUE(Has(log, "remediation.fixed")) << log;
  EXPECT_TRUE(Has(log, "remediation.note_only")) << log;
}

INSTANTIATE_TEST_SUITE_P(Backends, RemediationE2E, ::testing::Values("sqlite", "postgres"),
                         [](const auto& param_info) { return param_info.param; });

class RemediationTakeover : public RemediationE2E {};

TEST_P(RemediationTakeover, AKilledSchedulersClaimIsTakenOverAfterItsLease) {
  auto worker = Worker();
  ASSERT_EQ(Ferry({"workflow", "apply", Example("typo.yaml")}).exit_code, 0);
  ASSERT_EQ(Ferry({"workflow", "run", "typo", "--wait", "--timeout", "30s"}).exit_code, 1);
  ASSERT_FALSE(WaitCandidate(
                   "typo", [](const Json&) { return true; }, seconds(10))
                   .is_null());
  // The first attempt hangs; later ones run the example agent. (failure.json is indented by
  // two: the candidate's attempt, not the run's, is at the first level.)
  const std::string marker = "ferry-hang-" + RandomHex(6);
  const std::string agent =
      Script("hang-once.sh",
             "if grep -q '^  \"attempt\": 1,' \"$1/failure.json\"; then\n  sh -c 'sleep "
             "600; echo " +
                 marker + "'\nfi\nexec " + Example("agent.sh") + " \"$1\"\n");
  auto a = Scheduler("sched-a", agent);
  ASSERT_TRUE(a->WaitForOutput("remediation.claimed", seconds(20))) << a->Stderr();
  ASSERT_TRUE(Eventually([&] { return ProcessesWith(marker) > 0; }, seconds(10)));
  a->Signal(SIGKILL);
  a->Wait(seconds(10));
  // The agent died with its scheduler; the claim did not.
  EXPECT_TRUE(Eventually([&] { return ProcessesWith(marker) == 0; }, seconds(10)));
  EXPECT_EQ(Candidates()[0]["status"], "claimed");

  auto b = Scheduler("sched-b", agent);
  Json fixed = WaitCandidate(
      "typo", [](const Json& c) { return c["status"] == "fixed"; }, seconds(60));
  ASSERT_FALSE(fixed.is_null()) << Candidates().dump() << b->Stderr();
  Json shown = FerryJson({"remediation", "show", fixed["id"].get<std::string>()})["remediation"];
  const Json& history = shown["attempt_history"];
  ASSERT_EQ(history.size(), 2u) << shown.dump();
  EXPECT_EQ(history[0]["owner"], "sched-a");
  EXPECT_EQ(history[0]["outcome"], "expired");
  EXPECT_EQ(history[1]["owner"], "sched-b");
  EXPECT_EQ(history[1]["outcome"], "fixed");
  EXPECT_TRUE(Has(b->Stderr(), "remediation.expired")) << b->Stderr();
}

TEST_P(RemediationTakeover, TwoSchedulersClaimACandidateOnce) {
  auto worker = Worker();
  ASSERT_EQ(Ferry({"workflow", "apply", Example("typo.yaml")}).exit_code, 0);
  ASSERT_EQ(Ferry({"workflow", "run", "typo", "--wait", "--timeout", "30s"}).exit_code, 1);
  ASSERT_FALSE(WaitCandidate(
                   "typo", [](const Json&) { return true; }, seconds(10))
                   .is_null());
  // A slow agent, so both schedulers scan while the attempt runs.
  const std::string agent = Script("slow.sh", "sleep 3\nexec " + Example("agent.sh") + " \"$1\"\n");
  auto a = Scheduler("sched-a", agent);
  auto b = Scheduler("sched-b", agent);
  Json fixed = WaitCandidate(
      "typo", [](const Json& c) { return c["status"] == "fixed"; }, seconds(60));
  ASSERT_FALSE(fixed.is_null()) << a->Stderr() << b->Stderr();
  Json shown = FerryJson({"remediation", "show", fixed["id"].get<std::string>()})["remediation"];
  EXPECT_EQ(shown["attempt_history"].size(), 1u) << shown.dump();
  EXPECT_EQ(Count(a->Stderr() + b->Stderr(), "remediation.claimed"), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, RemediationTakeover, ::testing::Values("sqlite"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace ferry::testing
