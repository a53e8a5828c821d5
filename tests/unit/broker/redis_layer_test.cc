// The Redis connection layer's pure parts: hash slots and routing keys, the reply reader's
// limits, command encoding, error mapping, and that the scripts fit Redis Cluster and the ACL
// probe. No server.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <limits>
#include <regex>
#include <set>

#include "broker/redis/redis_acl.h"
#include "broker/redis/redis_cluster.h"
#include "broker/redis/redis_protocol.h"
#include "broker/redis/redis_scripts.h"

namespace ferry::redis_broker {
namespace {

TEST(ClusterSlots, MatchRedis) {
  // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
  EXPECT_EQ(KeySlot("123456789"), 12739);
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  // Only the first {...} counts, and an empty one does not.
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot(std::string_view("foo{}{bar}")));
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  // A queue's keys share its slot.
  EXPECT_EQ(KeySlot("ferry:{default}:stream"), KeySlot("ferry:{default}:task:01J0ABC"));
  EXPECT_EQ(KeySlot("ferry:{default}"), KeySlot("ferry:{default}:unique:{odd}key"));
}

TEST(ClusterRouting, PicksTheKeyOfEachCommand) {
  auto key = [](std::initializer_list<std::string_view> words) {
    Args args(words);  // RoutingKey returns a view into it
    auto k = RoutingKey(args);
    return k ? std::string(*k) : std::string("<none>");
  };
  EXPECT_EQ(key({"HGETALL", "k"}), "k");
  EXPECT_EQ(key({"EVALSHA", "abc", "1", "ferry:{q}", "arg"}), "ferry:{q}");
  EXPECT_EQ(key({"EVAL", "return 1", "2", "a", "b"}), "a");
  EXPECT_EQ(key({"EVALSHA", "abc", "0"}), "<none>");
  EXPECT_EQ(key({"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "BLOCK", "5", "STREAMS", "s1", "s2",
                 ">", ">"}),
            "s1");
  EXPECT_EQ(key({"xread", "count", "1", "streams", "s", "0"}), "s");
  EXPECT_EQ(key({"XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"}), "s");
  EXPECT_EQ(key({"XINFO", "GROUPS", "s"}), "s");
  EXPECT_EQ(key({"PING"}), "<none>");
  EXPECT_EQ(key({"INFO", "server"}), "<none>");
  EXPECT_EQ(key({"WAIT", "1", "100"}), "<none>");
  EXPECT_EQ(key({"SCRIPT", "LOAD", "return 1"}), "<none>");
}

// Every key a broker script touches is derived from KEYS[1] (the queue prefix with its hash
// tag): no literal key names, no second key. (The cluster integration test runs them all on a
// cluster node, where Redis itself rejects a script that crosses slots.)
TEST(Scripts, DeriveEveryKeyFromTheQueuePrefix) {
  for (size_t i = 0; i < static_cast<size_t>(Script::kCount); ++i) {
    auto script = static_cast<Script>(i);
    std::string text(ScriptText(script));
    SCOPED_TRACE(std::string(ScriptName(script)));
    EXPECT_NE(text.find("local qp = KEYS[1]"), std::string::npos);
    EXPECT_EQ(text.find("KEYS[2]"), std::string::npos);
    EXPECT_EQ(text.find("'ferry:"), std::string::npos);
    EXPECT_EQ(ScriptSha(script).size(), 40u);
  }
}

// The digests are computed at build time (cmake/FerryEmbed.cmake): each must be the SHA1 of the
// text that is sent, as SCRIPT LOAD would return it, and no two alike.
TEST(Scripts, BuildTimeDigestsAreTheSha1OfTheirText) {
  std::set<std::string> seen;
  for (size_t i = 0; i < static_cast<size_t>(Script::kCount); ++i) {
    auto script = static_cast<Script>(i);
    SCOPED_TRACE(std::string(ScriptName(script)));
    const std::string_view text = ScriptText(script);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    std::string hex;
    for (unsigned char b : digest) hex += fmt::format("{:02x}", b);
    EXPECT_EQ(ScriptSha(script), hex);
    EXPECT_TRUE(seen.insert(hex).second);
  }
}

TEST(Scripts, TheAclProbeCoversEveryCommandTheyRun) {
  std::set<std::string> probed(ScriptCommands().begin(), ScriptCommands().end());
  std::regex call(R"(redis\.p?call\(\s*['"]([A-Za-z]+)['"])");
  std::vector<std::pair<std::string, std::string>> scripts = {
      {"register_queue", std::string(RegisterQueueScriptText())}};
  for (size_t i = 0; i < static_cast<size_t>(Script::kCount); ++i) {
    scripts.emplace_back(ScriptName(static_cast<Script>(i)), ScriptText(static_cast<Script>(i)));
  }
  for (const auto& [script, text] : scripts) {
    size_t calls = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), call), end; it != end; ++it, ++calls) {
      std::string name = (*it)[1];
      for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      EXPECT_TRUE(probed.count(name))
          << name << " in the " << script << " script is not probed by ferry doctor";
    }
    EXPECT_GT(calls, 0u) << script;
  }
  auto direct = DirectCommands(RedisTopology::kCluster);
  EXPECT_NE(std::find(direct.begin(), direct.end(), "ASKING"), direct.end());
  auto single = DirectCommands(RedisTopology::kSingle);
  EXPECT_EQ(std::find(single.begin(), single.end(), "ASKING"), single.end());
  EXPECT_NE(std::find(single.begin(), single.end(), "EVALSHA"), single.end());
}

