// Capture where a run is persisted as failed: the `ferry.run` handler executes a real workflow
// whose shell node fails, and its on_run_failed hook records the candidate after the run's
// FinishRun committed. A capture that cannot write changes nothing about the run or the task.
#include <gtest/gtest.h>

#include "fixture.h"
#include "runs/handler.h"
#include "runs/runs.h"
#include "store/store_wrapper.h"
#include "worker/handler.h"

namespace ferry::testing {
namespace {

class NullEmitter : public EventEmitter {
 public:
  void Emit(const std::string&, Json) override {}
};

// Fails every RecordRemediation, as a store that lost its connection would.
class NoRecordStore final : public StoreWrapper {
 public:
  using StoreWrapper::StoreWrapper;
  Result<RecordRemediationResult> RecordRemediation(const RecordRemediationRequest&) override {
    ++calls;
    return Fail(ErrorCode::kUnavailable, "database went away");
  }
  int calls = 0;
};

constexpr const char* kTypo = R"(name: typo
nodes:
  greet:
    kind: shell
    argv: [ehco, hi]
)";

class CaptureTest : public RemediationTest {
 protected:
  // Runs the run's task through the handler by hand; returns the handler's result.
  HandlerResult Execute(const runs::RunHandlerOptions& options, const std::string& run_id) {
    auto handler = runs::MakeRunHandler(*stores_, *brokers_, options);
    NullEmitter emitter;
    TaskContext ctx;
    ctx.id = "task-" + run_id;
    ctx.kind = "ferry.run";
    ctx.payload = runs::RunTaskPayload(run_id, 0);
    ctx.epoch = 1;
    ctx.events = &emitter;
    return handler(ctx);
  }
  // Applies the workflow whose node fails and starts a run of it; "" after a failure it reports.
  std::string StartTypo() {
    Apply(kTypo);
    runs::StartRunRequest start;
    start.workflow = "typo";
    auto started = runs::StartRun(*store_, *broker_, start);
    EXPECT_TRUE(started) << started.error().message;
    return started ? started->run.id : std::string();
  }
};

using CaptureFailureTest = CaptureTest;

TEST_P(CaptureTest, TheRunHandlerCapturesAfterTheRunIsFailed) {
  const std::string run_id = StartTypo();
  ASSERT_FALSE(run_id.empty());
  remediation::Settings on;
  on.enabled = true;
  const runs::RunFailedHook capture = remediation::CaptureHook(on, nullptr);
  ASSERT_TRUE(capture);
  bool failed_before_capture = false;
  runs::RunHandlerOptions o;
  o.on_run_failed = [&](Store& store, const ferry::Run& run) {
    auto now = store.GetRun(run.id);
    failed_before_capture = now && *now && (*now)->status == RunStatus::kFailed;
    capture(store, run);
  };
  auto result = Execute(o, run_id);
  ASSERT_TRUE(result) << result.error().message;  // a failed run is a finished task
  EXPECT_EQ((*result)["status"], "failed");
  EXPECT_TRUE(failed_before_capture);
  auto page = store_->ListRemediations({});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->remediations.size(), 1u);
  const Remediation& m = page->remediations[0];
  EXPECT_EQ(m.run_id, run_id);
  EXPECT_EQ(m.failed_node, "greet");
  EXPECT_NE(m.error.find("program 'ehco' not found"), std::string::npos) << m.error;
  // Disabled: no hook at all.
  EXPECT_FALSE(remediation::CaptureHook(remediation::Settings{}, nullptr));
}

