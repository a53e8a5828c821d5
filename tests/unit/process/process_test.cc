#include "process/process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ProcessResult RunOk(ProcessSpec spec, std::stop_token stop = {}) {
  auto r = RunProcess(spec, stop);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : ProcessResult{};
}

// True once `pid` is gone or a zombie (its parent may not have reaped it yet).
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  std::getline(stat, content);
  auto close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() && content[close + 2] == 'Z';
}

bool EventuallyGone(pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ProcessGone(pid)) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

TEST(RunProcess, CapturesStdoutStderrAndExitCode) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  auto r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.stdout_text, "out\n");
  EXPECT_EQ(r.stderr_text, "err\n");
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.stopped);
}

TEST(RunProcess, Fd3LinesReachTheirCallbackAndNothingElse) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "echo one >&3; echo out; printf 'two\\nthree' >&3"};
  std::vector<std::string> lines;
  spec.on_fd3_line = [&](const std::string& line, size_t) { lines.push_back(line); };
  auto r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "out\n");
  EXPECT_THAT(lines, ElementsAre("one", "two", "three"));  // the last, unterminated, at EOF
}

TEST(RunProcess, WithoutAnFd3CallbackTheChildHasNoDescriptor3) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "echo x >&3"};
  auto r = RunOk(spec);
  EXPECT_NE(r.exit_code, 0);  // bad file descriptor
}

TEST(RunProcess, ArgumentsAreNotInterpretedByAShell) {
  ProcessSpec spec;
  spec.argv = {"echo", "$HOME", "a;b", "`id`", "*"};
  auto r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "$HOME a;b `id` *\n");
}

TEST(RunProcess, NotFound) {
  ProcessSpec spec;
  spec.argv = {"ferry-no-such-program-4711"};
  auto r = RunProcess(spec, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message, HasSubstr("ferry-no-such-program-4711"));

  spec.argv = {"/nonexistent/dir/prog"};
  r = RunProcess(spec, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

TEST(RunProcess, NotExecutableFileIsNotFound) {
  std::string path = ::testing::TempDir() + "ferry_not_exec_" + std::to_string(::getpid());
  std::ofstream(path) << "#!/bin/sh\necho hi\n";
  ProcessSpec spec;
  spec.argv = {path};
  auto r = RunProcess(spec, {});
  ::unlink(path.c_str());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

TEST(RunProcess, ExecFailureIsReportedThroughThePipe) {
  // Executable bit set but not a valid executable and no shebang: execve fails with ENOEXEC in
  // the child, which only the CLOEXEC report pipe can tell the parent.
  std::string path = ::testing::TempDir() + "ferry_bad_exec_" + std::to_string(::getpid());
  std::ofstream(path) << "\x01\x02garbage";
  ::chmod(path.c_str(), 0755);
  ProcessSpec spec;
  spec.argv = {path};
  auto r = RunProcess(spec, {});
  ::unlink(path.c_str());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message, HasSubstr("cannot execute"));
}

// A script whose #! interpreter is missing: execve says "No such file or directory" of a script
// that is there; the error names the interpreter instead.
TEST(RunProcess, AScriptWhoseInterpreterIsMissingNamesIt) {
  std::string path = ::testing::TempDir() + "ferry_no_interp_" + std::to_string(::getpid());
  std::ofstream(path) << "#! /nonexistent/interp -x\necho hi\n";
  ::chmod(path.c_str(), 0755);
  ProcessSpec spec;
  spec.argv = {path};
  auto r = RunProcess(spec, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "cannot execute '" + path +
                                   "': its interpreter '/nonexistent/interp' (its #! line) was "
                                   "not found");
  // The near miss: an interpreter that is there runs it.
  std::ofstream(path) << "#!/bin/sh\necho hi\n";
  auto ran = RunProcess(spec, {});
  ::unlink(path.c_str());
  ASSERT_TRUE(ran) << ran.error().message;
  EXPECT_EQ(ran->stdout_text, "hi\n");
}

TEST(RunProcess, EmptyArgvIsInvalid) {
  ProcessSpec spec;
  auto r = RunProcess(spec, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message, "argv must not be empty");
  spec.argv = {"", "x"};
  r = RunProcess(spec, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "argv[0], the program, is empty");
}

TEST(RunProcess, AnEnvironmentNameTheKernelCannotTakeIsRefusedSayingWhy) {
  ProcessSpec spec;
  spec.argv = {"true"};
  spec.env = {{"BAD=NAME", "x"}};
  auto r = RunProcess(spec, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "bad environment variable name 'BAD=NAME': it holds '='");
  EXPECT_EQ(EnvNameProblem(""), "is empty");
  EXPECT_EQ(EnvNameProblem(std::string("A\0B", 3)), "holds a NUL byte");
  EXPECT_EQ(EnvNameProblem("BAD_NAME"), std::nullopt);
}

TEST(RunProcess, MissingCwdFails) {
  ProcessSpec spec;
  spec.argv = {"pwd"};
  spec.cwd = "/nonexistent/ferry/dir";
  auto r = RunProcess(spec, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message, HasSubstr("working directory"));
}

TEST(RunProcess, Cwd) {
  ProcessSpec spec;
  spec.argv = {"pwd"};
  spec.cwd = "/";
  EXPECT_EQ(RunOk(spec).stdout_text, "/\n");
}

TEST(RunProcess, EnvAddsAndOverrides) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "echo \"$FERRY_T1:$HOME\""};
  spec.env = {{"FERRY_T1", "one"}, {"HOME", "/h"}};
  EXPECT_EQ(RunOk(spec).stdout_text, "one:/h\n");
}

