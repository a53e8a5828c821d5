#include "fixture.h"

#include <filesystem>
#include <fstream>

#include "core/ids.h"
#include "postgres.h"
#include "runs/apply.h"

namespace ferry::testing {

RedisServer& SharedRedis() {
  static RedisServer server;
  return server;
}

PostgresServer& SharedPostgres() {
  static PostgresServer server;
  return server;
}

std::string ExampleAgent() {
  return std::string(FERRY_SOURCE_DIR) + "/examples/remediation/agent.sh";
}

void RemediationTest::SetUp() {
  if (GetParam() == "postgres") {
    if (!PostgresServer::Available()) GTEST_SKIP() << "PostgreSQL binaries not installed";
    location_ = SharedPostgres().CreateDatabase();
  } else {
    location_ = (dir_.path() / "ferry.db").string();
  }
  auto f = MakeStoreFactory(location_);
  ASSERT_TRUE(f) << f.error().message;
  stores_ = std::move(*f);
  auto s = stores_->Open();
  ASSERT_TRUE(s) << s.error().message;
  store_ = std::move(*s);
  broker_options_.redis_url = SharedRedis().url();
  broker_options_.prefix = "rem" + RandomHex(4);
  brokers_ = MakeRedisBrokerFactory(broker_options_);
  auto b = brokers_->Open();
  ASSERT_TRUE(b) << b.error().message;
  broker_ = std::move(*b);
}

Workflow RemediationTest::Apply(const std::string& source) {
  runs::ApplySourceRequest req;
  req.source = source;
  auto r = runs::ApplyWorkflowSource(*store_, req, nullptr);
  EXPECT_TRUE(r) << r.error().message;
  return r ? r->applied.workflow : Workflow{};
}

ferry::Run RemediationTest::FailRun(const Workflow& wf, const std::string& node,
                                    const std::string& error, const std::string& inputs) {
  CreateRunRequest req;
  req.workflow_id = wf.id;
  req.inputs = inputs;
  auto run = store_->CreateRun(req);
  EXPECT_TRUE(run) << run.error().message;
  EXPECT_TRUE(store_->MarkRunRunning(run->id, 1, "w"));
  EXPECT_TRUE(store_->AppendRunEvent(run->id, "node.started", DumpJson(Json{{"node", node}})));
  auto done = store_->FinishRun(run->id, 1, RunStatus::kFailed, "", error, node);
  EXPECT_TRUE(done) << done.error().message;
  return done ? *done : ferry::Run{};
}

Remediation RemediationTest::Capture(const ferry::Run& run, const engine::SecretResolver* secrets) {
  remediation::CaptureOptions o;
  o.secrets = secrets;
  auto r = remediation::Capture(*store_, run, o);
  EXPECT_TRUE(r) << r.error().message;
  return r ? r->remediation : Remediation{};
}

Remediation RemediationTest::ClaimOne(const std::string& owner) {
  ClaimRemediationsRequest req;
  req.owner = owner;
  auto c = store_->ClaimRemediations(req);
  EXPECT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->claimed.size(), 1u);
  return c && !c->claimed.empty() ? c->claimed[0] : Remediation{};
}

remediation::Settings RemediationTest::Settings(std::vector<std::string> agent_argv) {
  remediation::Settings s;
  s.enabled = true;
  s.agent_argv = std::move(agent_argv);
  s.agent_timeout = std::chrono::seconds(30);
  s.workspace_dir = (dir_.path() / "workspaces").string();
  s.backoff = std::chrono::milliseconds(0);
  return s;
}

remediation::AttemptOutcome RemediationTest::Attempt(const Remediation& claimed,
                                                     const remediation::Settings& settings,
                                                     Broker* broker) {
  remediation::AttemptOptions o;
  o.settings = settings;
  o.owner = claimed.claim_owner;
  o.hide_paths = remediation::HidePaths(location_, "", "", "");
  auto r = remediation::RunAttempt(*store_, broker != nullptr ? *broker : *broker_, claimed, o, {});
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : remediation::AttemptOutcome{};
}

std::string RemediationTest::Script(const std::string& name, const std::string& body) {
  const auto path = dir_.path() / name;
  std::ofstream(path) << "#!/bin/sh\nset -eu\ncd \"$1\"\n" << body;
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path.string();
}

}  // namespace ferry::testing
