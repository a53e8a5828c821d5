// Remediation attempts in process against a real store (SQLite, PostgreSQL) and redis-server,
// with real agent processes in the real sandbox: dry run, fix and retry run, the artifact
// checks, the timeout that kills the agent's process group, what the sandbox keeps from the
// agent, and an enqueue failure that leaves the new version in place.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "broker/broker.h"
#include "core/ids.h"
#include "core/time_util.h"
#include "files.h"
#include "fixture.h"
#include "forwarding_broker.h"
#include "remediation/actions.h"
#include "remediation/sandbox.h"
#include "remediation/workspace.h"
#include "runs/runs.h"

namespace ferry::testing {
namespace {

namespace fs = std::filesystem;
using remediation::SandboxMode;

constexpr const char* kTypo = R"(name: typo
description: misspelled program
inputs:
  who:
    type: string
    default: World
nodes:
  greet:
    kind: shell
    argv: [ehco, "Hello, {{ inputs.who }}!"]
)";
constexpr const char* kTypoError = "greet: program 'ehco' not found or not executable";

bool Has(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

// Processes whose command line holds `marker`.
int ProcessesWith(const std::string& marker) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = ReadAll(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (Has(cmd, marker)) ++n;
  }
  return n;
}

using AttemptTest = RemediationTest;
// Rules that do not depend on the store's backend: SQLite only, to keep the suite short.
using AttemptRulesTest = RemediationTest;

TEST_P(AttemptTest, DryRunRecordsANoteAndNoVersion) {
  Workflow wf = Apply(kTypo);
  Capture(FailRun(wf, "greet", kTypoError));
  Remediation claimed = ClaimOne();
  auto out = Attempt(claimed, Settings({ExampleAgent(), "{workspace}"}));
  ASSERT_FALSE(out.lost);
  const Remediation& m = out.remediation;
  EXPECT_EQ(m.status, RemediationStatus::kNoteOnly) << m.reason;
  EXPECT_EQ(m.classification, "workflow_fixable");
  EXPECT_TRUE(Has(m.note, "ehco"));
  EXPECT_TRUE(Has(m.proposed_source, "argv: [echo,"));
  auto result = ParseJson(m.result);
  ASSERT_TRUE(result);
  EXPECT_EQ((*result)["dry_run"], true);
  EXPECT_EQ((*result)["would_fix"], true);
  EXPECT_EQ((*result)["artifacts"].size(), 3u);  // classification, note, workflow.yaml
  EXPECT_EQ((*result)["sandboxed"], remediation::ProbeSandbox().works);
  EXPECT_EQ((*store_->GetWorkflowById(wf.id))->current_version, 1);  // no version made
  auto diff = remediation::Diff(*store_, {m.id});
  ASSERT_TRUE(diff) << diff.error().message;
  EXPECT_TRUE(Has(diff->diff, "-    argv: [ehco,")) << diff->diff;
  EXPECT_TRUE(Has(diff->diff, "+    argv: [echo,")) << diff->diff;
  EXPECT_EQ(diff->to_version, 0);
  // The workspace is gone after the attempt.
  EXPECT_TRUE(fs::is_empty((dir_.path() / "workspaces")));
}

TEST_P(AttemptTest, FixMakesAVersionAndARetryRun) {
  Workflow wf = Apply(kTypo);
  ferry::Run failed = FailRun(wf, "greet", kTypoError, R"({"who":"Ada"})");
  Capture(failed);
  Remediation claimed = ClaimOne();
  auto s = Settings({ExampleAgent(), "{workspace}"});
  s.dry_run = false;
  s.retry_after_fix = true;
  auto out = Attempt(claimed, s);
  const Remediation& m = out.remediation;
  ASSERT_EQ(m.status, RemediationStatus::kFixed) << m.reason;
  EXPECT_EQ(m.fixed_version, 2);
  auto v2 = store_->GetWorkflowVersion(wf.id, 2);
  ASSERT_TRUE(v2 && *v2);
  EXPECT_EQ((*v2)->author, "ferry-remediation");
  for (const std::string& part : {m.id, failed.id, std::string("workflow_fixable"), m.summary}) {
    EXPECT_TRUE(Has((*v2)->notes, part)) << (*v2)->notes;
  }
  EXPECT_TRUE(Has((*v2)->source, "argv: [echo,"));
  ASSERT_FALSE(m.retry_run_id.empty());
  auto retry = store_->GetRun(m.retry_run_id);
  ASSERT_TRUE(retry && *retry);
  EXPECT_EQ((*retry)->version, 2);
  EXPECT_EQ((*retry)->triggered_by, TriggeredBy::kRemediation);
  EXPECT_EQ((*retry)->trigger_id, m.id);
  EXPECT_EQ((*retry)->inputs, failed.inputs);
  EXPECT_TRUE(m.retry_error.empty()) << m.retry_error;
  // Enqueued: the run's task is in the broker.
  auto task = runs::LatestRunTask(*store_, m.retry_run_id);
  ASSERT_TRUE(task && *task);
  auto rec = broker_->GetTask((*task)->task_id);
  ASSERT_TRUE(rec && *rec);
  auto attempts = store_->ListRemediationAttempts(m.id);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].outcome, "fixed");
  EXPECT_GE((*attempts)[0].agent_ms, 0);
}

