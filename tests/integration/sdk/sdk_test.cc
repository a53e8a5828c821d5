// The C++ SDK as a user gets it: `cmake --install` into a temporary prefix, examples/cpp-worker
// (a separate CMake project using find_package(Ferry)) configured and built out of tree against
// that prefix, its worker (ferry::RunWorkerMain) run against a real redis-server, and its
// producer (ferry::Client) submitting a task and printing the handler's result.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "harness.h"

namespace ferry::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::minutes;
using std::chrono::seconds;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(Sdk, InstalledPackageBuildsAndRunsTheCppWorkerExample) {
  TempDir tmp;
  // As README installs it: DESTDIR keeps every file under the temporary folder, /etc/ferry's
  // ferry.env included (a --prefix alone would write that one to the machine's /etc).
  const fs::path destdir = tmp.path() / "root";
  const fs::path prefix = destdir / "usr";
  const fs::path build = tmp.path() / "build";

  auto install = RunCommand({"cmake", "--install", FERRY_BUILD_DIR, "--prefix", "/usr"}, minutes(5),
                            {{"DESTDIR", destdir.string()}});
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  EXPECT_TRUE(fs::exists(destdir / "etc/ferry/ferry.env"));
  EXPECT_TRUE(fs::exists(prefix / "include/ferry/ferry.h"));
  EXPECT_TRUE(fs::exists(prefix / "lib/cmake/Ferry/FerryConfig.cmake"));
  // Only the public headers are installed, not the internals.
  EXPECT_FALSE(fs::exists(prefix / "include/worker"));

  auto configure =
      RunCommand({"cmake", "-S", std::string(FERRY_SOURCE_DIR) + "/examples/cpp-worker", "-B",
                  build.string(), "-DCMAKE_PREFIX_PATH=" + prefix.string(),
                  "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"},
                 minutes(5));
  ASSERT_EQ(configure.exit_code, 0) << configure.out << configure.err;
  auto compile = RunCommand({"cmake", "--build", build.string(), "-j2"}, minutes(20));
  ASSERT_EQ(compile.exit_code, 0) << compile.out << compile.err;

  RedisServer redis(RedisServer::Options{"", false});
  Process worker(Process::Options{{(build / "resize-worker").string(), "--redis-url", redis.url(),
                                   "--store", (tmp.path() / "ferry.db").string(), "--worker-id",
                                   "sdk-example", "--queues", "default,images"},
                                  {},
                                  "",
                                  ""});
  ASSERT_TRUE(worker.WaitForOutput("worker.started", seconds(30))) << worker.Stderr();
  // The banner lists the example's kind next to the built-in ones.
  EXPECT_TRUE(Contains(worker.Stderr(), "resize")) << worker.Stderr();

  auto ok = RunCommand({(build / "resize-submit").string(), redis.url(), "640"}, seconds(60));
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err << worker.Stderr();
  EXPECT_EQ(ok.out, "{\"epoch\":1,\"height\":480,\"width\":640}\n");

  // A queue of its own, as beside a `ferry dev` whose worker serves `default`.
  auto own =
      RunCommand({(build / "resize-submit").string(), redis.url(), "320", "images"}, seconds(60));
  ASSERT_EQ(own.exit_code, 0) << own.out << own.err << worker.Stderr();
  EXPECT_EQ(own.out, "{\"epoch\":1,\"height\":240,\"width\":320}\n");

  // The handler's permanent error reaches the producer: width 0 fails at once.
  auto bad = RunCommand({(build / "resize-submit").string(), redis.url(), "0"}, seconds(60));
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_TRUE(Contains(bad.err, "failed: payload.width must be a positive integer")) << bad.err;
  // A width that is not a number is the producer's own usage error, not a crash.
  for (const char* width : {"abc", "64o", "99999999999"}) {
    auto typo = RunCommand({(build / "resize-submit").string(), redis.url(), width}, seconds(60));
    EXPECT_EQ(typo.exit_code, 2) << width << ": " << typo.out << typo.err;
    EXPECT_TRUE(Contains(typo.err, "WIDTH must be an integer")) << typo.err;
  }

  // RunWorkerMain takes worker start's flags: a bad one is a usage error naming it.
  auto usage = RunCommand({(build / "resize-worker").string(), "--concurrency", "zero"});
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
  EXPECT_TRUE(Contains(usage.err, "--concurrency")) << usage.err;

  // A declared handler may add kinds but not silently replace the program's own.
  auto twice = RunCommand({(build / "resize-worker").string(), "--redis-url", redis.url(),
                           "--handler", "resize=exec:/bin/true"});
  EXPECT_EQ(twice.exit_code, 2) << twice.err;
  EXPECT_TRUE(Contains(twice.err, "kind 'resize' is already registered")) << twice.err;

  // SIGTERM drains and exits 0, as `ferry worker start` does.
  worker.Signal(SIGTERM);
  EXPECT_EQ(worker.Wait(seconds(30)), 0) << worker.Stderr();
}

}  // namespace
}  // namespace ferry::testing
