// How client commands find a running `ferry dev` (cli/dev_endpoints.h): the record, its
// permissions, stale records from a killed dev, and who may remove it.
#include "cli/dev_endpoints.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "files.h"
#include "harness.h"

namespace ferry::cli {
namespace {

namespace fs = std::filesystem;

class DevEndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-dev-endpoints-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  EnvLookup Env(std::map<std::string, std::string> vars = {}) const {
    vars.emplace("FERRY_DATA_DIR", dir_);
    return [vars](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
  static DevEndpoints Sample() {
    return {"http://127.0.0.1:8080/api/v1", "redis://:pw@127.0.0.1:6390", "ferry",
            "/tmp/x/ferry.db"};
  }
  void WriteRaw(const std::string& text) const {
    std::ofstream(fs::path(dir_) / "dev.json") << text;
  }
  // A pid that surely names no process: a child that has exited and been reaped.
  static pid_t DeadPid() {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status = 0;
    waitpid(pid, &status, 0);
    return pid;
  }

  std::string dir_;
};

// Commands find the record from other folders (FERRY_DATA_DIR), so a relative SQLite path is
// recorded as the file it names where `ferry dev` runs, not left to name one in the reader's
// folder.
TEST_F(DevEndpointsTest, ARelativeStorePathIsRecordedAsTheFileItNamesHere) {
  const std::string here = fs::current_path().string();
  const std::map<std::string, std::string> cases = {
      {".ferry/ferry.db", here + "/.ferry/ferry.db"},
      {"./a/../b.db", here + "/b.db"},
      {"sqlite://rel.db", "sqlite://" + here + "/rel.db"},
      {"SQLite://rel.db", "sqlite://" + here + "/rel.db"},
      {"sqlite:///abs/x.db", "sqlite:///abs/x.db"},
      {"/abs/x.db", "/abs/x.db"},
      {":memory:", ":memory:"},
      {"file:x.db?mode=ro", "file:x.db?mode=ro"},
      {"postgresql://u:pw@127.0.0.1:5432/db", "postgresql://u:pw@127.0.0.1:5432/db"},
  };
  for (const auto& [given, recorded] : cases) {
    DevEndpoints e = Sample();
    e.store = given;
    auto file = DevEndpointsFile::Write(dir_, e);
    ASSERT_TRUE(file) << file.error().message;
    std::string hint;
    auto found = FindDevEndpoints(Env(), &hint);
    ASSERT_TRUE(found) << hint;
    EXPECT_EQ(found->store, recorded) << given;
  }
}

TEST_F(DevEndpointsTest, ALiveRecordIsFoundAndItsFileIsOwnerOnly) {
  {
    auto file = DevEndpointsFile::Write(dir_, Sample());
    ASSERT_TRUE(file) << file.error().message;
    struct stat st {};
    ASSERT_EQ(stat(file->path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    std::string hint;
    auto found = FindDevEndpoints(Env(), &hint);
    ASSERT_TRUE(found) << hint;
    EXPECT_EQ(found->api, Sample().api);
    EXPECT_EQ(found->redis_url, Sample().redis_url);
    EXPECT_EQ(found->store, Sample().store);

    auto env = WithDevEndpoints(Env({{"FERRY_PREFIX", "mine"}}), *found);
    EXPECT_EQ(env("FERRY_REDIS_URL"), Sample().redis_url);
    EXPECT_EQ(env("FERRY_STORE"), Sample().store);
    EXPECT_EQ(env("FERRY_PREFIX"), "mine") << "what the user set wins";
    EXPECT_EQ(env("FERRY_QUEUES"), std::nullopt);
  }
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "dev.json")) << "removed when dev stops";
  std::string hint;
  EXPECT_FALSE(FindDevEndpoints(Env(), &hint));
  EXPECT_EQ(hint, "") << "no file is not worth a warning";
}

TEST_F(DevEndpointsTest, AKilledDevsRecordIsIgnoredWithAHint) {
  WriteRaw(R"({"pid": )" + std::to_string(DeadPid()) +
           R"(, "started": 1, "api": null, "redis_url": "redis://127.0.0.1:1", "prefix": "ferry",
              "store": "x.db"})");
  std::string hint;
  EXPECT_FALSE(FindDevEndpoints(Env(), &hint));
  EXPECT_NE(hint.find("no longer running"), std::string::npos) << hint;
}

// A dev killed while its parent does not reap it is a zombie: kill(pid, 0) still succeeds.
TEST_F(DevEndpointsTest, AnUnreapedKilledDevIsNotRunning) {
  pid_t zombie = fork();
  if (zombie == 0) _exit(0);
  ASSERT_TRUE(ferry::testing::Eventually(
      [&] {
        return ferry::testing::ReadAll("/proc/" + std::to_string(zombie) + "/stat").find(") Z ") !=
               std::string::npos;
      },
      std::chrono::seconds(10)));
  WriteRaw(R"({"pid": )" + std::to_string(zombie) +
           R"(, "redis_url": "redis://127.0.0.1:1", "prefix": "ferry", "store": "x.db"})");
  std::string hint;
  EXPECT_FALSE(FindDevEndpoints(Env(), &hint));
  EXPECT_NE(hint.find("no longer running"), std::string::npos) << hint;
  int status = 0;
  waitpid(zombie, &status, 0);
}

TEST_F(DevEndpointsTest, AReusedPidIsNotMistakenForDev) {
  // This test process is alive, but it started at another time than the record says.
  WriteRaw(R"({"pid": )" + std::to_string(getpid()) +
           R"(, "started": 1, "api": null, "redis_url": "redis://127.0.0.1:1", "prefix": "ferry",
              "store": "x.db"})");
  std::string hint;
  EXPECT_FALSE(FindDevEndpoints(Env(), &hint));
  EXPECT_NE(hint.find("no longer running"), std::string::npos) << hint;
}

TEST_F(DevEndpointsTest, MalformedRecordsAreIgnoredWithAHint) {
  for (const char* text : {"", "{", "[]", R"({"pid": "1", "redis_url": "r", "prefix": "p",
                                               "store": "s"})",
                           R"({"pid": 1, "redis_url": 5, "prefix": "p", "store": "s"})"}) {
    WriteRaw(text);
    std::string hint;
    EXPECT_FALSE(FindDevEndpoints(Env(), &hint)) << text;
    EXPECT_NE(hint.find("not a record written by `ferry dev`"), std::string::npos) << text;
  }
}

