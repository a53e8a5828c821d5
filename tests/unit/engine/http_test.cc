#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "core/json_fields.h"
#include "core/time_util.h"
#include "engine/executor.h"
#include "engine/http_client.h"
#include "engine/ingest.h"
#include "silent_server.h"

namespace ferry::engine {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(HttpRequestBuild, JsonBodiesGetAContentType) {
  Json body{{"a", 1}};
  auto r = BuildHttpRequest("POST", "http://x/", {{"X-A", "1"}}, &body);
  EXPECT_TRUE(r.has_body);
  EXPECT_EQ(r.body, R"({"a":1})");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[1],
            (std::pair<std::string, std::string>{"Content-Type", "application/json"}));
  auto own = BuildHttpRequest("POST", "http://x/", {{"content-type", "text/json"}}, &body);
  EXPECT_EQ(own.headers.size(), 1u);
  Json text = "raw text";
  auto t = BuildHttpRequest("PUT", "http://x/", {}, &text);
  EXPECT_EQ(t.body, "raw text");
  EXPECT_TRUE(t.headers.empty());
  auto none = BuildHttpRequest("GET", "http://x/", {}, nullptr);
  EXPECT_FALSE(none.has_body);
}

TEST(HttpRequestBuild, RejectsOtherSchemesAndHeaderInjection) {
  HttpRequest r;
  r.url = "file:///etc/passwd";
  EXPECT_EQ(PerformHttp(r, {}).error().code, ErrorCode::kInvalidArgument);
  r.url = "http://127.0.0.1:1/";
  r.headers = {{"X", "a\r\nInjected: yes"}};
  EXPECT_EQ(PerformHttp(r, {}).error().code, ErrorCode::kInvalidArgument);
}

TEST(HttpResponseJson, ParsesJsonBodies) {
  HttpResponse resp{
      200, {{"content-type", "application/json"}, {"x-a", "1"}, {"x-a", "2"}}, R"({"ok":true})"};
  Json j = HttpResponseToJson(resp);
  EXPECT_EQ(j["status"], Json(200));
  EXPECT_EQ(j["body"], (Json{{"ok", true}}));
  EXPECT_EQ(j["headers"]["x-a"], Json("1, 2"));
  HttpResponse text{200, {}, "plain"};
  EXPECT_EQ(HttpResponseToJson(text)["body"], Json("plain"));
}

// A real server on 127.0.0.1 with an ephemeral port.
class LocalServer {
 public:
  LocalServer() {
    server_.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      Json out{{"method", req.method},
               {"body", req.body},
               {"auth", req.get_header_value("Authorization")},
               {"ctype", req.get_header_value("Content-Type")}};
      res.set_content(out.dump(), "application/json");
    });
    server_.Get("/status/500", [](const httplib::Request&, httplib::Response& res) {
      res.status = 500;
      res.set_content("nope", "text/plain");
    });
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(1s);
      res.set_content("late", "text/plain");
    });
    server_.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(100000, 'x'), "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(HttpClient, PostsAndReadsJson) {
  LocalServer srv;
  Json body{{"a", 1}};
  auto req = BuildHttpRequest("POST", srv.Url("/echo"), {{"Authorization", "Bearer t"}}, &body);
  auto resp = PerformHttp(req, {});
  ASSERT_TRUE(resp.has_value()) << resp.error().message;
  EXPECT_EQ(resp->status, 200);
  Json j = HttpResponseToJson(*resp);
  EXPECT_EQ(j["body"]["body"], Json(R"({"a":1})"));
  EXPECT_EQ(j["body"]["auth"], Json("Bearer t"));
  EXPECT_EQ(j["body"]["ctype"], Json("application/json"));
}

TEST(HttpClient, TimeoutStopAndSizeCap) {
  LocalServer srv;
  HttpRequest slow;
  slow.url = srv.Url("/slow");
  slow.timeout = 200ms;
  EXPECT_EQ(PerformHttp(slow, {}).error().code, ErrorCode::kTimeout);

  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(100ms);
    stop.request_stop();
  });
  slow.timeout = 0ms;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(PerformHttp(slow, stop.get_token()).error().code, ErrorCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);

  HttpRequest big;
  big.url = srv.Url("/big");
  big.max_response_bytes = 1000;
  EXPECT_EQ(PerformHttp(big, {}).error().code, ErrorCode::kTooLarge);
}

