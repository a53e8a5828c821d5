// `ferry completion bash|zsh`: the scripts the real binary prints, run by real shells, complete
// commands, subcommands, flags (the global ones after a subcommand too) and flag values.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "harness.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

bool Have(const std::string& tool) {
  return RunCommand({"sh", "-c", "command -v " + tool}, seconds(10)).exit_code == 0;
}

class CompletionTest : public ::testing::Test {
 protected:
  std::string Script(const std::string& shell) {
    auto r = RunCommand({FerryBinary(), "completion", shell}, seconds(20));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto path = dir_.path() / ("ferry." + shell);
    std::ofstream(path) << r.out;
    return path.string();
  }

  // What bash completes for the words typed so far (the last one is being completed).
  std::string Bash(const std::string& script, const std::string& words) {
    auto r = RunCommand({"bash", "-c",
                         "cd \"$1\" && source \"$0\" && COMP_WORDS=(" + words +
                             ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && { _ferry; true; } && "
                             "for w in \"${COMPREPLY[@]}\"; do printf '%s\\n' \"$w\"; done",
                         script, dir_.path().string()},
                        seconds(20));
    EXPECT_EQ(r.exit_code, 0) << words << ": " << r.err;
    return r.out;
  }

  TempDir dir_;
};

TEST_F(CompletionTest, BashCompletesCommandsSubcommandsAndFlags) {
  const std::string s = Script("bash");
  EXPECT_EQ(Bash(s, "ferry ta"), "task\n");
  EXPECT_EQ(Bash(s, "ferry task su"), "submit\n");
  EXPECT_EQ(Bash(s, "ferry task submit --ba"), "--batch\n");
  EXPECT_EQ(Bash(s, "ferry comp"), "completion\n");  // the command itself is in the table
  // Global flags follow subcommands (the root falls through), and values are files.
  EXPECT_EQ(Bash(s, "ferry task list --js"), "--json\n");
  EXPECT_EQ(Bash(s, "ferry --redis-url redis://x task li"), "list\n");
  std::ofstream(dir_.path() / "tasks.jsonl") << "{}\n";
  EXPECT_EQ(Bash(s, "ferry task submit --batch tas"), "tasks.jsonl\n");
  // Every top-level command, nothing else.
  const std::string top = Bash(s, "ferry ''");
  for (const char* cmd :
       {"worker", "task", "queue", "workflow", "run", "dev", "server", "token", "scheduler",
        "schedule", "remediation", "alerts", "config", "doctor", "version", "demo", "completion"}) {
    EXPECT_NE(top.find(std::string(cmd) + "\n"), std::string::npos) << cmd << " in\n" << top;
  }
  EXPECT_EQ(Bash(s, "ferry task submit --nope"), "");
}

TEST_F(CompletionTest, ZshScriptParsesAndDescribesEachLevel) {
  if (!Have("zsh")) GTEST_FAIL() << "zsh is not installed (scripts/setup.sh installs it)";
  const std::string s = Script("zsh");
  auto syntax = RunCommand({"zsh", "-n", s}, seconds(20));
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
  // The level tables the completion function reads: subcommands with their descriptions, the
  // flags including the global ones, and the flags that take a value.
  auto r = RunCommand({"zsh", "-c",
                       "compdef() { :; }; source \"$0\"; local -a subs opts valued; "
                       "_ferry_level task; print -l -- $subs; _ferry_level 'task submit'; "
                       "print -l -- $opts; print -- VALUED $valued",
                       s},
                      seconds(20));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("submit:Submit a task and print its id\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--batch:FILE of tasks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--json:Machine-readable output on stdout\n"), std::string::npos);
  const std::string valued = r.out.substr(r.out.find("VALUED"));
  EXPECT_NE(valued.find("--batch"), std::string::npos) << valued;
  EXPECT_EQ(valued.find("--wait "), std::string::npos) << valued;
}

TEST_F(CompletionTest, OtherShellsAreAUsageError) {
  auto r = RunCommand({FerryBinary(), "completion", "fish"}, seconds(20));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("fish"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ferry::testing
