#include "remediation/redact.h"

#include <gtest/gtest.h>

namespace ferry::remediation {
namespace {

bool Has(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

TEST(RedactTest, KeyValuePairsLoseTheirValues) {
  Redaction r;
  EXPECT_EQ(r.Text("password=hunter2 user=ada"), "password=[REDACTED] user=ada");
  EXPECT_EQ(r.Text("api_key: abc def"), "api_key: [REDACTED] def");
  EXPECT_EQ(r.Text(R"({"client_secret": "s3cr3t", "name": "x"})"),
            R"({"client_secret": "[REDACTED]", "name": "x"})");
  EXPECT_EQ(r.Text("DB_PASSWORD='pw1' next"), "DB_PASSWORD='[REDACTED]' next");
  // An upper-case identifier names a secret (a webhook trigger's `secret:`), it is no value.
  EXPECT_EQ(r.Text("    secret: HELLO_WEBHOOK\n"), "    secret: HELLO_WEBHOOK\n");
  EXPECT_EQ(r.Text("secret: Hello_webhook"), "secret: [REDACTED]");
  // Prose with a key word but no separator stays.
  EXPECT_EQ(r.Text("the token is expired"), "the token is expired");
}

TEST(RedactTest, BearerAndBasicCredentials) {
  Redaction r;
  EXPECT_EQ(r.Text("Authorization: Bearer abcdefgh12345"), "Authorization: Bearer [REDACTED]");
  EXPECT_EQ(r.Text("sent basic dXNlcjpwYXNz ok"), "sent basic [REDACTED] ok");
  // Seven characters after a scheme word: prose, not a credential.
  EXPECT_EQ(r.Text("Bearer abcdefg"), "Bearer abcdefg");
  EXPECT_EQ(r.Text("Bearer abcdefgh"), "Bearer [REDACTED]");
}

TEST(RedactTest, UrlPasswordsPemJwtAndRandomStrings) {
  Redaction r;
  EXPECT_EQ(r.Text("postgresql://ferry:pw@db:5432/x"), "postgresql://ferry:[REDACTED]@db:5432/x");
  const std::string pem =
      "key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE "
      "KEY-----\nafter";
  EXPECT_EQ(r.Text(pem), "key:\n[REDACTED PEM BLOCK]\nafter");
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_"
      "XgL0n3I9PlFUP0THsR8U";
  EXPECT_EQ(r.Text("got " + jwt + " back"), "got [REDACTED] back");
  // 20 characters of mixed case and digits: random-looking. 19: kept.
  EXPECT_EQ(r.Text("k=aB3dE5fG7hJ9kL1mN2pQ"), "k=[REDACTED]");
  EXPECT_EQ(r.Text("x aB3dE5fG7hJ9kL1mN2pQ y"), "x [REDACTED] y");
  EXPECT_EQ(r.Text("x aB3dE5fG7hJ9kL1mN2p y"), "x aB3dE5fG7hJ9kL1mN2p y");
  // Ids stay: a ULID (upper case and digits, 26) and a UUID.
  EXPECT_EQ(r.Text("run 01M8W98SX4MXWSQ3XXCMTR19WJ failed"),
            "run 01M8W98SX4MXWSQ3XXCMTR19WJ failed");
  EXPECT_EQ(r.Text("id 550e8400-e29b-41d4-a716-446655440000"),
            "id 550e8400-e29b-41d4-a716-446655440000");
  // Words and paths stay.
  EXPECT_EQ(r.Text("/usr/local/bin/some_long_program_name here"),
            "/usr/local/bin/some_long_program_name here");
}

TEST(RedactTest, TemplateReferencesStayReferences) {
  Redaction r(KnownSecrets{{"hunter2-value", "secrets.DB_PASS"}});
  const std::string src =
      "argv: [curl, -H, \"Authorization: Bearer {{ secrets.API_TOKEN }}\"]\n"
      "env: {PASSWORD: \"{{ secrets.DB_PASS }}\"}\n";
  EXPECT_EQ(r.Text(src), src);
  EXPECT_EQ(r.Text("password: {{ secrets.X }}"), "password: {{ secrets.X }}");
  Json j = r.Value(Json{{"password", "{{ secrets.DB_PASS }}"}, {"token", "plain-value"}});
  EXPECT_EQ(j["password"], "{{ secrets.DB_PASS }}");
  EXPECT_EQ(j["token"], "[REDACTED]");
}

TEST(RedactTest, KnownSecretValuesGoEverywhere) {
  Redaction r(KnownSecrets{{"s3cret-v4lue", "secrets.API_TOKEN"}, {"abc", "secrets.TOO_SHORT"}});
  EXPECT_EQ(r.Text("echo s3cret-v4lue failed"), "echo [REDACTED:secrets.API_TOKEN] failed");
  // Values under 4 bytes would match everywhere: ignored.
  EXPECT_EQ(r.Text("abc"), "abc");
  Json j = r.Value(Json{{"out", {{"stderr", "xx s3cret-v4lue"}}}, {"list", {"s3cret-v4lue"}}});
  EXPECT_FALSE(Has(DumpJson(j), "s3cret-v4lue"));
  EXPECT_TRUE(Has(DumpJson(j), "[REDACTED:secrets.API_TOKEN]"));
}

// A run's input under a secret-like key is hidden where it stands (Value) and, known, wherever
// a program printed it (Text): the error of a failed run, an event's stderr.
TEST(RedactTest, SecretLikeInputsAreHiddenWhereverTheyAreCopied) {
  KnownSecrets known;
  AddSecretLikeValues(Json{{"password", "hunter2hunter2"},
                           {"name", "Ada"},
                           {"db", {{"api_key", "k3y-v4lue"}, {"port", 5432}}},
                           {"hosts", {{{"token", "t0ken-one"}}}},
                           {"pin", 12345678},
                           {"passwd", 12345678}},
                      "inputs", known);
  EXPECT_EQ(known, (KnownSecrets{{"k3y-v4lue", "inputs.db.api_key"},
                                 {"t0ken-one", "inputs.hosts[0].token"},
                                 {"12345678", "inputs.passwd"},
                                 {"hunter2hunter2", "inputs.password"}}));
  Redaction r(known);
  EXPECT_EQ(r.Text("exit 1: pw=hunter2hunter2 via k3y-v4lue"),
            "exit 1: pw=[REDACTED:inputs.password] via [REDACTED:inputs.db.api_key]");
  // Near miss: the value with one character changed is not a copy.
  EXPECT_EQ(r.Text("hunter2hunter3"), "hunter2hunter3");
  // Text under other keys is not secret, and stays.
  EXPECT_EQ(r.Text("Ada 5432"), "Ada 5432");
}

TEST(RedactTest, JsonSecretKeysAndDepthLimit) {
  Redaction r;
  Json in = Json{{"Authorization", "Basic abc"},
                 {"nested", {{"api-key", 12345}, {"ok", 1}, {"cookie", {{"a", "b"}}}}},
                 {"flag_token", true},
                 {"author", "Ada"}};
  Json out = r.Value(in);
  EXPECT_EQ(out["Authorization"], "[REDACTED]");
  EXPECT_EQ(out["nested"]["api-key"], "[REDACTED]");
  EXPECT_EQ(out["nested"]["cookie"], "[REDACTED]");
  EXPECT_EQ(out["nested"]["ok"], 1);
  EXPECT_EQ(out["flag_token"], true);  // a boolean reveals nothing
  EXPECT_EQ(out["author"], "Ada");     // "auth" is a key only on its own
  Json deep = Json::array();
  for (int i = 0; i < 40; ++i) deep = Json::array({deep});
  EXPECT_TRUE(Has(DumpJson(r.Value(deep)), "[TRUNCATED]"));
}

TEST(RedactTest, ReferencedSecretsAndTruncate) {
  auto names = ReferencedSecrets("a {{ secrets.A_1 }} {{secrets.B}} xsecrets.C {{ secrets.A_1 }}");
  EXPECT_EQ(names, (std::vector<std::string>{"A_1", "B"}));
  EXPECT_EQ(Truncate("abcdef", 6), "abcdef");
  EXPECT_EQ(Truncate("abcdefg", 6), "abcdef…[truncated 1 bytes]");
  // Never cuts a UTF-8 character in two.
  EXPECT_EQ(Truncate("ab\xc3\xa9z", 3), "ab…[truncated 3 bytes]");
}

TEST(RedactTest, LongInputIsLinear) {
  Redaction r(KnownSecrets{{"needle-value", "secrets.N"}});
  std::string big(2'000'000, 'a');
  big += " password=x";
  auto out = r.Text(big);
  EXPECT_TRUE(Has(out, "password=[REDACTED]"));
}

}  // namespace
}  // namespace ferry::remediation
