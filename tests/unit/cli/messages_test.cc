#include <gtest/gtest.h>

#include "cli/commands.h"
#include "cli/runs_common.h"
#include "views/views.h"

namespace ferry::cli {
namespace {

// A retried task keeps its last error: the view's `error` is null beside a status that is no
// failure (a client's `if task.error` read a succeeded task as failed), `last_error` keeps it,
// and `task status` labels it an earlier attempt's; plain "Error" for a failure or none.
TEST(MessagesTest, ATaskThatSucceededAfterAFailureShowsItsLastErrorAsSuch) {
  auto view = [](TaskStatus status, const std::string& error) {
    TaskRecord t;
    t.id = "T";
    t.status = status;
    t.error = error;
    return views::Task(t);
  };
  auto error_row = [&](TaskStatus status, const std::string& error) {
    for (const auto& [label, text] : TaskFields(view(status, error))) {
      if (label == "Error" || label == "Last error") return label + ": " + text;
    }
    return std::string("none");
  };
  EXPECT_EQ(view(TaskStatus::kSucceeded, "boom")["error"], nullptr);
  EXPECT_EQ(view(TaskStatus::kSucceeded, "boom")["last_error"], "boom");
  EXPECT_EQ(view(TaskStatus::kRunning, "boom")["error"], nullptr);
  EXPECT_EQ(view(TaskStatus::kPending, "boom")["error"], nullptr);  // requeued by a retry
  EXPECT_EQ(view(TaskStatus::kFailed, "boom")["error"], "boom");
  EXPECT_EQ(view(TaskStatus::kRetrying, "boom")["error"], "boom");
  EXPECT_EQ(view(TaskStatus::kCancelled, "cancelled")["error"], "cancelled");
  EXPECT_EQ(view(TaskStatus::kSucceeded, "")["last_error"], nullptr);

  EXPECT_EQ(error_row(TaskStatus::kSucceeded, "cancelled"), "Last error: cancelled");
  EXPECT_EQ(error_row(TaskStatus::kRunning, "boom"), "Last error: boom");
  EXPECT_EQ(error_row(TaskStatus::kFailed, "boom"), "Error: boom");
  EXPECT_EQ(error_row(TaskStatus::kRetrying, "boom"), "Error: boom");
  EXPECT_EQ(error_row(TaskStatus::kCancelled, "cancelled"), "Error: cancelled");
  EXPECT_EQ(error_row(TaskStatus::kSucceeded, ""), "Error: -");  // none, as the view says it
}

TEST(MessagesTest, ConnectErrorsNameTheMaskedUrlOnce) {
  Error e{ErrorCode::kUnavailable, "cannot connect to Redis at 127.0.0.1:1: Connection refused"};
  Error d = DescribeConnectError(e, "redis://:hunter2@127.0.0.1:1");
  EXPECT_EQ(d.code, ErrorCode::kUnavailable);
  EXPECT_EQ(d.message, "cannot connect to Redis at redis://:****@127.0.0.1:1: Connection refused");
  EXPECT_EQ(ErrorExitCode(d.code), 3);
}

TEST(MessagesTest, AuthErrorsKeepTheBrokersWordsWithoutThePassword) {
  Error e{ErrorCode::kUnauthenticated, "Redis rejected the password for user 'default'"};
  Error d = DescribeConnectError(e, "redis://:hunter2@h:1");
  EXPECT_EQ(d.message, e.message);
  Error bare{ErrorCode::kUnauthenticated, "WRONGPASS"};
  Error d2 = DescribeConnectError(bare, "redis://:hunter2@h:1");
  EXPECT_EQ(d2.message.find("hunter2"), std::string::npos);
  EXPECT_NE(d2.message.find("password"), std::string::npos);
  EXPECT_EQ(ErrorExitCode(d2.code), 3);
}

// A lost answer to a change exits 4, whatever the spacing of its details (the API's body and the
// broker's own details differ); any other detail keeps its code's exit.
TEST(MessagesTest, AnUnknownOutcomeHasItsOwnExitCode) {
  Error e{ErrorCode::kUnavailable, "no answer came", R"({"outcome": "unknown"})"};
  EXPECT_EQ(ExitCodeOf(e), 4);
  e.details = R"({"outcome":"unknown"})";
  EXPECT_EQ(ExitCodeOf(e), 4);
  e.details = R"({"outcome":"known"})";
  EXPECT_EQ(ExitCodeOf(e), 3);
  e.details = R"({"retry_after": 1})";
  EXPECT_EQ(ExitCodeOf(e), 3);
  e.details = "not json";
  EXPECT_EQ(ExitCodeOf(e), 3);
  e.details.clear();
  EXPECT_EQ(ExitCodeOf(e), 3);
  EXPECT_EQ(ExitCodeOf(Error{ErrorCode::kNotFound, "no task"}), 1);
}

// `run watch` prints one line per event, even when an error ends with a newline (a program's
// stderr) or holds several.
TEST(MessagesTest, ARunEventIsOneLine) {
  Json retrying = {{"at", "2026-01-01T00:00:00Z"},
                   {"type", "node.retrying"},
                   {"data", {{"node", "a"}, {"attempt", 1}, {"error", "sh: exit code 3: err\n"}}}};
  std::string line = RunEventLine(retrying);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_NE(line.find("a  retrying (attempt 1 failed: sh: exit code 3: err)"), std::string::npos)
      << line;
  Json finished = {{"at", "2026-01-01T00:00:00Z"},
                   {"type", "node.finished"},
                   {"data", {{"node", "b"}, {"status", "failed"}, {"error", "one\r\ntwo\n"}}}};
  line = RunEventLine(finished);
  EXPECT_EQ(line.find_first_of("\r\n"), std::string::npos) << line;
  EXPECT_NE(line.find("b  failed: one  two"), std::string::npos) << line;
}

// How a run ended, as `run watch` and `workflow run --wait` end: one line, without the newline a
// program's stderr ends with (it printed an empty line after it).
TEST(MessagesTest, ARunsEndIsOneLine) {
  Json failed = {{"status", "failed"}, {"failed_node", "b"}, {"error", "sh: exit code 3: bad\n"}};
  EXPECT_EQ(RunEndText(failed), "failed at node b: sh: exit code 3: bad");
  Json two = {{"status", "failed"}, {"failed_node", "b"}, {"error", "one\ntwo\n\n"}};
  EXPECT_EQ(RunEndText(two), "failed at node b: one two");
  EXPECT_EQ(RunEndText(Json{{"status", "cancelled"}, {"error", nullptr}}), "cancelled");
  EXPECT_EQ(OneLine("a\r\nb \t\n"), "a  b");
}

}  // namespace
}  // namespace ferry::cli
