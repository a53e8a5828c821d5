// Every example in examples/ must pass ingestion: `ferry dev` users start from them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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

}  // namespace
}  // namespace ferry::engine
