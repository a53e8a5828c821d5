// ParseJson's limits (depth, number range, duplicate keys), strict field reading, and credential
// masking.
#include "core/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "core/json_fields.h"
#include "core/mask.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string Nested(int depth, char open = '[', char close = ']') {
  return std::string(static_cast<size_t>(depth), open) +
         std::string(static_cast<size_t>(depth), close);
}

TEST(ParseJson, DepthLimitIsExact) {
  auto at_limit = ParseJson(Nested(kMaxJsonDepth));
  ASSERT_TRUE(at_limit) << at_limit.error().message;
  EXPECT_EQ(JsonDepth(*at_limit), kMaxJsonDepth);
  auto over = ParseJson(Nested(kMaxJsonDepth + 1));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(over.error().message, HasSubstr("nested deeper than the limit of 128 levels"));
}

// What Ferry wrote itself holds accepted values a few levels down: read back with room for them.
TEST(ParseJson, StoredDocumentsHaveRoomAboveTheInputLimit) {
  ASSERT_GT(kMaxStoredJsonDepth, kMaxJsonDepth + 2);
  auto wrapped = ParseStoredJson("{\"trigger\":{\"body\":" + Nested(kMaxJsonDepth) + "}}");
  ASSERT_TRUE(wrapped) << wrapped.error().message;
  EXPECT_EQ(JsonDepth(*wrapped), kMaxJsonDepth + 2);
  EXPECT_TRUE(ParseStoredJson(Nested(kMaxStoredJsonDepth)));
  auto over = ParseStoredJson(Nested(kMaxStoredJsonDepth + 1));
  ASSERT_FALSE(over);
  EXPECT_THAT(over.error().message, HasSubstr("nested deeper than the limit of " +
                                              std::to_string(kMaxStoredJsonDepth) + " levels"));
  EXPECT_FALSE(ParseJson("{\"trigger\":{\"body\":" + Nested(kMaxJsonDepth) + "}}"));
}

TEST(ParseJson, HundredThousandLevelsAreRefusedNotACrash) {
  for (auto [open, close] : {std::pair{'[', ']'}, std::pair{'{', '}'}}) {
    std::string text;
    if (open == '[') {
      text = Nested(100'000);
    } else {
      for (int i = 0; i < 100'000; ++i) text += "{\"a\":";
      text += "1" + std::string(100'000, '}');
    }
    auto r = ParseJson(text);
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("nested deeper than the limit"));
  }
}

TEST(ParseJson, DepthErrorNamesThePlace) {
  std::string text = R"({"payload": {"items": [1, )" + Nested(kMaxJsonDepth) + "]}}";
  auto r = ParseJson(text);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("payload.items[1]"));
}

TEST(ParseJson, OverflowingNumbersNameTheField) {
  auto r = ParseJson(R"({"task": {"max_attempts": 1e999}})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message, "task.max_attempts: number 1e999 is out of range");
  auto neg = ParseJson("[1, -1e400]");
  ASSERT_FALSE(neg);
  EXPECT_EQ(neg.error().message, "[1]: number -1e400 is out of range");
  // The largest double still parses.
  EXPECT_TRUE(ParseJson("1.7976931348623157e308"));
}

// An integer is kept exactly or refused: one past 64 bits would become a double with other digits,
// and so would one past INT64_MAX where Ferry carries it on (Lua's integers are signed 64-bit).
TEST(ParseJson, IntegersPastSigned64BitsAreRefusedNotRounded) {
  const std::string range =
      " is out of range (-9223372036854775808 to 9223372036854775807; send "
      "it as a string)";
  auto big = ParseJson(R"({"payload": {"x": 18446744073709551616}})");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message, "payload.x: integer 18446744073709551616" + range);
  auto low = ParseJson("[-9223372036854775809]");
  ASSERT_FALSE(low);
  EXPECT_EQ(low.error().message, "[0]: integer -9223372036854775809" + range);
  for (const std::string& text :
       {std::string("9223372036854775808"), std::to_string(std::numeric_limits<uint64_t>::max())}) {
    auto unsigned_only = ParseJson(R"({"run": {"inputs": [0, )" + text + "]}}");
    ASSERT_FALSE(unsigned_only) << text;
    EXPECT_EQ(unsigned_only.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(unsigned_only.error().message, "run.inputs[1]: integer " + text + range);
  }
  // The edges themselves are kept exactly, and numbers written as decimals stay doubles.
  auto edges = ParseJson("[9223372036854775807, -9223372036854775808, 1E2, 1.5]");
  ASSERT_TRUE(edges) << edges.error().message;
  EXPECT_EQ((*edges)[0].get<int64_t>(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ((*edges)[1].get<int64_t>(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ((*edges)[2].get<double>(), 100.0);
}

// A non-zero number is never kept as 0, nor as a subnormal double (fewer digits the nearer it is to
// zero); zero written any way is zero, and the least normal double is kept.
TEST(ParseJson, NumbersNearerZeroThanADoubleAreRefusedNotZeroed) {
  for (const std::string text :
       {"1e-400", "-1e-400", "0.0001e-305", "5e-324", "1.5e-310", "2.2250738585072009e-308"}) {
    auto r = ParseJson(R"({"payload": {"x": [)" + text + "]}}");
    ASSERT_FALSE(r) << text << " read as " << DumpJson((*r)["payload"]["x"][0]);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().message, "payload.x[0]: number " + text +
                                     " is out of range (nearer to zero than "
                                     "2.2250738585072014e-308, below which a double keeps fewer "
                                     "digits; send 0 or a string)");
  }
  auto kept = ParseJson("[0.0, -0.0, 0e-400, 0.000e5, 2.2250738585072014e-308, 1e-307, 1e308]");
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ((*kept)[4].get<double>(), std::numeric_limits<double>::min());
  EXPECT_EQ((*kept)[5].get<double>(), 1e-307);
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*kept)[static_cast<size_t>(i)].get<double>(), 0.0) << i;
  // Digits past a double's precision are a double's own rounding (docs/api.md), not refused.
  auto rounded = ParseJson("[3.141592653589793238462643383279, 9007199254740993.0]");
  ASSERT_TRUE(rounded) << rounded.error().message;
  EXPECT_EQ(DumpJson(*rounded), "[3.141592653589793,9.007199254740992e+15]");
}

TEST(ParseJson, DuplicateKeysAreRefused) {
  auto r = ParseJson(R"({"a": 1, "b": {"c": 1, "c": 2}})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "b.c: duplicate key \"c\"");
  EXPECT_TRUE(ParseJson(R"({"a": {"c": 1}, "b": {"c": 2}})"));
}

TEST(ParseJson, SyntaxErrorsNameTheByte) {
  auto r = ParseJson(R"({"a": tru})");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("malformed JSON at byte"));
  EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("json.exception")));
  EXPECT_FALSE(ParseJson(""));
  EXPECT_FALSE(ParseJson("{} x"));
}

