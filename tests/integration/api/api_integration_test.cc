// The API over real HTTP: webhooks end to end, signature/replay/size checks, auth, errors, paging,
// live SSE with resume, readiness.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/http_util.h"
#include "api/server.h"
#include "api_fixture.h"
#include "broker/broker.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "engine/ingest.h"
#include "engine/secrets.h"
#include "harness.h"
#include "runs/handler.h"
#include "runs/recovery.h"
#include "runs/runs.h"
#include "store/sql_counters.h"
#include "store/store.h"
#include "worker/handler.h"
#include "worker/worker.h"
#include "wrapping_store_factory.h"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;

constexpr const char* kWorkflow = R"(name: hook
description: two short delays, so events arrive while it runs
triggers:
  webhook:
    methods: [POST]
    auth: hmac
    secret: HOOK
    tolerance: 5m
    max_body_bytes: 2048
nodes:
  first:
    kind: delay
    duration: 400ms
  second:
    kind: delay
    needs: [first]
    duration: 400ms
)";

constexpr const char* kPlain = R"(name: plain
nodes:
  quick:
    kind: delay
    duration: 1ms
)";

TEST_F(ApiTest, SignedWebhookRunSucceedsOnWorker) {
  StartWorker();
  Apply(kWorkflow);
  const std::string body = R"({"order":  42, "note": "raw bytes are signed"})";
  httplib::Client hooks("127.0.0.1", port_);
  auto headers = Signed(body, NowSec());
  headers.emplace("Authorization", "Bearer should-not-be-stored");
  auto res = Hook(hooks, body, headers);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  Json accepted = Json::parse(res->body);
  EXPECT_EQ(accepted["status"], "pending");
  const std::string run_id = accepted["run_id"];
  ASSERT_TRUE(Eventually([&] { return RunStatus(run_id) == "succeeded"; }, 20s))
      << RunStatus(run_id);

  // Credentials and signatures never reach the store.
  auto events = admin_->ListRunEvents(run_id, 0, 1000);
  ASSERT_TRUE(events);
  std::string all;
  for (const auto& e : *events) all += e.data;
  EXPECT_NE(all.find("raw bytes are signed"), std::string::npos);
  EXPECT_EQ(all.find("should-not-be-stored"), std::string::npos);
  EXPECT_EQ(all.find("sha256="), std::string::npos);

  // Cancelling an ended run is an illegal transition.
  auto cancel = client_->Post(("/api/v1/runs/" + run_id + "/cancel").c_str());
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 409) << cancel->body;
  EXPECT_EQ(Json::parse(cancel->body)["error"]["code"], "conflict");
}

// A webhook's sender needs no token: a failure on the server's side tells it to retry, not the
// driver's message with the store's address (the server's log has that).
TEST_F(ApiTest, AWebhookDuringAStoreOutageSaysRetryWithoutTheStoresAddress) {
  Apply(kWorkflow);
  auto down = std::make_shared<std::atomic<bool>>(false);
  class DownStore final : public testing::OwningStoreWrapper {
   public:
    DownStore(std::unique_ptr<Store> s, std::shared_ptr<std::atomic<bool>> d)
        : OwningStoreWrapper(std::move(s)), d_(std::move(d)) {}
    Result<std::optional<Workflow>> GetWorkflow(const std::string& name) override {
      if (!*d_) return OwningStoreWrapper::GetWorkflow(name);
      return Fail(ErrorCode::kUnavailable,
                  "cannot connect: connection to server at \"127.0.0.1\", port 35997 failed");
    }

   private:
    std::shared_ptr<std::atomic<bool>> d_;
  };
  testing::WrappingStoreFactory down_stores(*stores_, [down](std::unique_ptr<Store> s) {
    return std::unique_ptr<Store>(std::make_unique<DownStore>(std::move(s), down));
  });
  server_->Stop();
  server_ = StartServer([&](api::ApiServerOptions& o) { o.store_factory = &down_stores; });
  httplib::Client hooks("127.0.0.1", server_->port());
  const std::string body = R"({"a":1})";
  auto before = Hook(hooks, body, Signed(body, NowSec()));
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 202) << before->body;

  *down = true;
  const std::string again = R"({"a":2})";
  auto during = Hook(hooks, again, Signed(again, NowSec()));
  ASSERT_TRUE(during);
  EXPECT_EQ(during->status, 503) << during->body;
  EXPECT_EQ(Json::parse(during->body)["error"]["message"],
            "the server cannot reach its store or Redis just now; retry later");
  EXPECT_EQ(during->body.find("35997"), std::string::npos) << during->body;
}