// A file that cannot be the record (64 KiB is the most it reads; one byte more is refused) or
// that is a directory: ignored with a hint, never read whole.
TEST_F(DevEndpointsTest, OversizedOrUnreadableRecordsAreIgnoredWithAHint) {
  const std::string record = R"({"pid": 1, "redis_url": "r", "prefix": "p", "store": "s"})";
  WriteRaw(record + std::string(64 * 1024 + 1 - record.size(), ' '));
  std::string hint;
  EXPECT_FALSE(FindDevEndpoints(Env(), &hint));
  EXPECT_NE(hint.find("ignoring"), std::string::npos) << hint;
  EXPECT_EQ(hint.find("no longer running"), std::string::npos) << hint;  // not even parsed
  // At exactly the cap it is read (pid 1 is alive and the record gives no start time).
  WriteRaw(record + std::string(64 * 1024 - record.size(), ' '));
  hint.clear();
  auto at_cap = FindDevEndpoints(Env(), &hint);
  ASSERT_TRUE(at_cap) << hint;
  EXPECT_EQ(at_cap->redis_url, "r");
  fs::remove(fs::path(dir_) / "dev.json");
  fs::create_directory(fs::path(dir_) / "dev.json");
  hint.clear();
  EXPECT_FALSE(FindDevEndpoints(Env(), &hint));
  EXPECT_NE(hint.find("ignoring"), std::string::npos) << hint;
  fs::remove(fs::path(dir_) / "dev.json");
}

TEST_F(DevEndpointsTest, ARecordReplacedByAnotherDevIsLeftInPlace) {
  auto file = DevEndpointsFile::Write(dir_, Sample());
  ASSERT_TRUE(file);
  const std::string other = R"({"pid": 1, "redis_url": "r", "prefix": "p", "store": "s"})";
  WriteRaw(other);
  { auto gone = std::move(*file); }
  EXPECT_EQ(ferry::testing::ReadAll(fs::path(dir_) / "dev.json"), other);
}

TEST_F(DevEndpointsTest, UsesDefaultRedisOnlyWhenNoRedisIsNamed) {
  GlobalFlags flags;
  EXPECT_TRUE(UsesDefaultRedis(flags, Env()));
  EXPECT_FALSE(UsesDefaultRedis(flags, Env({{"FERRY_REDIS_URL", "redis://h:1"}})));
  EXPECT_FALSE(UsesDefaultRedis(flags, Env({{"REDIS_URL", "redis://h:1"}})));
  flags.redis_url = "redis://h:1";
  EXPECT_FALSE(UsesDefaultRedis(flags, Env()));
}

}  // namespace
}  // namespace ferry::cli
