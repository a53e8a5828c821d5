// LocalService's request rules and answers: bodies and queries are checked once, here, for the
// API and the CLI alike. A SQLite store in a TempDir and a FakeBroker; no servers.
#include <gtest/gtest.h>

#include <atomic>

#include "core/json_fields.h"
#include "core/pool.h"
#include "fake_broker.h"
#include "forwarding_broker.h"
#include "harness.h"
#include "service/local_service.h"
#include "service/query.h"
#include "store/store.h"
#include "wrapping_store_factory.h"

namespace ferry::service {
namespace {

constexpr const char* kWorkflow =
    "name: greet\ninputs:\n  who: {type: string, default: World}\nnodes:\n"
    "  hello:\n    kind: shell\n    argv: [echo, 'hi {{ inputs.who }}']\n";

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest()
      : stores_(
            [this]() -> Result<std::unique_ptr<Store>> {
              return OpenStore((dir_.path() / "ferry.db").string());
            },
            1),
        brokers_(
            // The pool owns (and may close) its connections; the test keeps looking at the one
            // fake underneath.
            [this]() -> Result<std::unique_ptr<Broker>> {
              return std::unique_ptr<Broker>(std::make_unique<testing::ForwardingBroker>(broker_));
            },
            1),
        service_(stores_, brokers_, {}) {}

  // Applies kWorkflow and starts a run of it: the run's id ("" when either fails).
  std::string StartGreetRun(const Caller& caller) {
    auto applied = service_.ApplyWorkflow(Json{{"source", kWorkflow}}, {});
    EXPECT_TRUE(applied) << applied.error().message;
    auto started = service_.StartRun(Json{{"workflow", "greet"}}, caller);
    EXPECT_TRUE(started) << started.error().message;
    return started ? (*started)["run"]["id"].get<std::string>() : std::string();
  }

  testing::TempDir dir_;
  testing::FakeBroker broker_;
  Pool<Store> stores_;
  Pool<Broker> brokers_;
  LocalService service_;
};

TEST(QueryReaderTest, UnknownAndOutOfRangeParametersAreNamed) {
  Query ok{{"status", "failed"}, {"limit", "1000"}};
  QueryReader a(ok);
  EXPECT_EQ(a.Text("status"), "failed");
  EXPECT_EQ(a.Limit(50, 1000), 1000);  // the maximum itself is fine
  EXPECT_TRUE(a.Finish());

  Query over{{"limit", "1001"}};  // one past
  QueryReader b(over);
  b.Limit(50, 1000);
  auto st = b.Finish();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("1 to 1000"), std::string::npos) << st.error().message;

  Query typo{{"satus", "failed"}};
  QueryReader c(typo);
  c.Text("status");
  st = c.Finish();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("unknown query parameter 'satus'"), std::string::npos);
  EXPECT_NE(st.error().message.find("known: status"), std::string::npos);

  // Given empty is not absent: refused, for a plain parameter and for the limit.
  for (const char* name : {"status", "limit"}) {
    Query empty{{name, ""}};
    QueryReader d(empty);
    d.Text("status");
    d.Limit(50, 1000);
    st = d.Finish();
    ASSERT_FALSE(st) << name;
    EXPECT_NE(st.error().message.find(std::string("query parameter '") + name + "' is empty"),
              std::string::npos)
        << st.error().message;
  }
}

TEST_F(ServiceTest, SubmitChecksTheBodyOnce) {
  auto ok = service_.SubmitTask(Json{{"kind", "echo"}, {"payload", {{"a", 1}}}});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ((*ok)["existing"], false);
  ASSERT_EQ(broker_.submitted.size(), 1u);
  EXPECT_EQ(broker_.submitted[0].queue, "default");

  auto unknown = service_.SubmitTask(Json{{"kind", "echo"}, {"paylod", 1}});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("paylod"), std::string::npos);
  auto both = service_.SubmitTask(Json{{"kind", "echo"}, {"delay", "5s"}, {"eta_ms", 1}});
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().message, "give delay or eta_ms, not both");
  auto run_kind = service_.SubmitTask(Json{{"kind", "ferry.run"}});
  ASSERT_FALSE(run_kind);
  EXPECT_NE(run_kind.error().message.find("starting a run"), std::string::npos);
  auto attempts = service_.SubmitTask(Json{{"kind", "echo"}, {"max_attempts", 1001}});
  ASSERT_FALSE(attempts);
  EXPECT_EQ(attempts.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(broker_.submitted.size(), 1u) << "nothing refused reached the broker";

  // A unique key answers with the first task.
  auto first = service_.SubmitTask(Json{{"kind", "echo"}, {"unique_key", "k"}});
  auto second = service_.SubmitTask(Json{{"kind", "echo"}, {"unique_key", "k"}});
  ASSERT_TRUE(first && second);
  EXPECT_EQ((*first)["id"], (*second)["id"]);
  EXPECT_EQ((*second)["existing"], true);
}