TEST_F(ApiTest, WebhookRejectsBadSignaturesReplaysAndLargeBodies) {
  Apply(kWorkflow);
  httplib::Client hooks("127.0.0.1", port_);
  const std::string body = R"({"a":1})";
  auto code = [&](const httplib::Result& r) { return r ? r->status : -1; };

  EXPECT_EQ(code(Hook(hooks, body, Signed(body, NowSec(), "wrong"))), 401);
  EXPECT_EQ(code(Hook(hooks, body, Signed(body, NowSec() - 600))), 401);
  EXPECT_EQ(code(Hook(hooks, body, {})), 401);
  // Near misses of the right signature: last nibble flipped, the first 63 characters.
  {
    const std::string t = std::to_string(NowSec());
    const std::string right = HmacSha256Hex("s3cret", t + "." + body);
    std::string flipped = right;
    flipped.back() = flipped.back() == '0' ? '1' : '0';
    for (const std::string& sig : {flipped, right.substr(0, 63)}) {
      auto r =
          Hook(hooks, body, {{"X-Ferry-Timestamp", t}, {"X-Ferry-Signature", "sha256=" + sig}});
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 401) << sig;
      EXPECT_NE(r->body.find("signature does not match"), std::string::npos) << r->body;
    }
  }
  // One second past the 5 minute tolerance (whatever the server's clock reads by now, the
  // timestamp is at least 300 s and a fraction old).
  {
    auto r = Hook(hooks, body, Signed(body, NowSec() - 301));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_NE(r->body.find("outside the allowed window"), std::string::npos) << r->body;
  }
  // The signature covers the raw bytes: the same JSON re-serialised does not verify.
  EXPECT_EQ(code(Hook(hooks, R"({ "a": 1 })", Signed(body, NowSec()))), 401);
  EXPECT_EQ(code(Hook(hooks, body, Signed(body, NowSec()), "nope")), 404);
  auto get = hooks.Get("/hooks/hook");
  EXPECT_EQ(code(get), 405);

  std::string big(4096, 'x');
  EXPECT_EQ(code(Hook(hooks, big, Signed(big, NowSec()))), 413);
  // The trigger's max_body_bytes is 2048: one byte over is refused, exactly the limit is not.
  const std::string at_limit = "\"" + std::string(2046, 'y') + "\"";
  ASSERT_EQ(at_limit.size(), 2048u);
  const std::string over = at_limit + " ";
  auto r413 = Hook(hooks, over, Signed(over, NowSec()));
  ASSERT_TRUE(r413);
  EXPECT_EQ(r413->status, 413) << r413->body;
  EXPECT_NE(r413->body.find("limit of 2048 bytes"), std::string::npos) << r413->body;
  EXPECT_EQ(code(Hook(hooks, at_limit, Signed(at_limit, NowSec()))), 202);

  // Replays: rejected by this server and by a second one on the same store.
  auto headers = Signed(body, NowSec());
  auto first = Hook(hooks, body, headers);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 202) << first->body;
  auto again = Hook(hooks, body, headers);
  EXPECT_EQ(code(again), 409);
  auto second = StartServer();
  httplib::Client other("127.0.0.1", second->port());
  auto replay = Hook(other, body, headers);
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 409) << replay->body;
  EXPECT_EQ(Json::parse(replay->body)["error"]["code"], "conflict");
  // A fresh signature is fine on the second server.
  EXPECT_EQ(code(Hook(other, body, Signed(body, NowSec() + 1))), 202);
  second->Stop();
}

TEST_F(ApiTest, AuthErrorsAndPaging) {
  httplib::Client anon("127.0.0.1", port_);
  auto code = [](const httplib::Result& r) { return r ? r->status : -1; };
  EXPECT_EQ(code(anon.Get("/api/v1/workflows")), 401);
  EXPECT_EQ(code(anon.Get("/healthz")), 200);
  anon.set_bearer_token_auth("fy_not_a_token");
  EXPECT_EQ(code(anon.Get("/api/v1/workflows")), 401);

  // Revoked tokens stop working.
  const std::string secret = service::NewApiTokenSecret();
  auto tok = admin_->CreateApiToken("short-lived", Sha256Hex(secret), {"admin"});
  ASSERT_TRUE(tok);
  httplib::Client revoked("127.0.0.1", port_);
  revoked.set_bearer_token_auth(secret.c_str());
  EXPECT_EQ(code(revoked.Get("/api/v1/workflows")), 200);
  ASSERT_TRUE(admin_->RevokeApiToken(tok->id));
  // The server trusts a verified token for token_cache_ttl (1 s): the revocation shows within it.
  std::string body401;
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = revoked.Get("/api/v1/workflows");
        if (!r || r->status != 401) return false;
        body401 = r->body;
        return true;
      },
      std::chrono::seconds(10)));
  EXPECT_EQ(Json::parse(body401)["error"]["code"], "unauthenticated");

  auto bad = client_->Post("/api/v1/runs", "{\"workflow\": ", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(Json::parse(bad->body)["error"]["message"].get<std::string>().find("byte"),
            std::string::npos)
      << bad->body;
  auto invalid = client_->Post(
      "/api/v1/workflows", DumpJson(Json{{"source", "name: x\nnodes:\n  a:\n    kind: nope\n"}}),
      "application/json");
  ASSERT_TRUE(invalid);
  EXPECT_EQ(invalid->status, 400);
  EXPECT_NE(invalid->body.find("line 4"), std::string::npos) << invalid->body;
  EXPECT_EQ(code(client_->Get("/api/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV")), 404);
  EXPECT_EQ(code(client_->Get("/api/v1/nothing")), 404);
  EXPECT_EQ(code(client_->Delete("/api/v1/runs")), 405);
  std::string huge(2 << 20, ' ');
  EXPECT_EQ(code(client_->Post("/api/v1/runs", huge, "application/json")), 413);
  // The API's body limit is 1 MiB: one byte over is refused as too large; at the limit the body
  // is read and judged on its content (here: a run of a workflow that does not exist).
  const std::string at_limit =
      R"({"workflow":"nope","inputs":{"pad":")" + std::string((1 << 20) - 39, 'p') + R"("}})";
  ASSERT_EQ(at_limit.size(), size_t{1} << 20);
  EXPECT_EQ(code(client_->Post("/api/v1/runs", at_limit + " ", "application/json")), 413);
  EXPECT_EQ(code(client_->Post("/api/v1/runs", at_limit, "application/json")), 404);
  // A definition may be 1 MiB, and the apply route takes it escaped as a JSON string whatever
  // the escaping (here each two-byte character as \uXXXX: three times its size). One byte more
  // is refused by ingestion in its own words, not as a body too large.
  const std::string head = "name: big\nnodes:\n  a:\n    kind: lua\n    script: return 1\n#";
  std::string big = head;
  while (big.size() + 2 <= (size_t{1} << 20)) big += "\xc3\xa9";  // é
  while (big.size() < (size_t{1} << 20)) big += "x";
  ASSERT_EQ(big.size(), size_t{1} << 20);
  const auto escaped = [](const std::string& source) {
    return Json{{"source", source}}.dump(-1, ' ', /*ensure_ascii=*/true);
  };
  ASSERT_GT(escaped(big).size(), (size_t{3} << 20) - 1024);  // about three times the source
  auto at = client_->Post("/api/v1/workflows", escaped(big), "application/json");
  ASSERT_TRUE(at);
  EXPECT_EQ(at->status, 201) << at->body.substr(0, 300);
  auto over = client_->Post("/api/v1/workflows", escaped(big + "y"), "application/json");
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 400) << over->body.substr(0, 300);
  EXPECT_NE(over->body.find("1048576"), std::string::npos) << over->body.substr(0, 300);
  // Past what a definition can take escaped, the body is too large before it is read.
  EXPECT_EQ(code(client_->Post("/api/v1/workflows", std::string((3 << 20) + (64 << 10) + 1, ' '),
                               "application/json")),
            413);
  // A bearer token one character off is no token.
  std::string near_token = token_;
  near_token.back() = near_token.back() == '0' ? '1' : '0';
  httplib::Client near("127.0.0.1", port_);
  near.set_bearer_token_auth(near_token.c_str());
  EXPECT_EQ(code(near.Get("/api/v1/workflows")), 401);
  near.set_bearer_token_auth(token_.substr(0, token_.size() - 1).c_str());
  EXPECT_EQ(code(near.Get("/api/v1/workflows")), 401);

  Apply(kPlain);
  for (int i = 0; i < 5; ++i) {
    auto res = client_->Post("/api/v1/runs", R"({"workflow":"plain"})", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 201) << res->body;
  }
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    std::string path = "/api/v1/runs?workflow=plain&limit=2";
    if (!cursor.empty()) path += "&cursor=" + cursor;
    auto res = client_->Get(path.c_str());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    Json j = Json::parse(res->body);
    EXPECT_LE(j["runs"].size(), 2u);
    for (const auto& r : j["runs"]) seen.push_back(r["id"]);
    if (j["next_cursor"].is_null()) break;
    cursor = j["next_cursor"];
    EXPECT_FALSE(cursor.empty()) << "a cursor is null or names a place";
  }
  EXPECT_EQ(seen.size(), 5u);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
}

