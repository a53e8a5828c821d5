#include "remediation/sandbox.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "harness.h"

namespace ferry::remediation {
namespace {

using ferry::testing::TempDir;

bool HasSeq(const std::vector<std::string>& v, std::vector<std::string> seq) {
  return std::search(v.begin(), v.end(), seq.begin(), seq.end()) != v.end();
}

SandboxProbe Works() {
  SandboxProbe p;
  p.works = true;
  p.program = "/usr/bin/bwrap";
  return p;
}

TEST(SandboxTest, WithoutBubblewrapTheAgentRunsPlainInAutoMode) {
  SandboxOptions o;
  auto l = WrapAgent({"sh", "-c", "true"}, "/tmp/ws", "/usr/bin:/bin", o, SandboxProbe{});
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_FALSE(l->sandboxed);
  EXPECT_EQ(l->argv[0].substr(l->argv[0].size() - 3), "/sh");
  o.mode = SandboxMode::kBwrap;
  auto r = WrapAgent({"sh"}, "/tmp/ws", "/usr/bin:/bin", o, SandboxProbe{false, "", "", "nope"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("nope"), std::string::npos);
  auto missing = WrapAgent({"no-such-agent-xyz"}, "/tmp/ws", "/usr/bin:/bin", o, Works());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(SandboxTest, BubblewrapCommandLine) {
  TempDir dir;
  const std::string ws = (dir.path() / "ws").string();
  std::filesystem::create_directories(ws);
  const std::string readable = (dir.path() / "ro").string();
  std::filesystem::create_directories(readable);
  const std::string store = readable + "/ferry.db";
  std::ofstream(store) << "x";
  const std::string agent = readable + "/agent.sh";
  std::ofstream(agent) << "#!/bin/sh\n";
  std::filesystem::permissions(agent, std::filesystem::perms::owner_all);
  const std::string elsewhere = (dir.path() / "secrets.env").string();
  std::ofstream(elsewhere) << "x";

  SandboxOptions o;
  o.read_paths = {readable};
  o.hide_paths = HidePaths(store, elsewhere, "", "");
  auto l = WrapAgent({agent, "{workspace}"}, ws, "/usr/bin:/bin", o, Works());
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_TRUE(l->sandboxed);
  const auto& a = l->argv;
  EXPECT_EQ(a[0], "/usr/bin/bwrap");
  for (const char* flag :
       {"--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc"}) {
    EXPECT_NE(std::find(a.begin(), a.end(), flag), a.end()) << flag;
  }
  EXPECT_TRUE(HasSeq(a, {"--cap-drop", "ALL"}));
  EXPECT_TRUE(HasSeq(a, {"--bind", ws, ws}));
  EXPECT_TRUE(HasSeq(a, {"--ro-bind", readable, readable}));
  EXPECT_TRUE(HasSeq(a, {"--tmpfs", "/tmp"}));
  // The store under a readable path is masked; the secrets file, not exposed, needs no mask.
  EXPECT_TRUE(HasSeq(a, {"--ro-bind", "/dev/null", store}));
  EXPECT_FALSE(HasSeq(a, {"--ro-bind", "/dev/null", elsewhere}));
  // The agent is covered by the read path; the command ends with it.
  EXPECT_TRUE(HasSeq(a, {"--chdir", ws, "--", agent, "{workspace}"}));
  // No network flag when allowed.
  o.network = true;
  auto net = WrapAgent({agent}, ws, "/usr/bin:/bin", o, Works());
  ASSERT_TRUE(net);
  EXPECT_EQ(std::find(net->argv.begin(), net->argv.end(), "--unshare-net"), net->argv.end());
}

TEST(SandboxTest, HidePathsOfEachLocation) {
  EXPECT_EQ(HidePaths("/d/ferry.db", "/etc/f.env", "/etc/f.conf", "/d"),
            (std::vector<std::string>{"/d/ferry.db", "/d/ferry.db-wal", "/d/ferry.db-shm",
                                      "/d/ferry.db-journal", "/d/ferry.db-precedence", "/etc/f.env",
                                      "/etc/f.conf", "/d"}));
  EXPECT_EQ(HidePaths("sqlite:///d/x.db", "", "", "").front(), "/d/x.db");
  EXPECT_TRUE(HidePaths("postgresql://u:p@h/db", "", "", "").empty());
}

}  // namespace
}  // namespace ferry::remediation
