// rediss://: Ferry's own TLS sessions (OpenSSL) against Debian's redis-server on a TLS-only port,
// with certificates made by the test: verification on by default, wrong CA, server name,
// client-certificate authentication, password over TLS, reconnect, and the CLI's flags.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/time_util.h"
#include "deploy_support.h"
#include "harness.h"
#include "redis_topology.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

class RedisTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new TestCerts();
    RedisNode::Options o;
    o.tls = certs_;
    o.password = "tls-secret";
    server_ = new RedisNode(o);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete certs_;
  }

  static std::string Url(const std::string& password = "tls-secret") {
    return "rediss://:" + password + "@127.0.0.1:" + std::to_string(server_->port());
  }
  static BrokerOptions Verified() {
    BrokerOptions o = OptionsFor(Url());
    o.redis.tls.ca_file = certs_->ca();
    return o;
  }
  static Error OpenError(const BrokerOptions& o) {
    auto b = MakeRedisBrokerFactory(o)->Open();
    EXPECT_FALSE(b) << "connected although it should not have";
    return b ? Error{} : b.error();
  }

  static TestCerts* certs_;
  static RedisNode* server_;
};

TestCerts* RedisTlsTest::certs_ = nullptr;
RedisNode* RedisTlsTest::server_ = nullptr;

TEST_F(RedisTlsTest, HandshakeThenATaskRoundTrip) {
  auto broker = OpenOk(Verified());
  ASSERT_TRUE(broker);
  EXPECT_FALSE(RoundTrip(*broker).empty());
  auto info = broker->ServerInfo();
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ((*info)["ferry_tls"], "verified");
  EXPECT_EQ((*info)["ferry_topology"], "single");
  // The test certificate is valid for a year.
  const std::string text = (*info)["ferry_tls_cert_expires_ms"];
  int64_t expires = text.empty() ? 0 : std::stoll(text);
  EXPECT_GT(expires, WallNowMs() + int64_t{300} * 24 * 3600 * 1000);
}

TEST_F(RedisTlsTest, VerificationIsOnByDefault) {
  // No CA file: the system's trust store, which does not know the test CA.
  BrokerOptions o = OptionsFor(Url());
  Error e = OpenError(o);
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_THAT(e.message, HasSubstr("certificate verify failed"));
}

TEST_F(RedisTlsTest, WrongCaIsRefused) {
  BrokerOptions o = Verified();
  o.redis.tls.ca_file = certs_->other_ca();
  Error e = OpenError(o);
  EXPECT_THAT(e.message, HasSubstr("certificate verify failed"));
  EXPECT_THAT(e.message, HasSubstr("127.0.0.1:" + std::to_string(server_->port())));
}

TEST_F(RedisTlsTest, ServerNameIsChecked) {
  BrokerOptions o = Verified();
  o.redis.tls.server_name = "redis.example.com";  // not in the certificate
  EXPECT_THAT(OpenError(o).message, HasSubstr("certificate verify failed"));
  o.redis.tls.server_name = "localhost";  // in the certificate's names
  EXPECT_TRUE(OpenOk(o));
}

TEST_F(RedisTlsTest, VerificationCanBeTurnedOff) {
  BrokerOptions o = OptionsFor(Url());
  o.redis.tls.verify = false;
  auto broker = OpenOk(o);
  ASSERT_TRUE(broker);
  auto info = broker->ServerInfo();
  ASSERT_TRUE(info);
  EXPECT_EQ((*info)["ferry_tls"], "unverified");
}

TEST_F(RedisTlsTest, WrongPasswordOverTls) {
  BrokerOptions o = Verified();
  o.redis_url = Url("not-the-password");
  Error e = OpenError(o);
  EXPECT_EQ(e.code, ErrorCode::kUnauthenticated);
  EXPECT_THAT(e.message, HasSubstr("rejected the password"));
  EXPECT_THAT(e.message, ::testing::Not(HasSubstr("not-the-password")));
}

TEST_F(RedisTlsTest, PlainClientOnTheTlsPortFails) {
  BrokerOptions o = OptionsFor("redis://:tls-secret@127.0.0.1:" + std::to_string(server_->port()));
  o.io_timeout = std::chrono::seconds(2);
  Error e = OpenError(o);
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
}

TEST_F(RedisTlsTest, UnreadableCaFileIsAnInputError) {
  BrokerOptions o = Verified();
  o.redis.tls.ca_file = certs_->Path("missing.crt");
  Error e = OpenError(o);
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(e.message, HasSubstr("missing.crt"));
}

TEST_F(RedisTlsTest, ReconnectsAfterTheServerRestarts) {
  auto broker = OpenOk(Verified());
  ASSERT_TRUE(broker);
  ASSERT_TRUE(broker->Ping());
  server_->Kill();
  auto down = broker->Ping();
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  server_->Start();
  // The same broker reconnects (a new TLS session) on its next call.
  EXPECT_TRUE(
      Eventually([&] { return static_cast<bool>(broker->Ping()); }, std::chrono::seconds(10)));
  EXPECT_FALSE(RoundTrip(*broker).empty());
}

// A server that requires client certificates (tls-auth-clients yes).
TEST(RedisTlsClientAuth, CertificateRequiredAndAccepted) {
  TestCerts certs;
  RedisNode::Options o;
  o.tls = &certs;
  o.tls_auth_clients = true;
  RedisNode server(o);
  BrokerOptions opts = OptionsFor("rediss://127.0.0.1:" + std::to_string(server.port()));
  opts.redis.tls.ca_file = certs.ca();
  opts.io_timeout = std::chrono::seconds(2);
  auto without = MakeRedisBrokerFactory(opts)->Open();
  ASSERT_FALSE(without);
  EXPECT_EQ(without.error().code, ErrorCode::kUnavailable);

  opts.redis.tls.cert_file = certs.client_cert();
  opts.redis.tls.key_file = certs.client_key();
  auto with = OpenOk(opts);
  ASSERT_TRUE(with);
  EXPECT_FALSE(RoundTrip(*with).empty());

  // A key that is not the certificate's is caught before connecting.
  opts.redis.tls.key_file = certs.server_key();
  auto mismatch = MakeRedisBrokerFactory(opts)->Open();
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(mismatch.error().message, HasSubstr("does not match"));
}

// The ferry binary with the TLS flags / env: a worker process and `task submit --wait`.
TEST_F(RedisTlsTest, FerryCommandsOverTls) {
  const std::string prefix = "t" + RandomHex(6);
  std::map<std::string, std::string> env = {
      {"FERRY_REDIS_URL", Url()}, {"FERRY_REDIS_TLS_CA", certs_->ca()}, {"FERRY_PREFIX", prefix}};
  Process worker({{FerryBinary(), "worker", "start", "--queues", "default"}, env, "", ""});
  auto r = RunCommand({FerryBinary(), "task", "submit", "echo", "--payload", R"({"over":"tls"})",
                       "--wait", "--json"},
                      std::chrono::seconds(60), env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << worker.Stderr();
  EXPECT_THAT(r.out, HasSubstr("succeeded"));
  // The same without the CA: verification fails, exit 3 (Redis unreachable) and a clear reason.
  auto bad = RunCommand({FerryBinary(), "queue", "list"}, std::chrono::seconds(30),
                        {{"FERRY_REDIS_URL", Url()}, {"FERRY_PREFIX", prefix}});
  EXPECT_EQ(bad.exit_code, 3) << bad.out << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("certificate verify failed"));
}

}  // namespace
}  // namespace ferry::testing