struct SseEvent {
  int64_t id = 0;
  std::string type;
};

// What a reader running on another thread has received so far.
struct SseProgress {
  std::atomic<bool> open{false};  // the response started (headers and the first bytes arrived)
  std::atomic<int> events{0};     // complete events parsed
};

// Reads an SSE stream to its end (or the timeout), parsing id/event lines.
std::vector<SseEvent> ReadSse(int port, const std::string& token, const std::string& run_id,
                              int64_t last_id, bool expect_end = true,
                              SseProgress* progress = nullptr) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(15, 0);
  c.set_bearer_token_auth(token.c_str());
  httplib::Headers h;
  if (last_id > 0) h.emplace("Last-Event-ID", std::to_string(last_id));
  std::vector<SseEvent> events;
  std::string buf;
  SseEvent cur;
  auto res =
      c.Get(("/api/v1/runs/" + run_id + "/events").c_str(), h, [&](const char* data, size_t n) {
        if (progress) progress->open = true;
        buf.append(data, n);
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
          std::string line = buf.substr(0, nl);
          buf.erase(0, nl + 1);
          if (line.rfind("id: ", 0) == 0) cur.id = std::stoll(line.substr(4));
          if (line.rfind("event: ", 0) == 0) cur.type = line.substr(7);
          if (line.empty() && !cur.type.empty()) {
            events.push_back(cur);
            cur = SseEvent{};
            if (progress) ++progress->events;
          }
        }
        return true;
      });
  if (expect_end) {
    EXPECT_TRUE(res);
  }
  if (res) {
    EXPECT_EQ(res->status, 200);
  }
  return events;
}

// Starts a run of `workflow` and returns its id ("" after a failure it reports). No worker runs
// in these tests, so the run stays pending and its event stream does not end by itself.
std::string StartRunOf(httplib::Client& client, const std::string& workflow) {
  auto res = client.Post("/api/v1/runs", Json{{"workflow", workflow}}.dump(), "application/json");
  if (!res || res->status != 201) {
    ADD_FAILURE() << "POST /api/v1/runs: " << (res ? res->body : "no answer");
    return "";
  }
  return Json::parse(res->body)["run"]["id"];
}

// Reads a run's event stream on a thread of its own until the stream ends (or the reader's 15 s
// read timeout passes), so that a test can act while it is open.
struct StreamReader {
  StreamReader(int port, const std::string& token, const std::string& run_id)
      : thread([this, port, token, run_id] {
          ReadSse(port, token, run_id, 0, false, &progress);
          returned = true;
        }) {}
  ~StreamReader() {
    if (thread.joinable()) thread.join();
  }
  bool Opened() {
    return Eventually([&] { return progress.open.load(); }, 10s);
  }

  SseProgress progress;
  std::atomic<bool> returned{false};
  std::thread thread;  // last: it starts once the fields above exist
};

TEST_F(ApiTest, SseDeliversEventsLiveAndResumes) {
  Apply(kWorkflow);
  auto res = client_->Post("/api/v1/runs", R"({"workflow":"hook"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  const std::string run_id = Json::parse(res->body)["run"]["id"];

  // Live: the stream is open and has delivered run.created before any worker exists, so
  // everything after it (started, nodes, finished) can only have arrived while the run ran.
  SseProgress progress;
  std::vector<SseEvent> events;
  std::thread reader([&] { events = ReadSse(port_, token_, run_id, 0, true, &progress); });
  const bool created_seen = Eventually([&] { return progress.events.load() >= 1; }, 10s);
  const size_t before_worker = static_cast<size_t>(progress.events.load());
  if (created_seen) StartWorker();
  reader.join();
  ASSERT_TRUE(created_seen) << "no event on the stream of a pending run";
  EXPECT_EQ(RunStatus(run_id), "succeeded");
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.front().type, "run.created");
  EXPECT_EQ(events.back().type, "run.finished");
  ASSERT_LT(before_worker, events.size());
  std::vector<std::string> live;
  for (size_t i = before_worker; i < events.size(); ++i) live.push_back(events[i].type);
  EXPECT_NE(std::find(live.begin(), live.end(), "run.started"), live.end());
  EXPECT_EQ(std::count(live.begin(), live.end(), "node.finished"), 2);
  for (size_t i = 1; i < events.size(); ++i) EXPECT_GT(events[i].id, events[i - 1].id);
  EXPECT_EQ(RunStatus(run_id), "succeeded");

  // The stream takes no parameter but where to resume: ?after= (the JSON pages') is refused, not
  // ignored with the whole history replayed.
  auto after = client_->Get("/api/v1/runs/" + run_id + "/events?after=2");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 400) << after->body;
  EXPECT_NE(after->body.find("unknown query parameter 'after'"), std::string::npos) << after->body;
  auto from_query = client_->Get("/api/v1/runs/" + run_id + "/events?last_event_id=abc");
  ASSERT_TRUE(from_query);
  EXPECT_EQ(from_query->status, 400) << from_query->body;
  EXPECT_NE(from_query->body.find("Last-Event-ID must be an event seq"), std::string::npos)
      << from_query->body;
  // A task's stream names the header too (it said "after must be an event id", a parameter the
  // client never sent); an id of the stream's shape is the near miss.
  auto task = client_->Post("/api/v1/tasks", R"({"kind":"noop"})", "application/json");
  ASSERT_TRUE(task);
  ASSERT_EQ(task->status, 201) << task->body;
  const std::string task_path = "/api/v1/tasks/" + Json::parse(task->body)["id"].get<std::string>();
  const std::string task_events = task_path + "/events";
  // Ended (the worker above runs it), so its stream below ends too.
  ASSERT_TRUE(Eventually(
      [&] {
        auto t = client_->Get(task_path);
        return t && t->status == 200 && Json::parse(t->body)["task"]["status"] == "succeeded";
      },
      10s));
  auto garbage = client_->Get(task_events, httplib::Headers{{"Last-Event-ID", "garbage"}});
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->status, 400) << garbage->body;
  EXPECT_NE(garbage->body.find("Last-Event-ID must be a task event id such as 1733212800000-0"),
            std::string::npos)
      << garbage->body;
  auto shaped = client_->Get(task_events + "?last_event_id=1733212800000-0");
  ASSERT_TRUE(shaped);
  EXPECT_EQ(shaped->status, 200) << shaped->body;

  // Resume: only newer events.
  const int64_t mid = events[events.size() / 2].id;
  auto rest = ReadSse(port_, token_, run_id, mid);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().id, mid + 1);
  EXPECT_EQ(rest.size(), events.size() - events.size() / 2 - 1);
}

