// Shared set-up of the remediation integration tests: a real redis-server (one per binary), a
// store per test (SQLite in a TempDir, or a fresh database on one private PostgreSQL server),
// workflows applied the way `ferry workflow apply` does, failed runs, agent scripts.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "broker/broker.h"
#include "harness.h"
#include "remediation/attempt.h"
#include "remediation/capture.h"
#include "remediation/settings.h"
#include "store/store.h"

namespace ferry::testing {

class PostgresServer;
RedisServer& SharedRedis();
PostgresServer& SharedPostgres();

// The parameter names the backend: "sqlite" or "postgres".
class RemediationTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;

  // Applies a workflow document (ingestion as `ferry workflow apply`).
  Workflow Apply(const std::string& source);
  // A run of the workflow's current version that failed at `node` with `error`.
  ferry::Run FailRun(const Workflow& wf, const std::string& node, const std::string& error,
                     const std::string& inputs = "{}");
  // Capture of a failed run; the candidate.
  Remediation Capture(const ferry::Run& run, const engine::SecretResolver* secrets = nullptr);
  // Claims exactly one candidate as `owner`.
  Remediation ClaimOne(const std::string& owner = "test-scheduler");
  // Settings for an attempt with this agent command.
  remediation::Settings Settings(std::vector<std::string> agent_argv);
  // RunAttempt on a claim with these settings.
  remediation::AttemptOutcome Attempt(const Remediation& claimed,
                                      const remediation::Settings& settings,
                                      Broker* broker = nullptr);
  // An executable /bin/sh script in the test's directory; returns its path.
  std::string Script(const std::string& name, const std::string& body);

  TempDir dir_;
  std::string location_;
  std::unique_ptr<StoreFactory> stores_;
  std::unique_ptr<Store> store_;
  BrokerOptions broker_options_;
  std::unique_ptr<BrokerFactory> brokers_;
  std::unique_ptr<Broker> broker_;
};

// The example agent of the repository (examples/remediation/agent.sh).
std::string ExampleAgent();

}  // namespace ferry::testing
