// The API against its contract, docs/openapi.json, on a real stack (redis-server, SQLite, a
// worker, the metrics and alert hooks of `ferry server start`): the server registers exactly the
// documented routes, every documented operation answers (2xx) when called with real ids, and
// every answer matches its schema (the fixture's AnswerLog, checked at TearDown).
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "api/openapi.h"
#include "api_fixture.h"
#include "core/crypto.h"
#include "ops/alerts.h"
#include "ops/doctor.h"
#include "ops/metrics.h"
#include "service/scopes.h"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;

constexpr const char* kAnyHook = R"(name: anyhook
triggers:
  webhook:
    methods: [GET, POST, PUT, PATCH, DELETE]
    auth: none
nodes:
  quick:
    kind: delay
    duration: 1ms
)";

constexpr const char* kSlow = R"(name: slow
nodes:
  wait:
    kind: delay
    duration: 60s
)";

constexpr const char* kYearly = R"(name: yearly
triggers:
  cron: {schedule: "0 3 1 1 *", timezone: Europe/Paris}
nodes:
  one:
    kind: lua
    script: return 1
)";

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The documented operations, as "METHOD /template".
std::set<std::string> Documented() {
  std::set<std::string> out;
  Json doc = Json::parse(api::OpenApiDocument());
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, _] : item.items()) {
      std::string m = method;
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.insert(m + " " + path);
    }
  }
  return out;
}

class ContractTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    // Restart the server with the operations hooks `ferry server start` wires.
    server_->Stop();
    metrics_ = std::make_unique<ops::Metrics>("server");
    metrics_->EnableCluster(brokers_.get(), stores_.get());
    evaluator_ = std::make_unique<ops::AlertEvaluator>(ops::AlertThresholds{});
    api::ApiServerOptions o;
    o.port = 0;
    o.store_factory = stores_.get();
    o.broker_factory = brokers_.get();
    o.secrets = &secrets_;
    o.threads = 8;
    o.sse_poll_interval = 50ms;
    o.metrics = [this] { return metrics_->Render(); };
    o.alerts = [this](Broker& b, Store* s) { return evaluator_->EvaluateJson(b, s); };
    o.doctor = [this] {
      return Result<Json>(ops::DoctorJson(ops::RunDoctor(*brokers_, stores_.get())));
    };
    server_ = std::make_unique<api::ApiServer>(o);
    auto port = server_->Start();
    ASSERT_TRUE(port) << port.error().message;
    port_ = *port;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(10, 0);
    client_->set_bearer_token_auth(token_.c_str());
    answers_.Attach(*client_);
  }

  // Calls `method path` and records which documented operation it exercised.
  httplib::Result Call(const std::string& method, const std::string& tmpl, const std::string& path,
                       const std::string& body = "") {
    called_.insert(method + " " + tmpl);
    const char* type = "application/json";
    if (method == "GET") return client_->Get(path.c_str());
    if (method == "POST") return client_->Post(path.c_str(), body, type);
    if (method == "PUT") return client_->Put(path.c_str(), body, type);
    if (method == "PATCH") return client_->Patch(path.c_str(), body, type);
    if (method == "DELETE") return client_->Delete(path.c_str(), body, type);
    ADD_FAILURE() << "no client call for " << method;
    return httplib::Result{nullptr, httplib::Error::Unknown};
  }

  // Calls and expects a 2xx; returns the JSON body (null for other media types).
  Json Ok(const std::string& method, const std::string& tmpl, const std::string& path,
          const std::string& body = "") {
    auto res = Call(method, tmpl, path, body);
    EXPECT_TRUE(res) << method << " " << path;
    if (!res) return nullptr;
    EXPECT_GE(res->status, 200) << method << " " << path << ": " << res->body;
    EXPECT_LT(res->status, 300) << method << " " << path << ": " << res->body;
    if (res->get_header_value("Content-Type").rfind("application/json", 0) != 0) return nullptr;
    return Json::parse(res->body);
  }

  std::unique_ptr<ops::Metrics> metrics_;
  std::unique_ptr<ops::AlertEvaluator> evaluator_;
  std::set<std::string> called_;
};

