// The front door under hostile and careless input, against the real server: deep JSON, numbers
// out of range, unknown fields, NUL bytes, out-of-range settings, token scopes and declared
// secrets, option injection through inputs, and webhooks signed the way GitHub, Stripe, Slack and
// Standard Webhooks sign them — computed by Python's hmac module, not by Ferry's code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <sstream>
#include <string>
#include <vector>

#include "api_fixture.h"
#include "core/time_util.h"
#include "harness.h"

namespace ferry {
namespace {

using testing::Eventually;
using ::testing::HasSubstr;
using testing::RunCommand;

std::string Deep(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

// Signs like the senders do, in Python: prints one header per line, "Name: value".
std::vector<std::pair<std::string, std::string>> PythonSign(const std::string& scheme,
                                                            const std::string& secret,
                                                            const std::string& body, int64_t ts,
                                                            const std::string& id = "msg_1") {
  static const char* kScript = R"(
import base64, hashlib, hmac, sys
scheme, secret, body, ts, msg_id = sys.argv[1:6]
def hexmac(key, msg):
    return hmac.new(key.encode(), msg.encode(), hashlib.sha256).hexdigest()
if scheme == "github":
    print("X-Hub-Signature-256: sha256=" + hexmac(secret, body))
elif scheme == "stripe":
    print("Stripe-Signature: t=%s,v1=%s" % (ts, hexmac(secret, ts + "." + body)))
elif scheme == "slack":
    print("X-Slack-Request-Timestamp: " + ts)
    print("X-Slack-Signature: v0=" + hexmac(secret, "v0:" + ts + ":" + body))
elif scheme == "standard-webhooks":
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, (msg_id + "." + ts + "." + body).encode(), hashlib.sha256).digest()
    print("webhook-id: " + msg_id)
    print("webhook-timestamp: " + ts)
    print("webhook-signature: v1," + base64.b64encode(mac).decode())
)";
  auto r = RunCommand({"python3", "-c", kScript, scheme, secret, body, std::to_string(ts), id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::pair<std::string, std::string>> headers;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    auto colon = line.find(": ");
    if (colon != std::string::npos)
      headers.emplace_back(line.substr(0, colon), line.substr(colon + 2));
  }
  return headers;
}

class FrontDoorTest : public ApiTest {
 protected:
  httplib::Result PostJson(const std::string& path, const std::string& body) {
    return client_->Post(path.c_str(), body, "application/json");
  }

  std::string CreateToken(const std::vector<std::string>& scopes) {
    const std::string secret = service::NewApiTokenSecret();
    EXPECT_TRUE(admin_->CreateApiToken("scoped", Sha256Hex(secret), scopes));
    return secret;
  }

  std::string WaitTerminal(const std::string& run_id) {
    std::string status;
    Eventually(
        [&] {
          status = RunStatus(run_id);
          return status == "succeeded" || status == "failed" || status == "cancelled";
        },
        30s);
    return status;
  }

