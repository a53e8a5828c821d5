// The task submission reader shared by POST /api/v1/tasks/batch and `ferry task submit --batch`:
// each field's rule, the batch limits one past each edge, unique keys per queue, the answer.
#include "service/task_submission.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::service {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

Json Tasks(size_t n) {
  Json tasks = Json::array();
  for (size_t i = 0; i < n; ++i) tasks.push_back({{"kind", "noop"}});
  return tasks;
}

std::string BatchError(const Json& body) {
  auto r = ReadTaskBatch(body, kNow, BrokerOptions{});
  EXPECT_FALSE(r) << body.dump().substr(0, 200);
  return r ? "" : r.error().message;
}

TEST(TaskSubmission, ReadsEveryFieldAndTurnsDelayIntoAnEta) {
  Json j{{"kind", "echo"},  {"payload", {1, 2}}, {"queue", "q.1"},         {"max_attempts", 7},
         {"timeout", "1m"}, {"delay", "30s"},    {"unique_key", "order-1"}};
  auto r = ReadTaskSubmission(j, kNow, BrokerOptions{}, "");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kind, "echo");
  EXPECT_EQ(r->payload, Json({1, 2}));
  EXPECT_EQ(r->queue, "q.1");
  EXPECT_EQ(r->max_attempts, 7);
  EXPECT_EQ(r->timeout, std::chrono::minutes(1));
  EXPECT_EQ(r->eta_ms, kNow + 30'000);
  EXPECT_EQ(r->unique_key, "order-1");

  auto defaults = ReadTaskSubmission(Json{{"kind", "noop"}}, kNow, BrokerOptions{}, "");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->payload, Json::object());
  EXPECT_EQ(defaults->queue, "default");
  EXPECT_EQ(defaults->max_attempts, 3);
  EXPECT_FALSE(defaults->eta_ms);
}

// A null payload is refused, not stored as the absent payload's {}; other values are kept as sent.
TEST(TaskSubmission, ANullPayloadIsRefusedNotMadeEmpty) {
  auto r =
      ReadTaskSubmission(Json{{"kind", "noop"}, {"payload", nullptr}}, kNow, BrokerOptions{}, "");
  ASSERT_FALSE(r) << r->payload.dump();
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message,
            "payload must be a JSON value other than null (leave it out for {})");
  Json batch = Json::parse(R"({"tasks": [{"kind": "noop"}, {"kind": "noop", "payload": null}]})");
  EXPECT_EQ(BatchError(batch),
            "tasks[1].payload must be a JSON value other than null (leave it out for {})");
  for (const Json& kept : {Json(0), Json(false), Json(""), Json::array(), Json::object()}) {
    auto ok =
        ReadTaskSubmission(Json{{"kind", "noop"}, {"payload", kept}}, kNow, BrokerOptions{}, "");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->payload, kept);
  }
}

// An empty key was taken for no key: sent twice, it made two tasks where a resend meant one.
TEST(TaskSubmission, AnEmptyUniqueKeyIsRefusedNotTakenForNone) {
  auto r =
      ReadTaskSubmission(Json{{"kind", "noop"}, {"unique_key", ""}}, kNow, BrokerOptions{}, "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message, "unique_key must not be empty (leave it out for no key)");
  Json batch = Json::parse(R"({"tasks": [{"kind": "noop", "unique_key": ""}]})");
  EXPECT_EQ(BatchError(batch), "tasks[0].unique_key must not be empty (leave it out for no key)");
  auto one =
      ReadTaskSubmission(Json{{"kind", "noop"}, {"unique_key", "k"}}, kNow, BrokerOptions{}, "");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->unique_key, "k");
  EXPECT_TRUE(ReadTaskSubmission(Json{{"kind", "noop"}}, kNow, BrokerOptions{}, ""));
}

