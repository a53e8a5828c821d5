// Declarations (spec.h), the envelope, Retry-After and the request signature; the exec handler
// against real child programs (no servers needed).
#include <gtest/gtest.h>

#include "core/crypto.h"
#include "handlers/envelope.h"
#include "handlers/exec_handler.h"
#include "handlers/http_handler.h"
#include "handlers/spec.h"

namespace ferry::handlers {
namespace {

using std::chrono::milliseconds;

TEST(HandlerSpecs, ParsesExecAndHttpDeclarations) {
  auto specs = ParseHandlerSpecs(
      " resize = exec:python3  /opt/h/resize.py --fast ;charge=https://billing/x?a=1\n"
      "img.v2:thumb=exec:/bin/true");
  ASSERT_TRUE(specs) << specs.error().message;
  ASSERT_EQ(specs->size(), 3u);
  EXPECT_EQ((*specs)[0].kind, "resize");
  EXPECT_EQ((*specs)[0].type, HandlerSpec::Type::kExec);
  EXPECT_EQ((*specs)[0].argv, (std::vector<std::string>{"python3", "/opt/h/resize.py", "--fast"}));
  EXPECT_EQ((*specs)[1].type, HandlerSpec::Type::kHttp);
  EXPECT_EQ((*specs)[1].url, "https://billing/x?a=1");
  EXPECT_EQ((*specs)[2].kind, "img.v2:thumb");
  EXPECT_TRUE(ParseHandlerSpecs("")->empty());
  EXPECT_TRUE(ParseHandlerSpecs(" ; ;\n")->empty());
}

TEST(HandlerSpecs, RefusesBadDeclarationsNamingThem) {
  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"resize", "no '='"},
           {"=exec:true", "kind must be"},
           {"a b=exec:true", "kind must be"},
           {std::string(129, 'k') + "=exec:true", "kind must be"},
           {"echo=exec:true", "built in"},
           {"ferry.run=exec:true", "built in"},
           {"x=exec:   ", "names no program"},
           {"x=file:///etc/passwd", "must start with exec:"},
           {"x=http:///path", "names no host"},
           {"x=https://", "names no host"},
           {"x=exec:a;x=exec:b", "declared twice"},
           {std::string("x=exec:a\0b", 10), "NUL"},
       }) {
    auto r = ParseHandlerSpecs(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
  }
  // 128 characters is the longest kind.
  EXPECT_TRUE(ParseHandlerSpecs(std::string(128, 'k') + "=exec:true"));
}

TEST(RetryAfter, SecondsDatesAndGarbage) {
  EXPECT_EQ(ParseRetryAfter("0", 0), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("120", 0), milliseconds(120000));
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", 0), milliseconds::max());
  // 1445412480 = Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000 - 5000),
            milliseconds(5000));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000 + 5000),
            milliseconds(0));  // in the past: now
  EXPECT_FALSE(ParseRetryAfter("", 0));
  EXPECT_FALSE(ParseRetryAfter("-1", 0));
  EXPECT_FALSE(ParseRetryAfter("1.5", 0));
  EXPECT_FALSE(ParseRetryAfter("soon", 0));
  EXPECT_FALSE(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT trailing", 0));
}

TEST(HandlerSignature, IsHmacOfTimestampDotBody) {
  EXPECT_EQ(HandlerSignature("k", "1700000000", "{}"),
            "sha256=" + HmacSha256Hex("k", "1700000000.{}"));
}

TEST(HttpHandler, RefusesOtherSchemesAndShortSecrets) {
  EXPECT_FALSE(MakeHttpHandler({"ftp://x/", std::string(16, 's')}));
  EXPECT_FALSE(MakeHttpHandler({"http://x/", std::string(15, 's')}));
  EXPECT_TRUE(MakeHttpHandler({"http://x/", std::string(16, 's')}));
}

class NullEmitter : public EventEmitter {
 public:
  void Emit(const std::string& type, Json data) override {
    events.emplace_back(type, std::move(data));
  }
  std::vector<std::pair<std::string, Json>> events;
};

TaskContext Context(NullEmitter& emitter) {
  TaskContext ctx;
  ctx.id = "t1";
  ctx.kind = "k";
  ctx.queue = "q";
  ctx.attempt = 2;
  ctx.max_attempts = 3;
  ctx.epoch = 5;
  ctx.payload = Json{{"a", 1}};
  ctx.events = &emitter;
  return ctx;
}

TEST(Envelope, HasTheDocumentedFields) {
  NullEmitter e;
  TaskContext ctx = Context(e);
  Json env = TaskEnvelope(ctx);
  EXPECT_EQ(env, Json::parse(R"({"id":"t1","kind":"k","queue":"q","attempt":2,"max_attempts":3,
                                 "epoch":5,"deadline_ms":null,"payload":{"a":1}})"));
  ctx.deadline_ms = 1234;
  EXPECT_EQ(TaskEnvelope(ctx)["deadline_ms"], 1234);
}

TEST(ExecHandler, MissingProgramIsRefusedAtRegistration) {
  EXPECT_FALSE(MakeExecHandler({{"/nonexistent/prog"}}));
  EXPECT_FALSE(MakeExecHandler({{}}));
}

TEST(ExecHandler, ReadsTheEnvelopeAndWritesTheResult) {
  // sh reads the envelope on stdin and prints it back: the result is the envelope.
  auto h = MakeExecHandler({{"/bin/sh", "-c", "cat; echo '{\"type\":\"p\"}' >&3"}});
  ASSERT_TRUE(h);
  NullEmitter e;
  TaskContext ctx = Context(e);
  auto r = (*h)(ctx);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)["payload"], Json({{"a", 1}}));
  ASSERT_EQ(e.events.size(), 1u);
  EXPECT_EQ(e.events[0].first, "p");
  EXPECT_TRUE(e.events[0].second.is_null());
}

TEST(ExecHandler, ExitCodesDecideRetry) {
  NullEmitter e;
  for (auto [code, retryable] : std::vector<std::pair<int, bool>>{
           {1, true}, {64, true}, {65, false}, {66, true}, {2, true}}) {
    auto h = MakeExecHandler({{"/bin/sh", "-c", "echo failing >&2; exit " + std::to_string(code)}});
    ASSERT_TRUE(h);
    TaskContext ctx = Context(e);
    auto r = (*h)(ctx);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().retryable, retryable) << code;
    EXPECT_NE(r.error().message.find("failing"), std::string::npos) << r.error().message;
  }
}

TEST(ExecHandler, StderrLogEventsAreBounded) {
  ExecOptions o;
  o.argv = {"/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line$i >&2; done; echo null"};
  o.max_log_events = 3;
  auto h = MakeExecHandler(o);
  ASSERT_TRUE(h);
  NullEmitter e;
  TaskContext ctx = Context(e);
  ASSERT_TRUE((*h)(ctx));
  ASSERT_EQ(e.events.size(), 4u);
  EXPECT_EQ(e.events[2].second["line"], "line3");
  EXPECT_EQ(e.events[3].second["line"], "2 further stderr line(s) not recorded");
}

TEST(ExecHandler, StopEndsTheProgram) {
  auto h = MakeExecHandler({{"/bin/sh", "-c", "sleep 300"}});
  ASSERT_TRUE(h);
  NullEmitter e;
  TaskContext ctx = Context(e);
  std::stop_source stop;
  ctx.stop = stop.get_token();
  stop.request_stop();
  auto r = (*h)(ctx);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "stopped");
}

}  // namespace
}  // namespace ferry::handlers
