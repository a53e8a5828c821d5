// TokenCache: how long a verified bearer token is trusted, at and one past each limit.
#include "api/token_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::api {
namespace {

using std::chrono::milliseconds;

const std::vector<std::string> kRun = {"run"};

TEST(TokenCache, TrustsAVerifiedTokenForItsTtlAndNotOneMillisecondLonger) {
  TokenCache cache(milliseconds(1000));
  EXPECT_FALSE(cache.Find("h", 5000));  // never verified
  cache.Put("h", kRun, 5000);
  EXPECT_EQ(cache.Find("h", 5000), kRun);
  EXPECT_EQ(cache.Find("h", 5999), kRun);  // one millisecond inside the TTL
  EXPECT_FALSE(cache.Find("h", 6000));     // at the TTL: looked up again
  // Another token's hash, one character apart, is another token.
  cache.Put("h", kRun, 7000);
  EXPECT_FALSE(cache.Find("g", 7000));
}

// While the store cannot be asked, a token verified within the outage TTL keeps its scopes, and
// not one millisecond longer; then it is gone for both.
TEST(TokenCache, AVerifiedTokenOutlastsAStoreOutageForTheOutageTtl) {
  TokenCache cache(milliseconds(1000), 4096, milliseconds(60'000));
  EXPECT_FALSE(cache.FindDuringOutage("h", 5000));  // never verified
  cache.Put("h", kRun, 5000);
  EXPECT_FALSE(cache.Find("h", 6000));
  EXPECT_EQ(cache.FindDuringOutage("h", 6000), kRun);
  EXPECT_EQ(cache.FindDuringOutage("h", 64'999), kRun);
  EXPECT_FALSE(cache.FindDuringOutage("h", 65'000));
  EXPECT_FALSE(cache.FindDuringOutage("h", 6000));  // and the entry is gone
  EXPECT_FALSE(cache.FindDuringOutage("g", 6000));
}

TEST(TokenCache, AClockThatStepsBackLooksTheTokenUpAgain) {
  TokenCache cache(milliseconds(1000));
  cache.Put("h", kRun, 5000);
  EXPECT_FALSE(cache.Find("h", 4999));
}

TEST(TokenCache, ZeroTtlCachesNothing) {
  TokenCache cache(milliseconds(0));
  cache.Put("h", kRun, 5000);
  EXPECT_FALSE(cache.Find("h", 5000));
}

TEST(TokenCache, AFullCacheStartsOverInsteadOfGrowing) {
  TokenCache cache(milliseconds(1000), 3);
  cache.Put("a", kRun, 1);
  cache.Put("b", kRun, 1);
  cache.Put("c", kRun, 1);
  cache.Put("c", {"read"}, 2);  // an existing entry is updated in place
  EXPECT_EQ(cache.Find("a", 2), kRun);
  EXPECT_EQ(cache.Find("c", 2), std::vector<std::string>{"read"});
  cache.Put("d", kRun, 3);  // the fourth: everything else is dropped
  EXPECT_FALSE(cache.Find("a", 3));
  EXPECT_FALSE(cache.Find("c", 3));
  EXPECT_EQ(cache.Find("d", 3), kRun);
}

}  // namespace
}  // namespace ferry::api