TEST(RunProcess, ClearEnvKeepsOnlyPathAndGivenVars) {
  ::setenv("FERRY_INHERITED", "x", 1);
  ProcessSpec spec;
  spec.argv = {"env"};
  spec.clear_env = true;
  spec.env = {{"A", "1"}};
  auto r = RunOk(spec);
  EXPECT_THAT(r.stdout_text, HasSubstr("A=1\n"));
  EXPECT_THAT(r.stdout_text, HasSubstr("PATH="));
  EXPECT_THAT(r.stdout_text, ::testing::Not(HasSubstr("FERRY_INHERITED")));
}

TEST(RunProcess, Stdin) {
  ProcessSpec spec;
  spec.argv = {"cat"};
  spec.stdin_data = "hello\nworld";
  EXPECT_EQ(RunOk(spec).stdout_text, "hello\nworld");
}

TEST(RunProcess, LargeStdinAndStdoutDoNotDeadlock) {
  ProcessSpec spec;
  spec.argv = {"cat"};
  spec.stdin_data = std::string(3 << 20, 'x');
  spec.max_output_bytes = 4 << 20;
  auto r = RunOk(spec);
  EXPECT_EQ(r.stdout_text.size(), spec.stdin_data.size());
  EXPECT_FALSE(r.stdout_truncated);
}

TEST(RunProcess, ChildIgnoringStdinDoesNotRaiseSigpipe) {
  ProcessSpec spec;
  spec.argv = {"true"};
  spec.stdin_data = std::string(1 << 20, 'x');
  EXPECT_EQ(RunOk(spec).exit_code, 0);
}

TEST(RunProcess, NoStdinReadsEof) {
  ProcessSpec spec;
  spec.argv = {"cat"};
  auto r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "");
}

TEST(RunProcess, TruncatesEachStreamAtTheLimit) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "head -c 100000 /dev/zero; head -c 10 /dev/zero >&2"};
  spec.max_output_bytes = 1000;
  auto r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text.size(), 1000u);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stderr_text.size(), 10u);
  EXPECT_FALSE(r.stderr_truncated);
}

TEST(RunProcess, OnLineGetsEachLine) {
  std::mutex mu;
  std::vector<std::string> lines;
  ProcessSpec spec;
  spec.argv = {"printf", "a\\nb\\n\\nc"};
  spec.on_line = [&](bool is_stderr, const std::string& line, size_t cut) {
    std::lock_guard lock(mu);
    lines.push_back((is_stderr ? "E:" : "O:") + line + (cut > 0 ? "+" + std::to_string(cut) : ""));
  };
  RunOk(spec);
  EXPECT_THAT(lines, ElementsAre("O:a", "O:b", "O:", "O:c"));
}