TEST(TaskSubmission, NamesTheObjectInEveryMessage) {
  auto err = [](const Json& j) {
    auto r = ReadTaskSubmission(j, kNow, BrokerOptions{}, "tasks[4]");
    EXPECT_FALSE(r);
    return r ? "" : r.error().message;
  };
  EXPECT_EQ(err(Json{{"kind", "noop"}, {"max_attempts", 1001}}),
            "tasks[4].max_attempts must be an integer from 1 to 1000, got 1001");
  EXPECT_EQ(err(Json{{"kind", "noop"}, {"delay", "1s"}, {"eta_ms", kNow}}),
            "tasks[4]: give delay or eta_ms, not both");
  EXPECT_EQ(err(Json{{"kind", "ferry.run"}}),
            "tasks[4]: ferry.run tasks are made by starting a run (`ferry workflow run`, POST "
            "/api/v1/runs)");
  EXPECT_EQ(err(Json::array()), "tasks[4] must be a JSON object, got an array");
  // One past the ETA horizon; the horizon itself is accepted.
  const int64_t horizon = kNow + kMaxTaskEtaHorizon.count();
  EXPECT_NE(err(Json{{"kind", "noop"}, {"eta_ms", horizon + 1}}).find("tasks[4].eta_ms"),
            std::string::npos);
  EXPECT_TRUE(
      ReadTaskSubmission(Json{{"kind", "noop"}, {"eta_ms", horizon}}, kNow, BrokerOptions{}, ""));
  // A payload one byte over the broker's limit.
  BrokerOptions small;
  small.max_payload_bytes = 10;
  EXPECT_TRUE(ReadTaskSubmission(Json{{"kind", "noop"}, {"payload", "12345678"}}, kNow, small, ""));
  auto over =
      ReadTaskSubmission(Json{{"kind", "noop"}, {"payload", "123456789"}}, kNow, small, "line");
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message, "line: payload is 11 bytes, over the limit of 10");
}

TEST(TaskBatch, TakesOneToTheLimitAndNoMore) {
  EXPECT_EQ(BatchError(Json{{"tasks", Json::array()}}), "tasks must not be empty");
  ASSERT_TRUE(ReadTaskBatch(Json{{"tasks", Tasks(1)}}, kNow, BrokerOptions{}));
  auto at = ReadTaskBatch(Json{{"tasks", Tasks(kMaxBatchTasks)}}, kNow, BrokerOptions{});
  ASSERT_TRUE(at) << at.error().message;
  EXPECT_EQ(at->size(), kMaxBatchTasks);
  EXPECT_EQ(BatchError(Json{{"tasks", Tasks(kMaxBatchTasks + 1)}}),
            "tasks holds 1001 items, over the limit of 1000 per batch");
  EXPECT_EQ(BatchError(Json::object()), "tasks is required");
  EXPECT_EQ(BatchError(Json{{"tasks", "noop"}}),
            "tasks must be an array of task objects, got a string");
  EXPECT_EQ(BatchError(Json{{"tasks", Tasks(1)}, {"task", 1}}),
            "unknown field task (did you mean tasks?); known fields: tasks");
}

TEST(TaskBatch, AUniqueKeyMayAppearOncePerQueue) {
  Json tasks = Tasks(3);
  tasks[0]["unique_key"] = "k";
  tasks[2]["unique_key"] = "k";
  EXPECT_EQ(BatchError(Json{{"tasks", tasks}}),
            "tasks[2]: unique_key 'k' on queue default is already used by tasks[0] of this batch");
  tasks[2]["queue"] = "other";
  EXPECT_TRUE(ReadTaskBatch(Json{{"tasks", tasks}}, kNow, BrokerOptions{}));
  tasks[1]["unique_key"] = "K";  // keys are case-sensitive
  EXPECT_TRUE(ReadTaskBatch(Json{{"tasks", tasks}}, kNow, BrokerOptions{}));
}

TEST(TaskBatch, TheAnswerCountsNewAndExisting) {
  Json a = BatchAnswer({{"a", false}, {"b", true}, {"c", false}});
  EXPECT_EQ(a, Json::parse(R"({"tasks":[{"id":"a","existing":false},{"id":"b","existing":true},
                              {"id":"c","existing":false}],"created":2,"existing":1})"));
  EXPECT_EQ(BatchAnswer({}), Json::parse(R"({"tasks":[],"created":0,"existing":0})"));
}

}  // namespace
}  // namespace ferry::service