  Json GetRun(const std::string& id) {
    auto res = client_->Get(("/api/v1/runs/" + id).c_str());
    EXPECT_TRUE(res && res->status == 200);
    return Json::parse(res->body)["run"];
  }
};

constexpr const char* kOpen = R"(name: open
triggers:
  webhook: {auth: none}
nodes:
  a: {kind: delay, duration: 1ms}
)";

TEST_F(FrontDoorTest, DeepJsonIsRefusedEverywhereAndTheServerStaysUp) {
  Apply(kOpen);
  Apply(R"(name: plain
nodes:
  a: {kind: delay, duration: 1ms}
)");
  httplib::Client anon("127.0.0.1", port_);
  auto hook = anon.Post("/hooks/open", Deep(100'000), "application/json");
  ASSERT_TRUE(hook);
  EXPECT_EQ(hook->status, 400) << hook->body;
  EXPECT_THAT(hook->body, HasSubstr("nested deeper than the limit of 128 levels"));
  // Without a JSON content type too: it opens like JSON.
  auto plain = anon.Post("/hooks/open", Deep(100'000), "text/plain");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 400) << plain->body;

  auto task = PostJson("/api/v1/tasks", R"({"kind":"echo","payload":)" + Deep(75'000) + "}");
  ASSERT_TRUE(task);
  EXPECT_EQ(task->status, 400);
  EXPECT_THAT(task->body, HasSubstr("payload[0][0][0]..."));
  EXPECT_THAT(task->body, HasSubstr("nested deeper than the limit of 128 levels"));

  auto run =
      PostJson("/api/v1/runs", R"({"workflow":"plain","inputs":{"x":)" + Deep(100'000) + "}}");
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, 400);
  EXPECT_THAT(run->body, HasSubstr("inputs.x[0]"));
  EXPECT_THAT(run->body, HasSubstr("nested deeper than the limit of 128 levels"));

  // At the limit it is accepted (an echo task with a payload 127 deep inside its object).
  auto at_limit = PostJson("/api/v1/tasks", R"({"kind":"echo","payload":)" + Deep(127) + "}");
  ASSERT_TRUE(at_limit);
  EXPECT_EQ(at_limit->status, 201) << at_limit->body;

  auto health = anon.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(FrontDoorTest, BadFieldsAreNamedNeverDefaulted) {
  Apply(R"(name: plain
inputs:
  who: {type: string, default: World}
nodes:
  a: {kind: delay, duration: 1ms}
)");
  struct Case {
    const char* path;
    std::string body;
    const char* message;
  };
  const int64_t far = WallNowMs() + int64_t{400} * 24 * 3600 * 1000;
  for (const Case& c : std::vector<Case>{
           {"/api/v1/runs", R"({"workflow":"plain","input":{"who":"Ada"}})",
            "unknown field input (did you mean inputs?)"},
           {"/api/v1/tasks", R"({"kind":"echo","max_attempts":1e999})",
            "max_attempts: number 1e999 is out of range"},
           {"/api/v1/tasks", R"({"kind":"echo","payload":{"x":1e-400}})",
            "payload.x: number 1e-400 is out of range (nearer to zero than"},
           {"/api/v1/runs", R"({"workflow":"plain","inputs":{"who":18446744073709551615}})",
            "inputs.who: integer 18446744073709551615 is out of range"},
           {"/api/v1/tasks", R"({"kind":"echo","max_attempts":2.5})",
            "max_attempts must be an integer from 1 to 1000, got 2.5"},
           {"/api/v1/tasks", R"({"kind":"echo","max_attempts":1001})",
            "max_attempts must be an integer from 1 to 1000"},
           {"/api/v1/tasks", R"({"kind":"echo","eta_ms":)" + std::to_string(far) + "}",
            "eta_ms must be an integer from 0 to"},
           {"/api/v1/tasks", R"({"kind":"echo","delay":"400d"})", "delay must be from"},
           {"/api/v1/tasks", R"({"kind":"ferry.run"})", "ferry.run tasks are made by"},
           {"/api/v1/tasks", R"({"kind":"ferry.other"})",
            "kinds starting with 'ferry.' are Ferry's own"},
           {"/api/v1/tasks", R"({"kind":"echo","kind":"noop"})", "duplicate key"},
           {"/api/v1/runs/x/retry", R"({"latest_version":"yes"})",
            "latest_version must be true or false"},
           {"/api/v1/tasks", R"({"kind":"echo","payload":null})",
            "payload must be a JSON value other than null (leave it out for {})"},
           {"/api/v1/tasks/batch", R"({"tasks":[{"kind":"echo"},{"kind":"echo","payload":null}]})",
            "tasks[1].payload must be a JSON value other than null"},
       }) {
    auto res = PostJson(c.path, c.body);
    ASSERT_TRUE(res) << c.path;
    EXPECT_EQ(res->status, 400) << c.body << " -> " << res->body;
    EXPECT_THAT(res->body, HasSubstr(c.message)) << c.body;
    EXPECT_THAT(res->body, HasSubstr("\"invalid_argument\"")) << c.body;
  }
}

TEST_F(FrontDoorTest, SettingsThatCouldNeverWorkAreRefusedAtApply) {
  for (const auto& [source, message] : std::vector<std::pair<std::string, std::string>>{
           {"name: t\ntriggers: {webhook: {auth: hmac, secret: HOOK, tolerance: 0s}}\n"
            "nodes: {a: {kind: fail}}\n",
            "must be from 1s to 24h"},
           {"name: t\ntriggers:\n  cron: {schedule: \"0 9 * * *\", timezone: Mars/Olympus}\n"
            "nodes: {a: {kind: fail}}\n",
            "Mars/Olympus"},
           // Shaped as ISO 8601, yet no time: the scheduler refused it on every tick and the
           // trigger never fired.
           {"name: t\ntriggers:\n  cron: {schedule: \"0 9 * * *\", start: \"2026-02-30\"}\n"
            "nodes: {a: {kind: fail}}\n",
            "bad time '2026-02-30': no such date"},
           {"name: t\ntriggers:\n  cron: {schedule: \"0 9 * * *\", end: "
            "\"2026-12-07T25:00:00Z\"}\nnodes: {a: {kind: fail}}\n",
            "triggers.cron.end"},
       }) {
    auto res = PostJson("/api/v1/workflows", DumpJson(Json{{"source", source}}));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << res->body;
    EXPECT_THAT(res->body, HasSubstr(message));
  }
  // The near misses: the last day of February in a leap year, 23:59:59 with an offset.
  auto leap =
      PostJson("/api/v1/workflows",
               DumpJson(Json{{"source",
                              "name: t\ntriggers:\n  cron: {schedule: \"0 9 * * *\", start: "
                              "\"2028-02-29\", end: \"2028-12-31T23:59:59+05:30\"}\n"
                              "nodes: {a: {kind: fail}}\n"}}));
  ASSERT_TRUE(leap);
  EXPECT_EQ(leap->status, 201) << leap->body;
}

TEST_F(FrontDoorTest, RefusedDeliveryDoesNotUseItsSignatureUp) {
  Apply(R"(name: typed
inputs:
  n: {type: number}
triggers:
  webhook: {auth: hmac, secret: HOOK}
nodes:
  a: {kind: delay, duration: 1ms}
)");
  httplib::Client hooks("127.0.0.1", port_);
  const std::string body = R"({"n": "not a number"})";
  const auto headers = Signed(body, NowSec());
  auto first = Hook(hooks, body, headers, "typed");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 400) << first->body;
  // A number out of range in a signed body: 400 naming it, and no run.
  const std::string huge = R"({"n": 1e999})";
  auto overflow = Hook(hooks, huge, Signed(huge, NowSec()), "typed");
  ASSERT_TRUE(overflow);
  EXPECT_EQ(overflow->status, 400);
  EXPECT_THAT(overflow->body, HasSubstr("n: number 1e999 is out of range"));
  // The operator fixes the workflow; the sender's retry of the same signed delivery now works.
  Apply(R"(name: typed
inputs:
  n: {type: string}
triggers:
  webhook: {auth: hmac, secret: HOOK}
nodes:
  a: {kind: delay, duration: 1ms}
)");
  auto retry = Hook(hooks, body, headers, "typed");
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 202) << retry->body;
  auto replay = Hook(hooks, body, headers, "typed");
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 409) << replay->body;
}

TEST_F(FrontDoorTest, NulBytesNeverReachAProgramCutShort) {
  StartWorker();
  Apply(R"(name: nul
inputs:
  x: string
  o: object
nodes:
  say: {kind: shell, argv: [printf, "%s", "{{ inputs.x }}", "{{ inputs.o.x }}"]}
)");
  // A declared string input is refused at the door, naming it: no run is made.
  auto refused =
      PostJson("/api/v1/runs", R"({"workflow":"nul","inputs":{"x":"safe\u0000 --evil"}})");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_THAT(refused->body, HasSubstr("input 'x' holds a NUL byte"));
  // Inside an object input it is not checked there; the node refuses it rather than cut it short.
  auto res = PostJson("/api/v1/runs",
                      R"({"workflow":"nul","inputs":{"x":"safe","o":{"x":"safe\u0000 --evil"}}})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  const std::string id = Json::parse(res->body)["run"]["id"];
  EXPECT_EQ(WaitTerminal(id), "failed");
  EXPECT_THAT(GetRun(id)["error"].get<std::string>(), HasSubstr("NUL byte"));
}

TEST_F(FrontDoorTest, InputsRefuseOptionLikeValuesAndBrokenConstraints) {
  Apply(R"(name: clone
inputs:
  repo:
    type: string
    pattern: 'https://[a-z0-9.-]+/[A-Za-z0-9_./-]+'
  branch: {type: string, max_length: 20}
  env: {type: string, enum: [staging, production], default: staging}
  note: {type: string, allow_leading_dash: true}
nodes:
  a: {kind: delay, duration: 1ms}
)");
  for (const auto& [inputs, message] : std::vector<std::pair<std::string, std::string>>{
           {R"({"repo":"--upload-pack=touch /tmp/x;git-upload-pack"})", "starts with '-'"},
           {R"({"repo":"https://example.com/a b"})", "does not match the pattern"},
           {R"({"branch":")" + std::string(21, 'b') + R"("})", "longer than 20 bytes"},
           {R"({"env":"prod"})", R"(must be one of \"staging\", \"production\")"},
       }) {
    auto res = PostJson("/api/v1/runs", R"({"workflow":"clone","inputs":)" + inputs + "}");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << inputs << " -> " << res->body;
    EXPECT_THAT(res->body, HasSubstr(message)) << inputs;
  }
  auto ok = PostJson("/api/v1/runs",
                     R"({"workflow":"clone","inputs":{"repo":"https://example.com/a/b.git",)"
                     R"("branch":")" +
                         std::string(20, 'b') + R"(","note":"-1 is fine here"}})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 201) << ok->body;
}

TEST_F(FrontDoorTest, ScopesAndDeclaredSecrets) {
  const std::string read = CreateToken({"read"});
  const std::string run = CreateToken({"run"});
  const std::string apply = CreateToken({"apply"});
  const std::string apply_api = CreateToken({"apply", "secret:API_TOKEN"});
  auto as = [&](const std::string& token) {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_bearer_token_auth(token.c_str());
    c->set_read_timeout(10, 0);
    return c;
  };
  const std::string plain = DumpJson(Json{{"source", "name: p\nnodes: {a: {kind: fail}}\n"}});
  const std::string secretive = DumpJson(Json{
      {"source",
       "name: s\nsecrets: [API_TOKEN]\nnodes:\n  a: {kind: lua, args: {t: \"{{ secrets.API_TOKEN "
       "}}\"}, script: 'return string.reverse(args.t)'}\n"}});
  auto r = as(read)->Post("/api/v1/workflows", plain, "application/json");
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_THAT(r->body, HasSubstr("needs a token with the apply scope; this one has: read"));
  EXPECT_EQ(as(read)->Get("/api/v1/workflows")->status, 200);
  EXPECT_EQ(as(run)->Post("/api/v1/workflows", plain, "application/json")->status, 403);
  EXPECT_EQ(as(apply)->Post("/api/v1/workflows", plain, "application/json")->status, 201);
  // A workflow that reads a secret: only a token granted that secret may apply it.
  auto denied = as(apply)->Post("/api/v1/workflows", secretive, "application/json");
  EXPECT_EQ(denied->status, 403) << denied->body;
  EXPECT_THAT(denied->body, HasSubstr("uses secret API_TOKEN"));
  EXPECT_EQ(as(apply_api)->Post("/api/v1/workflows", secretive, "application/json")->status, 201);
  // The run scope starts runs but a read token may not.
  EXPECT_EQ(as(read)->Post("/api/v1/runs", R"({"workflow":"p"})", "application/json")->status, 403);
  EXPECT_EQ(as(run)->Post("/api/v1/runs", R"({"workflow":"p"})", "application/json")->status, 201);
  // Purging dead letters deletes for good: apply, one level below admin, may not.
  auto purge = as(apply_api)->Post("/api/v1/queues/default/dead/purge", "", "application/json");
  EXPECT_EQ(purge->status, 403) << purge->body;
  EXPECT_THAT(purge->body, HasSubstr("needs a token with the admin scope"));
  // So does deleting a queue (it forgets the listing of the queue's finished tasks).
  auto drop = as(apply_api)->Post("/api/v1/queues/default/delete", "", "application/json");
  EXPECT_EQ(drop->status, 403) << drop->body;
  EXPECT_THAT(drop->body, HasSubstr("needs a token with the admin scope"));
  // A shell task runs any program as the workers' user, which reaches every secret they hold:
  // admin's, on either task route, and named; other kinds stay run's.
  const std::string admin = CreateToken({"admin"});
  const std::string shell_task = R"({"kind":"shell","payload":{"argv":["true"]}})";
  for (const std::string& token : {run, apply_api}) {
    auto refused = as(token)->Post("/api/v1/tasks", shell_task, "application/json");
    EXPECT_EQ(refused->status, 403) << refused->body;
    EXPECT_THAT(refused->body, HasSubstr("a shell task runs any program on a worker"));
    auto in_batch =
        as(token)->Post("/api/v1/tasks/batch", R"({"tasks":[{"kind":"echo"},)" + shell_task + "]}",
                        "application/json");
    EXPECT_EQ(in_batch->status, 403) << in_batch->body;
    EXPECT_THAT(in_batch->body, HasSubstr("tasks[1]: a shell task")) << in_batch->body;
  }
  EXPECT_EQ(as(run)->Post("/api/v1/tasks", R"({"kind":"echo"})", "application/json")->status, 201);
  EXPECT_EQ(as(run)->Post("/api/v1/tasks", R"({"kind":"shelly"})", "application/json")->status,
            201);
  EXPECT_EQ(as(admin)->Post("/api/v1/tasks", shell_task, "application/json")->status, 201);
  // Webhook secrets count as used secrets too.
  const std::string hook =
      DumpJson(Json{{"source",
                     "name: h\ntriggers: {webhook: {auth: github, secret: HOOK}}\n"
                     "nodes: {a: {kind: fail}}\n"}});
  EXPECT_EQ(as(apply_api)->Post("/api/v1/workflows", hook, "application/json")->status, 403);
  // A secret read without being declared is refused whoever applies it.
  const std::string undeclared = DumpJson(
      Json{{"source",
            "name: u\nnodes:\n  a: {kind: shell, argv: [echo, \"{{ secrets.API_TOKEN }}\"]}\n"}});
  auto u = PostJson("/api/v1/workflows", undeclared);
  EXPECT_EQ(u->status, 400);
  EXPECT_THAT(u->body, HasSubstr("secrets.API_TOKEN is not declared"));
}

TEST_F(FrontDoorTest, ProgramsNeverSeeTheWorkersSecrets) {
  ::setenv("FERRY_SECRET_FRONT_DOOR_CANARY", "canary-value-7f3a", 1);
  StartWorker();
  Apply(R"(name: env
nodes:
  dump: {kind: shell, argv: [env]}
)");
  auto res = PostJson("/api/v1/runs", R"({"workflow":"env"})");
  ASSERT_EQ(res->status, 201);
  const std::string id = Json::parse(res->body)["run"]["id"];
  EXPECT_EQ(WaitTerminal(id), "succeeded");
  auto steps = client_->Get(("/api/v1/runs/" + id).c_str());
  EXPECT_THAT(steps->body, HasSubstr("PATH="));
  EXPECT_THAT(steps->body, ::testing::Not(HasSubstr("FRONT_DOOR_CANARY")));
  // The builtin shell task too.
  auto task = PostJson("/api/v1/tasks", R"({"kind":"shell","payload":{"argv":["env"]}})");
  ASSERT_EQ(task->status, 201) << task->body;
  const std::string tid = Json::parse(task->body)["id"];
  std::string result;
  ASSERT_TRUE(Eventually(
      [&] {
        auto t = client_->Get(("/api/v1/tasks/" + tid).c_str());
        if (!t || t->status != 200) return false;
        Json j = Json::parse(t->body)["task"];
        result = DumpJson(j);
        return j["status"] == "succeeded";
      },
      30s))
      << result;
  EXPECT_THAT(result, HasSubstr("PATH="));
  EXPECT_THAT(result, ::testing::Not(HasSubstr("canary-value-7f3a")));
  ::unsetenv("FERRY_SECRET_FRONT_DOOR_CANARY");
}

struct Sender {
  const char* scheme;
  const char* secret_name;
  const char* secret;
};

TEST_F(FrontDoorTest, RealSendersSignedInPythonAreAcceptedOnceEach) {
  const std::vector<Sender> senders = {
      {"github", "GH", "gh-secret"},
      {"stripe", "STRIPE", "whsec_stripe_test"},
      {"slack", "SLACK", "8f742231b10e8888abcd99yyyzzz85a5"},
      {"standard-webhooks", "SW", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}};
  httplib::Client hooks("127.0.0.1", port_);
  for (const auto& s : senders) {
    SCOPED_TRACE(s.scheme);
    const std::string name = std::string("from-") + s.scheme;
    Apply("name: " + name + "\ntriggers: {webhook: {auth: " + s.scheme +
          ", secret: " + s.secret_name + "}}\nnodes: {a: {kind: delay, duration: 1ms}}\n");
    const std::string body = R"({"event": "ping", "id": 1})";
    auto headers = PythonSign(s.scheme, s.secret, body, NowSec(), std::string("msg_") + s.scheme);
    httplib::Headers h(headers.begin(), headers.end());
    auto first = hooks.Post(("/hooks/" + name).c_str(), h, body, "application/json");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 202) << first->body;
    auto again = hooks.Post(("/hooks/" + name).c_str(), h, body, "application/json");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 409) << again->body;
    // One byte of the body changed, same headers: refused, and nothing is said of the digest.
    auto tampered = hooks.Post(("/hooks/" + name).c_str(), h, R"({"event": "ping", "id": 2})",
                               "application/json");
    ASSERT_TRUE(tampered);
    EXPECT_EQ(tampered->status, 401) << tampered->body;
    // Signed with another secret: refused.
    auto other = PythonSign(s.scheme,
                            std::string(s.secret).rfind("whsec_", 0) == 0
                                ? "whsec_b3RoZXItc2VjcmV0LWtleS0xMjM0NQ=="
                                : "other-secret",
                            body, NowSec(), "msg_other");
    httplib::Headers oh(other.begin(), other.end());
    EXPECT_EQ(hooks.Post(("/hooks/" + name).c_str(), oh, body, "application/json")->status, 401);
  }
}

TEST_F(FrontDoorTest, StaleTimestampsAreRefused) {
  Apply(
      "name: s\ntriggers: {webhook: {auth: slack, secret: SLACK, tolerance: 60s}}\n"
      "nodes: {a: {kind: delay, duration: 1ms}}\n");
  httplib::Client hooks("127.0.0.1", port_);
  const std::string body = "{}";
  // 2 minutes old against a 60 s tolerance (a margin for the clock moving during the test).
  auto old = PythonSign("slack", "8f742231b10e8888abcd99yyyzzz85a5", body, NowSec() - 120);
  httplib::Headers h(old.begin(), old.end());
  auto res = hooks.Post("/hooks/s", h, body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_THAT(res->body, HasSubstr("outside the allowed window of 60s"));
}

TEST_F(FrontDoorTest, RotationAcceptsBothSecrets) {
  Apply(
      "name: rot\ntriggers: {webhook: {auth: github, secrets: [GH_NEW, GH_OLD]}}\n"
      "nodes: {a: {kind: delay, duration: 1ms}}\n");
  httplib::Client hooks("127.0.0.1", port_);
  for (const char* key : {"old-secret", "new-secret"}) {
    const std::string body = std::string(R"({"signed_with":")") + key + "\"}";
    auto signed_headers = PythonSign("github", key, body, NowSec());
    httplib::Headers h(signed_headers.begin(), signed_headers.end());
    auto res = hooks.Post("/hooks/rot", h, body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 202) << key << ": " << res->body;
  }
  const std::string body = R"({"signed_with":"third"})";
  auto third = PythonSign("github", "third-secret", body, NowSec());
  httplib::Headers h(third.begin(), third.end());
  EXPECT_EQ(hooks.Post("/hooks/rot", h, body, "application/json")->status, 401);
}

}  // namespace
}  // namespace ferry
