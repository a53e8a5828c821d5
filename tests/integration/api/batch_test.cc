// POST /api/v1/tasks/batch over real HTTP with a real redis-server: all or nothing, the limit
// and one past it, unique keys inside one batch and across batches, hostile items.
#include <gtest/gtest.h>
#include <httplib.h>

#include <set>
#include <string>

#include "api_fixture.h"
#include "service/task_submission.h"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;

class BatchTest : public ApiTest {
 protected:
  httplib::Result PostBatch(const std::string& body) {
    return client_->Post("/api/v1/tasks/batch", body, "application/json");
  }
  httplib::Result PostBatch(const Json& tasks) {
    return PostBatch(DumpJson(Json{{"tasks", tasks}}));
  }

  static Json Noops(size_t n, const std::string& queue = "batch") {
    Json tasks = Json::array();
    for (size_t i = 0; i < n; ++i) {
      tasks.push_back({{"kind", "noop"}, {"queue", queue}, {"payload", {{"i", i}}}});
    }
    return tasks;
  }

  // Tasks the broker holds on `queue` (the submitted counter, which the submit script bumps).
  int64_t Submitted(const std::string& queue) {
    auto broker = brokers_->Open();
    EXPECT_TRUE(broker) << broker.error().message;
    if (!broker) return -1;
    auto stats = (*broker)->GetQueueStats(queue);
    EXPECT_TRUE(stats) << stats.error().message;
    if (!stats) return -1;
    auto it = stats->counters.find("submitted");
    return it == stats->counters.end() ? 0 : it->second;
  }

  // Asserts a 400 invalid_argument whose message contains `needle`, and that nothing was queued.
  void ExpectRefused(const httplib::Result& res, const std::string& needle) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << res->body;
    Json body = Json::parse(res->body);
    EXPECT_EQ(body["error"]["code"], "invalid_argument") << res->body;
    EXPECT_NE(body["error"]["message"].get<std::string>().find(needle), std::string::npos)
        << "want '" << needle << "' in " << res->body;
    EXPECT_EQ(Submitted("batch"), 0);
  }
};

TEST_F(BatchTest, SubmitsEveryTaskWithItsFieldsAndAnswersInOrder) {
  Json tasks = Json::array();
  tasks.push_back({{"kind", "echo"}, {"queue", "batch"}, {"payload", {{"n", 1}}}});
  tasks.push_back({{"kind", "echo"},
                   {"queue", "batch"},
                   {"payload", "text"},
                   {"max_attempts", 7},
                   {"timeout", "30s"},
                   {"unique_key", "order-7"}});
  tasks.push_back({{"kind", "noop"}, {"queue", "other"}, {"delay", "1h"}});
  auto res = PostBatch(tasks);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  Json answer = Json::parse(res->body);
  ASSERT_EQ(answer["tasks"].size(), 3u);
  EXPECT_EQ(answer["created"], 3);
  EXPECT_EQ(answer["existing"], 0);

  auto task = [&](size_t i) {
    auto r = client_->Get(("/api/v1/tasks/" + answer["tasks"][i]["id"].get<std::string>()).c_str());
    EXPECT_TRUE(r && r->status == 200);
    return r ? Json::parse(r->body)["task"] : Json();
  };
  Json t0 = task(0), t1 = task(1), t2 = task(2);
  EXPECT_EQ(t0["payload"], Json({{"n", 1}}));
  EXPECT_EQ(t0["status"], "pending");
  EXPECT_EQ(t1["payload"], "text");
  EXPECT_EQ(t1["max_attempts"], 7);
  EXPECT_EQ(t1["timeout_ms"], 30000);
  EXPECT_EQ(t1["unique_key"], "order-7");
  EXPECT_EQ(t2["queue"], "other");
  EXPECT_EQ(t2["status"], "scheduled");
  EXPECT_EQ(Submitted("batch"), 2);
  EXPECT_EQ(Submitted("other"), 1);
}

TEST_F(BatchTest, AUniqueKeySeenBeforeAnswersTheFirstIdAndAllExistingIs200) {
  Json first = Json::array({{{"kind", "noop"}, {"queue", "batch"}, {"unique_key", "k1"}}});
  auto a = PostBatch(first);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, 201) << a->body;
  const std::string id = Json::parse(a->body)["tasks"][0]["id"];

  Json again = Json::array({{{"kind", "noop"}, {"queue", "batch"}, {"unique_key", "new"}},
                            {{"kind", "noop"}, {"queue", "batch"}, {"unique_key", "k1"}}});
  auto b = PostBatch(again);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->status, 201) << b->body;
  Json answer = Json::parse(b->body);
  EXPECT_EQ(answer["tasks"][0]["existing"], false);
  EXPECT_EQ(answer["tasks"][1], Json({{"id", id}, {"existing", true}}));
  EXPECT_EQ(answer["created"], 1);
  EXPECT_EQ(answer["existing"], 1);

  // Nothing new: 200, like the single route's answer for an existing key.
  auto c = PostBatch(first);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, 200) << c->body;
  EXPECT_EQ(Json::parse(c->body)["existing"], 1);
  EXPECT_EQ(Submitted("batch"), 2);
}

TEST_F(BatchTest, ExactlyTheLimitIsAcceptedAndOneMoreIsRefusedWhole) {
  auto over = PostBatch(Noops(service::kMaxBatchTasks + 1));
  ExpectRefused(over, "tasks holds 1001 items, over the limit of 1000 per batch");

  auto at = PostBatch(Noops(service::kMaxBatchTasks));
  ASSERT_TRUE(at);
  ASSERT_EQ(at->status, 201) << at->body.substr(0, 300);
  Json answer = Json::parse(at->body);
  ASSERT_EQ(answer["tasks"].size(), service::kMaxBatchTasks);
  std::set<std::string> ids;
  for (const auto& t : answer["tasks"]) ids.insert(t["id"].get<std::string>());
  EXPECT_EQ(ids.size(), service::kMaxBatchTasks);
  EXPECT_EQ(Submitted("batch"), static_cast<int64_t>(service::kMaxBatchTasks));
}