// A line past the limit arrives once, as its first bytes and the count of the rest, however the
// pipe splits it; the lines around it are untouched.
TEST(RunProcess, ALineLongerThanTheLimitArrivesOnceWithTheCountOfWhatWasCut) {
  std::vector<std::string> lines;
  std::vector<size_t> cuts;
  ProcessSpec spec;
  spec.max_line_bytes = 100;
  // 100 bytes (whole), 101 bytes (one cut), 200,000 bytes over many reads with a CRLF end,
  // then an unterminated 150-byte line at EOF.
  spec.argv = {"sh", "-c",
               "head -c 100 /dev/zero | tr '\\0' a; echo;"
               "head -c 101 /dev/zero | tr '\\0' b; echo;"
               "head -c 200000 /dev/zero | tr '\\0' c; printf '\\r\\n';"
               "echo short;"
               "head -c 150 /dev/zero | tr '\\0' d"};
  spec.on_line = [&](bool, const std::string& line, size_t cut) {
    lines.push_back(line);
    cuts.push_back(cut);
  };
  auto r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(lines, ElementsAre(std::string(100, 'a'), std::string(100, 'b'),
                                 std::string(100, 'c'), "short", std::string(100, 'd')));
  EXPECT_THAT(cuts, ElementsAre(0u, 1u, 199900u, 0u, 50u));
}

TEST(RunProcess, Fd3LinesAreCutAsOutputLinesAre) {
  std::vector<std::string> lines;
  std::vector<size_t> cuts;
  ProcessSpec spec;
  spec.max_fd3_line_bytes = 10;
  spec.argv = {"sh", "-c", "printf '0123456789X\\nok\\n' >&3"};
  spec.on_fd3_line = [&](const std::string& line, size_t cut) {
    lines.push_back(line);
    cuts.push_back(cut);
  };
  RunOk(spec);
  EXPECT_THAT(lines, ElementsAre("0123456789", "ok"));
  EXPECT_THAT(cuts, ElementsAre(1u, 0u));
}

TEST(RunProcess, AnFd3LinePastTheLimitArrivesBeforeItEnds) {
  // A line that never ends is still seen, once, as soon as it is too long; the next line is
  // whole again.
  std::stop_source source;
  std::vector<std::string> lines;
  std::vector<size_t> cuts;
  ProcessSpec spec;
  spec.max_fd3_line_bytes = 10;
  spec.argv = {"sh", "-c",
               "printf 'abcdefghijk\\nok\\n' >&3; head -c 100000 /dev/zero | tr '\\0' x >&3; "
               "exec sleep 30"};
  // The guard: were the unending line seen only at the end, the run would time out.
  spec.timeout = std::chrono::seconds(20);
  spec.on_fd3_line = [&](const std::string& line, size_t cut) {
    lines.push_back(line);
    cuts.push_back(cut);
    if (!line.empty() && line[0] == 'x') source.request_stop();
  };
  auto r = RunOk(spec, source.get_token());
  EXPECT_TRUE(r.stopped);
  EXPECT_FALSE(r.timed_out);
  ASSERT_THAT(lines, ElementsAre("abcdefghij", "ok", std::string(10, 'x')));
  EXPECT_EQ(cuts[0], 1u);
  EXPECT_EQ(cuts[1], 0u);
  EXPECT_GE(cuts[2], 1u);
}

TEST(RunProcess, StdoutPastTheLimitStopsTheProgramWhenAsked) {
  ProcessSpec spec;
  spec.max_output_bytes = 1000;
  spec.stop_when_stdout_full = true;
  // The guard: were the program left to run, the run would time out.
  spec.timeout = std::chrono::seconds(20);
  spec.argv = {"sh", "-c", "head -c 1001 /dev/zero; exec sleep 30"};
  auto r = RunOk(spec);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_EQ(r.stdout_text.size(), 1000u);
  // At the limit itself the program runs on to its own end.
  spec.argv = {"sh", "-c", "head -c 1000 /dev/zero; sleep 0.2; exit 3"};
  r = RunOk(spec);
  EXPECT_FALSE(r.stdout_truncated);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.stdout_text.size(), 1000u);
}