// A cancel, retry or purge whose answer was lost says it may have been done and how to see,
// and keeps "outcome": "unknown"; any other failure keeps its words.
TEST_F(ServiceTest, AChangeWhoseAnswerWasLostSaysItMayHaveBeenDone) {
  const std::string id = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  broker_.change_error = OutcomeUnknown(Error{ErrorCode::kUnavailable, "lost the connection"});
  auto cancel = service_.CancelTask(id);
  ASSERT_FALSE(cancel);
  EXPECT_EQ(cancel.error().message, "no answer came after the cancel of task " + id +
                                        " was sent, so it may have been done (`ferry task status " +
                                        id + "` shows whether): lost the connection");
  EXPECT_TRUE(OutcomeIsUnknown(cancel.error()));
  auto retry = service_.RetryTask(id);
  ASSERT_FALSE(retry);
  EXPECT_EQ(retry.error().message.rfind("no answer came after the retry of task " + id, 0), 0u)
      << retry.error().message;
  auto purge = service_.PurgeDead("default");
  ASSERT_FALSE(purge);
  EXPECT_EQ(purge.error().message.rfind("no answer came after the purge of queue default's dead "
                                        "letters was sent",
                                        0),
            0u)
      << purge.error().message;
  EXPECT_TRUE(OutcomeIsUnknown(purge.error()));
  auto retry_dead = service_.RetryDead("default");
  ASSERT_FALSE(retry_dead);
  EXPECT_EQ(retry_dead.error().message.rfind("no answer came after the retry of queue default's "
                                             "dead letters was sent",
                                             0),
            0u)
      << retry_dead.error().message;
  EXPECT_TRUE(OutcomeIsUnknown(retry_dead.error()));

  broker_.change_error = Error{ErrorCode::kUnavailable, "cannot connect"};
  auto plain = service_.CancelTask(id);
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().message, "cannot connect");
}

