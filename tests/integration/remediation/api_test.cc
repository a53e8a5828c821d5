// /api/v1/remediations over real HTTP (the ApiServer on 127.0.0.1, a SQLite store, redis-server)
// and the remediation metrics on /metrics: shapes, filters, transitions, and a clear 4xx for
// every bad input.
#include <gtest/gtest.h>
#include <httplib.h>

#include "../api/answer_log.h"
#include "api/server.h"
#include "fixture.h"
#include "ops/metrics.h"

namespace ferry::testing {
namespace {

bool Has(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

class RemediationApiTest : public RemediationTest {
 protected:
  void SetUp() override {
    RemediationTest::SetUp();
    if (IsSkipped()) return;
    metrics_ = std::make_unique<ops::Metrics>("server");
    ops::ClusterMetricsOptions mo;
    mo.store_cache = std::chrono::milliseconds(0);
    metrics_->EnableCluster(brokers_.get(), stores_.get(), mo);
    api::ApiServerOptions o;
    o.port = 0;
    o.require_auth = false;
    o.dev_mode = true;
    o.store_factory = stores_.get();
    o.broker_factory = brokers_.get();
    o.threads = 4;
    o.metrics = [this] { return metrics_->Render(); };
    server_ = std::make_unique<api::ApiServer>(o);
    auto port = server_->Start();
    ASSERT_TRUE(port) << port.error().message;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
    client_->set_read_timeout(10, 0);
    answers_.Attach(*client_);
  }
  void TearDown() override {
    if (server_) server_->Stop();
    // Every answer matches docs/openapi.json.
    EXPECT_TRUE(answers_.Check());
  }

  std::pair<int, Json> Get(const std::string& path) {
    auto r = client_->Get(path.c_str());
    EXPECT_TRUE(r) << path;
    if (!r) return {0, Json()};
    auto j = ParseJson(r->body);
    return {r->status, j ? *j : Json(r->body)};
  }
  std::pair<int, Json> Post(const std::string& path, const std::string& body = "") {
    auto r = client_->Post(path.c_str(), body, "application/json");
    EXPECT_TRUE(r) << path;
    if (!r) return {0, Json()};
    auto j = ParseJson(r->body);
    return {r->status, j ? *j : Json(r->body)};
  }

  std::unique_ptr<ops::Metrics> metrics_;
  std::unique_ptr<api::ApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
  testing::AnswerLog answers_;
};

TEST_P(RemediationApiTest, RoutesShapesAndErrors) {
  Workflow wf = Apply("name: wf\nnodes:\n  a:\n    kind: fail\n    message: x\n");
  Workflow other = Apply("name: other\nnodes:\n  b:\n    kind: fail\n    message: y\n");
  Remediation m = Capture(FailRun(wf, "a", "boom 1 password=hunter2"));
  Capture(FailRun(other, "b", "bang"));

  auto [status, list] = Get("/api/v1/remediations");
  ASSERT_EQ(status, 200) << list.dump();
  ASSERT_EQ(list["remediations"].size(), 2u);
  EXPECT_TRUE(list["next_cursor"].is_null()) << list.dump();
  auto [s2, only] = Get("/api/v1/remediations?workflow=wf&status=pending&limit=1");
  ASSERT_EQ(s2, 200);
  ASSERT_EQ(only["remediations"].size(), 1u);
  const Json& c = only["remediations"][0];
  EXPECT_EQ(c["id"], m.id);
  EXPECT_EQ(c["workflow"], "wf");
  EXPECT_EQ(c["failed_node"], "a");
  EXPECT_EQ(c["occurrences"], 1);
  EXPECT_EQ(c["error"], "boom 1 password=[REDACTED]");
  EXPECT_TRUE(c["first_seen_at"].get<std::string>().back() == 'Z');

  auto [s3, shown] = Get("/api/v1/remediations/" + m.id);
  ASSERT_EQ(s3, 200);
  EXPECT_EQ(shown["remediation"]["error_normalized"], "boom <n> password=[REDACTED]");
  EXPECT_TRUE(shown["remediation"]["context"].contains("events"));
  EXPECT_TRUE(shown["remediation"]["attempt_history"].is_array());

  // No proposal yet: 404 saying so.
  auto [s4, nodiff] = Get("/api/v1/remediations/" + m.id + "/diff");
  EXPECT_EQ(s4, 404);
  EXPECT_TRUE(Has(nodiff.dump(), "no proposed source change")) << nodiff.dump();

  auto [s5, dismissed] = Post("/api/v1/remediations/" + m.id + "/dismiss", R"({"reason":"noise"})");
  ASSERT_EQ(s5, 200) << dismissed.dump();
  EXPECT_EQ(dismissed["remediation"]["status"], "dismissed");
  auto [s6, again] = Post("/api/v1/remediations/" + m.id + "/dismiss");
  EXPECT_EQ(s6, 409) << again.dump();
  auto [s7, reopened] = Post("/api/v1/remediations/" + m.id + "/reopen");
  ASSERT_EQ(s7, 200) << reopened.dump();
  EXPECT_EQ(reopened["remediation"]["status"], "pending");
  auto [s8, twice] = Post("/api/v1/remediations/" + m.id + "/reopen");
  EXPECT_EQ(s8, 409) << twice.dump();

  // Bad input: clear 4xx.
  EXPECT_EQ(Get("/api/v1/remediations?status=done").first, 400);
  EXPECT_EQ(Get("/api/v1/remediations?limit=1001").first, 400);
  EXPECT_EQ(Get("/api/v1/remediations?limit=0").first, 400);
  EXPECT_EQ(Get("/api/v1/remediations?cursor=abc").first, 400);
  EXPECT_EQ(Get("/api/v1/remediations?workflow=nope").first, 404);
  EXPECT_EQ(Get("/api/v1/remediations/not-an-id").first, 400);
  EXPECT_EQ(Get("/api/v1/remediations/01ZZZZZZZZZZZZZZZZZZZZZZZZ").first, 404);
  EXPECT_EQ(Post("/api/v1/remediations/" + m.id + "/dismiss", R"({"reason":5})").first, 400);
  EXPECT_EQ(Post("/api/v1/remediations/" + m.id + "/dismiss", "{oops").first, 400);

  // Metrics: candidates by status, attempts by outcome, the agent duration histogram.
  auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(Has(metrics->body, "ferry_remediations{status=\"pending\"} 2")) << metrics->body;
  EXPECT_TRUE(Has(metrics->body, "ferry_remediations{status=\"dismissed\"} 0"));
  EXPECT_TRUE(Has(metrics->body, "ferry_remediation_attempts_total{outcome=\"fixed\"} 0"));
  EXPECT_TRUE(Has(metrics->body, "ferry_remediation_agent_duration_seconds_count 0"));
}

INSTANTIATE_TEST_SUITE_P(Backends, RemediationApiTest, ::testing::Values("sqlite"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace ferry::testing
