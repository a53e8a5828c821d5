// README's "Using it" blocks, copied verbatim from README.md at test time and run as a new user
// would: the first in one terminal (`ferry dev` keeps running), the second in another terminal in
// the same folder, with no Redis URL given anywhere. The commands must find the dev stack through
// its endpoints file (src/cli/dev_endpoints.h), not try redis://127.0.0.1:6379.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "files.h"
#include "harness.h"

namespace ferry::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

// The ```sh blocks that follow `heading` in README.md, up to the next heading, line by line.
std::vector<std::vector<std::string>> ShellBlocksAfter(const std::string& heading) {
  std::istringstream in(ReadAll(fs::path(FERRY_SOURCE_DIR) / "README.md"));
  std::vector<std::vector<std::string>> blocks;
  std::string line;
  bool in_section = false, in_block = false;
  while (std::getline(in, line)) {
    if (!in_block && line.rfind("## ", 0) == 0) {
      if (in_section) break;
      in_section = line == heading;
      continue;
    }
    if (!in_section) continue;
    if (line == "```sh") {
      in_block = true;
      blocks.emplace_back();
    } else if (line == "```") {
      in_block = false;
    } else if (in_block) {
      blocks.back().push_back(line);
    }
  }
  return blocks;
}

// `export NAME=VALUE  # comment` as (NAME, VALUE), else nullopt.
std::optional<std::pair<std::string, std::string>> Export(const std::string& line) {
  static const std::regex re(R"(^export ([A-Z_][A-Z0-9_]*)=(\S+)\s*(#.*)?$)");
  std::smatch m;
  if (!std::regex_match(line, m, re)) return std::nullopt;
  return std::make_pair(m[1].str(), m[2].str());
}

TEST(ReadmeTest, UsingItBlocksPassVerbatimWithoutAnyRedisUrl) {
  auto blocks = ShellBlocksAfter("## Using it");
  ASSERT_GE(blocks.size(), 2u) << "README's Using it section lost its two shell blocks";
  const auto& first = blocks[0];
  const auto& second = blocks[1];

  TempDir folder;
  fs::copy(fs::path(FERRY_SOURCE_DIR) / "examples", folder.path() / "examples",
           fs::copy_options::recursive);
  // `ferry` on PATH is the binary under test; no FERRY_*/REDIS_URL setting from this process.
  const std::string bin_dir = fs::path(FerryBinary()).parent_path().string();
  std::map<std::string, std::string> env = {
      {"PATH", bin_dir + ":" + std::getenv("PATH")},
      {"NO_COLOR", "1"},
      // Only where the dev API listens: 8080 may be taken by a test running beside this one.
      {"FERRY_LISTEN", "127.0.0.1:" + std::to_string(FreePort())}};
  for (const char* name : {"FERRY_REDIS_URL", "REDIS_URL", "FERRY_STORE", "FERRY_DATA_DIR",
                           "FERRY_CONFIG", "FERRY_PREFIX"}) {
    ASSERT_EQ(std::getenv(name), nullptr) << name << " is set in the test's environment";
  }

  // Terminal 1: the exports, then `ferry dev`, which keeps running.
  std::string dev_line;
  for (const auto& line : first) {
    if (auto e = Export(line)) {
      env[e->first] = e->second;
    } else if (!line.empty()) {
      ASSERT_TRUE(dev_line.empty()) << "the first block should end with `ferry dev`: " << line;
      dev_line = line;
    }
  }
  ASSERT_EQ(dev_line.rfind("ferry dev", 0), 0u) << dev_line;
  Process dev({{"sh", "-c", "exec " + dev_line}, env, folder.path().string(), ""});
  ASSERT_TRUE(dev.WaitForOutput("Press Ctrl-C to stop.", seconds(60))) << dev.Stderr();
  EXPECT_TRUE(fs::exists(folder.path() / ".ferry" / "dev.json")) << dev.Stdout();

  // Terminal 2, same folder: each line as written; <RUN_ID> is the run the second line started.
  std::string run_id;
  for (const auto& line : second) {
    if (line.empty()) continue;
    std::string cmd = line;
    if (auto at = cmd.find("<RUN_ID>"); at != std::string::npos) {
      ASSERT_FALSE(run_id.empty()) << "no run id seen before: " << line;
      cmd.replace(at, 8, run_id);
    }
    auto r =
        RunCommand({"sh", "-c", "cd '" + folder.path().string() + "' && " + cmd}, seconds(60), env);
    EXPECT_EQ(r.exit_code, 0) << line << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_EQ(r.err.find("6379"), std::string::npos) << line << ": " << r.err;
    std::smatch m;
    static const std::regex ulid("[0-9A-HJKMNP-TV-Z]{26}");
    if (run_id.empty() && line.find("workflow run") != std::string::npos &&
        std::regex_search(r.out, m, ulid)) {
      run_id = m.str();
    }
    if (line.find("workflow run") != std::string::npos) {
      EXPECT_NE(r.out.find("succeeded"), std::string::npos) << r.out;
    }
  }
  ASSERT_FALSE(run_id.empty());
  // The run is in the dev stack's store, with the greeting.
  auto show = RunCommand(
      {"sh", "-c", "cd '" + folder.path().string() + "' && ferry --json run show " + run_id},
      seconds(30), env);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("Hello, Ada!"), std::string::npos) << show.out;

  // Stopping dev removes its endpoints file; a command then says nothing about a stale one.
  dev.Signal(SIGTERM);
  EXPECT_EQ(dev.Wait(seconds(30)), 0) << dev.Stderr();
  EXPECT_FALSE(fs::exists(folder.path() / ".ferry" / "dev.json"));
}

