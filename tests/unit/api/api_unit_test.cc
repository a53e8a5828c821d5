#include <gtest/gtest.h>

#include <string>

#include "api/http_util.h"
#include "runs/apply.h"

namespace ferry::api {
namespace {

engine::WebhookTrigger HmacTrigger() {
  engine::WebhookTrigger t;
  t.auth = engine::WebhookAuth::kHmac;
  t.secret = "HOOK";
  t.signature_header = "X-Ferry-Signature";
  t.timestamp_header = "X-Ferry-Timestamp";
  t.tolerance = std::chrono::minutes(5);
  return t;
}

constexpr int64_t kNowMs = 1'700'000'000'000;

TEST(HmacTest, KnownVector) {
  // RFC 4231 test case 2.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacTest, SignedPayloadIsTimestampDotRawBody) {
  EXPECT_EQ(SignedPayload("1700000000", "{\"a\": 1}"), "1700000000.{\"a\": 1}");
}

TEST(HmacTest, ValidSignatureAcceptedWithAndWithoutPrefix) {
  const std::string body = "{\"b\":  2, \"a\":1}";  // raw bytes, odd spacing on purpose
  const std::string sig = HmacSha256Hex("s3cret", "1700000000." + body);
  for (const std::string& header : {sig, "sha256=" + sig}) {
    HeaderList h = {{"x-ferry-timestamp", "1700000000"}, {"X-FERRY-SIGNATURE", header}};
    auto r = VerifyHmac(HmacTrigger(), "s3cret", h, body, kNowMs);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->signature, sig);
    EXPECT_EQ(r->nonce_expires_ms, kNowMs + 300'000);
  }
}

TEST(HmacTest, ReserialisedBodyFails) {
  const std::string body = "{\"b\":  2, \"a\":1}";
  const std::string sig = HmacSha256Hex("s3cret", "1700000000." + body);
  HeaderList h = {{"X-Ferry-Timestamp", "1700000000"}, {"X-Ferry-Signature", sig}};
  auto r = VerifyHmac(HmacTrigger(), "s3cret", h, "{\"a\":1,\"b\":2}", kNowMs);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
}

TEST(HmacTest, WrongSecretMissingHeadersAndStaleTimestamp) {
  const std::string body = "x";
  const std::string sig = HmacSha256Hex("s3cret", "1700000000.x");
  HeaderList ok = {{"X-Ferry-Timestamp", "1700000000"}, {"X-Ferry-Signature", sig}};
  EXPECT_FALSE(VerifyHmac(HmacTrigger(), "other", ok, body, kNowMs));
  EXPECT_FALSE(VerifyHmac(HmacTrigger(), "s3cret", {{"X-Ferry-Signature", sig}}, body, kNowMs));
  EXPECT_FALSE(
      VerifyHmac(HmacTrigger(), "s3cret", {{"X-Ferry-Timestamp", "1700000000"}}, body, kNowMs));
  // 5 minutes tolerance: 301 s off either way fails, 299 s passes.
  EXPECT_FALSE(VerifyHmac(HmacTrigger(), "s3cret", ok, body, kNowMs + 301'000));
  EXPECT_FALSE(VerifyHmac(HmacTrigger(), "s3cret", ok, body, kNowMs - 301'000));
  EXPECT_TRUE(VerifyHmac(HmacTrigger(), "s3cret", ok, body, kNowMs + 299'000));
  HeaderList ms = {{"X-Ferry-Timestamp", "1700000000000"}, {"X-Ferry-Signature", sig}};
  auto r = VerifyHmac(HmacTrigger(), "s3cret", ms, body, kNowMs);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(r.error().message.find(sig), std::string::npos);
}

// The right digest with one nibble changed, or cut short, or lengthened: each must fail, so a
// comparison that looks at only part of the signature cannot pass.
TEST(HmacTest, NearMissSignaturesFail) {
  const std::string body = R"({"a":1})";
  const std::string sig = HmacSha256Hex("s3cret", "1700000000." + body);
  ASSERT_EQ(sig.size(), 64u);
  auto flip = [](std::string s, size_t i) {
    s[i] = s[i] == '0' ? '1' : '0';
    return s;
  };
  auto verify = [&](const std::string& header) {
    HeaderList h = {{"X-Ferry-Timestamp", "1700000000"}, {"X-Ferry-Signature", header}};
    return VerifyHmac(HmacTrigger(), "s3cret", h, body, kNowMs);
  };
  ASSERT_TRUE(verify(sig));
  ASSERT_TRUE(verify("sha256=" + sig));
  for (const std::string& near :
       {flip(sig, 63), flip(sig, 32), flip(sig, 1), flip(sig, 0), sig.substr(0, 63), sig.substr(1),
        sig + "0", sig.substr(0, 63) + " ", std::string(64, sig[0])}) {
    for (const std::string& header : {near, "sha256=" + near}) {
      auto r = verify(header);
      ASSERT_FALSE(r) << "accepted " << header;
      EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
      EXPECT_EQ(r.error().message, "signature does not match");
    }
  }
  // The right digest of a body one byte different.
  EXPECT_FALSE(VerifyHmac(HmacTrigger(), "s3cret",
                          {{"X-Ferry-Timestamp", "1700000000"}, {"X-Ferry-Signature", sig}},
                          body + " ", kNowMs));
  // The right digest for a timestamp one second off.
  EXPECT_FALSE(VerifyHmac(HmacTrigger(), "s3cret",
                          {{"X-Ferry-Timestamp", "1700000001"}, {"X-Ferry-Signature", sig}}, body,
                          kNowMs));
}

// The tolerance is inclusive: exactly 300 s off passes, one millisecond or one second more fails,
// in both directions.
TEST(HmacTest, TimestampWindowEdges) {
  const std::string body = "x";
  const std::string sig = HmacSha256Hex("s3cret", "1700000000.x");
  HeaderList h = {{"X-Ferry-Timestamp", "1700000000"}, {"X-Ferry-Signature", sig}};
  auto at = [&](int64_t now_ms) { return VerifyHmac(HmacTrigger(), "s3cret", h, body, now_ms); };
  EXPECT_TRUE(at(kNowMs + 300'000));
  EXPECT_TRUE(at(kNowMs - 300'000));
  for (int64_t off : {300'001, 301'000}) {
    for (int64_t now : {kNowMs + off, kNowMs - off}) {
      auto r = at(now);
      ASSERT_FALSE(r) << "accepted at an offset of " << (now - kNowMs) << " ms";
      EXPECT_NE(r.error().message.find("outside the allowed window of 300s"), std::string::npos)
          << r.error().message;
    }
  }
  auto one_second = HmacTrigger();
  one_second.tolerance = std::chrono::seconds(1);
  EXPECT_TRUE(VerifyHmac(one_second, "s3cret", h, body, kNowMs + 1000));
  EXPECT_FALSE(VerifyHmac(one_second, "s3cret", h, body, kNowMs + 1001));
}

TEST(SharedSecretTest, ComparesHeader) {
  engine::WebhookTrigger t;
  t.auth = engine::WebhookAuth::kSecret;
  t.signature_header = "X-Ferry-Secret";
  EXPECT_TRUE(VerifySharedSecret(t, "abc", {{"x-ferry-secret", "abc"}}));
  EXPECT_FALSE(VerifySharedSecret(t, "abc", {{"X-Ferry-Secret", "abd"}}));
  EXPECT_FALSE(VerifySharedSecret(t, "abc", {{"X-Ferry-Secret", "ab"}}));
  EXPECT_FALSE(VerifySharedSecret(t, "abc", {}));
  // Near misses of a realistic secret: last character, first character, prefix, one more.
  const std::string secret = "fy_0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(VerifySharedSecret(t, secret, {{"X-Ferry-Secret", secret}}));
  std::string last = secret;
  last.back() = 'e';
  std::string first = secret;
  first.front() = 'g';
  for (const std::string& near :
       {last, first, secret.substr(0, secret.size() - 1), secret + "f", std::string()}) {
    EXPECT_FALSE(VerifySharedSecret(t, secret, {{"X-Ferry-Secret", near}})) << near;
  }
}

TEST(ConstantTimeEqualsTest, Basics) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "bbc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "aXc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  // Every single position of a 64-character digest matters.
  const std::string digest = HmacSha256Hex("k", "d");
  for (size_t i = 0; i < digest.size(); ++i) {
    std::string near = digest;
    near[i] = near[i] == 'f' ? 'e' : 'f';
    EXPECT_FALSE(ConstantTimeEquals(digest, near)) << "position " << i;
  }
  EXPECT_TRUE(ConstantTimeEquals(digest, std::string(digest)));
}

TEST(ScrubTest, CredentialsAndSignaturesNeverStored) {
  auto t = HmacTrigger();
  t.signature_header = "X-Custom-Mac";
  HeaderList h = {{"Authorization", "Bearer x"},
                  {"Cookie", "a=b"},
                  {"X-Custom-Mac", "abc"},
                  {"X-Hub-Signature-256", "sha256=1"},
                  {"X-Slack-Signature", "v0=1"},
                  {"X-Gitlab-Token", "t"},
                  {"X-Api-Key", "k"},
                  {"REMOTE_ADDR", "127.0.0.1"},
                  {"Content-Type", "text/plain"},
                  {"X-Ferry-Timestamp", "1700000000"},
                  {"X-Request-Id", "1"},
                  {"X-Request-Id", "2"}};
  Json data = WebhookTriggerData(t, "POST", h, {{"q", "1"}, {"q", "2"}}, "not json");
  const Json& headers = data["headers"];
  for (const char* gone : {"Authorization", "Cookie", "X-Custom-Mac", "X-Hub-Signature-256",
                           "X-Slack-Signature", "X-Gitlab-Token", "X-Api-Key", "REMOTE_ADDR"}) {
    EXPECT_FALSE(headers.contains(gone)) << gone;
  }
  EXPECT_EQ(headers["Content-Type"], "text/plain");
  EXPECT_EQ(headers["X-Ferry-Timestamp"], "1700000000");
  EXPECT_EQ(headers["X-Request-Id"], "1, 2");
  EXPECT_EQ(data["query"]["q"], "1");
  EXPECT_EQ(data["method"], "POST");
  EXPECT_EQ(data["body"], "not json");
  EXPECT_EQ(DumpJson(data).find("Bearer"), std::string::npos);
}

TEST(ScrubTest, JsonBodyParsedEmptyBodyNull) {
  auto t = HmacTrigger();
  EXPECT_EQ(WebhookTriggerData(t, "POST", {}, {}, "{\"a\":[1,2]}")["body"]["a"][1], 2);
  EXPECT_TRUE(WebhookTriggerData(t, "GET", {}, {}, "")["body"].is_null());
}

TEST(SlackTest, UrlVerification) {
  EXPECT_EQ(UrlVerificationChallenge(Json{{"type", "url_verification"}, {"challenge", "xyz"}}),
            "xyz");
  EXPECT_FALSE(UrlVerificationChallenge(Json{{"type", "event_callback"}, {"challenge", "xyz"}}));
  EXPECT_FALSE(UrlVerificationChallenge(Json{{"type", "url_verification"}}));
  EXPECT_FALSE(UrlVerificationChallenge(Json("url_verification")));
}

TEST(RequestTest, ParseJsonObjectNamesThePosition) {
  auto bad = ParseJsonObject("{\"a\": 1,,}");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("byte 9"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(ParseJsonObject(""));
  auto arr = ParseJsonObject("[1]");
  ASSERT_FALSE(arr);
  EXPECT_NE(arr.error().message.find("array"), std::string::npos);
  EXPECT_TRUE(ParseJsonObject(" {\"a\": 1} "));
}

TEST(RequestTest, BearerToken) {
  EXPECT_EQ(BearerToken("Bearer fy_abc"), "fy_abc");
  EXPECT_EQ(BearerToken("bearer   fy_abc "), "fy_abc");
  EXPECT_FALSE(BearerToken("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(BearerToken("Bearer"));
  EXPECT_FALSE(BearerToken("Bearer a b"));
  EXPECT_FALSE(BearerToken(""));
}

TEST(RequestTest, ParseLimit) {
  EXPECT_EQ(*ParseLimit("", 50, 1000), 50);
  EXPECT_EQ(*ParseLimit("7", 50, 1000), 7);
  EXPECT_FALSE(ParseLimit("0", 50, 1000));
  EXPECT_FALSE(ParseLimit("1001", 50, 1000));
  EXPECT_FALSE(ParseLimit("5x", 50, 1000));
  EXPECT_FALSE(ParseLimit("-1", 50, 1000));
}

TEST(ErrorTest, ShapeAndStatus) {
  auto [status, body] = ErrorResponse(Error{ErrorCode::kConflict, "run already ended"});
  EXPECT_EQ(status, 409);
  EXPECT_EQ(body["error"]["code"], "conflict");
  EXPECT_EQ(body["error"]["message"], "run already ended");
  EXPECT_EQ(ErrorResponse(Error{ErrorCode::kNotFound, ""}).first, 404);
  EXPECT_EQ(ErrorResponse(Error{ErrorCode::kUnauthenticated, ""}).first, 401);
  EXPECT_EQ(ErrorResponse(Error{ErrorCode::kTooLarge, ""}).first, 413);
  EXPECT_EQ(ErrorResponse(Error{ErrorCode::kUnavailable, ""}).first, 503);
  EXPECT_EQ(ErrorResponse(Error{ErrorCode::kInvalidArgument, ""}).first, 400);
}

TEST(TokenTest, SecretShape) {
  std::string a = NewApiTokenSecret();
  EXPECT_EQ(a.rfind("fy_", 0), 0u);
  EXPECT_EQ(a.size(), 3u + 64u);
  EXPECT_NE(a, NewApiTokenSecret());
}

TEST(TriggerSpecsTest, KeysAreStable) {
  Json canonical = {
      {"triggers",
       {{"webhook", {{"auth", "none"}}},
        {"cron", Json::array({{{"schedule", "* * * * *"}}, {{"schedule", "0 * * * *"}}})}}}};
  auto specs = runs::TriggerSpecs(canonical);
  ASSERT_EQ(specs.size(), 3u);
  EXPECT_EQ(specs[0].key, "webhook");
  EXPECT_EQ(specs[1].key, "cron:0");
  EXPECT_EQ(specs[2].key, "cron:1");
  EXPECT_TRUE(runs::TriggerSpecs(Json::object()).empty());
}

}  // namespace
}  // namespace ferry::api