// A run's input under a secret-like key that its program printed into the error: the candidate
// holds neither the input nor the copy in clear.
TEST_P(CaptureTest, AnInputUnderASecretLikeKeyIsHiddenInTheErrorItWasPrintedInto) {
  Apply(R"(name: snoop
inputs:
  password: {type: string}
nodes:
  login:
    kind: shell
    argv: [sh, -c, 'echo "pw=$P rejected" >&2; exit 1']
    env: {P: "{{ inputs.password }}"}
)");
  runs::StartRunRequest start;
  start.workflow = "snoop";
  start.inputs = Json{{"password", "hunter2hunter2"}};
  auto started = runs::StartRun(*store_, *broker_, start);
  ASSERT_TRUE(started) << started.error().message;
  remediation::Settings on;
  on.enabled = true;
  runs::RunHandlerOptions o;
  o.on_run_failed = remediation::CaptureHook(on, nullptr);
  auto result = Execute(o, started->run.id);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ((*result)["status"], "failed");
  auto page = store_->ListRemediations({});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->remediations.size(), 1u);
  const Remediation& m = page->remediations[0];
  EXPECT_NE(m.error.find("pw=[REDACTED:inputs.password] rejected"), std::string::npos) << m.error;
  EXPECT_EQ(m.error.find("hunter2"), std::string::npos) << m.error;
  EXPECT_EQ(m.error_normalized.find("hunter2"), std::string::npos) << m.error_normalized;
  EXPECT_EQ(m.context.find("hunter2"), std::string::npos) << m.context;
}

TEST_P(CaptureFailureTest, ACaptureThatCannotWriteLeavesTheRunAndTheTaskAlone) {
  const std::string run_id = StartTypo();
  ASSERT_FALSE(run_id.empty());
  int calls = 0;
  runs::RunHandlerOptions o;
  o.on_run_failed = [&](Store& store, const ferry::Run& run) {
    NoRecordStore broken(store);
    remediation::CaptureFailedRun(broken, run, {});
    calls += broken.calls;
  };
  auto result = Execute(o, run_id);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ((*result)["status"], "failed");
  EXPECT_EQ(calls, 1);
  auto run = store_->GetRun(run_id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, RunStatus::kFailed);
  EXPECT_TRUE(store_->ListRemediations({})->remediations.empty());
  // Capture refuses a run that did not fail.
  auto ok = remediation::Capture(*store_, **run, {});
  ASSERT_TRUE(ok);  // this one is failed
  (*run)->status = RunStatus::kSucceeded;
  auto bad = remediation::Capture(*store_, **run, {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

// The context holds the run's last events, however long its history: a run of more than
// twenty thousand events (the pages an earlier capture read from the start before giving up),
// and a bound in bytes that keeps only the newest events that fit.
TEST_P(CaptureFailureTest, TheContextHoldsTheRunsLastEventsBoundedByCountAndBytes) {
  const std::string run_id = StartTypo();
  ASSERT_FALSE(run_id.empty());
  auto result = Execute({}, run_id);  // no hook: nothing captured yet
  ASSERT_TRUE(result) << result.error().message;
  int64_t last = 0;
  for (int batch = 0; batch < 21; ++batch) {
    std::vector<NewRunEvent> events(1000, NewRunEvent{"log", R"({"line":"x"})"});
    auto appended = store_->AppendRunEvents(run_id, events);
    ASSERT_TRUE(appended) << appended.error().message;
    last = *appended;
  }
  ASSERT_GT(last, 21000);
  auto run = store_->GetRun(run_id);
  ASSERT_TRUE(run && *run);
  const auto context_events = [](const remediation::CaptureResult& r) {
    auto context = ParseJson(r.remediation.context);
    return context ? (*context)["events"] : Json();
  };
  auto captured = remediation::Capture(*store_, **run, {});
  ASSERT_TRUE(captured) << captured.error().message;
  Json events = context_events(*captured);
  ASSERT_EQ(events.size(), 50u);
  EXPECT_EQ(events.front()["seq"], last - 49);
  EXPECT_EQ(events.back()["seq"], last);

  // Bytes: each event's data is 12 bytes, so 30 bytes take the last three (the third reaches
  // them). Dismissing the first candidate lets the same failure make a new one.
  ASSERT_TRUE(store_->DismissRemediation(captured->remediation.id, "test"));
  remediation::CaptureOptions options;
  options.max_event_bytes = 30;
  captured = remediation::Capture(*store_, **run, options);
  ASSERT_TRUE(captured) << captured.error().message;
  ASSERT_TRUE(captured->created);
  events = context_events(*captured);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events.back()["seq"], last);
}

INSTANTIATE_TEST_SUITE_P(Backends, CaptureTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& param_info) { return param_info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, CaptureFailureTest, ::testing::Values("sqlite"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace ferry::testing
