// Every example in examples/ must pass ingestion: `ferry dev` users start from them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>

#include "core/time_util.h"
#include "engine/executor.h"
#include "engine/ingest.h"

namespace ferry::engine {
namespace {

TEST(Examples, AllValidate) {
  namespace fs = std::filesystem;
  int count = 0;
  for (const auto& entry : fs::directory_iterator(FERRY_EXAMPLES_DIR)) {
    auto ext = entry.path().extension();
    if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream buf;
    buf << in.rdbuf();
    auto r = Ingest(buf.str());
    EXPECT_TRUE(r.has_value()) << entry.path() << ":\n" << (r ? "" : FormatDiagnostics(r.error()));
    ++count;
  }
  EXPECT_GE(count, 2);
}

// The commands in an example's header are pasted as they are: each `ferry workflow run` names
// the file's workflow, and its --input is what the workflow declares and accepts.
TEST(Examples, RunCommandsInTheirCommentsAreAccepted) {
  namespace fs = std::filesystem;
  static const std::regex run_re(R"(^#\s+ferry workflow run (\S+)(?: --input '([^']*)')?)");
  int commands = 0;
  for (const auto& entry : fs::recursive_directory_iterator(FERRY_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    std::stringstream buf;
    buf << in.rdbuf();
    auto r = Ingest(buf.str());
    if (!r) continue;  // AllValidate reports it
    std::istringstream lines(buf.str());
    for (std::string line; std::getline(lines, line);) {
      std::smatch m;
      if (!std::regex_search(line, m, run_re)) continue;
      ++commands;
      EXPECT_EQ(m[1].str(), r->workflow.name) << entry.path() << ": " << line;
      auto given = ParseJson(m[2].matched ? m[2].str() : "{}");
      ASSERT_TRUE(given) << entry.path() << ": " << line;
      auto inputs = ResolveInputs(r->workflow, *given);
      EXPECT_TRUE(inputs) << entry.path() << ": " << line << ": "
                          << (inputs ? "" : inputs.error().message);
    }
  }
  EXPECT_GE(commands, 2);
}

// deploy/docker/test.sh applies this one in containers; a definition that stopped validating
// would only show up in that opt-in run.
TEST(Examples, ContainerTestWorkflowValidates) {
  std::ifstream in(std::string(FERRY_CONTAINER_TEST_DIR) + "/slow.yaml");
  std::stringstream buf;
  buf << in.rdbuf();
  ASSERT_FALSE(buf.str().empty());
  auto r = Ingest(buf.str());
  ASSERT_TRUE(r.has_value()) << FormatDiagnostics(r.error());
}

TEST(Examples, HelloHasAWebhookAndTheThreeNodeKinds) {
  std::ifstream in(std::string(FERRY_EXAMPLES_DIR) + "/hello.yaml");
  std::stringstream buf;
  buf << in.rdbuf();
  auto r = Ingest(buf.str());
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->workflow.webhook.has_value());
  bool shell = false, lua = false;
  for (const auto& n : r->workflow.nodes) {
    shell = shell || n.kind == NodeKind::kShell;
    lua = lua || n.kind == NodeKind::kLua;
  }
  EXPECT_TRUE(shell && lua);
}

class ExampleSink : public RunSink {
 public:
  Status SaveStep(const std::string&, StepStatus, const Json&, const std::string&, int) override {
    return {};
  }
  void Emit(const std::string&, const Json&) override {}
  // Kept per node, as the store keeps a delay's deadline.
  Result<int64_t> DelayDeadline(const std::string& node, int,
                                std::chrono::milliseconds d) override {
    std::lock_guard lock(mu_);
    return deadlines_.try_emplace(node, WallNowMs() + d.count()).first->second;
  }
  Result<TaskNodeProgress> SubmitOrCheck(const TaskNodeRequest&) override {
    return Fail(ErrorCode::kInternal, "no tasks here");
  }

 private:
  std::mutex mu_;
  std::map<std::string, int64_t> deadlines_;
};

TEST(Examples, HelloRunsToTheEnd) {
  std::ifstream in(std::string(FERRY_EXAMPLES_DIR) + "/hello.yaml");
  std::stringstream buf;
  buf << in.rdbuf();
  auto r = IngestWorkflow(buf.str());
  ASSERT_TRUE(r.has_value());
  auto inputs = ResolveInputs(r->workflow, Json{{"who", "Ada"}, {"shout", true}});
  ASSERT_TRUE(inputs.has_value());
  RunExecutor ex(r->workflow, {});
  ExampleSink sink;
  RunContext rc{.run_id = "R1", .workflow = "hello", .triggered_by = "webhook", .inputs = *inputs};
  auto out = ex.Run(rc, {}, sink, {});
  ASSERT_EQ(out.kind, RunOutcome::Kind::kSucceeded) << out.error;
  EXPECT_EQ(out.outputs["report"]["json"],
            Json::parse(R"({"summary": "HELLO, ADA!", "letters": 8, "run": "R1"})"));
}

}  // namespace
}  // namespace ferry::engine
