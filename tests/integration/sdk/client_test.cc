// ferry::Client (include/ferry/client.h) against a real redis-server, a SQLite store and the real
// `ferry worker start`: every call a producer makes (Submit, Get, Wait, Cancel, StartRun) and
// the errors each gives.
#include "ferry/client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include "harness.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

class SdkClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisServer>(RedisServer::Options{"", false});
    store_ = (tmp_.path() / "ferry.db").string();
    ClientOptions options;
    options.redis_url = redis_->url();
    options.prefix = "sdk";
    options.store = store_;
    auto client = Client::Connect(options);
    ASSERT_TRUE(client) << client.error().message;
    client_ = std::move(*client);
  }

  std::unique_ptr<Process> StartWorker() {
    auto w = std::make_unique<Process>(
        Process::Options{{FerryBinary(), "--redis-url", redis_->url(), "--prefix", "sdk", "worker",
                          "start", "--concurrency", "2", "--store", store_},
                         {{"NO_COLOR", "1"}},
                         "",
                         ""});
    EXPECT_TRUE(w->WaitForOutput("worker.started", seconds(20))) << w->Stderr();
    return w;
  }

  TempDir tmp_;
  std::unique_ptr<RedisServer> redis_;
  std::string store_;
  std::unique_ptr<Client> client_;
};

TEST_F(SdkClientTest, GetSeesTheTaskBeforeAndAfterItRuns) {
  SubmitOptions options;
  options.queue = "default";
  options.max_attempts = 2;
  auto id = client_->Submit("echo", Json{{"n", 7}}, options);
  ASSERT_TRUE(id) << id.error().message;
  auto before = client_->Get(*id);
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(before->id, *id);
  EXPECT_EQ(before->kind, "echo");
  EXPECT_EQ(before->status, "pending");
  EXPECT_FALSE(before->finished());

  auto worker = StartWorker();
  auto done = client_->Wait(*id, seconds(30));
  ASSERT_TRUE(done) << done.error().message << worker->Stderr();
  EXPECT_EQ(done->status, "succeeded");
  auto after = client_->Get(*id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, "succeeded");
  EXPECT_EQ(after->attempts, 1);
  EXPECT_EQ(after->result, (Json{{"n", 7}}));

  // An id that does not exist, and one that differs from a real one in its last character.
  std::string near = *id;
  near.back() = near.back() == '0' ? '1' : '0';
  for (const std::string& missing : {std::string("no-such-task"), near}) {
    auto r = client_->Get(missing);
    ASSERT_FALSE(r) << missing;
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << r.error().message;
  }
}

TEST_F(SdkClientTest, CancelStopsAWaitingAndARunningTask) {
  // Waiting: no worker yet, so the task is cancelled before anyone claims it.
  auto waiting = client_->Submit("sleep", Json{{"ms", 60000}});
  ASSERT_TRUE(waiting);
  auto cancelled = client_->Cancel(*waiting);
  ASSERT_TRUE(cancelled) << cancelled.error().message;
  EXPECT_EQ(*cancelled, "cancelled");
  auto w1 = client_->Get(*waiting);
  ASSERT_TRUE(w1);
  EXPECT_EQ(w1->status, "cancelled");

  // Running: the request reaches the handler, which stops; Wait sees the end.
  auto worker = StartWorker();
  auto running = client_->Submit("sleep", Json{{"ms", 60000}});
  ASSERT_TRUE(running);
  ASSERT_TRUE(Eventually(
      [&] {
        auto t = client_->Get(*running);
        return t && t->status == "running";
      },
      seconds(20)))
      << worker->Stderr();
  auto requested = client_->Cancel(*running);
  ASSERT_TRUE(requested) << requested.error().message;
  auto end = client_->Wait(*running, seconds(30));
  ASSERT_TRUE(end) << end.error().message;
  EXPECT_EQ(end->status, "cancelled");
  EXPECT_TRUE(end->finished());

  // A task that does not exist cannot be cancelled; one already finished stays as it ended.
  auto missing = client_->Cancel("no-such-task");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound) << missing.error().message;
  auto echoed = client_->Submit("echo", Json{{"x", 1}});
  ASSERT_TRUE(echoed);
  ASSERT_TRUE(client_->Wait(*echoed, seconds(30)));
  auto late = client_->Cancel(*echoed);
  if (late) {
    EXPECT_EQ(*late, "succeeded");
  } else {
    EXPECT_EQ(late.error().code, ErrorCode::kConflict) << late.error().message;
  }
  EXPECT_EQ(client_->Get(*echoed)->status, "succeeded");

  // Wait gives up with kTimeout on a task that does not end in time.
  SubmitOptions unserved;
  unserved.queue = "slow";  // no worker reads it
  auto slow = client_->Submit("sleep", Json{{"ms", 60000}}, unserved);
  ASSERT_TRUE(slow);
  auto timed_out = client_->Wait(*slow, std::chrono::milliseconds(200));
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error().code, ErrorCode::kTimeout) << timed_out.error().message;
}

TEST_F(SdkClientTest, StartRunRunsAnAppliedWorkflow) {
  std::string wf = (tmp_.path() / "greet.yaml").string();
  std::ofstream(wf) << R"(name: greet
inputs:
  who: {type: string}
nodes:
  hello:
    kind: lua
    script: 'return {greeting = "hi " .. inputs.who}'
)";
  auto apply = RunCommand({FerryBinary(), "workflow", "apply", wf, "--store", store_});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;

  auto missing = client_->StartRun("no-such-workflow");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound) << missing.error().message;
  auto bad_inputs = client_->StartRun("greet", Json{{"who", 5}});
  ASSERT_FALSE(bad_inputs);
  EXPECT_EQ(bad_inputs.error().code, ErrorCode::kInvalidArgument) << bad_inputs.error().message;

  auto worker = StartWorker();
  auto run = client_->StartRun("greet", Json{{"who", "Ada"}});
  ASSERT_TRUE(run) << run.error().message;
  Json shown;
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = RunCommand({FerryBinary(), "--json", "run", "show", *run, "--store", store_});
        if (r.exit_code != 0) return false;
        shown = Json::parse(r.out, nullptr, false);
        return !shown.is_discarded() && shown["run"].value("status", "") == "succeeded";
      },
      seconds(30)))
      << shown.dump() << worker->Stderr();
  const Json& run_view = shown["run"];
  ASSERT_EQ(run_view["steps"].size(), 1u) << shown.dump();
  EXPECT_EQ(run_view["steps"][0]["output"]["greeting"], "hi Ada") << shown.dump();
  EXPECT_EQ(run_view["inputs"], (Json{{"who", "Ada"}})) << shown.dump();

  // Without a store, StartRun says what is missing.
  ClientOptions no_store;
  no_store.redis_url = redis_->url();
  no_store.prefix = "sdk";
  auto plain = Client::Connect(no_store);
  ASSERT_TRUE(plain);
  auto refused = (*plain)->StartRun("greet");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("ClientOptions::store"), std::string::npos);
}

TEST(SdkClient, ConnectRefusesABadUrlAndAnUnreachableServer) {
  ClientOptions bad;
  bad.redis_url = "http://127.0.0.1:1";
  auto r = Client::Connect(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << r.error().message;
  ClientOptions closed;
  closed.redis_url = "redis://127.0.0.1:" + std::to_string(FreePort());
  auto c = Client::Connect(closed);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kUnavailable) << c.error().message;
}

}  // namespace
}  // namespace ferry::testing
