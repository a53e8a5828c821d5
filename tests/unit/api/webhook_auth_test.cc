// Webhook recipes: each sender's published test vector where one exists, near misses for every
// comparison (last nibble flipped, a correct prefix one character short, one second past the
// tolerance), rotation, and replay nonces.
#include "api/webhook_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/crypto.h"

namespace ferry::api {
namespace {

using engine::WebhookAuth;
using ::testing::HasSubstr;

engine::WebhookTrigger Trigger(WebhookAuth auth) {
  engine::WebhookTrigger t;
  t.auth = auth;
  t.secrets = {"HOOK"};
  if (auth == WebhookAuth::kSecret) t.signature_header = "X-Ferry-Secret";
  return t;
}

// The last hex digit changed to another one.
std::string FlipLastNibble(std::string hex) {
  hex.back() = hex.back() == '0' ? '1' : '0';
  return hex;
}

Result<WebhookVerified> Verify(WebhookAuth auth, const std::string& secret,
                               const http::HeaderList& headers, const std::string& body,
                               int64_t now_ms) {
  return VerifyWebhook(Trigger(auth), {secret}, headers, body, now_ms);
}

TEST(Hmac, Rfc4231Vector) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// --- GitHub ---

TEST(GitHub, PublishedVector) {
  // docs.github.com "Validating webhook deliveries": this secret and payload give this digest.
  const std::string sig = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  auto r = Verify(WebhookAuth::kGitHub, "It's a Secret to Everybody",
                  {{"X-Hub-Signature-256", "sha256=" + sig}}, "Hello, World!", 1000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->nonce, "github:" + sig);
  EXPECT_EQ(
      r->nonce_expires_ms,
      1000 + std::chrono::milliseconds(std::chrono::hours(24 * 7)).count() + kReplayRecordMarginMs);
}

TEST(GitHub, NearMisses) {
  const std::string secret = "It's a Secret to Everybody";
  const std::string sig = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  for (const std::string& bad :
       {"sha256=" + FlipLastNibble(sig), "sha256=" + sig.substr(0, 63), "sha256=" + sig + "0", sig,
        "sha1=" + sig, std::string("sha256=")}) {
    auto r =
        Verify(WebhookAuth::kGitHub, secret, {{"X-Hub-Signature-256", bad}}, "Hello, World!", 1000);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << bad;
    EXPECT_EQ(r.error().message.find(sig), std::string::npos) << "leaks the expected digest";
  }
  // One byte of body changed.
  EXPECT_FALSE(Verify(WebhookAuth::kGitHub, secret, {{"X-Hub-Signature-256", "sha256=" + sig}},
                      "Hello, World?", 1000));
  EXPECT_FALSE(Verify(WebhookAuth::kGitHub, secret, {}, "Hello, World!", 1000));
}

// --- Slack ---

const std::string kSlackBody =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c";
const std::string kSlackSecret = "8f742231b10e8888abcd99yyyzzz85a5";
const std::string kSlackSig = "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
constexpr int64_t kSlackTs = 1531420618;

TEST(Slack, PublishedVector) {
  // api.slack.com "Verifying requests from Slack": the example request.
  auto r = Verify(WebhookAuth::kSlack, kSlackSecret,
                  {{"X-Slack-Request-Timestamp", std::to_string(kSlackTs)},
                   {"X-Slack-Signature", "v0=" + kSlackSig}},
                  kSlackBody, kSlackTs * 1000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->nonce_expires_ms, kSlackTs * 1000 + 300'000 + kReplayRecordMarginMs);
}

TEST(Slack, NearMisses) {
  auto headers = [](const std::string& sig, int64_t ts) {
    return http::HeaderList{{"X-Slack-Request-Timestamp", std::to_string(ts)},
                            {"X-Slack-Signature", sig}};
  };
  const int64_t now = kSlackTs * 1000;
  EXPECT_FALSE(Verify(WebhookAuth::kSlack, kSlackSecret,
                      headers("v0=" + FlipLastNibble(kSlackSig), kSlackTs), kSlackBody, now));
  EXPECT_FALSE(Verify(WebhookAuth::kSlack, kSlackSecret,
                      headers("v0=" + kSlackSig.substr(0, 63), kSlackTs), kSlackBody, now));
  EXPECT_FALSE(
      Verify(WebhookAuth::kSlack, kSlackSecret, headers(kSlackSig, kSlackTs), kSlackBody, now));
  // The signed timestamp one second off: the signature no longer matches.
  EXPECT_FALSE(Verify(WebhookAuth::kSlack, kSlackSecret, headers("v0=" + kSlackSig, kSlackTs + 1),
                      kSlackBody, now));
  // Tolerance 5 min: exactly at the edge passes, one second past fails (both directions).
  auto good = headers("v0=" + kSlackSig, kSlackTs);
  EXPECT_TRUE(Verify(WebhookAuth::kSlack, kSlackSecret, good, kSlackBody, now + 300'000));
  EXPECT_TRUE(Verify(WebhookAuth::kSlack, kSlackSecret, good, kSlackBody, now - 300'000));
  auto late = Verify(WebhookAuth::kSlack, kSlackSecret, good, kSlackBody, now + 301'000);
  ASSERT_FALSE(late);
  EXPECT_THAT(late.error().message, HasSubstr("outside the allowed window of 300s"));
  EXPECT_FALSE(Verify(WebhookAuth::kSlack, kSlackSecret, good, kSlackBody, now - 301'000));
  // Whole seconds on both sides, as the timestamp is: 300.999 s after it is still second 300
  // (it was refused, while 300 s ahead passed), and 300.001 s before it is second 301 before.
  EXPECT_TRUE(Verify(WebhookAuth::kSlack, kSlackSecret, good, kSlackBody, now + 300'999));
  EXPECT_FALSE(Verify(WebhookAuth::kSlack, kSlackSecret, good, kSlackBody, now - 300'001));
  EXPECT_FALSE(Verify(WebhookAuth::kSlack, kSlackSecret, good, kSlackBody, now + 301'000));
}

// --- Standard Webhooks ---

const std::string kSwSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string kSwId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const std::string kSwBody = R"({"test": 2432232314})";
const std::string kSwSig = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
constexpr int64_t kSwTs = 1614265330;

http::HeaderList SwHeaders(const std::string& signature, int64_t ts = kSwTs,
                           const std::string& id = kSwId) {
  return {{"webhook-id", id},
          {"webhook-timestamp", std::to_string(ts)},
          {"webhook-signature", signature}};
}

TEST(StandardWebhooks, PublishedVector) {
  // The Standard Webhooks specification's example (also the reference libraries' test).
  auto r = Verify(WebhookAuth::kStandardWebhooks, kSwSecret, SwHeaders("v1," + kSwSig), kSwBody,
                  kSwTs * 1000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->nonce, "standard-webhooks:" + kSwId);
}

TEST(StandardWebhooks, SeveralSignaturesAnyMayMatch) {
  const std::string other = Base64Encode(std::string(32, 'x'));
  EXPECT_TRUE(Verify(WebhookAuth::kStandardWebhooks, kSwSecret,
                     SwHeaders("v1a,abc v1," + other + " v1," + kSwSig), kSwBody, kSwTs * 1000));
  EXPECT_FALSE(Verify(WebhookAuth::kStandardWebhooks, kSwSecret, SwHeaders("v1," + other), kSwBody,
                      kSwTs * 1000));
}

TEST(StandardWebhooks, NearMisses) {
  const int64_t now = kSwTs * 1000;
  std::string flipped = kSwSig;
  flipped[flipped.size() - 2] = flipped[flipped.size() - 2] == 'E' ? 'F' : 'E';
  EXPECT_FALSE(
      Verify(WebhookAuth::kStandardWebhooks, kSwSecret, SwHeaders("v1," + flipped), kSwBody, now));
  EXPECT_FALSE(Verify(WebhookAuth::kStandardWebhooks, kSwSecret,
                      SwHeaders("v1," + kSwSig.substr(0, kSwSig.size() - 1)), kSwBody, now));
  EXPECT_FALSE(Verify(WebhookAuth::kStandardWebhooks, kSwSecret,
                      SwHeaders("v1," + kSwSig, kSwTs, kSwId + "x"), kSwBody, now));
  EXPECT_FALSE(
      Verify(WebhookAuth::kStandardWebhooks, kSwSecret, SwHeaders("v2," + kSwSig), kSwBody, now));
  EXPECT_FALSE(Verify(WebhookAuth::kStandardWebhooks, kSwSecret, SwHeaders("v1," + kSwSig), kSwBody,
                      now + 301'000));
  EXPECT_TRUE(Verify(WebhookAuth::kStandardWebhooks, kSwSecret, SwHeaders("v1," + kSwSig), kSwBody,
                     now + 300'000));
}

TEST(StandardWebhooks, SecretMustBeWhsec) {
  auto r = Verify(WebhookAuth::kStandardWebhooks, "not-a-whsec", SwHeaders("v1," + kSwSig), kSwBody,
                  kSwTs * 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_THAT(r.error().message, HasSubstr("whsec_"));
  EXPECT_FALSE(StandardWebhooksKey("whsec_!!!"));
  EXPECT_FALSE(StandardWebhooksKey("whsec_"));
}

// --- Stripe ---

TEST(Stripe, SignedTimestampDotBodyAndSeveralV1) {
  const std::string secret = "whsec_test_secret";  // Stripe uses the whole string as the key
  const std::string body = R"({"id": "evt_1", "object": "event"})";
  const int64_t ts = 1700000000;
  const std::string sig = HmacSha256Hex(secret, std::to_string(ts) + "." + body);
  const std::string header =
      "t=" + std::to_string(ts) + ",v1=" + std::string(64, 'a') + ",v1=" + sig + ",v0=abc";
  auto r = Verify(WebhookAuth::kStripe, secret, {{"Stripe-Signature", header}}, body, ts * 1000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->nonce, "stripe:" + sig);
  for (const std::string& bad :
       {"t=" + std::to_string(ts) + ",v1=" + FlipLastNibble(sig),
        "t=" + std::to_string(ts) + ",v1=" + sig.substr(0, 63),
        "t=" + std::to_string(ts + 1) + ",v1=" + sig, "v1=" + sig,
        "t=" + std::to_string(ts) + ",t=" + std::to_string(ts) + ",v1=" + sig,
        "t=" + std::to_string(ts) + ",v0=" + sig}) {
    EXPECT_FALSE(Verify(WebhookAuth::kStripe, secret, {{"Stripe-Signature", bad}}, body, ts * 1000))
        << bad;
  }
  const std::string good = "t=" + std::to_string(ts) + ",v1=" + sig;
  EXPECT_FALSE(Verify(WebhookAuth::kStripe, secret, {{"Stripe-Signature", good}}, body,
                      ts * 1000 + 301'000));
  EXPECT_TRUE(Verify(WebhookAuth::kStripe, secret, {{"Stripe-Signature", good}}, body,
                     ts * 1000 + 300'000));
  // 32 entries at most, and the refusal says so: 31 wrong v1 entries with the right one last
  // pass; one more does not.
  std::string many = "t=" + std::to_string(ts);
  for (int i = 0; i < 30; ++i) many += ",v1=" + std::string(64, 'b');
  EXPECT_TRUE(Verify(WebhookAuth::kStripe, secret, {{"Stripe-Signature", many + ",v1=" + sig}},
                     body, ts * 1000));
  auto over = Verify(WebhookAuth::kStripe, secret,
                     {{"Stripe-Signature", many + ",v1=" + std::string(64, 'b') + ",v1=" + sig}},
                     body, ts * 1000);
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message.find("32 entries at most"), std::string::npos)
      << over.error().message;
}

TEST(Stripe, ParseSignatureHeader) {
  auto p = ParseStripeSignature("t=12, v1=ab ,v1=cd,v0=ef,scheme=x");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->timestamp, 12);
  EXPECT_EQ(p->v1, (std::vector<std::string>{"ab", "cd"}));
  EXPECT_FALSE(ParseStripeSignature(""));
  EXPECT_FALSE(ParseStripeSignature("t=1"));
  EXPECT_FALSE(ParseStripeSignature("t=x,v1=ab"));
  EXPECT_FALSE(ParseStripeSignature("t=1,v1"));
}

// --- Ferry's own hmac scheme and the shared secret ---

TEST(FerryHmac, SignedPayloadIsTimestampDotRawBody) {
  EXPECT_EQ(SignedPayload("1700000000", "{\"a\": 1}"), "1700000000.{\"a\": 1}");
}

TEST(FerryHmac, AcceptedWithAndWithoutPrefixAndNearMisses) {
  const std::string body = "{\"b\":  2, \"a\":1}";  // raw bytes, odd spacing on purpose
  const std::string sig = HmacSha256Hex("s3cret", "1700000000." + body);
  const int64_t now = 1'700'000'000'000;
  for (const std::string& header : {sig, "sha256=" + sig}) {
    auto r =
        Verify(WebhookAuth::kHmac, "s3cret",
               {{"x-ferry-timestamp", "1700000000"}, {"X-FERRY-SIGNATURE", header}}, body, now);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->nonce, sig);
    // Remembered past the window's end: a replay at its last moment still finds the record.
    EXPECT_EQ(r->nonce_expires_ms, now + 300'000 + kReplayRecordMarginMs);
  }
  auto with = [&](const std::string& s, const std::string& ts) {
    return http::HeaderList{{"X-Ferry-Timestamp", ts}, {"X-Ferry-Signature", s}};
  };
  EXPECT_FALSE(
      Verify(WebhookAuth::kHmac, "s3cret", with(FlipLastNibble(sig), "1700000000"), body, now));
  EXPECT_FALSE(
      Verify(WebhookAuth::kHmac, "s3cret", with(sig.substr(0, 63), "1700000000"), body, now));
  EXPECT_FALSE(Verify(WebhookAuth::kHmac, "s3cret", with(sig, "1700000001"), body, now));
  EXPECT_FALSE(Verify(WebhookAuth::kHmac, "s3creT", with(sig, "1700000000"), body, now));
  EXPECT_FALSE(
      Verify(WebhookAuth::kHmac, "s3cret", with(sig, "1700000000"), "{\"a\":1,\"b\":2}", now));
  EXPECT_FALSE(Verify(WebhookAuth::kHmac, "s3cret", with(sig, "1700000000000"), body, now));
  EXPECT_TRUE(Verify(WebhookAuth::kHmac, "s3cret", with(sig, "1700000000"), body, now + 300'000));
  EXPECT_FALSE(Verify(WebhookAuth::kHmac, "s3cret", with(sig, "1700000000"), body, now + 301'000));
  EXPECT_FALSE(Verify(WebhookAuth::kHmac, "s3cret", with(sig, "1700000000"), body, now - 301'000));
}

// Every way to be one off from the right digest: one nibble at either end or in the middle, a
// character short at either end, one too many, padding, a digest of the right length made of one
// repeated character. A comparison that looks at only part of the signature cannot pass.
TEST(FerryHmac, NearMissSignaturesFail) {
  const std::string body = R"({"a":1})";
  const std::string sig = HmacSha256Hex("s3cret", "1700000000." + body);
  ASSERT_EQ(sig.size(), 64u);
  auto flip = [](std::string s, size_t i) {
    s[i] = s[i] == '0' ? '1' : '0';
    return s;
  };
  auto verify = [&](const std::string& header) {
    return Verify(WebhookAuth::kHmac, "s3cret",
                  {{"X-Ferry-Timestamp", "1700000000"}, {"X-Ferry-Signature", header}}, body,
                  1'700'000'000'000);
  };
  ASSERT_TRUE(verify(sig));
  for (const std::string& near :
       {flip(sig, 63), flip(sig, 32), flip(sig, 1), flip(sig, 0), sig.substr(0, 63), sig.substr(1),
        sig + "0", sig.substr(0, 63) + " ", std::string(64, sig[0])}) {
    for (const std::string& header : {near, "sha256=" + near}) {
      auto r = verify(header);
      ASSERT_FALSE(r) << "accepted " << header;
      EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
    }
  }
}

// The tolerance is inclusive and counted in whole seconds, as the timestamp is: this clock's
// second `tolerance` after passes to its last millisecond, the next second fails; before, the
// second `tolerance` before passes and a millisecond earlier is a second more.
TEST(FerryHmac, ToleranceEdgeToTheMillisecond) {
  const std::string sig = HmacSha256Hex("s3cret", "1700000000.x");
  http::HeaderList h = {{"X-Ferry-Timestamp", "1700000000"}, {"X-Ferry-Signature", sig}};
  auto t = Trigger(WebhookAuth::kHmac);
  t.tolerance = std::chrono::seconds(1);
  const int64_t ts = 1'700'000'000'000;
  EXPECT_TRUE(VerifyWebhook(t, {"s3cret"}, h, "x", ts + 1000));
  EXPECT_TRUE(VerifyWebhook(t, {"s3cret"}, h, "x", ts + 1999));
  EXPECT_TRUE(VerifyWebhook(t, {"s3cret"}, h, "x", ts - 1000));
  EXPECT_FALSE(VerifyWebhook(t, {"s3cret"}, h, "x", ts + 2000));
  EXPECT_FALSE(VerifyWebhook(t, {"s3cret"}, h, "x", ts - 1001));
}

TEST(SharedSecret, ComparesTheHeader) {
  EXPECT_TRUE(Verify(WebhookAuth::kSecret, "abc", {{"x-ferry-secret", "abc"}}, "", 0));
  EXPECT_FALSE(Verify(WebhookAuth::kSecret, "abc", {{"X-Ferry-Secret", "abd"}}, "", 0));
  EXPECT_FALSE(Verify(WebhookAuth::kSecret, "abc", {{"X-Ferry-Secret", "ab"}}, "", 0));
  EXPECT_FALSE(Verify(WebhookAuth::kSecret, "abc", {{"X-Ferry-Secret", "abcd"}}, "", 0));
  EXPECT_FALSE(Verify(WebhookAuth::kSecret, "abc", {}, "", 0));
  // Near misses of a realistic secret: last character, first character, a prefix, one more.
  const std::string secret = "fy_0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(Verify(WebhookAuth::kSecret, secret, {{"X-Ferry-Secret", secret}}, "", 0));
  std::string last = secret;
  last.back() = 'e';
  std::string first = secret;
  first.front() = 'g';
  for (const std::string& near : {last, first, secret.substr(0, secret.size() - 1), secret + "f"}) {
    EXPECT_FALSE(Verify(WebhookAuth::kSecret, secret, {{"X-Ferry-Secret", near}}, "", 0)) << near;
  }
}

// A header a webhook names itself (the server's list of headers given once knows only the
// defaults) is refused given twice, whichever copy would match, naming it; once, it is compared.
TEST(ConfiguredHeaders, GivenTwiceIsRefused) {
  engine::WebhookTrigger t = Trigger(WebhookAuth::kSecret);
  t.signature_header = "X-Gitlab-Token";
  for (const http::HeaderList& twice :
       {http::HeaderList{{"X-Gitlab-Token", "abc"}, {"x-gitlab-token", "nope"}},
        http::HeaderList{{"X-Gitlab-Token", "nope"}, {"X-Gitlab-Token", "abc"}}}) {
    auto r = VerifyWebhook(t, {"abc"}, twice, "", 0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().message, "header 'X-Gitlab-Token' is given more than once");
  }
  EXPECT_TRUE(VerifyWebhook(t, {"abc"}, {{"X-Gitlab-Token", "abc"}}, "", 0));

  engine::WebhookTrigger hmac = Trigger(WebhookAuth::kHmac);
  hmac.timestamp_header = "X-Sent-At";
  const std::string ts = "1700000000";
  const http::HeaderList h = {{"X-Sent-At", ts},
                              {"X-Sent-At", ts},
                              {"X-Ferry-Signature", HmacSha256Hex("s", SignedPayload(ts, "x"))}};
  auto r = VerifyWebhook(hmac, {"s"}, h, "x", 1700000000000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "header 'X-Sent-At' is given more than once");
}

// --- rotation and configuration ---

TEST(Rotation, EitherSecretIsAcceptedAndTheMatchIsNamed) {
  auto t = Trigger(WebhookAuth::kGitHub);
  t.secrets = {"NEW", "OLD"};
  const std::string body = "{}";
  auto sign = [&](const std::string& key) {
    return http::HeaderList{{"X-Hub-Signature-256", "sha256=" + HmacSha256Hex(key, body)}};
  };
  auto old_one = VerifyWebhook(t, {"new-key", "old-key"}, sign("old-key"), body, 0);
  ASSERT_TRUE(old_one);
  EXPECT_EQ(old_one->secret_index, 1u);
  auto new_one = VerifyWebhook(t, {"new-key", "old-key"}, sign("new-key"), body, 0);
  ASSERT_TRUE(new_one);
  EXPECT_EQ(new_one->secret_index, 0u);
  EXPECT_FALSE(VerifyWebhook(t, {"new-key", "old-key"}, sign("third-key"), body, 0));
  // The old secret removed from the server: its deliveries fail, the new one's pass.
  EXPECT_FALSE(VerifyWebhook(t, {"new-key", ""}, sign("old-key"), body, 0));
  EXPECT_TRUE(VerifyWebhook(t, {"new-key", ""}, sign("new-key"), body, 0));
  auto none = VerifyWebhook(t, {"", ""}, sign("new-key"), body, 0);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kInternal);
}

TEST(UnixSeconds, Strict) {
  EXPECT_EQ(ParseUnixSeconds("0"), 0);
  EXPECT_EQ(ParseUnixSeconds("999999999999"), 999999999999);
  for (const char* bad : {"", "-1", "1.5", " 1", "1 ", "9999999999999", "+1", "0x10"}) {
    EXPECT_FALSE(ParseUnixSeconds(bad)) << bad;
  }
}

}  // namespace
}  // namespace ferry::api