// A fix that fails is not fixed again on its own: that chained a version per failure until the
// daily cap. Its candidate is held (failed, no further attempt, still gathering the failures)
// until a person reopens it; reopened, the agent tries.
TEST_P(AttemptTest, AFailingFixIsHeldForAPersonNotFixedAgain) {
  Workflow wf = Apply(kTypo);
  Capture(FailRun(wf, "greet", kTypoError));
  auto s = Settings({ExampleAgent(), "{workspace}"});
  s.dry_run = false;
  auto fixed = Attempt(ClaimOne(), s);
  ASSERT_EQ(fixed.remediation.status, RemediationStatus::kFixed) << fixed.remediation.reason;
  // Version 2, the fix, fails too (the same way, as far as the agent is concerned).
  Workflow at_fix = *(*store_->GetWorkflowById(wf.id));
  ASSERT_EQ(at_fix.current_version, 2);
  Remediation second = Capture(FailRun(at_fix, "greet", kTypoError));
  EXPECT_NE(second.id, fixed.remediation.id);
  auto held = Attempt(ClaimOne(), s);
  const Remediation& m = held.remediation;
  EXPECT_EQ(m.status, RemediationStatus::kFailed);
  EXPECT_EQ(m.next_attempt_ms, 0);  // no further attempt
  EXPECT_EQ(m.reason,
            "version 2 is itself an automatic fix, and it fails: not fixed again "
            "automatically; `ferry remediation reopen " +
                m.id + "` lets the agent try");
  EXPECT_EQ((*store_->GetWorkflowById(wf.id))->current_version, 2);  // no version 3
  // Later failures of version 2 gather on the held candidate.
  EXPECT_EQ(Capture(FailRun(at_fix, "greet", kTypoError)).id, m.id);
  // Reopened by a person, the agent runs (and, version 2 being right already, changes nothing).
  ASSERT_TRUE(remediation::Reopen(*store_, {m.id, "test"}));
  auto again = Attempt(ClaimOne(), s);
  EXPECT_EQ(again.remediation.reason,
            "invalid artifacts: classified workflow_fixable but workflow.yaml was not changed");
  auto attempts = store_->ListRemediationAttempts(m.id);
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_LT((*attempts)[0].agent_ms, 0);  // held: no agent
  EXPECT_GE((*attempts)[1].agent_ms, 0);  // reopened: the agent ran
}

// A broker whose submissions fail, as when Redis is unreachable right after the fix.
class NoSubmitBroker final : public testing::ForwardingBroker {
 public:
  using ForwardingBroker::ForwardingBroker;
  Result<SubmitResult> Submit(const SubmitRequest&) override {
    return Fail(ErrorCode::kUnavailable, "redis went away");
  }
  Result<std::vector<SubmitResult>> SubmitBatch(const std::vector<SubmitRequest>&) override {
    return Fail(ErrorCode::kUnavailable, "redis went away");
  }
};

TEST_P(AttemptRulesTest, EnqueueFailureIsRecordedAndKeepsTheVersion) {
  Workflow wf = Apply(kTypo);
  Capture(FailRun(wf, "greet", kTypoError));
  Remediation claimed = ClaimOne();
  auto s = Settings({ExampleAgent(), "{workspace}"});
  s.dry_run = false;
  s.retry_after_fix = true;
  NoSubmitBroker broken(*broker_);
  auto out = Attempt(claimed, s, &broken);
  ASSERT_EQ(out.remediation.status, RemediationStatus::kFixed) << out.remediation.reason;
  EXPECT_EQ((*store_->GetWorkflowById(wf.id))->current_version, 2);
  auto m = *store_->GetRemediation(claimed.id);
  EXPECT_TRUE(Has(m->retry_error, "could not be enqueued")) << m->retry_error;
  EXPECT_TRUE(Has(m->retry_error, "redis went away"));
  // The run stays pending for the sweeper.
  auto run = store_->GetRun(m->retry_run_id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, RunStatus::kPending);
}

