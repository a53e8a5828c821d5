#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "api/http_util.h"
#include "core/crypto.h"
#include "core/json_fields.h"
#include "runs/apply.h"

namespace ferry::api {
namespace {

engine::WebhookTrigger HmacTrigger() {
  engine::WebhookTrigger t;
  t.auth = engine::WebhookAuth::kHmac;
  t.secrets = {"HOOK"};
  return t;
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
  Json data = *WebhookTriggerData(t, "POST", h, {{"q", "1"}, {"r", "2"}}, "not json");
  const Json& headers = data["headers"];
  for (const char* gone : {"Authorization", "Cookie", "X-Custom-Mac", "X-Hub-Signature-256",
                           "X-Slack-Signature", "X-Gitlab-Token", "X-Api-Key", "REMOTE_ADDR"}) {
    EXPECT_FALSE(headers.contains(gone)) << gone;
  }
  EXPECT_EQ(headers["Content-Type"], "text/plain");
  EXPECT_EQ(headers["X-Ferry-Timestamp"], "1700000000");
  EXPECT_EQ(headers["X-Request-Id"], "1, 2");
  EXPECT_EQ(data["query"], (Json{{"q", "1"}, {"r", "2"}}));
  EXPECT_EQ(data["method"], "POST");
  // A name given twice is refused, whatever the values: one would be lost.
  for (const auto& twice :
       {std::vector<std::pair<std::string, std::string>>{{"q", "1"}, {"q", "2"}},
        {{"q", "1"}, {"r", "2"}, {"q", "1"}}}) {
    auto refused = WebhookTriggerData(t, "POST", h, twice, "");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(refused.error().message,
              "webhook query parameter 'q' given twice; a run's trigger.query holds one value "
              "per name");
  }
  EXPECT_EQ(data["body"], "not json");
  EXPECT_EQ(DumpJson(data).find("Bearer"), std::string::npos);
}

TEST(ScrubTest, JsonBodyParsedEmptyBodyNull) {
  auto t = HmacTrigger();
  EXPECT_EQ((*WebhookTriggerData(t, "POST", {}, {}, "{\"a\":[1,2]}"))["body"]["a"][1], 2);
  EXPECT_TRUE((*WebhookTriggerData(t, "GET", {}, {}, ""))["body"].is_null());
}

TEST(ScrubTest, WhatIsNotUtf8IsRefusedNotChanged) {
  // A JSON dump would turn such bytes into U+FFFD: the run would not get what was sent.
  auto t = HmacTrigger();
  const HeaderList text = {{"Content-Type", "text/plain"}};
  struct Case {
    HeaderList headers;
    std::vector<std::pair<std::string, std::string>> query;
    std::string body;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {text, {}, "\xff\xfe not json", "webhook body is not UTF-8 text (byte 1)"},
           {text, {}, "caf\xC3", "webhook body is not UTF-8 text (byte 4)"},
           {{{"X-Name", "Jos\xE9"}}, {}, "", "webhook header X-Name is not UTF-8 text (byte 4)"},
           {{}, {{"who", "\xC0\xAF"}}, "", "webhook query parameter who is not UTF-8 text"},
           {{}, {{"\xFF", "1"}}, "", "webhook query parameter name is not UTF-8 text"}}) {
    auto r = WebhookTriggerData(t, "POST", c.headers, c.query, c.body);
    ASSERT_FALSE(r) << c.says;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  // Near misses: the same places in UTF-8 pass, as they came; a scrubbed header is not read.
  auto ok = WebhookTriggerData(t, "POST", {{"X-Name", "Jos\xC3\xA9"}, {"Cookie", "\xff"}},
                               {{"who", "\xE2\x82\xAC"}}, "caf\xC3\xA9");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ((*ok)["headers"]["X-Name"], "Jos\xC3\xA9");
  EXPECT_EQ((*ok)["query"]["who"], "\xE2\x82\xAC");
  EXPECT_EQ((*ok)["body"], "caf\xC3\xA9");
}

TEST(ScrubTest, BodyMeantAsJsonMustBeValidJson) {
  auto t = HmacTrigger();
  // Opens like JSON, or says it is JSON: refused with the reason, never kept as text.
  for (const auto& [type, body] : std::vector<std::pair<std::string, std::string>>{
           {"", R"({"n": 1e999})"},
           {"", std::string(200, '[') + std::string(200, ']')},
           {"application/json", "hello"},
           {"application/vnd.api+json; charset=utf-8", "{"}}) {
    HeaderList h;
    if (!type.empty()) h.emplace_back("Content-Type", type);
    auto r = WebhookTriggerData(t, "POST", h, {}, body);
    ASSERT_FALSE(r) << type << " " << body.substr(0, 20);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("webhook body: "), std::string::npos);
  }
  auto depth = WebhookTriggerData(t, "POST", {}, {}, std::string(200, '[') + std::string(200, ']'));
  EXPECT_NE(depth.error().message.find("nested deeper than the limit of 128"), std::string::npos);
  auto number = WebhookTriggerData(t, "POST", {}, {}, R"({"n": 1e999})");
  EXPECT_EQ(number.error().message, "webhook body: n: number 1e999 is out of range");
  // A form post stays text.
  auto form = WebhookTriggerData(t, "POST", {{"Content-Type", "application/x-www-form-urlencoded"}},
                                 {}, "a=1&b=2");
  ASSERT_TRUE(form);
  EXPECT_EQ((*form)["body"], "a=1&b=2");
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
  auto res = http::ErrorResponse(Error{ErrorCode::kConflict, "run already ended"});
  EXPECT_EQ(res.status, 409);
  auto body = Json::parse(res.body);
  EXPECT_EQ(body["error"]["code"], "conflict");
  EXPECT_EQ(body["error"]["message"], "run already ended");
  EXPECT_EQ(http::ErrorResponse(Error{ErrorCode::kNotFound, ""}).status, 404);
  EXPECT_EQ(http::ErrorResponse(Error{ErrorCode::kUnauthenticated, ""}).status, 401);
  EXPECT_EQ(http::ErrorResponse(Error{ErrorCode::kTooLarge, ""}).status, 413);
  EXPECT_EQ(http::ErrorResponse(Error{ErrorCode::kUnavailable, ""}).status, 503);
  EXPECT_EQ(http::ErrorResponse(Error{ErrorCode::kInvalidArgument, ""}).status, 400);
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