TEST_F(ContractTest, TheServerRegistersExactlyTheDocumentedRoutes) {
  const std::set<std::string> documented = Documented();
  const auto list = server_->Routes();
  const std::set<std::string> registered(list.begin(), list.end());
  for (const auto& r : registered) EXPECT_TRUE(documented.count(r)) << r << " is not documented";
  for (const auto& d : documented) EXPECT_TRUE(registered.count(d)) << d << " is not served";
  EXPECT_GT(registered.size(), 30u);
}

TEST_F(ContractTest, TheServedDocumentIsTheRepositorysAndNeedsNoToken) {
  httplib::Client anonymous("127.0.0.1", port_);
  answers_.Attach(anonymous);
  auto res = anonymous.Get("/api/v1/openapi.json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->body, ReadFile(std::filesystem::path(FERRY_SOURCE_DIR) / "docs/openapi.json"));
  // It takes no query parameter, as no /api/v1 route without filters does.
  auto queried = anonymous.Get("/api/v1/openapi.json?x=1");
  ASSERT_TRUE(queried);
  EXPECT_EQ(queried->status, 400);
  EXPECT_NE(queried->body.find("unknown query parameter 'x'"), std::string::npos) << queried->body;
}

TEST_F(ContractTest, EveryDocumentedOperationAnswersWithRealData) {
  StartWorker();
  // Health and the document.
  Ok("GET", "/healthz", "/healthz");
  Ok("GET", "/readyz", "/readyz");
  Ok("GET", "/metrics", "/metrics");
  Ok("GET", "/api/v1/openapi.json", "/api/v1/openapi.json");
  Ok("GET", "/api/v1/alerts", "/api/v1/alerts");
  Json doctor = Ok("GET", "/api/v1/doctor", "/api/v1/doctor");
  EXPECT_EQ(doctor["checks"][0]["name"], "redis.reachable") << doctor.dump();
  EXPECT_EQ(doctor["checks"][0]["level"], "OK") << doctor.dump();

  // Workflows.
  Ok("POST", "/api/v1/workflows", "/api/v1/workflows", DumpJson(Json{{"source", kAnyHook}}));
  Ok("POST", "/api/v1/workflows", "/api/v1/workflows", DumpJson(Json{{"source", kAnyHook}}));
  Ok("POST", "/api/v1/workflows", "/api/v1/workflows", DumpJson(Json{{"source", kSlow}}));
  Ok("GET", "/api/v1/workflows", "/api/v1/workflows");
  Ok("GET", "/api/v1/workflows/{name}", "/api/v1/workflows/anyhook");
  Ok("GET", "/api/v1/workflows/{name}/versions", "/api/v1/workflows/anyhook/versions");
  Ok("GET", "/api/v1/workflows/{name}/versions/{version}", "/api/v1/workflows/anyhook/versions/1");

  // Webhooks: every method the trigger accepts starts a run.
  std::string hook_run;
  for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    Json started = Ok(m, "/hooks/{workflow}", "/hooks/anyhook", R"({"who":"contract"})");
    if (started.is_object()) hook_run = started["run_id"];
  }
  ASSERT_FALSE(hook_run.empty());
  ASSERT_TRUE(Eventually([&] { return RunStatus(hook_run) == "succeeded"; }, 20s));
  // HEAD starts nothing, even on a trigger that takes GET (monitors send it as a safe request).
  auto head = client_->Head("/hooks/anyhook");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 405);
  EXPECT_EQ(head->get_header_value("Allow"), "GET, POST, PUT, PATCH, DELETE");

  // Runs: one that finishes, one cancelled while it waits, then retried.
  Json created = Ok("POST", "/api/v1/runs", "/api/v1/runs", DumpJson(Json{{"workflow", "slow"}}));
  ASSERT_TRUE(created.is_object());
  const std::string slow = created["run"]["id"];
  Ok("GET", "/api/v1/runs", "/api/v1/runs?limit=5");
  Json counts = Ok("GET", "/api/v1/runs/counts", "/api/v1/runs/counts");
  int64_t sum = 0;
  for (const auto& [status, n] : counts["counts"].items()) sum += n.get<int64_t>();
  EXPECT_EQ(counts["counts"].size(), 5u) << counts.dump();
  EXPECT_EQ(counts["total"], sum);
  EXPECT_GE(sum, 2) << counts.dump();  // the hook's run and "slow"
  Ok("GET", "/api/v1/runs/{id}", "/api/v1/runs/" + hook_run);
  Ok("POST", "/api/v1/runs/{id}/cancel", "/api/v1/runs/" + slow + "/cancel");
  Json retried = Ok("POST", "/api/v1/runs/{id}/retry", "/api/v1/runs/" + slow + "/retry",
                    R"({"latest_version": true})");
  Ok("GET", "/api/v1/runs/{id}/events", "/api/v1/runs/" + hook_run + "/events");
  if (retried.is_object()) {
    Ok("POST", "/api/v1/runs/{id}/cancel",
       "/api/v1/runs/" + retried["run"]["id"].get<std::string>() + "/cancel");
  }

  // Tasks, workers, queues.
  Json one = Ok("POST", "/api/v1/tasks", "/api/v1/tasks", R"({"kind":"echo","payload":{"a":1}})");
  Ok("POST", "/api/v1/tasks", "/api/v1/tasks", R"({"kind":"noop","unique_key":"u"})");
  Ok("POST", "/api/v1/tasks", "/api/v1/tasks", R"({"kind":"noop","unique_key":"u"})");
  Json batch = Ok("POST", "/api/v1/tasks/batch", "/api/v1/tasks/batch",
                  R"({"tasks":[{"kind":"noop","delay":"1h"},{"kind":"noop","unique_key":"u"}]})");
  ASSERT_TRUE(one.is_object() && batch.is_object());
  const std::string waiting = batch["tasks"][0]["id"];
  Ok("GET", "/api/v1/tasks", "/api/v1/tasks?limit=10");
  Ok("GET", "/api/v1/tasks/{id}", "/api/v1/tasks/" + one["id"].get<std::string>());
  Ok("POST", "/api/v1/tasks/{id}/cancel", "/api/v1/tasks/" + waiting + "/cancel");
  Ok("POST", "/api/v1/tasks/{id}/retry", "/api/v1/tasks/" + waiting + "/retry");
  Ok("GET", "/api/v1/workers", "/api/v1/workers");
  Ok("GET", "/api/v1/queues", "/api/v1/queues");
  Ok("GET", "/api/v1/queues/{name}", "/api/v1/queues/default");
  Ok("GET", "/api/v1/queues/{name}/dead", "/api/v1/queues/default/dead?limit=5");
  Json purged = Ok("POST", "/api/v1/queues/{name}/dead/purge", "/api/v1/queues/default/dead/purge");
  EXPECT_EQ(purged, (Json{{"queue", "default"}, {"purged", 0}}));
  Json dead_retried =
      Ok("POST", "/api/v1/queues/{name}/dead/retry", "/api/v1/queues/default/dead/retry");
  EXPECT_EQ(dead_retried, (Json{{"queue", "default"}, {"retried", 0}}));
  // A queue no worker serves, emptied by cancelling its one task, can be deleted.
  Json spare = Ok("POST", "/api/v1/tasks", "/api/v1/tasks", R"({"kind":"noop","queue":"spare"})");
  ASSERT_TRUE(spare.is_object());
  Ok("POST", "/api/v1/tasks/{id}/cancel",
     "/api/v1/tasks/" + spare["id"].get<std::string>() + "/cancel");
  Json deleted = Ok("POST", "/api/v1/queues/{name}/delete", "/api/v1/queues/spare/delete");
  EXPECT_EQ(deleted, (Json{{"queue", "spare"}, {"deleted", true}}));
  // A task's events: the stream ends once the task has (the worker runs `echo` at once).
  ASSERT_TRUE(Eventually([&] { return TaskStatus(one["id"]) == "succeeded"; }, 20s));
  Ok("GET", "/api/v1/tasks/{id}/events",
     "/api/v1/tasks/" + one["id"].get<std::string>() + "/events");

  // The console's page and one of its files.
  Ok("GET", "/", "/");
  Ok("GET", "/assets/{file}", "/assets/app.js");

  // Cron dispatch (no cron triggers: an empty report is still the report's shape).
  Ok("POST", "/api/v1/triggers/cron/dispatch", "/api/v1/triggers/cron/dispatch");

  // Remediation: a candidate for the cancelled run, an attempt that proposed a change, then
  // dismissed and reopened.
  auto wf = admin_->GetWorkflow("slow");
  ASSERT_TRUE(wf && *wf);
  RecordRemediationRequest record;
  record.fingerprint = "contract-fingerprint";
  record.workflow_id = (**wf).id;
  record.version = 1;
  record.run_id = slow;
  record.failed_node = "wait";
  record.error = "timed out";
  record.error_normalized = "timed out";
  auto recorded = admin_->RecordRemediation(record);
  ASSERT_TRUE(recorded) << recorded.error().message;
  const std::string rid = recorded->remediation.id;
  ClaimRemediationsRequest claim;
  claim.owner = "contract";
  auto claimed = admin_->ClaimRemediations(claim);
  ASSERT_TRUE(claimed && claimed->claimed.size() == 1);
  FinishRemediationRequest finish;
  finish.id = rid;
  finish.owner = "contract";
  finish.attempt = claimed->claimed[0].attempts;
  finish.status = RemediationStatus::kFailed;
  finish.reason = "the proposal did not validate";
  finish.base_source = kSlow;
  finish.proposed_source = std::string(kSlow) + "# longer\n";
  finish.agent_ms = 1200;
  ASSERT_TRUE(admin_->FinishRemediation(finish));
  Ok("GET", "/api/v1/remediations", "/api/v1/remediations?limit=5");
  Ok("GET", "/api/v1/remediations/{id}", "/api/v1/remediations/" + rid);
  Ok("GET", "/api/v1/remediations/{id}/diff", "/api/v1/remediations/" + rid + "/diff");
  Ok("POST", "/api/v1/remediations/{id}/dismiss", "/api/v1/remediations/" + rid + "/dismiss",
     R"({"reason":"not worth it"})");
  Ok("POST", "/api/v1/remediations/{id}/reopen", "/api/v1/remediations/" + rid + "/reopen");

  // Schedules: a yearly cron trigger (it does not fire during the test), paused and resumed.
  Ok("POST", "/api/v1/workflows", "/api/v1/workflows", DumpJson(Json{{"source", kYearly}}));
  Json schedules = Ok("GET", "/api/v1/schedules", "/api/v1/schedules");
  ASSERT_TRUE(schedules.is_object());
  ASSERT_EQ(schedules["schedules"].size(), 1u) << schedules.dump();
  EXPECT_EQ(schedules["schedules"][0]["timezone"], "Europe/Paris");
  EXPECT_EQ(schedules["schedules"][0]["next_fire_times"].size(), 3u) << schedules.dump();
  Json paused = Ok("POST", "/api/v1/workflows/{name}/pause", "/api/v1/workflows/yearly/pause");
  EXPECT_EQ(paused, (Json{{"workflow", "yearly"}, {"paused", true}}));
  Ok("POST", "/api/v1/workflows/{name}/resume", "/api/v1/workflows/yearly/resume");

  // Tokens: made, listed, revoked (the fixture's token is admin).
  Json made = Ok("POST", "/api/v1/tokens", "/api/v1/tokens",
                 R"({"name":"contract","scopes":["read","secret:GITHUB_TOKEN"]})");
  ASSERT_TRUE(made.is_object());
  EXPECT_EQ(made["scopes"], (Json{"read", "secret:GITHUB_TOKEN"}));
  Json tokens = Ok("GET", "/api/v1/tokens", "/api/v1/tokens");
  EXPECT_EQ(tokens["tokens"].size(), 2u) << tokens.dump();
  EXPECT_EQ(tokens.dump().find(made["token"].get<std::string>()), std::string::npos);
  Ok("POST", "/api/v1/tokens/{id}/revoke",
     "/api/v1/tokens/" + made["id"].get<std::string>() + "/revoke");

  // Every documented operation was called above.
  for (const auto& d : Documented()) EXPECT_TRUE(called_.count(d)) << d << " was not exercised";
}

