#include "cli/table.h"

#include <gtest/gtest.h>

namespace ferry::cli {
namespace {

TEST(TableTest, RendersBoxDrawingWithPaddedColumns) {
  Table t({"Worker ID", "Status"});
  t.AddRow({"web01-1234-a1b2c3d4", "running"});
  t.AddRow({"w2", "dead"});
  std::string expected =
      "┌─────────────────────┬─────────┐\n"
      "│ Worker ID           │ Status  │\n"
      "├─────────────────────┼─────────┤\n"
      "│ web01-1234-a1b2c3d4 │ running │\n"
      "│ w2                  │ dead    │\n"
      "└─────────────────────┴─────────┘\n";
  EXPECT_EQ(t.Render({.unicode = true, .color = false}), expected);
}

TEST(TableTest, AsciiFallback) {
  Table t({"A", "Bee"});
  t.AddRow({"xyz", "1"});
  std::string expected =
      "+-----+-----+\n"
      "| A   | Bee |\n"
      "+-----+-----+\n"
      "| xyz | 1   |\n"
      "+-----+-----+\n";
  EXPECT_EQ(t.Render({.unicode = false, .color = false}), expected);
}

TEST(TableTest, HeaderOnlyWhenNoRows) {
  Table t({"Q"});
  EXPECT_EQ(t.Render({.unicode = false, .color = false}), "+---+\n| Q |\n+---+\n+---+\n");
}

TEST(TableTest, ColourDoesNotChangeAlignment) {
  Table t({"Status", "N"});
  t.AddRow({Cell("dead", Color::kRed), "1"});
  t.AddRow({Cell("running", Color::kGreen), "2"});
  std::string plain = t.Render({.unicode = false, .color = false});
  std::string colored = t.Render({.unicode = false, .color = true});
  EXPECT_NE(plain, colored);
  EXPECT_NE(colored.find("\x1b[31mdead\x1b[0m    |"), std::string::npos) << colored;
  // Stripping the escapes gives the plain table back.
  std::string stripped;
  for (size_t i = 0; i < colored.size(); ++i) {
    if (colored[i] == '\x1b') {
      while (i < colored.size() && colored[i] != 'm') ++i;
      continue;
    }
    stripped.push_back(colored[i]);
  }
  EXPECT_EQ(stripped, plain);
}

// A cell's own escape sequences are data: shown as ␛, so they can neither colour nor hide text
// (ESC [8m), while the table's colour for a status still works, and the columns stay aligned.
TEST(TableTest, ACellsEscapesAreShownAndTheTablesColoursKept) {
  Table t({"Status", "Error"});
  t.AddRow({Cell("failed", Color::kRed), "boom \x1b[31mred\x1b[0m \x1b[8mhidden"});
  t.AddRow({Cell("succeeded", Color::kGreen), "-"});
  const std::string colored = t.Render({.unicode = false, .color = true});
  EXPECT_NE(colored.find("\x1b[31mfailed\x1b[0m    | boom ␛[31mred␛[0m ␛[8mhidden |"),
            std::string::npos)
      << colored;
  EXPECT_NE(colored.find("\x1b[32msucceeded\x1b[0m | -"), std::string::npos) << colored;
  const std::string plain = t.Render({.unicode = false, .color = false});
  EXPECT_EQ(plain.find('\x1b'), std::string::npos) << plain;
  EXPECT_NE(plain.find("| failed    | boom ␛[31mred␛[0m ␛[8mhidden |"), std::string::npos) << plain;
}

TEST(TableTest, MissingCellsAreBlankAndNewlinesFlattened) {
  Table t({"A", "B"});
  t.AddRow({"line1\nline2"});
  std::string out = t.Render({.unicode = false, .color = false});
  EXPECT_NE(out.find("| line1 line2 |   |"), std::string::npos) << out;
}

TEST(TableTest, WidthCountsCodePointsNotBytes) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("héllo"), 5u);
  EXPECT_EQ(DisplayWidth("…"), 1u);
  EXPECT_EQ(DisplayWidth("\x1b"), 0u);
  Table t({"X"});
  t.AddRow({"héllo"});
  t.AddRow({"abc"});
  std::string out = t.Render({.unicode = false, .color = false});
  EXPECT_NE(out.find("| héllo |"), std::string::npos);
  EXPECT_NE(out.find("| abc   |"), std::string::npos);
}

TEST(TableTest, Ellipsize) {
  EXPECT_EQ(Ellipsize("short", 10), "short");
  EXPECT_EQ(Ellipsize("0123456789abc", 10), "012345678…");
  EXPECT_EQ(Ellipsize("0123456789abc", 10, false), "0123456...");
  EXPECT_EQ(Ellipsize("a\nb", 10), "a b");
  EXPECT_EQ(DisplayWidth(Ellipsize("ééééééééééééé", 5)), 5u);
}

TEST(TableTest, KeyValues) {
  std::string out =
      RenderKeyValues({{"ID", "1"}, {"Status", "ok"}, {"Result", "{\n  \"a\": 1\n}"}});
  EXPECT_EQ(out,
            "ID:     1\n"
            "Status: ok\n"
            "Result: {\n"
            "          \"a\": 1\n"
            "        }\n");
}

}  // namespace
}  // namespace ferry::cli