// A task a workflow run's task node waits for is refused a retry: the broker names the waiting
// task, and when that is a run's task the refusal names the run and the command to use instead
// (with the run in its details, for API callers). Any other waiter is named as the broker said.
// A run's own task is refused the same way.
TEST_F(ServiceTest, ARetryRefusedForARunsTaskNamesTheRun) {
  const std::string child = NewId(), run_task = NewId(), other = NewId();
  TaskRecord& run = broker_.tasks[run_task];
  run.id = run_task;
  run.kind = "ferry.run";
  run.payload = R"({"run_id":"RUN-7","generation":0})";
  broker_.tasks[other].id = other;
  broker_.tasks[other].kind = "echo";
  auto refuse = [&](const std::string& waiter) {
    broker_.change_error = Error{ErrorCode::kConflict,
                                 "task " + child + " is waited for by task " + waiter +
                                     ", which owns its end: retry that instead",
                                 DumpJson(Json{{"waiter", waiter}})};
    return service_.RetryTask(child);
  };
  auto by_run = refuse("runs/" + run_task);
  ASSERT_FALSE(by_run);
  EXPECT_EQ(by_run.error().code, ErrorCode::kConflict);
  EXPECT_EQ(by_run.error().message, "cannot retry task " + child +
                                        ": it is a task node's task of workflow run RUN-7, which "
                                        "owns its end: retry the run instead (ferry run retry "
                                        "RUN-7)");
  EXPECT_EQ(by_run.error().details, R"({"run_id":"RUN-7"})");

  auto by_task = refuse("default/" + other);
  ASSERT_FALSE(by_task);
  EXPECT_EQ(by_task.error().message, "cannot retry task " + child +
                                         ": it is waited for by task default/" + other +
                                         ", which owns its end: retry that instead");
  // Gone meanwhile (retention): the same.
  auto gone = refuse("runs/" + NewId());
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message.find("which owns its end: retry that instead"), std::string::npos);

  // A run's own task, dead-lettered or cancelled: retried while its run has not ended (that
  // resumes the run), refused once the run has ended (run again, it would find the run ended and
  // succeed doing nothing), naming what to do instead. Refused before the broker is asked.
  const std::string run_id = StartGreetRun(Caller{});
  ASSERT_FALSE(run_id.empty());
  const std::string own_task = NewId();
  TaskRecord& own_record = broker_.tasks[own_task];
  own_record.id = own_task;
  own_record.kind = "ferry.run";
  own_record.status = TaskStatus::kFailed;
  own_record.payload = DumpJson(Json{{"run_id", run_id}, {"generation", 0}});
  broker_.change_error = Error{ErrorCode::kUnavailable, "fake: the broker was asked"};
  auto pending = service_.RetryTask(own_task);  // the run is pending: the broker is asked
  ASSERT_FALSE(pending);
  EXPECT_EQ(pending.error().message, "fake: the broker was asked");
  ASSERT_TRUE(service_.CancelRun(run_id, Caller{}));
  auto own = service_.RetryTask(own_task);
  ASSERT_FALSE(own);
  EXPECT_EQ(own.error().code, ErrorCode::kConflict);
  EXPECT_EQ(own.error().message, "cannot retry task " + own_task +
                                     ": it is the task of workflow "
                                     "run " +
                                     run_id +
                                     ", which owns its end: retry the run "
                                     "instead (ferry run retry " +
                                     run_id + ")");
  EXPECT_EQ(own.error().details, DumpJson(Json{{"run_id", run_id}}));
  own_record.status = TaskStatus::kSucceeded;  // not failed or cancelled: the broker's answer
  auto succeeded = service_.RetryTask(own_task);
  ASSERT_FALSE(succeeded);
  EXPECT_EQ(succeeded.error().message, "fake: the broker was asked");

  // A conflict of another kind is told as before.
  broker_.change_error = Error{ErrorCode::kConflict, "task " + child +
                                                         " is running; only failed "
                                                         "or cancelled tasks can be retried"};
  auto running = service_.RetryTask(child);
  ASSERT_FALSE(running);
  EXPECT_EQ(running.error().message, "cannot retry task " + child +
                                         ": it is running; only "
                                         "failed or cancelled tasks can be retried");
}

// A pending run's cancel ends its history before Redis is asked anything (a follower gives up
// on an ended run whose end does not come, and Redis may be slow or away).
TEST_F(ServiceTest, ACancelledPendingRunsEndIsWrittenBeforeItsTaskIsCancelled) {
  const std::string id = StartGreetRun(Caller{});
  ASSERT_FALSE(id.empty());
  auto reader = OpenStore((dir_.path() / "ferry.db").string());
  ASSERT_TRUE(reader) << reader.error().message;
  std::vector<std::string> seen;  // the run's event types when its task's cancel was asked
  broker_.on_cancel = [&](const std::string&) {
    auto events = (*reader)->ListRunEvents(id, 0, 100);
    ASSERT_TRUE(events) << events.error().message;
    for (const auto& e : *events) seen.push_back(e.type);
  };
  broker_.change_error = Error{ErrorCode::kUnavailable, "fake: Redis is slow"};
  auto cancelled = service_.CancelRun(id, Caller{});
  ASSERT_TRUE(cancelled) << cancelled.error().message;
  ASSERT_FALSE(seen.empty()) << "the run's task was not asked to cancel";
  EXPECT_EQ(seen.back(), "run.finished");
}

