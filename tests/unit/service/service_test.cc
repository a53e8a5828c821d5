// LocalService's request rules and answers: bodies and queries are checked once, here, for the
// API and the CLI alike. A SQLite store in a TempDir and a FakeBroker; no servers.
#include <gtest/gtest.h>

#include "core/pool.h"
#include "fake_broker.h"
#include "forwarding_broker.h"
#include "harness.h"
#include "service/local_service.h"
#include "service/query.h"
#include "store/store.h"

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
  auto submitted = service_.SubmitTask(Json{{"kind", "echo"}});
  ASSERT_TRUE(submitted);
  auto bad_after = service_.TaskEvents((*submitted)["id"], {{"after", "12-x"}});
  ASSERT_FALSE(bad_after);
  EXPECT_NE(bad_after.error().message.find("after must be an event id"), std::string::npos);
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

}  // namespace
}  // namespace ferry::service