// A `ferry dev` killed with SIGKILL leaves its file; client commands ignore it with a hint and
// fall back to the defaults (here: a Redis named by hand is not needed to see the hint).
TEST(ReadmeTest, AKilledDevsEndpointsAreIgnoredWithAHint) {
  TempDir folder;
  const int api_port = FreePort();
  Process dev({{FerryBinary(), "dev", "--listen", "127.0.0.1:" + std::to_string(api_port)},
               {{"NO_COLOR", "1"}},
               folder.path().string(),
               ""});
  ASSERT_TRUE(dev.WaitForOutput("Press Ctrl-C to stop.", seconds(60))) << dev.Stderr();
  const fs::path file = folder.path() / ".ferry" / "dev.json";
  ASSERT_TRUE(fs::exists(file));
  nlohmann::json rec = nlohmann::json::parse(ReadAll(file));
  EXPECT_EQ(rec["api"], "http://127.0.0.1:" + std::to_string(api_port) + "/api/v1");

  // In an empty folder the banner suggests nothing that needs a file there.
  EXPECT_EQ(dev.Stdout().find("examples/hello.yaml"), std::string::npos) << dev.Stdout();
  EXPECT_NE(dev.Stdout().find("ferry task submit echo"), std::string::npos) << dev.Stdout();

  // While it runs, FERRY_DATA_DIR finds it from any folder: its Redis, and its store (recorded
  // as the file it is, not as a path relative to the dev's folder).
  ASSERT_NE(fs::current_path(), folder.path());
  EXPECT_EQ(rec["store"], (folder.path() / ".ferry" / "ferry.db").string());
  auto listed = RunCommand({FerryBinary(), "--json", "queue", "list"}, seconds(30),
                           {{"FERRY_DATA_DIR", (folder.path() / ".ferry").string()}});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  auto workflows = RunCommand({FerryBinary(), "--json", "workflow", "list"}, seconds(30),
                              {{"FERRY_DATA_DIR", (folder.path() / ".ferry").string()}});
  EXPECT_EQ(workflows.exit_code, 0) << workflows.err;
  const fs::path wf = folder.path() / "kept.yaml";
  std::ofstream(wf) << "name: kept\nnodes:\n  a: {kind: shell, argv: [\"true\"]}\n";
  auto applied = RunCommand({FerryBinary(), "workflow", "apply", wf.string()}, seconds(30),
                            {{"FERRY_DATA_DIR", (folder.path() / ".ferry").string()}});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;

  // A second `ferry dev` on the same data directory is refused: it would share the store but
  // not the Redis, and each stack would take the other's runs for lost. The first keeps its file.
  auto second = RunCommand({"sh", "-c", "cd \"$0\" && exec \"$1\" dev --listen 127.0.0.1:0",
                            folder.path().string(), FerryBinary()},
                           seconds(30), {{"NO_COLOR", "1"}});
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_NE(second.err.find("data directory .ferry is in use by another `ferry dev` (pid " +
                            std::to_string(dev.pid()) + ")"),
            std::string::npos)
      << second.err;
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(nlohmann::json::parse(ReadAll(file))["pid"], dev.pid());

  dev.Signal(SIGKILL);
  dev.Wait(seconds(10));
  ASSERT_TRUE(fs::exists(file)) << "SIGKILL leaves the file behind";
  // With the stack gone, commands given its data directory read its store, not a new empty one
  // in the current folder.
  TempDir elsewhere;
  auto kept = RunCommand({"sh", "-c", "cd \"$0\" && exec \"$1\" --json workflow list",
                          elsewhere.path().string(), FerryBinary()},
                         seconds(30), {{"FERRY_DATA_DIR", (folder.path() / ".ferry").string()}});
  EXPECT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_NE(kept.out.find("\"kept\""), std::string::npos) << kept.out;
  EXPECT_FALSE(fs::exists(elsewhere.path() / ".ferry"));
  // The killed dev's private Redis went with it; nothing listens where the record points.
  auto r = RunCommand({FerryBinary(), "--io-timeout", "1s", "queue", "list"}, seconds(30),
                      {{"FERRY_DATA_DIR", (folder.path() / ".ferry").string()},
                       {"FERRY_REDIS_URL", "redis://127.0.0.1:" + std::to_string(FreePort())}});
  EXPECT_EQ(r.err.find("no longer running"), std::string::npos)
      << "a Redis named by hand does not consult the dev record: " << r.err;
  auto stale = RunCommand({FerryBinary(), "--io-timeout", "1s", "queue", "list"}, seconds(30),
                          {{"FERRY_DATA_DIR", (folder.path() / ".ferry").string()}});
  EXPECT_NE(stale.err.find("is no longer running"), std::string::npos) << stale.err;
}

}  // namespace
}  // namespace ferry::testing