TEST_F(ServiceTest, TaskQueriesAndNotFound) {
  auto missing = service_.GetTask("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message, "no task 01ARZ3NDEKTSV4RRFFQ69G5FAV");
  auto bad_status = service_.ListTasks({{"status", "bogus"}});
  ASSERT_FALSE(bad_status);
  EXPECT_NE(bad_status.error().message.find("unknown status 'bogus'"), std::string::npos);
  auto bad_queue = service_.ListDead("bad queue!", {});
  ASSERT_FALSE(bad_queue);
  EXPECT_EQ(bad_queue.error().code, ErrorCode::kInvalidArgument);
  auto bad_purge = service_.PurgeDead("bad queue!");
  ASSERT_FALSE(bad_purge);
  EXPECT_EQ(bad_purge.error().code, ErrorCode::kInvalidArgument);
  auto bad_retry = service_.RetryDead("bad queue!");
  ASSERT_FALSE(bad_retry);
  EXPECT_EQ(bad_retry.error().code, ErrorCode::kInvalidArgument);
  auto submitted = service_.SubmitTask(Json{{"kind", "echo"}});
  ASSERT_TRUE(submitted);
  auto bad_after = service_.TaskEvents((*submitted)["id"], {{"after", "12-x"}});
  ASSERT_FALSE(bad_after);
  EXPECT_NE(bad_after.error().message.find("after must be an event id"), std::string::npos);
  // Each part of an id is an unsigned 64-bit number, as Redis takes it: one past is refused.
  for (const char* after : {"18446744073709551616-0", "1-18446744073709551616",
                            "99999999999999999999", "0-99999999999999999999"}) {
    auto over = service_.TaskEvents((*submitted)["id"], {{"after", after}});
    ASSERT_FALSE(over) << after;
    EXPECT_EQ(over.error().code, ErrorCode::kInvalidArgument) << after;
  }
  // The edges pass the check (and reach the broker, which this fake does not read events from).
  for (const char* after : {"18446744073709551615-18446744073709551615", "0", "0-0"}) {
    auto edge = service_.TaskEvents((*submitted)["id"], {{"after", after}});
    EXPECT_TRUE(edge || edge.error().message.find("after must be") == std::string::npos)
        << after << ": " << edge.error().message;
  }
  auto shown = service_.GetTask((*submitted)["id"]);
  ASSERT_TRUE(shown);
  EXPECT_EQ((*shown)["task"]["kind"], "echo");
  EXPECT_EQ((*shown)["task"]["status"], "pending");
}

TEST_F(ServiceTest, WorkflowsAndRuns) {
  auto bad = service_.ApplyWorkflow(
      Json{{"source", "name: bad\nnodes:\n  a:\n    kind: shell\n    needs: [nope]\n"}}, {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  auto details = ParseJson(bad.error().details);
  ASSERT_TRUE(details) << bad.error().details;
  ASSERT_TRUE((*details)["diagnostics"].is_array());
  EXPECT_FALSE((*details)["diagnostics"].empty());

  auto applied = service_.ApplyWorkflow(Json{{"source", kWorkflow}, {"author", "ada"}}, {});
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_EQ((*applied)["created"], true);
  EXPECT_EQ((*applied)["version"]["author"], "ada");
  auto again = service_.ApplyWorkflow(Json{{"source", kWorkflow}}, {});
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)["created"], false);

  auto versions = service_.ListVersions("greet");
  ASSERT_TRUE(versions);
  ASSERT_EQ((*versions)["versions"].size(), 1u);
  EXPECT_EQ((*versions)["versions"][0]["current"], true);
  auto v0 = service_.GetVersion("greet", "0");
  ASSERT_FALSE(v0);
  EXPECT_EQ(v0.error().code, ErrorCode::kInvalidArgument);
  auto v2 = service_.GetVersion("greet", "2");  // one past the latest
  ASSERT_FALSE(v2);
  EXPECT_EQ(v2.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(service_.GetVersion("greet", "1"));

  Caller cli;
  auto bad_inputs =
      service_.StartRun(Json{{"workflow", "greet"}, {"inputs", {{"whom", "x"}}}}, cli);
  ASSERT_FALSE(bad_inputs);
  EXPECT_EQ(bad_inputs.error().code, ErrorCode::kInvalidArgument);
  auto bad_queue = service_.StartRun(Json{{"workflow", "greet"}, {"queue", "no spaces"}}, cli);
  ASSERT_FALSE(bad_queue);
  auto started = service_.StartRun(Json{{"workflow", "greet"}, {"queue", "runs"}}, cli);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ((*started)["enqueued"], true);
  EXPECT_EQ((*started)["run"]["triggered_by"], "cli");
  ASSERT_FALSE(broker_.submitted.empty());
  EXPECT_EQ(broker_.submitted.back().queue, "runs");
  const std::string id = (*started)["run"]["id"];

  auto listed = service_.ListWorkflows();
  ASSERT_TRUE(listed);
  EXPECT_EQ((*listed)["workflows"][0]["last_run"]["id"], id);
  auto runs = service_.ListRuns({{"workflow", "greet"}, {"status", "pending"}});
  ASSERT_TRUE(runs);
  EXPECT_EQ((*runs)["runs"].size(), 1u);
  auto nowf = service_.ListRuns({{"workflow", "nope"}});
  ASSERT_FALSE(nowf);
  EXPECT_EQ(nowf.error().code, ErrorCode::kNotFound);
  auto events = service_.RunEvents(id, {{"after", "-1"}});
  ASSERT_FALSE(events);
  auto page = service_.RunEvents(id, {{"limit", "1"}});
  ASSERT_TRUE(page);
  ASSERT_EQ((*page)["events"].size(), 1u);
  EXPECT_TRUE((*page)["next_cursor"].is_string()) << "a full page says where to go on";

  // Cancel: the first succeeds, the second is a conflict naming the status.
  auto cancelled = service_.CancelRun(id, cli);
  ASSERT_TRUE(cancelled) << cancelled.error().message;
  EXPECT_EQ((*cancelled)["run"]["status"], "cancelled");
  auto twice = service_.CancelRun(id, cli);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kConflict);
  EXPECT_NE(twice.error().message.find("it already ended (cancelled)"), std::string::npos);
  // Retry goes to the queue the cancelled run used.
  auto retried = service_.RetryRun(id, Json::object());
  ASSERT_TRUE(retried) << retried.error().message;
  EXPECT_EQ((*retried)["run"]["retry_of"], id);
  EXPECT_EQ(broker_.submitted.back().queue, "runs");
  auto unknown_field = service_.RetryRun(id, Json{{"latest", true}});
  ASSERT_FALSE(unknown_field);
  EXPECT_EQ(unknown_field.error().code, ErrorCode::kInvalidArgument);
}

// The step the API's run event streams and FollowRunEvents are built on: it says "ended" only
// once the run has ended and every event has been returned, whatever the page size.
TEST_F(ServiceTest, RunEventStepsEndOnlyOnceTheRunHasEndedAndEveryEventIsRead) {
  Caller cli;
  const std::string id = StartGreetRun(cli);
  ASSERT_FALSE(id.empty());

  auto open = service_.RunEventStep(id, 0, 1000);
  ASSERT_TRUE(open) << open.error().message;
  ASSERT_FALSE(open->events.empty());
  EXPECT_FALSE(open->full);
  EXPECT_FALSE(open->ended) << "the run is still pending";

  ASSERT_TRUE(service_.CancelRun(id, cli));
  // No worker will write run.finished: a service that waits no settling time ends the run once
  // every event is read (the wait itself: RunEventStepsWaitForEventsThatTrailTheRunsEnd).
  LocalServiceOptions hasty;
  hasty.run_events_settle = std::chrono::milliseconds(0);
  LocalService settled(stores_, brokers_, hasty);
  // A page of one: each step before the last is full and not ended; the last is empty and ends.
  std::vector<std::string> types;
  int64_t after = 0;
  bool ended = false;
  for (int i = 0; i < 100 && !ended; ++i) {
    auto step = settled.RunEventStep(id, after, 1);
    ASSERT_TRUE(step) << step.error().message;
    for (const auto& e : step->events) {
      EXPECT_EQ(e.view["seq"].get<int64_t>(), std::stoll(e.id));
      EXPECT_EQ(e.view["type"], e.type);
      after = std::stoll(e.id);
      types.push_back(e.type);
    }
    ended = step->ended;
    if (!ended) {
      ASSERT_TRUE(step->full) << "a step that is not full must end a run that has ended";
    } else {
      EXPECT_TRUE(step->events.empty());
    }
  }
  ASSERT_TRUE(ended);
  auto all = service_.RunEvents(id, {});
  ASSERT_TRUE(all);
  ASSERT_EQ(types.size(), (*all)["events"].size());
  EXPECT_EQ(types.back(), (*all)["events"].back()["type"]);

  auto missing = service_.RunEventStep("01ARZ3NDEKTSV4RRFFQ69G5FAV", 0, 10);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

// A retry on the workflow's current version checks the run's inputs against it first: a new
// required input refuses the retry (400 naming it) and leaves the run's one retry unused. (The
// retry was made, failed at once on "input 'y' is required", and the run could not be retried
// again.)
TEST_F(ServiceTest, ARetryOnTheLatestVersionChecksTheRunsInputsFirst) {
  Caller cli;
  const std::string id = StartGreetRun(cli);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(service_.CancelRun(id, cli));
  auto v2 = service_.ApplyWorkflow(
      Json{{"source",
            "name: greet\ninputs:\n  who: {type: string, default: World}\n"
            "  y: {type: number, required: true}\nnodes:\n"
            "  hello:\n    kind: shell\n    argv: [echo, 'hi {{ inputs.who }}']\n"}},
      {});
  ASSERT_TRUE(v2) << v2.error().message;
  auto refused = service_.RetryRun(id, Json{{"latest_version", true}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused.error().message,
            "cannot retry run " + id +
                " on greet's current version 2: input 'y' is required (its inputs are the run's "
                "own; retry without latest_version to run version 1)");
  // The retry is still the run's to make: on its own version it is.
  auto own = service_.RetryRun(id, Json::object());
  ASSERT_TRUE(own) << own.error().message;
  EXPECT_EQ((*own)["run"]["version"], 1);
}

// A store whose reads of a run fail while `failures` is above zero (a restart), one per read.
class RunReadsAwayStore : public testing::OwningStoreWrapper {
 public:
  RunReadsAwayStore(std::unique_ptr<Store> target, std::atomic<int>& failures)
      : OwningStoreWrapper(std::move(target)), failures_(failures) {}
  Result<std::optional<Run>> GetRun(const std::string& id) override {
    if (failures_.fetch_sub(1) > 0) {
      return Fail(ErrorCode::kUnavailable, "the database system is starting up (test)");
    }
    return OwningStoreWrapper::GetRun(id);
  }

 private:
  std::atomic<int>& failures_;
};

// A follower (`ferry run watch`) waits out a store briefly away after it has begun, as the API's
// event stream does, and reads the run to its end: it failed at the first unanswered read (exit
// 3, the run going on). A store away at the first read is said at once.
TEST_F(ServiceTest, AFollowerWaitsOutAStoreThatIsAwayForAMoment) {
  Caller cli;
  const std::string id = StartGreetRun(cli);
  ASSERT_FALSE(id.empty());
  std::atomic<int> failures{0};
  Pool<Store> away(
      [&]() -> Result<std::unique_ptr<Store>> {
        auto store = OpenStore((dir_.path() / "ferry.db").string());
        if (!store) return store;
        return std::unique_ptr<Store>(
            std::make_unique<RunReadsAwayStore>(std::move(*store), failures));
      },
      1);
  LocalServiceOptions quick;
  quick.follow_poll = std::chrono::milliseconds(10);
  LocalService follower(away, brokers_, quick);
  std::vector<std::string> types;
  auto followed = follower.FollowRunEvents(id, 0, std::chrono::seconds(30), [&](const Json& e) {
    types.push_back(e["type"].get<std::string>());
    if (types.size() == 1) {
      // The run ends (cancelled: run.cancelled, run.finished) as the store goes away for three
      // reads.
      EXPECT_TRUE(service_.CancelRun(id, cli));
      failures = 3;
    }
    return true;
  });
  ASSERT_TRUE(followed) << followed.error().message;
  EXPECT_LE(failures.load(), 0);  // every failure was met
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.back(), "run.finished");

  failures = 1;  // away at the first read: said at once
  auto first =
      follower.FollowRunEvents(id, 0, std::chrono::seconds(30), [](const Json&) { return true; });
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, ErrorCode::kUnavailable) << first.error().message;
}

// A page of run events, for the API and for a follower, stops at the event that brings its data to
// run_event_page_bytes and says where to go on; every event is still read, in order.
TEST_F(ServiceTest, RunEventPagesStopAtTheirBytes) {
  Caller cli;
  const std::string id = StartGreetRun(cli);
  ASSERT_FALSE(id.empty());
  int64_t before = 0;
  {
    auto store = stores_.Acquire();
    ASSERT_TRUE(store);
    auto existing = (*store)->ListRunEvents(id, 0, 1000);
    ASSERT_TRUE(existing);
    before = static_cast<int64_t>(existing->size());
    const std::string big = R"({"line":")" + std::string(1000, 'x') + "\"}";
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*store)->AppendRunEvent(id, "log", big));
  }
  LocalServiceOptions small;
  small.run_event_page_bytes = 2500;  // reached by the third 1 KB event
  LocalService paged(stores_, brokers_, small);
  auto first = paged.RunEvents(id, {{"after", std::to_string(before)}});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ((*first)["events"].size(), 3u);
  EXPECT_EQ((*first)["next_cursor"], std::to_string(before + 3));
  auto step = paged.RunEventStep(id, before, 500);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->events.size(), 3u);
  EXPECT_TRUE(step->full) << "cut by its bytes, the step says more is waiting";
  // Following the cursor reads all ten, in order, three at a time.
  std::vector<int64_t> seqs;
  std::string cursor = std::to_string(before);
  for (int i = 0; i < 10 && !cursor.empty(); ++i) {
    auto page = paged.RunEvents(id, {{"after", cursor}});
    ASSERT_TRUE(page);
    for (const auto& e : (*page)["events"]) seqs.push_back(e["seq"].get<int64_t>());
    cursor = (*page)["next_cursor"].is_string() ? (*page)["next_cursor"].get<std::string>() : "";
  }
  ASSERT_EQ(seqs.size(), 10u);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], before + 1 + static_cast<int64_t>(i));
  // With the default bound the same ten come in one page.
  auto whole = service_.RunEvents(id, {{"after", std::to_string(before)}});
  ASSERT_TRUE(whole);
  EXPECT_EQ((*whole)["events"].size(), 10u);
  EXPECT_TRUE((*whole)["next_cursor"].is_null());
}