// GET /api/v1/tasks?kind= filters on the server: the oldest tasks of a kind are found behind
// 295 newer tasks of another kind (the console used to ask for the newest 200 and filter those
// in the page), with and without a queue and a status; a kind no task can have is refused.
TEST_F(ApiTest, TaskListFiltersByKindOnTheServer) {
  Json tasks = Json::array();
  for (int i = 0; i < 300; ++i) {
    tasks.push_back({{"kind", i < 5 ? "needle" : "hay"}, {"queue", "kinds"}, {"payload", i}});
  }
  auto submitted =
      client_->Post("/api/v1/tasks/batch", DumpJson(Json{{"tasks", tasks}}), "application/json");
  ASSERT_TRUE(submitted);
  ASSERT_EQ(submitted->status, 201) << submitted->body;
  auto list = [&](const std::string& query) {
    auto r = client_->Get(("/api/v1/tasks" + query).c_str());
    EXPECT_TRUE(r && r->status == 200) << query << ": " << (r ? r->body : "no answer");
    return r && r->status == 200 ? Json::parse(r->body)["tasks"] : Json::array();
  };
  for (const std::string query : {"?queue=kinds&kind=needle&limit=200", "?kind=needle&limit=200",
                                  "?queue=kinds&status=pending&kind=needle&limit=200"}) {
    Json found = list(query);
    ASSERT_EQ(found.size(), 5u) << query;
    std::set<int> payloads;
    for (const auto& t : found) {
      EXPECT_EQ(t["kind"], "needle") << query;
      payloads.insert(t["payload"].get<int>());
    }
    EXPECT_EQ(payloads, (std::set<int>{0, 1, 2, 3, 4})) << query;
  }
  EXPECT_EQ(list("?queue=kinds&kind=hay&limit=1000").size(), 295u);
  EXPECT_EQ(list("?queue=kinds&kind=needle&limit=2").size(), 2u);
  EXPECT_TRUE(list("?queue=kinds&kind=straw").empty());
  EXPECT_TRUE(list("?queue=kinds&status=failed&kind=needle").empty());

  auto too_long = client_->Get(("/api/v1/tasks?kind=" + std::string(129, 'k')).c_str());
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->status, 400) << too_long->body;
  EXPECT_NE(too_long->body.find("task kind must be 1-128 characters"), std::string::npos)
      << too_long->body;

  // Pages: next_cursor leads on until the 5 needles were each listed once.
  std::set<int> paged;
  std::string query = "?queue=kinds&kind=needle&limit=2";
  for (int page = 0; page < 10; ++page) {
    auto r = client_->Get(("/api/v1/tasks" + query).c_str());
    ASSERT_TRUE(r && r->status == 200) << query << ": " << (r ? r->body : "no answer");
    Json body = Json::parse(r->body);
    for (const auto& t : body["tasks"]) EXPECT_TRUE(paged.insert(t["payload"].get<int>()).second);
    if (body["next_cursor"].is_null()) break;
    query = "?queue=kinds&kind=needle&limit=2&cursor=" + body["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(paged, (std::set<int>{0, 1, 2, 3, 4}));
  auto forged = client_->Get("/api/v1/tasks?cursor=kinds~1-zz");
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 400) << forged->body;
  EXPECT_NE(forged->body.find("malformed cursor"), std::string::npos) << forged->body;
  // Stream ids Redis would refuse are the client's mistake (400), not the server's (500), in the
  // dead-letter listing too.
  for (const std::string cursor :
       {"kinds~0-0", "kinds~1796646620585-ABC", "kinds~1796646620585-18446744073709551616",
        "kinds~9223372036854775807-99999999999999999999"}) {
    for (const std::string status : {"", "&status=failed"}) {
      const std::string path = "/api/v1/tasks?limit=1&cursor=" + cursor + status;
      auto r = client_->Get(path.c_str());
      ASSERT_TRUE(r) << path;
      EXPECT_EQ(r->status, 400) << path << ": " << r->body;
      EXPECT_NE(r->body.find("\"invalid_argument\""), std::string::npos) << r->body;
      EXPECT_NE(r->body.find("malformed cursor"), std::string::npos) << path << ": " << r->body;
    }
  }
}