TEST(CutLine, KeepsAtMostTheLimitAndCountsWhatNeverArrived) {
  EXPECT_EQ(CutLine("abc", 3, 0), "abc");
  EXPECT_EQ(CutLine("abcd", 3, 0), "abc ... (1 more bytes cut)");
  EXPECT_EQ(CutLine("abc", 3, 5), "abc ... (5 more bytes cut)");
  EXPECT_EQ(CutLine("abcd", 3, 5), "abc ... (6 more bytes cut)");
  // "€" is 3 bytes: a cut inside one drops it whole and counts its kept bytes.
  const std::string euros = "\xE2\x82\xAC\xE2\x82\xAC";  // €€
  EXPECT_EQ(CutLine(euros, 4, 0), "\xE2\x82\xAC ... (3 more bytes cut)");
  EXPECT_EQ(CutLine(euros, 5, 0), "\xE2\x82\xAC ... (3 more bytes cut)");
  EXPECT_EQ(CutLine(euros, 3, 0), "\xE2\x82\xAC ... (3 more bytes cut)");
  EXPECT_EQ(CutLine("a\xE2\x82", 3, 10),
            "a ... (12 more bytes cut)");  // cut earlier, mid-character
  EXPECT_EQ(CutLine(euros, 6, 0), euros);  // nothing cut: kept as is
}

TEST(RunProcess, SignalExit) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "kill -9 $$"};
  auto r = RunOk(spec);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.signal, SIGKILL);
}

TEST(RunProcess, TimeoutKillsTheWholeGroupIncludingGrandchildren) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "sleep 30 & echo $!; wait"};
  spec.timeout = milliseconds(300);
  auto t0 = std::chrono::steady_clock::now();
  auto r = RunOk(spec);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_LT(took, std::chrono::seconds(15));  // killed, not waited for (the child sleeps 30 s)
  pid_t grandchild = static_cast<pid_t>(std::stol(r.stdout_text));
  EXPECT_TRUE(EventuallyGone(grandchild)) << "grandchild " << grandchild << " survived";
}

// Runs `script` under RunProcess in a forked process (standing in for a worker), and returns
// that process's pid and the first line the script printed.
std::pair<pid_t, std::string> RunInAForkedParent(const std::string& script) {
  int fds[2];
  if (::pipe(fds) != 0) return {-1, ""};
  pid_t middle = ::fork();
  if (middle < 0) return {-1, ""};
  if (middle == 0) {
    ::close(fds[0]);
    ProcessSpec spec;
    spec.argv = {"sh", "-c", script};
    spec.on_line = [&](bool, const std::string& line, size_t) {
      std::string msg = line + "\n";
      ssize_t n = ::write(fds[1], msg.data(), msg.size());
      (void)n;
    };
    (void)RunProcess(spec, {});
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string line;
  char c = 0;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  ::close(fds[0]);
  return {middle, line};
}

TEST(RunProcess, ChildDiesWithItsParent) {
  // A worker killed with SIGKILL must not leave its task's program running: another worker will
  // run the task again after the lease, and the two copies must not overlap.
  auto [middle, line] = RunInAForkedParent("echo $$; exec sleep 30");
  ASSERT_GT(middle, 0);
  ASSERT_FALSE(line.empty());
  pid_t child = static_cast<pid_t>(std::stol(line));
  ASSERT_FALSE(ProcessGone(child));
  ::kill(middle, SIGKILL);
  int status = 0;
  ::waitpid(middle, &status, 0);
  EXPECT_TRUE(EventuallyGone(child)) << "child " << child << " outlived its killed parent";
}

TEST(RunProcess, WhatTheChildStartedDiesWithItsParent) {
  // The program's own children, in its process group, go too: the kernel's death signal alone
  // would reach only the program.
  auto [middle, line] = RunInAForkedParent("sleep 30 & sleep 31 & echo $$ $!; wait");
  ASSERT_GT(middle, 0);
  pid_t program = 0;
  pid_t grandchild = 0;
  ASSERT_EQ(std::sscanf(line.c_str(), "%d %d", &program, &grandchild), 2) << line;
  ASSERT_FALSE(ProcessGone(grandchild));
  ::kill(middle, SIGKILL);
  int status = 0;
  ::waitpid(middle, &status, 0);
  EXPECT_TRUE(EventuallyGone(program)) << "program " << program << " outlived its killed parent";
  EXPECT_TRUE(EventuallyGone(grandchild))
      << "grandchild " << grandchild << " outlived its killed parent";
}

TEST(RunProcess, TheProgramsEndReachesTheCallerAsItWas) {
  // Exit codes across the whole byte, and signals, whether or not they leave a core.
  for (int code : {0, 1, 65, 127, 255}) {
    ProcessSpec spec;
    spec.argv = {"sh", "-c", "exit " + std::to_string(code)};
    auto r = RunOk(spec);
    EXPECT_EQ(r.exit_code, code);
    EXPECT_EQ(r.signal, 0);
  }
  for (int sig : {SIGTERM, SIGINT, SIGSEGV, SIGABRT, SIGUSR1, SIGKILL}) {
    ProcessSpec spec;
    spec.argv = {"sh", "-c", "kill -" + std::to_string(sig) + " $$"};
    auto r = RunOk(spec);
    EXPECT_EQ(r.exit_code, -1) << sig;
    EXPECT_EQ(r.signal, sig);
  }
}

TEST(RunProcess, AProgramThatEndsWellOnSigtermIsNotReportedAsKilled) {
  // The group's SIGTERM reaches the keeper too, which holds it: a program that exits 0 on it is
  // reported as exit 0, not as killed by SIGTERM.
  std::stop_source source;
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "trap 'exit 0' TERM; echo started; sleep 30 & wait"};
  spec.on_line = [&](bool, const std::string& line, size_t) {
    if (line == "started") source.request_stop();
  };
  auto r = RunOk(spec, source.get_token());
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.signal, 0);
}