// A request that may change something and whose answer is lost carries "outcome": "unknown";
// a read, or a request that never left, does not.
TEST(HttpClient, ALostAnswerToAChangeHasAnUnknownOutcome) {
  Json body{{"a", 1}};
  {
    testing::SilentServer closes(false);
    auto post = PerformHttp(BuildHttpRequest("POST", closes.Url(), {}, &body), {});
    ASSERT_FALSE(post);
    EXPECT_EQ(post.error().code, ErrorCode::kUnavailable);
    EXPECT_TRUE(OutcomeIsUnknown(post.error())) << post.error().message;
    auto get = PerformHttp(BuildHttpRequest("GET", closes.Url(), {}, nullptr), {});
    ASSERT_FALSE(get);
    EXPECT_FALSE(OutcomeIsUnknown(get.error())) << get.error().message;
    EXPECT_GE(closes.requests(), 2);
  }
  {
    testing::SilentServer holds(true);
    HttpRequest post = BuildHttpRequest("DELETE", holds.Url(), {}, nullptr);
    post.timeout = 300ms;
    auto r = PerformHttp(post, {});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
    EXPECT_TRUE(OutcomeIsUnknown(r.error()));
  }
  // Nothing listens: nothing was sent.
  int port = 0;
  {
    testing::SilentServer gone(false);
    port = gone.port();
  }
  auto refused = PerformHttp(
      BuildHttpRequest("POST", "http://127.0.0.1:" + std::to_string(port) + "/x", {}, &body), {});
  ASSERT_FALSE(refused);
  EXPECT_FALSE(OutcomeIsUnknown(refused.error())) << refused.error().message;
}

class NullSink : public RunSink {
 public:
  Status SaveStep(const std::string&, StepStatus, const Json& output, const std::string& error,
                  int) override {
    std::lock_guard lock(mu);
    saved.push_back(output);
    errors.push_back(error);
    return {};
  }
  void Emit(const std::string&, const Json&) override {}
  // Kept per node, as the store keeps a delay's deadline.
  Result<int64_t> DelayDeadline(const std::string& node, int,
                                std::chrono::milliseconds d) override {
    std::lock_guard lock(mu);
    return deadlines.try_emplace(node, WallNowMs() + d.count()).first->second;
  }
  Result<TaskNodeProgress> SubmitOrCheck(const TaskNodeRequest&) override {
    return Fail(ErrorCode::kInternal, "no tasks");
  }
  std::map<std::string, int64_t> deadlines;
  std::mutex mu;
  std::vector<Json> saved;
  std::vector<std::string> errors;
};

TEST(HttpNode, RendersTheRequestAndChecksStatus) {
  LocalServer srv;
  std::string yaml = R"(name: h
secrets: [T]
inputs: {who: string}
nodes:
  call:
    kind: http
    method: POST
    url: ")" + srv.Url("/echo") +
                     R"("
    headers: {Authorization: "Bearer {{ secrets.T }}"}
    body: {hello: "{{ inputs.who }}"}
  bad:
    kind: http
    needs: [call]
    url: ")" + srv.Url("/status/500") +
                     R"("
)";
  auto wf = IngestWorkflow(yaml);
  ASSERT_TRUE(wf.has_value()) << wf.error().message;
  MapSecretResolver secrets(std::map<std::string, std::string>{{"T", "sekrit"}});
  ExecutorOptions opts;
  opts.secrets = &secrets;
  RunExecutor ex(wf->workflow, opts);
  NullSink sink;
  RunContext ctx{"R", "h", "api", Json{{"who", "Ada"}}, Json::object()};
  auto out = ex.Run(ctx, {}, sink, {});
  EXPECT_EQ(out.kind, RunOutcome::Kind::kFailed);
  EXPECT_EQ(out.failed_node, "bad");
  EXPECT_THAT(out.error, HasSubstr("unexpected HTTP status 500"));
  ASSERT_EQ(sink.saved.size(), 2u);
  EXPECT_EQ(sink.saved[0]["body"]["body"], Json(R"({"hello":"Ada"})"));
  EXPECT_EQ(sink.saved[0]["body"]["auth"], Json("Bearer ***"));
  EXPECT_EQ(sink.saved[1]["status"], Json(500));
}

}  // namespace
}  // namespace ferry::engine