TEST(ParseJson, NulInStringsIsKeptForTheSinksToJudge) {
  auto r = ParseJson(R"({"a": "x\u0000y"})");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["a"].get<std::string>().size(), 3u);
}

TEST(ParseJson, ARawNulIsRefusedWhereverItIs) {
  // After a whole value, between tokens, inside a string, and as the only byte.
  for (std::string_view text :
       {std::string_view("{\"a\":1}\0{\"b\":2}", 15), std::string_view("{\"a\":\0 1}", 9),
        std::string_view("{\"a\":\"x\0y\"}", 11), std::string_view("\0", 1)}) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r) << text.size();
    EXPECT_THAT(r.error().message, HasSubstr("a NUL byte")) << text.size();
  }
  auto r = ParseJson(std::string_view("{\"a\":1}\0junk", 12));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("malformed JSON at byte 8: a NUL byte"));
  EXPECT_TRUE(ParseJson(R"({"a": "\u0000"})"));  // the escaped form is a character like any
}

TEST(JsonDepth, Scalars) {
  EXPECT_EQ(JsonDepth(Json(1)), 0);
  EXPECT_EQ(JsonDepth(Json::array()), 1);
  EXPECT_EQ(JsonDepth(Json{{"a", {1, {2}}}}), 3);
}

TEST(FieldReader, TypesRangesAndUnknownFields) {
  Json body = Json::parse(R"({"kind": "echo", "max_attempts": 3, "wait": true, "timeout": "30s"})");
  FieldReader f(body);
  EXPECT_EQ(f.String("kind", kRequired), "echo");
  EXPECT_EQ(f.Int("max_attempts", 1, 1000), 3);
  EXPECT_EQ(f.Bool("wait"), true);
  EXPECT_EQ(f.Duration("timeout", 1ms, 1h), 30s);
  EXPECT_EQ(f.String("queue"), std::nullopt);
  EXPECT_TRUE(f.Finish());
}

TEST(FieldReader, UnknownFieldIsNamedWithASuggestion) {
  Json body = Json::parse(R"({"workflow": "w", "input": {}})");
  FieldReader f(body);
  f.String("workflow", kRequired);
  f.Object("inputs");
  auto st = f.Finish();
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr("unknown field input (did you mean inputs?)"));
}

TEST(FieldReader, IntegersAreIntegersWithinRange) {
  for (const char* bad : {R"({"n": 2.5})", R"({"n": "3"})", R"({"n": 1001})", R"({"n": 0})",
                          R"({"n": 18446744073709551615})", R"({"n": true})"}) {
    Json body = Json::parse(bad);
    FieldReader f(body);
    EXPECT_EQ(f.Int("n", 1, 1000), std::nullopt) << bad;
    auto st = f.Finish();
    ASSERT_FALSE(st) << bad;
    EXPECT_THAT(st.error().message, HasSubstr("n must be an integer from 1 to 1000")) << bad;
  }
  Json edge = Json::parse(R"({"lo": 1, "hi": 1000})");
  FieldReader f(edge);
  EXPECT_EQ(f.Int("lo", 1, 1000), 1);
  EXPECT_EQ(f.Int("hi", 1, 1000), 1000);
  EXPECT_TRUE(f.Finish());
}