// A run's events may trail its end (a cancel's run.cancelled, then the interrupted worker's
// run.finished): a follower stops at run.finished, or once the run has been over for the settling
// time with nothing more written.
TEST_F(ServiceTest, RunEventStepsWaitForEventsThatTrailTheRunsEnd) {
  Caller cli;
  const std::string id = StartGreetRun(cli);
  ASSERT_FALSE(id.empty());
  {  // held by a worker, whose handler writes the run's end as it stops
    auto store = stores_.Acquire();
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->MarkRunRunning(id, int64_t{1}, "w/t"));
  }
  ASSERT_TRUE(service_.CancelRun(id, cli));

  LocalServiceOptions patient;
  patient.run_events_settle = std::chrono::hours(1);
  LocalService waits(stores_, brokers_, patient);
  auto first = waits.RunEventStep(id, 0, 1000);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_FALSE(first->events.empty());
  EXPECT_FALSE(first->ended) << "cancelled, but run.finished is not written yet";
  const int64_t after = std::stoll(first->events.back().id);
  auto idle = waits.RunEventStep(id, after, 1000);
  ASSERT_TRUE(idle) << idle.error().message;
  EXPECT_TRUE(idle->events.empty());
  EXPECT_FALSE(idle->ended) << "the event at the cursor is not run.finished";

  {  // what the interrupted worker writes last
    auto store = stores_.Acquire();
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->AppendRunEvent(id, "run.finished", R"({"status":"cancelled"})"));
  }
  auto last = waits.RunEventStep(id, after, 1000);
  ASSERT_TRUE(last) << last.error().message;
  ASSERT_EQ(last->events.size(), 1u);
  EXPECT_EQ(last->events[0].type, "run.finished");
  EXPECT_TRUE(last->ended);
  // A page that ends exactly on run.finished is full, so it does not end the follow; the next
  // step, from just past run.finished, ends at once instead of waiting the settling time (an
  // hour here).
  const int64_t finished_seq = std::stoll(last->events[0].id);
  auto exact = waits.RunEventStep(id, after, 1);
  ASSERT_TRUE(exact);
  ASSERT_EQ(exact->events.size(), 1u);
  EXPECT_TRUE(exact->full);
  EXPECT_FALSE(exact->ended);
  auto past = waits.RunEventStep(id, finished_seq, 1000);
  ASSERT_TRUE(past);
  EXPECT_TRUE(past->events.empty());
  EXPECT_TRUE(past->ended);

  // With no settling time, an ended run with nothing new has ended even without run.finished.
  LocalServiceOptions hasty;
  hasty.run_events_settle = std::chrono::milliseconds(0);
  LocalService at_once(stores_, brokers_, hasty);
  auto unsettled = waits.RunEventStep(id, 0, 1);  // a full page never ends a follow
  ASSERT_TRUE(unsettled);
  EXPECT_TRUE(unsettled->full);
  EXPECT_FALSE(unsettled->ended);
  auto settled = at_once.RunEventStep(id, std::stoll(last->events[0].id), 1000);
  ASSERT_TRUE(settled);
  EXPECT_TRUE(settled->events.empty());
  EXPECT_TRUE(settled->ended);
}

}  // namespace
}  // namespace ferry::service
