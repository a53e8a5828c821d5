// The API over real HTTP, for the API's integration tests: a real redis-server (one per suite), a
// SQLite store in a TempDir, the ApiServer on a free loopback port, an admin token and a client,
// and on demand an in-process worker running `ferry.run`.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "answer_log.h"
#include "api/http_util.h"
#include "api/server.h"
#include "broker/broker.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "engine/secrets.h"
#include "harness.h"
#include "runs/handler.h"
#include "service/scopes.h"
#include "store/store.h"
#include "worker/handler.h"
#include "worker/worker.h"

namespace ferry {

using namespace std::chrono_literals;

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new testing::RedisServer(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }

  void SetUp() override {
    auto stores = MakeStoreFactory((dir_.path() / "ferry.db").string());
    ASSERT_TRUE(stores) << stores.error().message;
    stores_ = std::move(*stores);
    auto admin = stores_->Open();
    ASSERT_TRUE(admin) << admin.error().message;
    admin_ = std::move(*admin);
    broker_options_.redis_url = redis_->url();
    broker_options_.prefix = "t" + RandomHex(4);
    brokers_ = MakeRedisBrokerFactory(broker_options_);
    server_ = StartServer();
    port_ = server_->port();
    token_ = service::NewApiTokenSecret();
    ASSERT_TRUE(admin_->CreateApiToken("test", Sha256Hex(token_), {"admin"}));
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(10, 0);
    client_->set_bearer_token_auth(token_.c_str());
    answers_.Attach(*client_);
  }

  void TearDown() override {
    if (worker_) {
      worker_->Stop();
      worker_->Wait();
    }
    client_.reset();
    if (server_) server_->Stop();
    // Every answer the test's client received matches docs/openapi.json.
    EXPECT_TRUE(answers_.Check());
  }

  // `adjust` changes the options a test needs different before the server starts.
  std::unique_ptr<api::ApiServer> StartServer(
      const std::function<void(api::ApiServerOptions&)>& adjust = {}) {
    api::ApiServerOptions o;
    o.port = 0;
    o.store_factory = stores_.get();
    o.broker_factory = brokers_.get();
    o.secrets = &secrets_;
    o.threads = 12;
    o.max_sse_clients = 2;
    o.http.idle_timeout = 1s;
    o.sse_poll_interval = 50ms;
    if (adjust) adjust(o);
    auto server = std::make_unique<api::ApiServer>(o);
    auto port = server->Start();
    EXPECT_TRUE(port) << port.error().message;
    return server;
  }

  // A `ferry dev` server's options (no authentication) on `host`, on the fixture's stores.
  api::ApiServerOptions OpenServerOptions(const std::string& host) {
    api::ApiServerOptions o;
    o.host = host;
    o.port = 0;
    o.require_auth = false;
    o.dev_mode = true;
    o.store_factory = stores_.get();
    o.broker_factory = brokers_.get();
    return o;
  }

  void StartWorker() {
    RegisterBuiltinHandlers(registry_);
    runs::RunHandlerOptions ho;
    ho.secrets = &secrets_;
    runs::RegisterRunHandler(registry_, *stores_, *brokers_, ho);
    WorkerOptions wo;
    wo.broker = broker_options_;
    wo.concurrency = 2;
    wo.block = 100ms;
    auto worker = MakeWorker(wo, registry_, MakeRedisBrokerFactory(wo.broker));
    ASSERT_TRUE(worker) << worker.error().message;
    worker_ = std::move(*worker);
    ASSERT_TRUE(worker_->Start());
  }

  Json Apply(const std::string& source) {
    auto res =
        client_->Post("/api/v1/workflows", DumpJson(Json{{"source", source}}), "application/json");
    EXPECT_TRUE(res);
    EXPECT_TRUE(res->status == 201 || res->status == 200) << res->status << " " << res->body;
    return Json::parse(res->body);
  }

  static int64_t NowSec() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  httplib::Headers Signed(const std::string& body, int64_t ts, const std::string& key = "s3cret") {
    const std::string t = std::to_string(ts);
    return {{"X-Ferry-Timestamp", t},
            {"X-Ferry-Signature", "sha256=" + HmacSha256Hex(key, t + "." + body)}};
  }

  httplib::Result Hook(httplib::Client& c, const std::string& body, const httplib::Headers& h,
                       const std::string& workflow = "hook") {
    return c.Post(("/hooks/" + workflow).c_str(), h, body, "application/json");
  }

  std::string TaskStatus(const std::string& id) {
    auto res = client_->Get(("/api/v1/tasks/" + id).c_str());
    if (!res || res->status != 200) return "";
    return Json::parse(res->body)["task"]["status"].get<std::string>();
  }

  std::string RunStatus(const std::string& id) {
    auto res = client_->Get(("/api/v1/runs/" + id).c_str());
    if (!res || res->status != 200) return "";
    return Json::parse(res->body)["run"]["status"].get<std::string>();
  }

  static inline testing::RedisServer* redis_ = nullptr;
  testing::TempDir dir_;
  std::unique_ptr<StoreFactory> stores_;
  std::unique_ptr<Store> admin_;
  BrokerOptions broker_options_;
  std::unique_ptr<BrokerFactory> brokers_;
  // Every secret the API tests name (the senders' tests sign with the same values in Python).
  engine::MapSecretResolver secrets_{{{"HOOK", "s3cret"},
                                      {"GH", "gh-secret"},
                                      {"GH_NEW", "new-secret"},
                                      {"GH_OLD", "old-secret"},
                                      {"STRIPE", "whsec_stripe_test"},
                                      {"SLACK", "8f742231b10e8888abcd99yyyzzz85a5"},
                                      {"SW", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                                      {"API_TOKEN", "api-token-value"}}};
  HandlerRegistry registry_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<api::ApiServer> server_;
  int port_ = 0;
  std::string token_;
  std::unique_ptr<httplib::Client> client_;
  testing::AnswerLog answers_;
};

}  // namespace ferry