// A queue is one the broker knows: GET for a name that is not one (a typo in a link) answers
// 404 "no queue NAME", as the delete route does, instead of an empty queue; so do its dead
// letters, and a purge or a retry that finds nothing to act on. A queue made by its first task is
// found.
TEST_F(ApiTest, AnUnknownQueueIsNotFound) {
  auto expect_missing = [&](const httplib::Result& r, const char* what) {
    ASSERT_TRUE(r) << what;
    EXPECT_EQ(r->status, 404) << what << ": " << r->body;
    Json body = Json::parse(r->body);
    EXPECT_EQ(body["error"]["code"], "not_found") << what;
    EXPECT_EQ(body["error"]["message"], "no queue nosuch") << what;
  };
  expect_missing(client_->Get("/api/v1/queues/nosuch"), "GET");
  expect_missing(client_->Get("/api/v1/queues/nosuch/dead"), "GET dead");
  expect_missing(client_->Post("/api/v1/queues/nosuch/dead/purge", "", "application/json"),
                 "purge");
  expect_missing(client_->Post("/api/v1/queues/nosuch/dead/retry", "", "application/json"),
                 "retry");
  expect_missing(client_->Post("/api/v1/queues/nosuch/delete", "", "application/json"), "delete");

  auto made =
      client_->Post("/api/v1/tasks", R"({"kind":"noop","queue":"made"})", "application/json");
  ASSERT_TRUE(made && made->status == 201);
  auto found = client_->Get("/api/v1/queues/made");
  ASSERT_TRUE(found);
  ASSERT_EQ(found->status, 200) << found->body;
  EXPECT_EQ(Json::parse(found->body)["queue"]["pending"], 1);
  auto dead = client_->Get("/api/v1/queues/made/dead");
  ASSERT_TRUE(dead);
  EXPECT_EQ(dead->status, 200) << dead->body;
  auto purged = client_->Post("/api/v1/queues/made/dead/purge", "", "application/json");
  ASSERT_TRUE(purged);
  EXPECT_EQ(purged->status, 200) << purged->body;
  auto retried = client_->Post("/api/v1/queues/made/dead/retry", "", "application/json");
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->status, 200) << retried->body;
  EXPECT_EQ(Json::parse(retried->body), (Json{{"queue", "made"}, {"retried", 0}}));
}

