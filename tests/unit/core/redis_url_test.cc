// Redis URLs for the three deployments, and the connection options that must fit them.
#include "core/redis_url.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(RedisUrlTopologies, TlsSchemeKeepsTheSingleServerShape) {
  auto ep = ParseRedisUrl("rediss://ferry:pw@redis.example.com:6380/3");
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_TRUE(ep->tls);
  EXPECT_EQ(ep->topology, RedisTopology::kSingle);
  EXPECT_EQ(ep->host, "redis.example.com");
  EXPECT_EQ(ep->port, 6380);
  EXPECT_EQ(ep->username, "ferry");
  EXPECT_EQ(ep->password, "pw");
  EXPECT_EQ(ep->db, 3);
  ASSERT_EQ(ep->hosts.size(), 1u);
  EXPECT_FALSE(ParseRedisUrl("redis://h")->tls);
}

TEST(RedisUrlTopologies, SentinelListsSentinelsAndNamesTheMaster) {
  auto ep = ParseRedisUrl("redis+sentinel://:pw@10.0.0.1,10.0.0.2:26380,[::1]:26381/main/2");
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->topology, RedisTopology::kSentinel);
  EXPECT_FALSE(ep->tls);
  ASSERT_EQ(ep->hosts.size(), 3u);
  EXPECT_EQ(ep->hosts[0].host, "10.0.0.1");
  EXPECT_EQ(ep->hosts[0].port, 26379);  // Sentinel's default port
  EXPECT_EQ(ep->hosts[1].port, 26380);
  EXPECT_EQ(ep->hosts[2].host, "::1");
  EXPECT_EQ(ep->hosts[2].port, 26381);
  EXPECT_EQ(ep->master_name, "main");
  EXPECT_EQ(ep->db, 2);
  EXPECT_EQ(ep->password, "pw");
  EXPECT_TRUE(ParseRedisUrl("rediss+sentinel://h/m")->tls);
}

TEST(RedisUrlTopologies, ClusterListsSeedNodes) {
  auto ep = ParseRedisUrl("redis+cluster://a:7000,b");
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->topology, RedisTopology::kCluster);
  ASSERT_EQ(ep->hosts.size(), 2u);
  EXPECT_EQ(ep->hosts[1].port, 6379);
  EXPECT_TRUE(ParseRedisUrl("redis+cluster://a:7000/0"));
  EXPECT_TRUE(ParseRedisUrl("rediss+cluster://a:7000")->tls);
}

TEST(RedisUrlTopologies, RejectsWhatDoesNotFit) {
  auto why = [](const std::string& url) {
    auto ep = ParseRedisUrl(url);
    return ep ? std::string("accepted") : ep.error().message;
  };
  EXPECT_NE(why("redis://a:1,b:2").find("several hosts"), std::string::npos);
  EXPECT_NE(why("redis+sentinel://a:26379").find("master name"), std::string::npos);
  EXPECT_NE(why("redis+sentinel://a:26379/").find("master name"), std::string::npos);
  EXPECT_NE(why("redis+cluster://a:7000/1").find("database 0"), std::string::npos);
  EXPECT_NE(why("redis+cluster://").find("no hosts"), std::string::npos);
  EXPECT_NE(why("redis+sentinel://a:0/m").find("bad port"), std::string::npos);
  EXPECT_NE(why("redis+sentinel://a:65536/m").find("bad port"), std::string::npos);
  EXPECT_TRUE(ParseRedisUrl("redis+sentinel://a:65535/m"));
  EXPECT_NE(why("redis://::1:6379").find("brackets"), std::string::npos);
  EXPECT_NE(why("redis://[::1:6379").find("unclosed"), std::string::npos);
  EXPECT_NE(why("redis+cluster://a,,b").find("empty host"), std::string::npos);
  EXPECT_NE(why("redis+sentinels://a/m").find("unsupported scheme"), std::string::npos);
}

TEST(RedisUrlTopologies, HostCountAndLengthAreBounded) {
  std::string hosts;
  for (int i = 0; i < 64; ++i) hosts += (i ? "," : "") + std::string("h") + std::to_string(i);
  EXPECT_TRUE(ParseRedisUrl("redis+cluster://" + hosts));
  EXPECT_FALSE(ParseRedisUrl("redis+cluster://" + hosts + ",h64"));
  std::string longest = "redis://" + std::string(4096 - 8, 'h');
  EXPECT_TRUE(ParseRedisUrl(longest));
  EXPECT_FALSE(ParseRedisUrl(longest + "h"));
}

TEST(RedisUrlTopologies, MaskingCoversEveryScheme) {
  EXPECT_EQ(MaskRedisUrl("redis+sentinel://u:pw@a,b/m"), "redis+sentinel://u:****@a,b/m");
  EXPECT_EQ(MaskRedisUrl("rediss://:pw@h:1"), "rediss://:****@h:1");
  EXPECT_EQ(MaskRedisUrl("redis+cluster://a:1,b:2"), "redis+cluster://a:1,b:2");
}

TEST(RedisConnectOptions, MustFitTheUrl) {
  RedisConnectOptions o;
  o.tls.ca_file = "/etc/ca.pem";
  auto plain = ResolveRedisEndpoint("redis://h", o);
  ASSERT_FALSE(plain);
  EXPECT_NE(plain.error().message.find("rediss://"), std::string::npos);
  EXPECT_TRUE(ResolveRedisEndpoint("rediss://h", o));
  EXPECT_TRUE(ResolveRedisEndpoint("rediss+sentinel://h/m", o));

  RedisConnectOptions insecure;
  insecure.tls.verify = false;
  EXPECT_FALSE(ResolveRedisEndpoint("redis://h", insecure));

  RedisConnectOptions half;
  half.tls.key_file = "/k.pem";
  EXPECT_FALSE(ResolveRedisEndpoint("rediss://h", half));

  RedisConnectOptions sentinel;
  sentinel.sentinel_password = "x";
  EXPECT_FALSE(ResolveRedisEndpoint("redis://h", sentinel));
  EXPECT_FALSE(ResolveRedisEndpoint("redis+cluster://h", sentinel));
  EXPECT_TRUE(ResolveRedisEndpoint("redis+sentinel://h/m", sentinel));
}

TEST(RedisConnectOptions, UsernameFillsInOrMustAgree) {
  RedisConnectOptions o;
  o.username = "ferry";
  auto filled = ResolveRedisEndpoint("redis://:pw@h", o);
  ASSERT_TRUE(filled);
  EXPECT_EQ(filled->username, "ferry");
  EXPECT_EQ(filled->password, "pw");
  EXPECT_TRUE(ResolveRedisEndpoint("redis://ferry:pw@h", o));
  auto clash = ResolveRedisEndpoint("redis://admin:pw@h", o);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().message.find("pw"), std::string::npos);
}

}  // namespace
}  // namespace ferry
