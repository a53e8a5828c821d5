// `ferry task submit --batch FILE|-` end to end: the real binary, a real redis-server. A file is
// checked whole before anything is sent; a bad line exits 2 naming it; more lines than one batch
// are sent in several.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

namespace ferry::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::seconds;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class BatchCliTest : public ::testing::Test {
 protected:
  void SetUp() override { redis_ = std::make_unique<RedisServer>(RedisServer::Options{"", false}); }

  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {FerryBinary(), "--redis-url", redis_->url(), "--prefix",
                                     "batchcli"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  CommandResult Run(const std::vector<std::string>& args) const {
    return RunCommand(Argv(args), seconds(60), {{"NO_COLOR", "1"}});
  }
  std::string Write(const std::string& name, const std::string& text) const {
    auto path = dir_.path() / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  // The queue's submitted counter: how many tasks Redis took.
  int64_t Submitted(const std::string& queue = "default") const {
    auto r = Run({"--json", "queue", "stats", queue});
    // No such queue: nothing was ever submitted to it.
    if (r.exit_code == 1 && r.err.find("no queue " + queue) != std::string::npos) return 0;
    if (r.exit_code != 0) return -1;
    Json j = Json::parse(r.out);
    return j["queue"]["counters"].value("submitted", int64_t{0});
  }
  // Runs with `file` and expects exit 2 with `needle` on stderr, and nothing submitted.
  void ExpectUsage(const std::string& file, const std::string& needle) {
    auto r = Run({"task", "submit", "--batch", file});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_TRUE(Contains(r.err, needle)) << "want '" << needle << "' in: " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(Submitted(), 0);
  }

  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
};

TEST_F(BatchCliTest, SubmitsEveryLineOfAFileAndOfStdin) {
  const std::string file = Write("tasks.jsonl",
                                 "{\"kind\":\"echo\",\"payload\":{\"n\":1}}\n"
                                 "\n"
                                 "{\"kind\":\"echo\",\"queue\":\"other\",\"max_attempts\":5}\r\n"
                                 "  {\"kind\":\"noop\",\"unique_key\":\"k1\",\"delay\":\"1h\"}");
  auto r = Run({"task", "submit", "--batch", file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> ids;
  for (size_t p = 0, e; (e = r.out.find('\n', p)) != std::string::npos; p = e + 1) {
    ids.push_back(r.out.substr(p, e - p));
  }
  ASSERT_EQ(ids.size(), 3u) << r.out;
  auto status = [&](const std::string& id) {
    auto s = Run({"--json", "task", "status", id});
    EXPECT_EQ(s.exit_code, 0) << s.err;
    return Json::parse(s.out)["task"];
  };
  EXPECT_EQ(status(ids[0])["payload"], Json({{"n", 1}}));
  EXPECT_EQ(status(ids[1])["queue"], "other");
  EXPECT_EQ(status(ids[1])["max_attempts"], 5);
  EXPECT_EQ(status(ids[2])["status"], "scheduled");

  // The same key again, from stdin, in --json: the first id, marked existing.
  auto again = RunCommand(
      {"bash", "-c",
       "printf '%s\\n' '{\"kind\":\"noop\",\"unique_key\":\"k1\"}' '{\"kind\":\"noop\"}' | "
       "\"$0\" --redis-url \"$1\" --prefix batchcli --json task submit --batch -",
       FerryBinary(), redis_->url()},
      seconds(60));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  Json answer = Json::parse(again.out);
  EXPECT_EQ(answer["tasks"][0], Json({{"id", ids[2]}, {"existing", true}}));
  EXPECT_EQ(answer["tasks"][1]["existing"], false);
  EXPECT_EQ(answer["created"], 1);
  EXPECT_EQ(answer["existing"], 1);
}

TEST_F(BatchCliTest, ABadLineExitsTwoNamingItAndNothingIsSent) {
  const std::string good = "{\"kind\":\"noop\"}\n";
  ExpectUsage(Write("a", good + good + "{\"kind\":\"noop\",\"max_attempts\":\"3\"}\n"),
              "line 3: max_attempts must be an integer");
  ExpectUsage(Write("b", good + "{\"kind\":\"noop\"\n" + good), "line 2: malformed JSON");
  ExpectUsage(Write("c", good + "[1,2]\n"), "line 2: body must be a JSON object, got an array");
  ExpectUsage(Write("d", good + "{\"kind\":\"noop\",\"payloads\":{}}\n"),
              "line 2: unknown field payloads (did you mean payload?)");
  ExpectUsage(Write("e", good + "{\"kind\":\"ferry.run\"}\n"), "line 2: ferry.run tasks are made");
  ExpectUsage(Write("f", "{\"kind\":\"noop\",\"unique_key\":\"k\"}\n" + good +
                             "{\"kind\":\"noop\",\"unique_key\":\"k\"}\n"),
              "line 3: unique_key 'k' on queue default is already used by");
  ExpectUsage(Write("g", good + "{\"kind\":\"noop\",\"max_attempts\":1001}\n"), "line 2:");
  ExpectUsage(Write("h", std::string("{\"kind\":\"no\0op\"}\n", 17)), "line 1:");
  ExpectUsage(Write("i", good + std::string(200, '[') + std::string(200, ']') + "\n"), "line 2:");
  ExpectUsage(Write("empty", "\n \n"), "holds no tasks");
  ExpectUsage((dir_.path() / "missing.jsonl").string(), "cannot open");
}

TEST_F(BatchCliTest, KindAndPerTaskFlagsDoNotMixWithBatch) {
  const std::string file = Write("one", "{\"kind\":\"noop\"}\n");
  for (const auto& extra : std::vector<std::vector<std::string>>{
           {"noop"}, {"--queue", "q"}, {"--payload", "{}"}, {"--wait"}}) {
    std::vector<std::string> args = {"task", "submit", "--batch", file};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << extra[0] << ": " << r.err;
    EXPECT_TRUE(Contains(r.err, "--batch takes every task from its lines")) << r.err;
  }
  auto none = Run({"task", "submit"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_TRUE(Contains(none.err, "KIND (or --batch FILE)")) << none.err;
  EXPECT_EQ(Submitted(), 0);
}

TEST_F(BatchCliTest, MoreLinesThanOneBatchAreSentInSeveral) {
  // 2,501 lines: three round trips of at most 1,000 (api::kMaxBatchTasks).
  std::string text;
  for (int i = 0; i < 2501; ++i)
    text += "{\"kind\":\"noop\",\"payload\":" + std::to_string(i) + "}\n";
  auto r = Run({"--json", "task", "submit", "--batch", Write("many", text)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json answer = Json::parse(r.out);
  EXPECT_EQ(answer["tasks"].size(), 2501u);
  EXPECT_EQ(answer["created"], 2501);
  EXPECT_EQ(Submitted(), 2501);
}

// A later batch of lines refused (here: its queue would pass --max-queues) after earlier ones
// went: exit 1 naming the lines sent, their ids on stdout, and the refused batch made no queue.
TEST_F(BatchCliTest, APartlySentFilePrintsTheIdsOfWhatWasSent) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "{\"kind\":\"noop\",\"queue\":\"a\"}\n";
  text += "{\"kind\":\"noop\",\"queue\":\"b\"}\n{\"kind\":\"noop\",\"queue\":\"c\"}\n";
  const std::string file = Write("partly", text);
  auto r = Run({"--max-queues", "2", "task", "submit", "--batch", file});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "the tasks of lines 1-1000 were submitted (their ids are on stdout)"))
      << r.err;
  EXPECT_TRUE(
      Contains(r.err, "2 new queues (b, c) cannot be made: 1 queue exists, this call needs 2 more"))
      << r.err;
  std::istringstream ids(r.out);
  std::string line;
  int n = 0;
  while (std::getline(ids, line)) n += line.size() == 26 ? 1 : 0;
  EXPECT_EQ(n, 1000) << r.out.substr(0, 200);
  EXPECT_EQ(Submitted("a"), 1000);
  // The refused batch made neither "b" nor "c": no place under the limit is used.
  auto listed = Run({"--json", "queue", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  Json queues = Json::parse(listed.out)["queues"];
  ASSERT_EQ(queues.size(), 1u) << listed.out;
  EXPECT_EQ(queues[0]["queue"], "a");
  // --json: one document, the error with the answer for what was sent.
  r = Run({"--json", "--max-queues", "2", "task", "submit", "--batch", file});
  EXPECT_EQ(r.exit_code, 1);
  Json answer = Json::parse(r.out);
  EXPECT_EQ(answer["error"]["code"], "conflict");
  EXPECT_EQ(answer["created"], 1000);
  EXPECT_EQ(answer["tasks"].size(), 1000u);
}

}  // namespace
}  // namespace ferry::testing