// While the store cannot be reached, a token verified shortly before keeps its scopes, so a
// task's submission (Redis only) goes on; a token never verified is not taken on trust.
TEST_F(ApiTest, ATaskIsSubmittedWhileTheStoreIsDownWithATokenVerifiedBefore) {
  struct Outage {
    std::atomic<bool> down{false};
    std::atomic<int> refused{0};
  };
  auto outage = std::make_shared<Outage>();
  class DownStore final : public testing::OwningStoreWrapper {
   public:
    DownStore(std::unique_ptr<Store> s, std::shared_ptr<Outage> o)
        : OwningStoreWrapper(std::move(s)), o_(std::move(o)) {}
    Result<std::optional<ApiToken>> VerifyApiToken(const std::string& hash) override {
      if (!o_->down) return OwningStoreWrapper::VerifyApiToken(hash);
      ++o_->refused;
      return Fail(ErrorCode::kUnavailable, "store unreachable");
    }

   private:
    std::shared_ptr<Outage> o_;
  };
  testing::WrappingStoreFactory down_stores(*stores_, [outage](std::unique_ptr<Store> s) {
    return std::unique_ptr<Store>(std::make_unique<DownStore>(std::move(s), outage));
  });
  const std::string never_used = service::NewApiTokenSecret();
  ASSERT_TRUE(admin_->CreateApiToken("spare", Sha256Hex(never_used), {"run"}));
  server_->Stop();
  server_ = StartServer([&](api::ApiServerOptions& o) {
    o.store_factory = &down_stores;
    o.token_cache_ttl = 1ms;
  });
  client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  client_->set_bearer_token_auth(token_.c_str());
  const std::string task = R"({"kind":"noop"})";
  auto before = client_->Post("/api/v1/tasks", task, "application/json");
  ASSERT_TRUE(before && before->status == 201) << (before ? before->body : "no answer");

  outage->down = true;
  // Until the store was asked (the cached verdict expires after 1 ms) every submission is 201.
  for (int i = 0; i < 200 && outage->refused == 0; ++i) {
    auto during = client_->Post("/api/v1/tasks", task, "application/json");
    ASSERT_TRUE(during && during->status == 201) << (during ? during->body : "no answer");
  }
  ASSERT_GT(outage->refused.load(), 0);
  auto after_asking = client_->Post("/api/v1/tasks", task, "application/json");
  ASSERT_TRUE(after_asking);
  EXPECT_EQ(after_asking->status, 201) << after_asking->body;
  // Near miss: a valid token this server never verified cannot be checked, so it is refused.
  httplib::Client stranger("127.0.0.1", server_->port());
  stranger.set_bearer_token_auth(never_used.c_str());
  auto refused = stranger.Post("/api/v1/tasks", task, "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  outage->down = false;
  server_->Stop();
  server_.reset();
}

TEST_F(ApiTest, ReadyzFollowsRedis) {
  httplib::Client anon("127.0.0.1", port_);
  auto ok = anon.Get("/readyz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  redis_->Stop();
  auto down = anon.Get("/readyz");
  redis_->Start();
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 503);
  Json j = Json::parse(down->body);
  EXPECT_EQ(j["store"], "ok");
  EXPECT_EQ(j["redis"], "unreachable");
  // The answer needs no token: it does not say where Redis is (the log does).
  EXPECT_EQ(down->body.find("127.0.0.1"), std::string::npos) << down->body;
  EXPECT_EQ(down->body.find(std::to_string(redis_->port())), std::string::npos) << down->body;
  EXPECT_TRUE(Eventually(
      [&] {
        auto again = anon.Get("/readyz");
        return again && again->status == 200;
      },
      10s));
}

// /readyz waits for Redis, and needs no token: while Redis is stalled, a burst of them takes two
// handler threads, not all of them. The rest are answered 503 at once, and /healthz is not held up.
TEST_F(ApiTest, ABurstOfReadinessProbesTakesTwoHandlerThreads) {
  ASSERT_EQ(redis_->Cli({"CLIENT", "PAUSE", "3000", "ALL"}), "OK");
  constexpr int kProbes = 6;
  std::vector<std::thread> probes;
  std::vector<int> status(kProbes, 0);
  std::vector<std::string> body(kProbes);
  for (int i = 0; i < kProbes; ++i) {
    probes.emplace_back([&, i] {
      httplib::Client anon("127.0.0.1", port_);
      anon.set_read_timeout(20, 0);
      if (auto r = anon.Get("/readyz")) {
        status[static_cast<size_t>(i)] = r->status;
        body[static_cast<size_t>(i)] = r->body;
      }
    });
  }
  httplib::Client anon("127.0.0.1", port_);
  auto health = anon.Get("/healthz");
  for (auto& t : probes) t.join();
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  int turned_away = 0;
  for (int i = 0; i < kProbes; ++i) {
    const auto& b = body[static_cast<size_t>(i)];
    if (b.find("/readyz requests are already in progress") != std::string::npos) {
      EXPECT_EQ(status[static_cast<size_t>(i)], 503) << b;
      ++turned_away;
    } else {
      EXPECT_TRUE(status[static_cast<size_t>(i)] == 200 || status[static_cast<size_t>(i)] == 503)
          << status[static_cast<size_t>(i)] << " " << b;
    }
  }
  EXPECT_EQ(turned_away, kProbes - 2);
}

// /healthz answers on the I/O thread while handler threads wait, and says "stalled" once a
// request has waited past pool_stalled_after for one (here 300 ms, with both threads held by
// readiness probes on a paused Redis); it is "ok" again once they are free.
TEST_F(ApiTest, HealthzSaysStalledOnlyOnceARequestWaitsTooLongForAThread) {
  server_->Stop();
  server_ = StartServer([](api::ApiServerOptions& o) {
    o.threads = 2;
    o.pool_stalled_after = 300ms;
  });
  port_ = server_->port();
  httplib::Client anon("127.0.0.1", port_);
  auto before = anon.Get("/healthz");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200) << before->body;
  ASSERT_EQ(redis_->Cli({"CLIENT", "PAUSE", "4000", "ALL"}), "OK");
  std::vector<std::thread> waiting;
  auto get = [&](const char* path) {
    waiting.emplace_back([this, path] {
      httplib::Client c("127.0.0.1", port_);
      c.set_read_timeout(20, 0);
      (void)c.Get(path);
    });
  };
  get("/readyz");
  get("/readyz");
  // Requests that need no Redis, one per look: those sent once both probes hold the threads wait.
  std::string body;
  const bool stalled = Eventually(
      [&] {
        if (waiting.size() < 10) get("/api/v1/openapi.json");
        auto r = anon.Get("/healthz");
        if (r) body = r->body;
        return r && r->status == 503;
      },
      10s);
  const bool recovered = Eventually(
      [&] {
        auto r = anon.Get("/healthz");
        return r && r->status == 200;
      },
      20s);
  for (auto& t : waiting) t.join();
  EXPECT_TRUE(stalled);
  // The shape docs/openapi.json gives the 503: status and error, nothing else.
  Json answer = Json::parse(body, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << body;
  EXPECT_EQ(answer.size(), 2u) << body;
  EXPECT_EQ(answer["status"], "stalled");
  EXPECT_EQ(answer["error"]["code"], "unavailable");
  EXPECT_NE(answer["error"]["message"].get<std::string>().find("for a handler thread"),
            std::string::npos)
      << body;
  EXPECT_EQ(answer["error"].size(), 2u) << body;
  EXPECT_TRUE(recovered);
}

// Authentication may be off only for `ferry dev` on a loopback address: an address literal in
// 127.0.0.0/8, ::1 or localhost, never a name that merely starts with "127.".
TEST_F(ApiTest, AuthIsOffOnlyOnALoopbackAddressLiteral) {
  const std::string refusal = "authentication can be disabled only by `ferry dev`";
  for (const auto& [host, loopback] :
       std::vector<std::pair<std::string, bool>>{{"127.0.0.1", true},
                                                 {"127.1.2.3", true},
                                                 {"localhost", true},
                                                 {"::1", true},
                                                 {"127.evil.example", false},
                                                 {"127.0.0.1.nip.io", false},
                                                 {"128.0.0.1", false},
                                                 {"0.0.0.0", false}}) {
    api::ApiServer server(OpenServerOptions(host));
    auto port = server.Start();
    const bool refused = !port && port.error().message.find(refusal) != std::string::npos;
    EXPECT_EQ(refused, !loopback) << host << ": " << (port ? "started" : port.error().message);
    server.Stop();
  }
}

// Without authentication (`ferry dev`), a browser showing another site's page must not reach
// the API: neither by a cross-site POST (text/plain needs no CORS preflight, so the browser sends
// it) nor through a name its owner pointed at 127.0.0.1 (DNS rebinding). Non-browser clients,
// which send no Origin, and the console's own same-origin requests go on.
TEST_F(ApiTest, AnOpenServerRefusesOtherSitesPagesAndForeignHostNames) {
  api::ApiServer server(OpenServerOptions("127.0.0.1"));
  auto port = server.Start();
  ASSERT_TRUE(port) << port.error().ToString();
  httplib::Client c("127.0.0.1", *port);
  const std::string self = "127.0.0.1:" + std::to_string(*port);
  const std::string body = R"({"kind":"noop","queue":"csrf"})";
  auto post = [&](const httplib::Headers& headers) {
    auto r = c.Post("/api/v1/tasks", headers, body, "text/plain");
    return r ? r->status : -1;
  };
  auto tasks_made = [&] {
    auto r = c.Get("/api/v1/tasks?queue=csrf");
    EXPECT_TRUE(r && r->status == 200);
    return r ? ParseJson(r->body).value_or(Json::object())["tasks"].size() : 0u;
  };
  EXPECT_EQ(post({{"Origin", "http://evil.example"}}), 403);
  EXPECT_EQ(post({{"Origin", "null"}}), 403);
  EXPECT_EQ(post({{"Origin", "http://127.0.0.1:" + std::to_string(*port + 1)}}), 403);
  EXPECT_EQ(post({{"Origin", "https://" + self}}), 403);
  EXPECT_EQ(tasks_made(), 0u);
  EXPECT_EQ(post({{"Origin", "http://" + self}}), 201);  // the console's own page
  EXPECT_EQ(post({}), 201);                              // curl, the CLI
  EXPECT_EQ(tasks_made(), 2u);

  for (const auto& [host, allowed] : std::vector<std::pair<std::string, bool>>{
           {self, true},
           {"localhost:" + std::to_string(*port), true},
           {"[::1]:" + std::to_string(*port), true},
           {"127.0.0.1", true},
           {"rebind.example:" + std::to_string(*port), false},
           {"127.0.0.1.nip.io:" + std::to_string(*port), false},
           {"localhost.:" + std::to_string(*port), false}}) {
    auto r = c.Get("/api/v1/workers", httplib::Headers{{"Host", host}});
    ASSERT_TRUE(r) << host;
    EXPECT_EQ(r->status, allowed ? 200 : 403) << host << ": " << r->body;
    if (!allowed) {
      EXPECT_NE(r->body.find("is not a loopback address"), std::string::npos) << r->body;
    }
  }
  server.Stop();
}

TEST_F(ApiTest, StopEndsOpenEventStreams) {
  Apply(kPlain);
  const std::string run_id = StartRunOf(*client_, "plain");
  ASSERT_FALSE(run_id.empty());
  StreamReader reader(port_, token_, run_id);
  const bool opened = reader.Opened();
  // Still open: a pending run's stream does not end by itself.
  const bool ended_early = reader.returned.load();
  auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  reader.thread.join();
  ASSERT_TRUE(opened) << "the event stream never opened";
  EXPECT_FALSE(ended_early);
  // Stop ended the stream: without it the reader would wait for its 15 s read timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

// A stream opened with a token ends once the token is revoked, as that token's new requests are
// refused: a pending run's stream would otherwise deliver its events to it for good.
TEST_F(ApiTest, RevokingATokenEndsTheStreamsItOpened) {
  Apply(kPlain);
  const std::string run_id = StartRunOf(*client_, "plain");
  ASSERT_FALSE(run_id.empty());
  const std::string secret = service::NewApiTokenSecret();
  auto tok = admin_->CreateApiToken("watcher", Sha256Hex(secret), {"read"});
  ASSERT_TRUE(tok);
  StreamReader reader(port_, secret, run_id);
  const bool opened = reader.Opened();
  const bool ended_early = reader.returned.load();
  ASSERT_TRUE(admin_->RevokeApiToken(tok->id));
  const bool ended = Eventually([&] { return reader.returned.load(); }, 10s);
  reader.thread.join();
  ASSERT_TRUE(opened) << "the event stream never opened";
  EXPECT_FALSE(ended_early) << "a pending run's stream does not end by itself";
  // Without the check the reader would still be waiting (its read timeout is 15 s).
  EXPECT_TRUE(ended);
}

TEST_F(ApiTest, EventStreamsAreCapped) {
  Apply(kPlain);
  const std::string run_id = StartRunOf(*client_, "plain");
  ASSERT_FALSE(run_id.empty());
  std::vector<std::thread> readers;
  SseProgress progress[2];
  for (int i = 0; i < 2; ++i) {  // the fixture's cap is 2
    readers.emplace_back([&, i] { ReadSse(port_, token_, run_id, 0, false, &progress[i]); });
  }
  const bool both_open =
      Eventually([&] { return progress[0].open.load() && progress[1].open.load(); }, 10s);
  if (!both_open) {
    server_->Stop();
    for (auto& t : readers) t.join();
    FAIL() << "the two allowed event streams did not open";
  }
  auto over = client_->Get(("/api/v1/runs/" + run_id + "/events").c_str());
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 503) << over->body;
  EXPECT_EQ(Json::parse(over->body)["error"]["code"], "unavailable");
  // Webhooks and API calls still get threads.
  auto list = client_->Get("/api/v1/runs");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  server_->Stop();
  for (auto& t : readers) t.join();
}

// Many signed webhooks in a row on one keep-alive connection: every one is accepted and makes its
// own pending run. (How fast: bench/run_bench, docs/benchmarks.md.)
TEST_F(ApiTest, ManyWebhooksOnOneConnectionEachMakeOneRun) {
  Apply(kWorkflow);
  httplib::Client hooks("127.0.0.1", port_);
  const int64_t ts = NowSec();
  std::vector<std::string> run_ids;
  for (int i = 0; i < 200; ++i) {
    const std::string body = "{\"i\":" + std::to_string(i) + "}";
    auto res = Hook(hooks, body, Signed(body, ts));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    run_ids.push_back(Json::parse(res->body)["run_id"]);
  }
  std::sort(run_ids.begin(), run_ids.end());
  EXPECT_EQ(std::unique(run_ids.begin(), run_ids.end()), run_ids.end());
  RunFilter f;
  f.status = ferry::RunStatus::kPending;
  f.limit = 1000;
  auto page = admin_->ListRuns(f);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_EQ(page->runs.size(), 200u);
}

// A webhook's admission reads the workflow (its trigger decides the methods and the body limit)
// and its run is started from what that read found: the version whose trigger checked the
// delivery. The delivery then costs the nonce, the run, its created event and the check that
// forgets a nonce whose run was refused, in one commit (on PostgreSQL one round trip).
TEST_F(ApiTest, AWebhookReadsItsWorkflowOnceAndRunsTheVersionThatAcceptedIt) {
  Apply(kWorkflow);
  httplib::Client hooks("127.0.0.1", port_);
  const auto deliver = [&](const std::string& body) -> Json {
    auto res = Hook(hooks, body, Signed(body, NowSec()));
    EXPECT_TRUE(res);
    if (!res) return Json();
    EXPECT_EQ(res->status, 202) << res->body;
    return Json::parse(res->body);
  };
  deliver(R"({"warm":1})");  // the server's first sight of this version (its graph is read once)
  const auto before = store_internal::ReadSqlCounters();
  const Json accepted = deliver(R"({"n":1})");
  const auto after = store_internal::ReadSqlCounters();
  EXPECT_EQ(after.statements - before.statements, 5);
  EXPECT_EQ(after.commits - before.commits, 1);
  auto run = admin_->GetRun(accepted["run_id"].get<std::string>());
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((**run).version, 1);
  // A new version is what the next delivery is admitted by and runs.
  std::string v2 = kWorkflow;
  v2.replace(v2.find("duration: 400ms"), 15, "duration: 300ms");
  Apply(v2);
  const Json next = deliver(R"({"n":2})");
  auto second = admin_->GetRun(next["run_id"].get<std::string>());
  ASSERT_TRUE(second && *second);
  EXPECT_EQ((**second).version, 2);
}

// A webhook's answer names its run only, so it goes out once the run is committed, before the
// run's task is submitted: a sender is not kept waiting on Redis. Here Redis holds every write for
// 20 s (CLIENT PAUSE), longer than the answer is waited for, and the broker's connections wait as
// long as it takes: the answer comes anyway, the run is in the store, and once Redis takes writes
// again the run's task is submitted and a worker runs it.
TEST_F(ApiTest, AWebhookIsAnsweredOnceItsRunIsCommittedNotAfterItsTaskIsSubmitted) {
  Apply(kWorkflow);
  server_.reset();  // stops it: it uses the broker factory replaced here
  broker_options_.io_timeout = 60s;
  brokers_ = MakeRedisBrokerFactory(broker_options_);
  server_ = StartServer();
  httplib::Client hooks("127.0.0.1", server_->port());
  hooks.set_read_timeout(30, 0);
  const std::string warm = R"({"warm":1})";
  auto warmed = Hook(hooks, warm, Signed(warm, NowSec()));  // opens the pools' connections
  ASSERT_TRUE(warmed);
  ASSERT_EQ(warmed->status, 202) << warmed->body;

  ASSERT_EQ(redis_->Cli({"CLIENT", "PAUSE", "20000", "WRITE"}), "OK");
  const std::string body = R"({"n":1})";
  auto answer =
      std::async(std::launch::async, [&] { return Hook(hooks, body, Signed(body, NowSec())); });
  const bool answered = answer.wait_for(10s) == std::future_status::ready;
  ASSERT_EQ(redis_->Cli({"CLIENT", "UNPAUSE"}), "OK");
  ASSERT_TRUE(answered) << "the answer waited for Redis";
  auto res = answer.get();
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  const std::string run_id = Json::parse(res->body)["run_id"];
  auto run = admin_->GetRun(run_id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((**run).status, ferry::RunStatus::kPending);

  StartWorker();
  EXPECT_TRUE(Eventually(
      [&] {
        auto r = admin_->GetRun(run_id);
        return r && *r && (**r).status == ferry::RunStatus::kSucceeded;
      },
      20s))
      << "the run's task was not submitted once Redis took writes again";
}

// Redis is away when webhooks arrive: the answer needs only the store, so each delivery is
// accepted (202) and its run committed. The first one's submission fails (a fresh server: its
// broker pool has no connection to reuse), which is recorded on the run; the next one within a
// few seconds does not try Redis at all (a hanging Redis would hold a handler thread per webhook)
// and says so. Once Redis is back the sweeper's pass enqueues both and a worker runs them.
TEST_F(ApiTest, WebhooksAcceptedWhileRedisIsAwayAreEnqueuedByTheSweeperOnceItIsBack) {
  Apply(kWorkflow);
  server_.reset();
  server_ = StartServer();
  httplib::Client hooks("127.0.0.1", server_->port());
  redis_->Stop();
  bool restarted = false;
  struct Restart {
    bool& done;
    ~Restart() {
      if (!done) redis_->Start();  // the suite's Redis, whatever fails below
    }
  } restart{restarted};
  const auto deliver = [&](const std::string& body) -> std::string {
    auto res = Hook(hooks, body, Signed(body, NowSec()));
    EXPECT_TRUE(res);
    if (!res) return "";
    EXPECT_EQ(res->status, 202) << res->body;
    if (res->status != 202) return "";
    return Json::parse(res->body).value("run_id", "");
  };
  const auto enqueue_failure = [&](const std::string& run_id) -> std::string {
    auto events = admin_->ListRunEvents(run_id, 0, 100);
    if (!events) return "";
    for (const auto& e : *events) {
      if (e.type == runs::kEventEnqueueFailed) return ParseJson(e.data).value().value("error", "?");
    }
    return "";
  };
  const std::string first = deliver(R"({"n":1})");
  ASSERT_FALSE(first.empty());
  std::string first_error;
  ASSERT_TRUE(Eventually([&] { return !(first_error = enqueue_failure(first)).empty(); }, 15s))
      << "the failed submission is not on the run";
  EXPECT_EQ(first_error.find("not tried"), std::string::npos) << first_error;
  const std::string second = deliver(R"({"n":2})");
  ASSERT_FALSE(second.empty());
  std::string second_error;
  ASSERT_TRUE(Eventually([&] { return !(second_error = enqueue_failure(second)).empty(); }, 15s));
  EXPECT_NE(second_error.find("not tried"), std::string::npos) << second_error;
  for (const auto& id : {first, second}) {
    auto run = admin_->GetRun(id);
    ASSERT_TRUE(run && *run);
    EXPECT_EQ((**run).status, ferry::RunStatus::kPending);
  }

  redis_->Start();
  restarted = true;
  auto broker = brokers_->Open();
  ASSERT_TRUE(broker) << broker.error().message;
  runs::RecoveryOptions pass;
  pass.pending_age = 0ms;
  auto report = runs::RecoverRuns(*admin_, **broker, pass);
  ASSERT_TRUE(report) << report.error().message;
  for (const auto& id : {first, second}) {
    const auto it = std::find_if(report->runs.begin(), report->runs.end(),
                                 [&](const runs::RunRecovery& r) { return r.run_id == id; });
    ASSERT_NE(it, report->runs.end()) << id;
    EXPECT_EQ(it->action, runs::RunRecovery::Action::kEnqueued) << it->detail;
  }
  StartWorker();
  EXPECT_TRUE(Eventually(
      [&] {
        for (const auto& id : {first, second}) {
          auto r = admin_->GetRun(id);
          if (!r || !*r || (**r).status != ferry::RunStatus::kSucceeded) return false;
        }
        return true;
      },
      20s));
}

}  // namespace
}  // namespace ferry