TEST(FieldReader, RequiredAndWrongTypes) {
  Json body = Json::parse(R"({"kind": 5})");
  FieldReader f(body);
  f.String("kind", kRequired);
  EXPECT_EQ(f.Finish().error().message, "kind must be a string, got an integer");
  Json empty = Json::object();
  FieldReader g(empty, "task.");
  g.String("kind", kRequired);
  EXPECT_EQ(g.Finish().error().message, "task.kind is required");
  Json arr = Json::array();
  FieldReader h(arr);
  EXPECT_EQ(h.Finish().error().message, "body must be a JSON object, got an array");
}

TEST(FieldReader, AFieldWhoseAbsenceMeansSomethingRefusesItsEmptyForm) {
  // null reads as absent elsewhere; here absence means a value of its own ({} for a payload,
  // no key for a unique key), so the empty form is refused instead of taken for it.
  Json body = Json::parse(R"({"payload": null})");
  FieldReader f(body, "tasks[1].");
  EXPECT_EQ(f.AnyButNull("payload", "for {}"), std::nullopt);
  EXPECT_EQ(f.Finish().error().message,
            "tasks[1].payload must be a JSON value other than null (leave it out for {})");
  Json key = Json::parse(R"({"unique_key": ""})");
  FieldReader g(key);
  EXPECT_EQ(g.NonEmptyString("unique_key", "for no key"), std::nullopt);
  EXPECT_EQ(g.Finish().error().message, "unique_key must not be empty (leave it out for no key)");
  // The near misses: given, or left out, each is read as it is.
  Json given = Json::parse(R"({"payload": 0, "unique_key": "k"})");
  FieldReader h(given);
  EXPECT_EQ(h.AnyButNull("payload", "for {}"), Json(0));
  EXPECT_EQ(h.NonEmptyString("unique_key", "for no key"), "k");
  EXPECT_TRUE(h.Finish());
  Json none = Json::object();
  FieldReader n(none);
  EXPECT_EQ(n.AnyButNull("payload", "for {}"), std::nullopt);
  EXPECT_EQ(n.NonEmptyString("unique_key", "for no key"), std::nullopt);
  EXPECT_TRUE(n.Finish());
}

TEST(FieldReader, DurationsAreBounded) {
  Json body = Json::parse(R"({"delay": "400d"})");
  FieldReader f(body);
  EXPECT_EQ(f.Duration("delay", 0ms, std::chrono::hours(24 * 366)), std::nullopt);
  EXPECT_THAT(f.Finish().error().message, HasSubstr("delay must be from"));
}

TEST(MaskCredentials, Forms) {
  EXPECT_EQ(MaskCredentials("postgresql://u:pw@db/ferry"), "postgresql://u:****@db/ferry");
  EXPECT_EQ(MaskCredentials("postgresql://db/ferry?user=u&password=pw&sslmode=require"),
            "postgresql://db/ferry?user=u&password=****&sslmode=require");
  EXPECT_EQ(MaskCredentials("http://user:pw@h/x?token=t&a=b#frag"),
            "http://user:****@h/x?token=****&a=b#frag");
  EXPECT_EQ(MaskCredentials("https://h/x?API_KEY=k"), "https://h/x?API_KEY=****");
  EXPECT_EQ(MaskCredentials("redis://secret@h:1", true), "redis://****@h:1");
  EXPECT_EQ(MaskCredentials("redis://user@h:1"), "redis://user@h:1");
  EXPECT_EQ(MaskCredentials("host=db password=x user=u"), "host=db password=**** user=u");
  EXPECT_EQ(MaskCredentials("/var/lib/ferry/ferry.db"), "/var/lib/ferry/ferry.db");
  // Near misses: a parameter that only contains a credential word is not one.
  EXPECT_EQ(MaskCredentials("https://h/x?keyboard=1&tokens_left=2"),
            "https://h/x?keyboard=1&tokens_left=2");
}

// Every URL of a text is masked, and nothing else changes: handler declarations hold several.
TEST(MaskCredentials, EveryUrlInAText) {
  EXPECT_EQ(MaskUrlsInText("a=http://u:pw@h:1/x secret-env=K; b=https://v:pw2@h/?token=t\n"
                           "c=exec:prog --password=p"),
            "a=http://u:****@h:1/x secret-env=K; b=https://v:****@h/?token=****\n"
            "c=exec:prog --password=p");
  EXPECT_EQ(MaskUrlsInText("  http://u:pw@h  "), "  http://u:****@h  ");
  // Near misses: a user without a password, and no URL at all, stay as they are.
  EXPECT_EQ(MaskUrlsInText("x=https://user@h/ y"), "x=https://user@h/ y");
  EXPECT_EQ(MaskUrlsInText("password=x; http:/h"), "password=x; http:/h");
  EXPECT_EQ(MaskUrlsInText(""), "");
}

}  // namespace
}  // namespace ferry
