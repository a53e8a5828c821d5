// The Store conformance fixture. The parameter names the backend ("sqlite" or "postgres"); each
// test gets a fresh database (a file in a TempDir, or a new database on the shared server).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/clock.h"
#include "core/ids.h"
#include "harness.h"
#include "store/store.h"

namespace ferry::testing {

class PostgresServer;
// One PostgreSQL server per test binary, started on first use.
PostgresServer& SharedPostgres();

class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  // Another connection to the same database.
  std::unique_ptr<Store> Open();
  // Applies a workflow named `name` whose content is identified by `checksum`.
  Workflow Apply(const std::string& name, const std::string& checksum);
  // A pending run; advances the clock 1 ms so runs have distinct creation times.
  ferry::Run NewRun(const Workflow& wf, const std::string& inputs = "{}");
  // A run of workflow "wf", running under `epoch` (worker "w"), whose node "nap" waits on a
  // delay's deadline.
  ferry::Run RunningWithADeadline(int64_t epoch);

  FakeClock clock_;
  StoreOptions options_;
  std::unique_ptr<TempDir> dir_;
  std::string location_;
  std::unique_ptr<StoreFactory> factory_;
  std::unique_ptr<Store> store_;
};

}  // namespace ferry::testing