TEST_F(BatchTest, TheSameUniqueKeyTwiceInOneBatchIsRefusedButNotAcrossQueues) {
  Json tasks = Noops(3);
  tasks[0]["unique_key"] = "dup";
  tasks[2]["unique_key"] = "dup";
  ExpectRefused(PostBatch(tasks),
                "tasks[2]: unique_key 'dup' on queue batch is already used by tasks[0]");

  // Keys live per queue: the same key on two queues is two tasks.
  tasks[2]["queue"] = "elsewhere";
  auto ok = PostBatch(tasks);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 201) << ok->body;
  Json answer = Json::parse(ok->body);
  EXPECT_NE(answer["tasks"][0]["id"], answer["tasks"][2]["id"]);
  EXPECT_EQ(answer["created"], 3);
}

TEST_F(BatchTest, OneBadItemRefusesTheBatchNamingItsIndex) {
  auto with = [](const std::string& key, Json value) {
    Json tasks = Noops(3);
    tasks[1][key] = std::move(value);
    return tasks;
  };
  ExpectRefused(PostBatch(with("max_attempts", "3")), "tasks[1].max_attempts must be an integer");
  ExpectRefused(PostBatch(with("max_attempts", 2.5)), "tasks[1].max_attempts");
  ExpectRefused(PostBatch(with("max_attempts", 1001)), "tasks[1].max_attempts");
  ExpectRefused(PostBatch(with("max_attempts", 0)), "tasks[1].max_attempts");
  ExpectRefused(PostBatch(with("kind", 5)), "tasks[1].kind must be a string");
  ExpectRefused(PostBatch(with("kind", "ferry.run")), "tasks[1]: ferry.run tasks are made by");
  ExpectRefused(PostBatch(with("kind", std::string(129, 'k'))), "tasks[1]: task kind must be");
  ExpectRefused(PostBatch(with("queue", "no spaces")), "tasks[1]:");
  ExpectRefused(PostBatch(with("timeout", "soon")), "tasks[1].timeout is not a duration");
  ExpectRefused(PostBatch(with("unique_key", std::string(513, 'u'))),
                "tasks[1]: unique key longer than 512 bytes");
  ExpectRefused(PostBatch(with("payloads", Json::object())),
                "unknown field tasks[1].payloads (did you mean tasks[1].payload?)");
  Json both = Noops(3);
  both[1]["delay"] = "1m";
  both[1]["eta_ms"] = 1;
  ExpectRefused(PostBatch(both), "tasks[1]: give delay or eta_ms, not both");
  Json missing = Noops(3);
  missing[1].erase("kind");
  ExpectRefused(PostBatch(missing), "tasks[1].kind is required");
  Json not_object = Noops(3);
  not_object[1] = "noop";
  ExpectRefused(PostBatch(not_object), "tasks[1] must be a JSON object, got a string");

  // The body itself.
  ExpectRefused(PostBatch(Json::array()), "tasks must not be empty");
  ExpectRefused(PostBatch(DumpJson(Json{{"tasks", Json::object()}})), "tasks must be an array");
  ExpectRefused(PostBatch(std::string("{}")), "tasks is required");
  ExpectRefused(PostBatch(std::string(R"({"tasks": [], "task": []})")), "unknown field task");
  ExpectRefused(PostBatch(std::string(R"([{"kind":"noop"}])")), "");
  ExpectRefused(PostBatch(std::string(R"({"tasks": [{"kind":"noop","max_attempts":1e999}]})")),
                "out of range");
  std::string deep = R"({"tasks": [{"kind":"noop","payload":)" + std::string(200, '[') +
                     std::string(200, ']') + "}]}";
  ExpectRefused(PostBatch(deep), "");
  static constexpr char kNul[] = "{\"tasks\": [{\"kind\":\"no\0op\"}]}";
  ExpectRefused(PostBatch(std::string(kNul, sizeof kNul - 1)), "");
}

TEST_F(BatchTest, BatchTasksRunOnAWorker) {
  StartWorker();
  Json tasks = Json::array();
  for (int i = 0; i < 20; ++i) tasks.push_back({{"kind", "echo"}, {"payload", {{"i", i}}}});
  auto res = PostBatch(tasks);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  Json answer = Json::parse(res->body);
  for (size_t i = 0; i < answer["tasks"].size(); ++i) {
    const std::string id = answer["tasks"][i]["id"];
    Json task;
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = client_->Get(("/api/v1/tasks/" + id).c_str());
          if (!r || r->status != 200) return false;
          task = Json::parse(r->body)["task"];
          return task["status"] == "succeeded";
        },
        20s))
        << task.dump();
    EXPECT_EQ(task["result"], Json({{"i", i}}));
  }
}

TEST_F(BatchTest, NeedsTheRunScope) {
  const std::string reader = service::NewApiTokenSecret();
  ASSERT_TRUE(admin_->CreateApiToken("reader", Sha256Hex(reader), {"read"}));
  httplib::Client c("127.0.0.1", port_);
  c.set_bearer_token_auth(reader.c_str());
  answers_.Attach(c);
  auto res = c.Post("/api/v1/tasks/batch", DumpJson(Json{{"tasks", Noops(1)}}), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403) << res->body;
  EXPECT_EQ(Submitted("batch"), 0);
}

}  // namespace
}  // namespace ferry
