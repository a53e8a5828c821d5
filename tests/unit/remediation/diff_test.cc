#include "remediation/diff.h"

#include <gtest/gtest.h>

namespace ferry::remediation {
namespace {

TEST(DiffTest, EqualTextsHaveNoDiff) { EXPECT_EQ(UnifiedDiff("a\nb\n", "a\nb\n", "x", "y"), ""); }

TEST(DiffTest, OneChangedLineWithContext) {
  const std::string a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  const std::string b = "1\n2\n3\n4\nFIVE\n6\n7\n8\n9\n";
  EXPECT_EQ(UnifiedDiff(a, b, "a", "b"),
            "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n");
}

TEST(DiffTest, InsertAtStartAndDeleteAtEnd) {
  EXPECT_EQ(UnifiedDiff("a\nb\n", "new\na\nb\n", "a", "b"),
            "--- a\n+++ b\n@@ -1,2 +1,3 @@\n+new\n a\n b\n");
  EXPECT_EQ(UnifiedDiff("a\nb\nc\n", "a\nb\n", "a", "b"),
            "--- a\n+++ b\n@@ -1,3 +1,2 @@\n a\n b\n-c\n");
}

TEST(DiffTest, DistantChangesMakeTwoHunks) {
  std::string a, b;
  for (int i = 0; i < 30; ++i) {
    a += std::to_string(i) + "\n";
    b += (i == 2 || i == 25 ? "x" : std::to_string(i)) + "\n";
  }
  const std::string d = UnifiedDiff(a, b, "a", "b");
  EXPECT_EQ(std::count(d.begin(), d.end(), '@'), 8);  // two "@@ ... @@" headers
  EXPECT_NE(d.find("-25\n+x\n"), std::string::npos);
}

TEST(DiffTest, PastTheEditLimitTheWholeFileIsReplaced) {
  const std::string d = UnifiedDiff("a\nb\nc\n", "x\ny\nz\n", "a", "b", 3, 2);
  EXPECT_EQ(d, "--- a\n+++ b\n@@ -1,3 +1,3 @@\n-a\n-b\n-c\n+x\n+y\n+z\n");
}

}  // namespace
}  // namespace ferry::remediation