TEST(Protocol, EncodesCommandsAsResp) {
  std::string out;
  Args{"GET", "k"}.AppendEncoded(out);
  Args{"SET", std::string_view("a\0b", 3), ""}.AppendEncoded(out);
  EXPECT_EQ(
      out,
      std::string("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$3\r\na\0b\r\n$0\r\n\r\n", 48));
}

Result<ReplyPtr> ReadOne(Reader& reader, const std::string& bytes) {
  if (auto st = reader.Feed(bytes.data(), bytes.size()); !st) return Fail(st.error());
  return reader.Next();
}

TEST(Protocol, ReadsRepliesInPieces) {
  Reader reader;
  std::string bytes = "*2\r\n$5\r\nhello\r\n:42\r\n+OK\r\n";
  ASSERT_TRUE(reader.Feed(bytes.data(), 7));
  auto none = reader.Next();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  ASSERT_TRUE(reader.Feed(bytes.data() + 7, bytes.size() - 7));
  auto first = reader.Next();
  ASSERT_TRUE(first && *first);
  ASSERT_EQ((*first)->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(ReplyText(*(*first)->element[0]), "hello");
  EXPECT_EQ(ReplyInt(*(*first)->element[1]), 42);
  auto second = reader.Next();
  ASSERT_TRUE(second && *second);
  EXPECT_EQ(ReplyText(**second), "OK");
}

// fuzz/redis_reply_fuzz.cc found this: a string reply with more digits than int64_t holds made
// ReplyInt overflow (undefined behaviour; in practice a wrapped, possibly plausible value).
TEST(Protocol, StringIntegersThatDoNotFitReadAsZero) {
  Reader reader;
  const std::string bytes =
      "*4\r\n$20\r\n99999999999999999999\r\n$19\r\n9223372036854775807\r\n"
      "$4\r\n12ab\r\n$2\r\n-5\r\n";
  ASSERT_TRUE(reader.Feed(bytes.data(), bytes.size()));
  auto reply = reader.Next();
  ASSERT_TRUE(reply && *reply);
  ASSERT_EQ((*reply)->elements, 4u);
  EXPECT_EQ(ReplyInt(*(*reply)->element[0]), 0);
  EXPECT_EQ(ReplyInt(*(*reply)->element[1]), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(ReplyInt(*(*reply)->element[2]), 12);
  EXPECT_EQ(ReplyInt(*(*reply)->element[3]), 0);
}

TEST(Protocol, ArraysOverTheLimitAreRefused) {
  ReplyLimits limits;
  limits.max_elements = 1000;
  Reader at_limit(limits);
  auto ok = ReadOne(at_limit, "*1000\r\n");
  ASSERT_TRUE(ok) << ok.error().message;  // accepted, waiting for its elements
  Reader over(limits);
  auto bad = ReadOne(over, "*1001\r\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("1000 elements"), std::string::npos) << bad.error().message;
  // The default limit holds hiredis' own bound below INT_MAX.
  Reader huge;
  EXPECT_FALSE(ReadOne(huge, "*2147483647\r\n"));
}

TEST(Protocol, PendingBytesAreBounded) {
  ReplyLimits limits;
  limits.max_pending_bytes = 64;
  Reader reader(limits);
  std::string head = "$100\r\n";
  ASSERT_TRUE(reader.Feed(head.data(), head.size()));
  std::string body(58, 'x');  // 6 + 58 = 64 buffered: at the limit
  ASSERT_TRUE(reader.Feed(body.data(), body.size()));
  auto more = reader.Feed("y", 1);
  ASSERT_FALSE(more);
  EXPECT_NE(more.error().message.find("larger than"), std::string::npos);
}

TEST(Protocol, GarbageIsAProtocolError) {
  Reader reader;
  auto r = ReadOne(reader, "!nonsense\r\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("unreadable"), std::string::npos);
}

TEST(Protocol, ErrorRepliesMapToWhatTheCallerShouldDo) {
  auto code = [](const std::string& text) {
    Reader reader;
    auto r = ReadOne(reader, "-" + text + "\r\n");
    EXPECT_TRUE(r && *r);
    return ReplyError(**r).code;
  };
  EXPECT_EQ(code("NOPERM this user has no permissions to run the 'xadd' command"),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(code("ERR The user executing the script can't run this command or subcommand script: "
                 "abc, on @user_script:127."),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(code("WRONGPASS invalid username-password pair"), ErrorCode::kUnauthenticated);
  EXPECT_EQ(code("READONLY You can't write against a read only replica."), ErrorCode::kUnavailable);
  EXPECT_EQ(code("MOVED 3999 127.0.0.1:6381"), ErrorCode::kUnavailable);
  EXPECT_EQ(code("ASK 3999 127.0.0.1:6381"), ErrorCode::kUnavailable);
  EXPECT_EQ(code("TRYAGAIN Multiple keys request during rehashing of slot"),
            ErrorCode::kUnavailable);
  EXPECT_EQ(code("CLUSTERDOWN The cluster is down"), ErrorCode::kUnavailable);
  EXPECT_EQ(code("ERR unknown command"), ErrorCode::kInternal);
}

}  // namespace
}  // namespace ferry::redis_broker
