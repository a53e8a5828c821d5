// Every answer an httplib client receives, checked against docs/openapi.json by
// tests/contract/validate-responses.mjs (node, ajv): route and method documented, status
// documented, Content-Type listed, JSON body valid against the response's schema. The API tests
// attach one to their client, so each answer they provoke is also a contract check.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "core/json.h"
#include "harness.h"

namespace ferry::testing {

class AnswerLog {
 public:
  // Records what `client` receives from now on. The log must outlive the client's requests.
  void Attach(httplib::Client& client) {
    client.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      Json a{{"method", req.method},
             {"path", req.path},
             {"status", res.status},
             {"content_type", res.get_header_value("Content-Type")},
             {"body", res.body}};
      std::lock_guard lock(mu_);
      answers_.push_back(DumpJson(a));
    });
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return answers_.size();
  }

  // Runs the validator over the answers so far (success when there are none).
  ::testing::AssertionResult Check() const {
    std::vector<std::string> answers;
    {
      std::lock_guard lock(mu_);
      answers = answers_;
    }
    if (answers.empty()) return ::testing::AssertionSuccess();
    const std::filesystem::path contract =
        std::filesystem::path(FERRY_SOURCE_DIR) / "tests/contract";
    if (!std::filesystem::exists(contract / "node_modules/ajv")) {
      return ::testing::AssertionFailure()
             << "tests/contract/node_modules is missing: run scripts/setup.sh (npm ci there)";
    }
    TempDir dir;
    const auto file = dir.path() / "answers.jsonl";
    {
      std::ofstream out(file);
      for (const auto& a : answers) out << a << "\n";
    }
    auto r = RunCommand(
        {"node", (contract / "validate-responses.mjs").string(),
         (std::filesystem::path(FERRY_SOURCE_DIR) / "docs/openapi.json").string(), file.string()},
        std::chrono::seconds(60));
    if (r.exit_code == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "answers that break docs/openapi.json (exit " << r.exit_code << "):\n"
           << r.err << r.out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> answers_;  // one JSON line each; Guarded by mu_
};

}  // namespace ferry::testing
