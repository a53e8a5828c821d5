#include "engine/secrets.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace ferry::engine {
namespace {

TEST(Secrets, EnvResolverUsesThePrefixAndUpperCase) {
  ::setenv("FERRY_SECRET_UNIT_TEST_TOKEN", "abc", 1);
  EnvSecretResolver r;
  EXPECT_EQ(r.Resolve("unit_test_token"), "abc");
  EXPECT_EQ(r.Resolve("UNIT_TEST_TOKEN"), "abc");
  EXPECT_EQ(r.Resolve("MISSING_ONE"), std::nullopt);
  EXPECT_EQ(r.Resolve("bad-name"), std::nullopt);
}

TEST(Secrets, FileFormats) {
  auto lines = ParseSecretsText("# comment\nA=1\n\nB = two=2\r\n");
  ASSERT_TRUE(lines.has_value());
  EXPECT_EQ((*lines)["A"], "1");
  EXPECT_EQ((*lines)["B"], " two=2");
  auto json = ParseSecretsText(R"({"X": "y"})");
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ((*json)["X"], "y");
  EXPECT_FALSE(ParseSecretsText("no equals sign").has_value());
  EXPECT_FALSE(ParseSecretsText(R"({"X": 1})").has_value());
}

// One secret, one value: a second line (or key) for a name, in any case, was taken silently
// (the last line won; a JSON key in another case was never found).
TEST(Secrets, AFileNamesEachSecretOnceAndIsReadWithoutRegardToCase) {
  auto twice = ParseSecretsText("A=1\nB=2\nA=3\n");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().message, "secrets file line 3: A is given twice");
  auto cased = ParseSecretsText("api_token=1\nAPI_TOKEN=2\n");
  ASSERT_FALSE(cased);
  EXPECT_EQ(cased.error().message,
            "secrets file line 2: API_TOKEN is given twice (as api_token before: names are "
            "matched without regard to case)");
  EXPECT_FALSE(ParseSecretsText(R"({"a": "1", "A": "2"})"));
  EXPECT_FALSE(ParseSecretsText(R"({"not a name": "1"})"));
  auto json = ParseSecretsText(R"({"api_token": "v"})");
  ASSERT_TRUE(json) << json.error().message;
  MapSecretResolver file(*json);
  EXPECT_EQ(file.Resolve("API_TOKEN"), "v");
  EXPECT_EQ(file.Resolve("api_token"), "v");
  EXPECT_EQ(file.Resolve("API_TOKENS"), std::nullopt);
}

// A secrets file that is not one is refused naming why, before it can take memory.
TEST(Secrets, WhatIsNotASmallFileIsRefused) {
  const std::string dir = ::testing::TempDir() + "ferry-secrets-test";
  std::filesystem::create_directories(dir);
  auto refused = [](const std::string& path) {
    auto f = LoadSecretsFile(path);
    EXPECT_FALSE(f) << path;
    if (f) return std::string();
    EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument);
    return f.error().message;
  };
  EXPECT_EQ(refused(dir), "is a directory");
  EXPECT_EQ(refused("/dev/zero"), "larger than 1048576 bytes");
  EXPECT_EQ(refused(dir + "/missing"), "no such file");
  const std::string at_cap = dir + "/at-cap";
  std::ofstream(at_cap) << "A=" << std::string(kMaxSecretsFileBytes - 2, 'x');
  auto read = LoadSecretsFile(at_cap);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ((*read)->Resolve("A")->size(), kMaxSecretsFileBytes - 2);
  std::ofstream(at_cap, std::ios::app) << "x";
  EXPECT_EQ(refused(at_cap), "larger than 1048576 bytes");
  std::filesystem::remove_all(dir);
}

TEST(Secrets, ChainAsksInOrder) {
  MapSecretResolver a(std::map<std::string, std::string>{{"X", "from-a"}});
  MapSecretResolver b(std::map<std::string, std::string>{{"X", "from-b"}, {"Y", "from-b"}});
  ChainSecretResolver chain({&a, &b});
  EXPECT_EQ(chain.Resolve("X"), "from-a");
  EXPECT_EQ(chain.Resolve("Y"), "from-b");
  EXPECT_EQ(chain.Resolve("Z"), std::nullopt);
}

TEST(Redactor, MasksTextAndJson) {
  Redactor r;
  r.Add("hunter2");
  r.Add("hunter2-long");
  r.Add("");
  r.Add("4242");
  EXPECT_EQ(r.RedactText("pw=hunter2-long and hunter2."), "pw=*** and ***.");
  Json in = Json::parse(R"({"a": "x hunter2 y", "hunter2": [1, "hunter2"], "pin": 4242, "n": 1})");
  EXPECT_EQ(r.RedactJson(in),
            Json::parse(R"({"a": "x *** y", "***": [1, "***"], "pin": "***", "n": 1})"));
  Redactor empty;
  EXPECT_TRUE(empty.Empty());
  EXPECT_EQ(empty.RedactText("hunter2"), "hunter2");
}

}  // namespace
}  // namespace ferry::engine