TEST_P(AttemptRulesTest, ArtifactViolationsFailTheAttempt) {
  Workflow wf = Apply(kTypo);
  const std::string valid =
      "printf '{\"classification\": \"unknown\", \"summary\": \"s\", \"confidence\": 0.1}' "
      ">classification.json\nprintf 'note\\n' >developer_note.md\n";
  struct Case {
    std::string name;
    std::string body;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"extra", valid + "echo x >extra.txt\n", "unexpected file extra.txt"},
      {"symlink", valid + "ln -s /etc/passwd link\n", "link is a symbolic link"},
      {"subdir", valid + "mkdir d\n", "unexpected directory d"},
      {"invalid_yaml",
       "printf '{\"classification\": \"workflow_fixable\", \"summary\": \"s\", \"confidence\": "
       "1}' >classification.json\nprintf 'n' >developer_note.md\nprintf 'name: typo\\nnodes: "
       "[\\n' >workflow.yaml\n",
       "does not pass ingestion"},
      {"renamed",
       "printf '{\"classification\": \"workflow_fixable\", \"summary\": \"s\", \"confidence\": "
       "1}' >classification.json\nprintf 'n' >developer_note.md\nsed -i 's/^name: typo/name: "
       "other/' workflow.yaml\n",
       "names workflow 'other'"},
      {"mismatch", valid + "echo '# changed' >>workflow.yaml\n", "not a fixable class"},
      {"exit", valid + "exit 7\n", "exited with status 7"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    ferry::Run run = FailRun(wf, "greet", "error number " + std::string(1, char('a' + i)));
    Capture(run);
    Remediation claimed = ClaimOne();
    auto s = Settings({Script(cases[i].name + ".sh", cases[i].body), "{workspace}"});
    s.attempt_cap = 1;
    auto out = Attempt(claimed, s);
    const Remediation& m = out.remediation;
    EXPECT_EQ(m.status, RemediationStatus::kFailed);
    EXPECT_TRUE(Has(m.reason, cases[i].reason)) << m.reason;
    EXPECT_EQ(m.next_attempt_ms, 0);  // attempt cap 1: no further attempt
    if (cases[i].name == "invalid_yaml") {
      auto result = ParseJson(m.result);
      ASSERT_TRUE(result);
      ASSERT_TRUE((*result)["diagnostics"].is_array());
      EXPECT_GE((*result)["diagnostics"].size(), 1u);
      EXPECT_TRUE((*result)["diagnostics"][0].contains("line"));
    }
    EXPECT_EQ((*store_->GetWorkflowById(wf.id))->current_version, 1);
  }
}

TEST_P(AttemptRulesTest, AFailedAttemptBacksOffWhileAttemptsRemain) {
  Workflow wf = Apply(kTypo);
  Capture(FailRun(wf, "greet", kTypoError));
  Remediation claimed = ClaimOne();
  auto s = Settings({Script("fail.sh", "exit 3\n"), "{workspace}"});
  s.attempt_cap = 2;
  s.backoff = std::chrono::minutes(5);
  const int64_t before = WallNowMs();
  auto out = Attempt(claimed, s);
  EXPECT_EQ(out.remediation.status, RemediationStatus::kFailed);
  // Backoff 5m with jitter in [2.5m, 5m].
  EXPECT_GE(out.remediation.next_attempt_ms, before + 150'000);
  EXPECT_LE(out.remediation.next_attempt_ms, WallNowMs() + 300'000);
}

TEST_P(AttemptRulesTest, TimeoutKillsTheAgentsProcessGroup) {
  Workflow wf = Apply(kTypo);
  Capture(FailRun(wf, "greet", kTypoError));
  Remediation claimed = ClaimOne();
  const std::string marker = "ferry-timeout-marker-" + RandomHex(6);
  auto s = Settings({Script("slow.sh", "sh -c 'sleep 600; echo " + marker +
                                           "' &\nsh -c 'sleep 600; echo " + marker + "'\n"),
                     "{workspace}"});
  s.agent_timeout = std::chrono::seconds(2);
  auto started = std::chrono::steady_clock::now();
  auto out = Attempt(claimed, s);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LT(took, std::chrono::seconds(20));
  EXPECT_EQ(out.remediation.status, RemediationStatus::kFailed);
  EXPECT_TRUE(Has(out.remediation.reason, "did not finish within 2.0s")) << out.remediation.reason;
  EXPECT_TRUE(Has(out.remediation.reason, "process group was killed"));
  // Every process the agent started is gone (the background one included).
  EXPECT_TRUE(Eventually([&] { return ProcessesWith(marker) == 0; }, std::chrono::seconds(10)))
      << ProcessesWith(marker) << " process(es) left";
}

INSTANTIATE_TEST_SUITE_P(Backends, AttemptTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& param_info) { return param_info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, AttemptRulesTest, ::testing::Values("sqlite"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace ferry::testing
