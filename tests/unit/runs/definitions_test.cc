// LoadDefinition against a real SQLite store in a temporary directory (no servers).
#include "runs/definitions.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/ids.h"
#include "cron/cron.h"
#include "engine/ingest.h"
#include "runs/apply.h"

namespace ferry::runs {
namespace {

class DefinitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ferry-defs-" + RandomHex(6));
    std::filesystem::create_directories(dir_);
    auto f = MakeStoreFactory((dir_ / "ferry.db").string());
    ASSERT_TRUE(f) << f.error().message;
    factory_ = std::move(*f);
    auto s = factory_->Open();
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string Apply(const std::string& message) {
    ApplySourceRequest req;
    req.source = "name: defs\nnodes:\n  only:\n    kind: fail\n    message: " + message + "\n";
    auto r = ApplyWorkflowSource(*store_, req, nullptr);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? r->applied.workflow.id : "";
  }

  std::filesystem::path dir_;
  std::unique_ptr<StoreFactory> factory_;
  std::unique_ptr<Store> store_;
};

TEST_F(DefinitionsTest, ParsesEachVersionOnceAndFollowsTheCurrentOne) {
  std::string id = Apply("first");
  auto a = LoadDefinition(*store_, id, 0);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->version, 1);
  EXPECT_EQ(a->workflow->name, "defs");
  auto again = LoadDefinition(*store_, id, 1);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->workflow.get(), a->workflow.get());  // served from the cache

  ASSERT_EQ(Apply("second"), id);
  auto b = LoadDefinition(*store_, id, 0);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->version, 2);
  EXPECT_NE(b->workflow.get(), a->workflow.get());
  const auto& spec = std::get<engine::FailSpec>(b->workflow->nodes.at(0).spec);
  EXPECT_EQ(spec.message, "second");
  auto old = LoadDefinition(*store_, id, 1);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->workflow.get(), a->workflow.get());
}

// `workflow apply` judges a cron schedule with the cron parser alone: its words, as
// `schedule next` and docs/cron.md give them, not a second wording of its own.
TEST(ApplyIngestOptions, CronSchedulesAreJudgedInTheCronParsersWords) {
  for (const std::string schedule : {"@reboot", "0 0 30 2 *", "*/0 * * * *"}) {
    auto parsed = cron::ParseCron(schedule);
    ASSERT_FALSE(parsed) << schedule;
    auto r = engine::IngestWorkflow("name: c\ntriggers:\n  cron:\n    schedule: \"" + schedule +
                                        "\"\nnodes:\n  a:\n    kind: lua\n    script: return 1\n",
                                    ApplyIngestOptions());
    ASSERT_FALSE(r) << schedule;
    EXPECT_NE(r.error().message.find(parsed.error().message), std::string::npos)
        << schedule << ": " << r.error().message;
  }
}

TEST_F(DefinitionsTest, UnknownVersionIsNotFound) {
  std::string id = Apply("x");
  auto r = LoadDefinition(*store_, id, 7);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace ferry::runs
