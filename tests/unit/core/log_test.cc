#include "core/log.h"

#include <gtest/gtest.h>

#include "core/json.h"

namespace ferry {
namespace {

// A quoted error that tries to end its line and forge the next one, colour the terminal, and
// carry a byte that is not UTF-8.
const std::string kHostile =
    "boom\n2026-12-06T00:00:00.000Z info  task.succeeded id=X\r\x1b[2J\x7f\xff end";

TEST(LogLineText, TextKeepsTheMessageOnItsLineAndTheTerminalAlone) {
  EXPECT_EQ(LogLineText(kHostile, LogFormat::kText),
            "boom\\n2026-12-06T00:00:00.000Z info  task.succeeded id=X\\r\\x1b[2J\\x7f\\xff end");
  // Near misses: tabs, quotes, backslashes and characters past ASCII are text.
  EXPECT_EQ(LogLineText("a\tb \"c\" \\d é €", LogFormat::kText), "a\tb \"c\" \\d é €");
}

TEST(LogLineText, JsonIsAValidStringWhateverTheMessage) {
  const std::string inside = LogLineText(kHostile, LogFormat::kJson);
  EXPECT_EQ(
      inside,
      "boom\\n2026-12-06T00:00:00.000Z info  task.succeeded id=X\\r\\u001b[2J\x7f\\ufffd end");
  auto parsed = ParseJson("\"" + inside + "\"");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(
      parsed->get<std::string>(),
      "boom\n2026-12-06T00:00:00.000Z info  task.succeeded id=X\r\x1b[2J\x7f\xef\xbf\xbd end");
  EXPECT_EQ(LogLineText("a\tb \"c\" \\d é", LogFormat::kJson), "a\\tb \\\"c\\\" \\\\d é");
}

}  // namespace
}  // namespace ferry