TEST(RunProcess, TheProgramsSignalsAreItsOwn) {
  // Nothing of the keeper (every signal blocked) or of the caller leaks into the program.
  ProcessSpec spec;
  // The program itself reads its status: a shell blocks signals of its own while it waits.
  spec.argv = {"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"};
  auto r = RunOk(spec);
  EXPECT_THAT(r.stdout_text, HasSubstr("SigBlk:\t0000000000000000"));
  EXPECT_THAT(r.stdout_text, HasSubstr("SigIgn:\t0000000000000000"));
}

TEST(RunProcess, SigkillAfterGraceWhenSigtermIsIgnored) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait"};
  spec.timeout = milliseconds(200);
  spec.kill_grace = milliseconds(300);
  auto t0 = std::chrono::steady_clock::now();
  auto r = RunOk(spec);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_GE(took, milliseconds(450));
  EXPECT_LT(took, std::chrono::seconds(15));  // SIGKILL came; the child would sleep 30 s
  pid_t grandchild = static_cast<pid_t>(std::stol(r.stdout_text));
  EXPECT_TRUE(EventuallyGone(grandchild));
}

TEST(RunProcess, StopTokenStopsTheChild) {
  std::stop_source source;
  ProcessSpec spec;
  // Stopped once it runs (it says so), not before it started.
  spec.argv = {"sh", "-c", "echo started; exec sleep 30"};
  spec.on_line = [&](bool, const std::string& line, size_t) {
    if (line == "started") source.request_stop();
  };
  auto t0 = std::chrono::steady_clock::now();
  auto r = RunOk(spec, source.get_token());
  EXPECT_TRUE(r.stopped);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.stdout_text, "started\n");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));  // not the 30 s
}

TEST(RunProcess, AlreadyStoppedTokenStopsAtOnce) {
  std::stop_source source;
  source.request_stop();
  ProcessSpec spec;
  spec.argv = {"sleep", "30"};
  auto r = RunOk(spec, source.get_token());
  EXPECT_TRUE(r.stopped);
  EXPECT_LT(r.duration, milliseconds(2000));
}

TEST(RunProcess, ReturnsWhenABackgroundedDescendantKeepsStdoutOpen) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "sleep 20 & echo $!"};
  auto t0 = std::chrono::steady_clock::now();
  auto r = RunOk(spec);
  EXPECT_EQ(r.exit_code, 0);
  // Returned when the shell exited, not when the backgrounded sleep let go of stdout (20 s).
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(12));
  pid_t bg = static_cast<pid_t>(std::stol(r.stdout_text));
  ::kill(bg, SIGKILL);
}

TEST(RunProcess, ManyConcurrentRuns) {
  std::vector<std::jthread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        ProcessSpec spec;
        spec.argv = {"echo", std::to_string(t * 100 + i)};
        auto r = RunProcess(spec, {});
        if (r && r->stdout_text == std::to_string(t * 100 + i) + "\n") ++ok;
      }
    });
  }
  threads.clear();
  EXPECT_EQ(ok.load(), 80);
}

}  // namespace
}  // namespace ferry