TEST_F(ContractTest, ErrorAnswersMatchTheErrorSchema) {
  // One of each error family, from routes of every resource; AnswerLog checks the shapes.
  auto expect = [&](const httplib::Result& r, int status) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
  };
  expect(client_->Get("/api/v1/nothing-here"), 404);
  expect(client_->Delete("/api/v1/tasks"), 405);
  // An id that is not one is the caller's mistake (400, named); a well-formed id of nothing is
  // missing (404). The near miss: the same id in lower case, then one character short.
  const std::string unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  for (const std::string kind : {"tasks", "runs"}) {
    for (const std::string& id :
         {std::string("nope"), std::string("01arz3ndektsv4rrffq69g5fav"), unknown.substr(1)}) {
      for (const std::string& suffix : {std::string(), std::string("/events")}) {
        auto r = client_->Get("/api/v1/" + kind + "/" + id + suffix);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << kind << "/" << id << suffix << ": " << r->body;
        EXPECT_NE(r->body.find("malformed " + kind.substr(0, kind.size() - 1) + " id '" + id + "'"),
                  std::string::npos)
            << r->body;
      }
      for (const char* verb : {"/cancel", "/retry"}) {
        auto r = client_->Post("/api/v1/" + kind + "/" + id + verb, "", "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << kind << "/" << id << verb << ": " << r->body;
      }
    }
    expect(client_->Get("/api/v1/" + kind + "/" + unknown), 404);
  }
  expect(client_->Get("/api/v1/runs?status=sideways"), 400);
  // A compressed body: 415 with the code `unsupported`, one of the schema's codes (it was not).
  expect(client_->Post("/api/v1/tasks", httplib::Headers{{"Content-Encoding", "gzip"}},
                       R"({"kind":"echo"})", "application/json"),
         415);
  // A route that reads no query parameters refuses any, as a filtering route refuses an unknown
  // one: a misspelt filter is never silently ignored.
  for (const char* path : {"/api/v1/workers?status=dead", "/api/v1/runs/counts?workflow=x",
                           "/api/v1/workflows?limit=1", "/api/v1/remediations?state=open",
                           "/api/v1/queues?queue=default&queue=x"}) {
    auto r = client_->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path << ": " << r->body;
    EXPECT_NE(r->body.find("query parameter"), std::string::npos) << path << ": " << r->body;
  }
  expect(client_->Post("/api/v1/workflows", R"({"source":"name: [broken"})", "application/json"),
         400);
  expect(client_->Post("/api/v1/tasks", R"({"kind":"noop","kinds":1})", "application/json"), 400);
  expect(client_->Post("/api/v1/tasks/batch", R"({"tasks":[{}]})", "application/json"), 400);
  expect(client_->Get("/api/v1/workflows/nope/versions/0"), 400);
  expect(client_->Get("/api/v1/remediations/nope"), 400);
  expect(client_->Post("/hooks/nope", "{}", "application/json"), 404);
  expect(client_->Post("/api/v1/workflows/nope/pause", "", "application/json"), 404);
  // A route that reads no body refuses one rather than ignore it; none, or {}, is fine.
  expect(client_->Post("/api/v1/workflows/nope/pause", " {} ", "application/json"), 404);
  for (const char* body : {R"({"bogus":1})", "not json at all", "[[[["}) {
    auto r = client_->Post("/api/v1/queues/default/dead/purge", body, "application/json");
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->status, 400) << body << ": " << r->body;
    EXPECT_NE(r->body.find("POST /api/v1/queues/default/dead/purge takes no body"),
              std::string::npos)
        << r->body;
  }
  expect(client_->Post("/api/v1/tokens", R"({"name":""})", "application/json"), 400);
  // A token id is checked as task and run ids are: malformed 400, well-formed but unknown 404.
  expect(client_->Post("/api/v1/tokens/nope/revoke", "", "application/json"), 400);
  expect(client_->Post("/api/v1/tokens/" + unknown.substr(1) + "/revoke", "", "application/json"),
         400);
  expect(client_->Post("/api/v1/tokens/" + unknown + "/revoke", "", "application/json"), 404);
  // A name `ferry token list` prints as it is: an escape sequence or a CR would paint over the
  // table; DEL too. A near miss, a name of printable non-ASCII characters, is fine.
  for (const char* name : {R"(evil\u001b[31mRED)", R"(a\rb)", R"(tab\there)", R"(del\u007f)"}) {
    auto r = client_->Post("/api/v1/tokens", std::string(R"({"name":")") + name + R"("})",
                           "application/json");
    ASSERT_TRUE(r) << name;
    EXPECT_EQ(r->status, 400) << name << ": " << r->body;
    EXPECT_NE(r->body.find("the token's name must not hold control characters"), std::string::npos)
        << r->body;
  }
  expect(client_->Post("/api/v1/tokens", R"({"name":"café ☕"})", "application/json"), 201);
  expect(client_->Post("/api/v1/tokens", R"({"name":"x","scopes":"root"})", "application/json"),
         400);
  expect(client_->Post("/api/v1/tokens", R"({"name":"x","scope":"run"})", "application/json"), 400);
  // One array element is one scope: two in one element are refused, not split; an empty one is
  // named as empty (it said "give at least one scope" beside a scope given).
  for (const auto& [scopes, says] : std::vector<std::pair<std::string, std::string>>{
           {R"(["read,run"])", "scopes[0] 'read,run' is not one scope name: give each its own"},
           {R"(["read",""])", "scopes[1] is empty: name a scope or drop it"},
           {R"(["secret:a b"])", "scopes[0] 'secret:a b' is not one scope name"},
           {R"(["read",7])", "scopes[1] must be a string"},
           {R"(["root"])", "scopes[0]: unknown scope 'root'"},
           {R"([])", "scopes: give at least one scope"}}) {
    auto r = client_->Post("/api/v1/tokens", R"({"name":"x","scopes":)" + scopes + "}",
                           "application/json");
    ASSERT_TRUE(r) << scopes;
    EXPECT_EQ(r->status, 400) << scopes << ": " << r->body;
    EXPECT_NE(r->body.find(says), std::string::npos) << scopes << ": " << r->body;
  }
  expect(client_->Post("/api/v1/tokens", R"({"name":"x","scopes":["read","secret:a_b"]})",
                       "application/json"),
         201);  // the near miss
  // Tokens are for admin tokens only: one level below is refused.
  const std::string apply_secret = service::NewApiTokenSecret();
  ASSERT_TRUE(admin_->CreateApiToken("apply-only", Sha256Hex(apply_secret), {"apply"}));
  httplib::Client applier("127.0.0.1", port_);
  answers_.Attach(applier);
  applier.set_bearer_token_auth(apply_secret.c_str());
  expect(applier.Get("/api/v1/tokens"), 403);
  expect(applier.Get("/api/v1/doctor"), 403);
  expect(applier.Post("/api/v1/tokens", R"({"name":"mine","scopes":"admin"})", "application/json"),
         403);
  httplib::Client anonymous("127.0.0.1", port_);
  answers_.Attach(anonymous);
  expect(anonymous.Get("/api/v1/tasks"), 401);
}

}  // namespace
}  // namespace ferry
