// Token scopes and secrets (service/scopes.h).
#include "service/scopes.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace ferry::service {
namespace {

TEST(Scopes, ParseNamesWhatIsWrong) {
  auto ok = ParseScopes("read, run secret:GITHUB_TOKEN");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, (std::vector<std::string>{"read", "run", "secret:GITHUB_TOKEN"}));
  for (const char* bad : {"", " , ", "reed", "admin,superuser", "secret:"}) {
    auto r = ParseScopes(bad);
    EXPECT_FALSE(r) << bad;
  }
}

// An empty item between commas was skipped, and the token made with the other scopes: the scope
// meant there is missing, so the list is refused, naming the item.
TEST(Scopes, AnEmptyItemIsRefusedNamingIt) {
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"read,,run", "scope 2 of 'read,,run' is empty: drop the extra comma"},
           {"read, ,run", "scope 2 of 'read, ,run' is empty: drop the extra comma"},
           {"read,", "scope 2 of 'read,' is empty: drop the extra comma"},
           {",read", "scope 1 of ',read' is empty: drop the extra comma"}}) {
    auto r = ParseScopes(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << text;
    EXPECT_EQ(r.error().message, message) << text;
  }
  auto spaced = ParseScopes("read,  run  apply");
  ASSERT_TRUE(spaced) << spaced.error().message;
  EXPECT_EQ(*spaced, (std::vector<std::string>{"read", "run", "apply"}));
}

TEST(Scopes, ALevelIncludesTheOnesBelowItAndNoneAbove) {
  EXPECT_TRUE(Allows({"run"}, Scope::kRead));
  EXPECT_TRUE(Allows({"run"}, Scope::kRun));
  EXPECT_FALSE(Allows({"run"}, Scope::kApply));  // one level above
  EXPECT_FALSE(Allows({"secret:X"}, Scope::kRead));
  EXPECT_TRUE(Allows({"admin"}, Scope::kAdmin));
  EXPECT_FALSE(Allows({"apply"}, Scope::kAdmin));
}

TEST(Scopes, SecretGrants) {
  EXPECT_TRUE(AllowsSecret({"secret:A"}, "A"));
  EXPECT_FALSE(AllowsSecret({"secret:A"}, "AB"));
  EXPECT_TRUE(AllowsSecret({"secret:*"}, "ANY"));
  EXPECT_TRUE(AllowsSecret({"admin"}, "ANY"));
  EXPECT_EQ(FirstDeniedSecret({"secret:A"}, {"A", "B"}), "B");
  EXPECT_FALSE(FirstDeniedSecret({"secret:A"}, {"A"}));
}

// The worker resolves `api_token` and `API_TOKEN` as one secret (FERRY_SECRET_API_TOKEN): a grant
// of either is a grant of both, and of no other.
TEST(Scopes, ASecretGrantMatchesTheNameWithoutRegardToCase) {
  EXPECT_TRUE(AllowsSecret({"secret:hello_webhook"}, "HELLO_WEBHOOK"));
  EXPECT_TRUE(AllowsSecret({"secret:HELLO_WEBHOOK"}, "hello_webhook"));
  EXPECT_TRUE(AllowsSecret({"secret:Api_Token"}, "api_TOKEN"));
  EXPECT_FALSE(AllowsSecret({"secret:hello_webhook"}, "HELLO_WEBHOOKS"));
  EXPECT_FALSE(AllowsSecret({"secret:hello_webhook"}, "HELLO"));
}

TEST(Scopes, TokenSecretShape) {
  std::string a = NewApiTokenSecret();
  EXPECT_EQ(a.rfind("fy_", 0), 0u);
  EXPECT_EQ(a.size(), 3u + 64u);
  EXPECT_NE(a, NewApiTokenSecret());
}

}  // namespace
}  // namespace ferry::service
