#include "cli/terminal_text.h"

#include <gtest/gtest.h>

namespace ferry::cli {
namespace {

TEST(TerminalSafe, ShowsWhatATerminalWouldActOn) {
  // A window title, a screen clear and a cursor move, written by a hostile program.
  EXPECT_EQ(TerminalSafe("\x1b]0;pwned\x07ok"), "␛]0;pwned␇ok");
  EXPECT_EQ(TerminalSafe("\x1b[2J\x1b[1;1H"), "␛[2J␛[1;1H");
  // A lone CR would overwrite the line; the CR of a CRLF is left as written.
  EXPECT_EQ(TerminalSafe("fake\rreal"), "fake␍real");
  EXPECT_EQ(TerminalSafe("a\r\nb"), "a\r\nb");
  EXPECT_EQ(TerminalSafe(std::string("a\0b\x7f", 4)), "a␀b␡");
  // C1 controls (CSI as U+009B) and bidi controls.
  EXPECT_EQ(TerminalSafe("\xc2\x9b"
                         "2J"),
            "<U+009B>2J");
  EXPECT_EQ(TerminalSafe("abc\xe2\x80\xaegnp.exe"), "abc<U+202E>gnp.exe");
  EXPECT_EQ(TerminalSafe("\xe2\x81\xa6x\xe2\x81\xa9"), "<U+2066>x<U+2069>");
  EXPECT_EQ(TerminalSafe("\xe2\x80\x8f"), "<U+200F>");
  EXPECT_EQ(TerminalSafe("a\xd8\x9c"
                         "b"),
            "a<U+061C>b");
}

TEST(TerminalSafe, KeepsTextLayout) {
  EXPECT_EQ(TerminalSafe("line 1\n\tline 2\n"), "line 1\n\tline 2\n");
  // Near misses: printable neighbours of the controls stay as they are.
  EXPECT_EQ(TerminalSafe("\xc2\xa0"
                         "€ ü \xe2\x80\x94 \xe2\x80\xaf \xe2\x81\xa5"),
            "\xc2\xa0"
            "€ ü \xe2\x80\x94 \xe2\x80\xaf \xe2\x81\xa5");
  EXPECT_EQ(TerminalSafe(" ~"), " ~");
  // The Arabic letter mark's neighbours (U+061B, U+061D) are text.
  EXPECT_EQ(TerminalSafe("\xd8\x9b\xd8\x9d"), "\xd8\x9b\xd8\x9d");
}

// Colour sequences from data are shown too: one can hide text (concealed, black on black) or
// paint a line as Ferry's own status would be. Ferry's colours are added after (table.h).
TEST(TerminalSafe, ShowsColourSequences) {
  EXPECT_EQ(TerminalSafe("boom \x1b[31mred\x1b[0m"), "boom ␛[31mred␛[0m");
  EXPECT_EQ(TerminalSafe("\x1b[8msecret\x1b[m"), "␛[8msecret␛[m");
  EXPECT_EQ(TerminalSafe("\x1b[30;40mblack"), "␛[30;40mblack");
  EXPECT_EQ(TerminalSafe("\x1b[31"), "␛[31");
}

}  // namespace
}  // namespace ferry::cli
