// Declarations (spec.h), the envelope, Retry-After and the request signature; the exec handler
// against real child programs (no servers needed).
#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "core/crypto.h"
#include "handlers/envelope.h"
#include "handlers/exec_handler.h"
#include "handlers/http_handler.h"
#include "handlers/register.h"
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
  EXPECT_EQ((*specs)[1].secret_env, "");
  EXPECT_EQ((*specs)[2].kind, "img.v2:thumb");
  EXPECT_TRUE(ParseHandlerSpecs("")->empty());
  auto own = ParseHandlerSpecs("charge=https://billing/x  secret-env=BILLING_KEY_2 ");
  ASSERT_TRUE(own) << own.error().message;
  EXPECT_EQ((*own)[0].url, "https://billing/x");
  EXPECT_EQ((*own)[0].secret_env, "BILLING_KEY_2");
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
           {"ferry.run=exec:true", "kinds starting with 'ferry.' are reserved"},
           {"x=exec:   ", "names no program"},
           {"x=file:///etc/passwd", "must start with exec:"},
           {"x=http:///path", "names no host"},
           {"x=https://", "names no host"},
           {"x=exec:a;x=exec:b", "declared twice"},
           {std::string("x=exec:a\0b", 10), "NUL"},
           {"x=http://h/a b", "unknown option 'b' after the URL"},
           {"x=http://h/ secret-env=", "wants an environment variable name"},
           {"x=http://h/ secret-env=9KEY", "wants an environment variable name"},
           {"x=http://h/ secret-env=KEY-1", "wants an environment variable name"},
           {"x=http://h/ secret-env=A secret-env=B", "given twice"},
           {"x=http://h/ Secret-Env=A", "unknown option"},
       }) {
    auto r = ParseHandlerSpecs(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
  }
  // 128 characters is the longest kind.
  EXPECT_TRUE(ParseHandlerSpecs(std::string(128, 'k') + "=exec:true"));
}

// Each http handler signs with its own key when it names one, else with the worker's; a kind the
// program registered in C++ may not be declared again.
TEST(RegisterExternalHandlers, SecretsPerHandlerAndNoSecondDeclaration) {
  auto specs = ParseHandlerSpecs(
      "a=http://127.0.0.1:1/ secret-env=A_KEY;b=http://127.0.0.1:1/;c=http://127.0.0.1:1/ "
      "secret-env=SHORT_KEY");
  ASSERT_TRUE(specs) << specs.error().message;
  std::map<std::string, std::string> env = {{"A_KEY", std::string(16, 'a')},
                                            {"SHORT_KEY", std::string(15, 's')}};
  ExternalHandlerOptions options;
  options.http_secret = std::string(16, 'w');
  options.env = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  // c's own key is one byte short: refused, naming the kind and the variable.
  HandlerRegistry registry;
  auto st = RegisterExternalHandlers(*specs, options, registry);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("handler 'c'"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("SHORT_KEY"), std::string::npos) << st.error().message;
  env["SHORT_KEY"] = std::string(16, 's');
  HandlerRegistry ok;
  ASSERT_TRUE(RegisterExternalHandlers(*specs, options, ok));
  EXPECT_NE(ok.Find("a"), nullptr);
  EXPECT_NE(ok.Find("c"), nullptr);
  // A named variable that is not set is an error, not a fall back to the worker's key.
  env.erase("A_KEY");
  HandlerRegistry unset;
  auto missing = RegisterExternalHandlers(*specs, options, unset);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("A_KEY is not set"), std::string::npos)
      << missing.error().message;
  // b has no key of its own and the worker has none either.
  env["A_KEY"] = std::string(16, 'a');
  options.http_secret.clear();
  HandlerRegistry nokey;
  auto none = RegisterExternalHandlers(*specs, options, nokey);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("handler 'b'"), std::string::npos) << none.error().message;
  // A kind the program already registers (a C++ handler) is not silently replaced.
  options.http_secret = std::string(16, 'w');
  HandlerRegistry cpp;
  cpp.Register("b", [](TaskContext&) -> HandlerResult { return Json(nullptr); });
  auto twice = RegisterExternalHandlers(*specs, options, cpp);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(twice.error().message.find("handler 'b': kind 'b' is already registered"),
            std::string::npos)
      << twice.error().message;
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

// Errors quote a URL with its password masked: they reach terminals, logs and task records.
TEST(HttpHandler, ErrorsMaskTheUrlsPassword) {
  auto no_secret = MakeHttpHandler({"https://user:pass@127.0.0.1:9/x?token=t", ""});
  ASSERT_FALSE(no_secret);
  EXPECT_NE(no_secret.error().message.find("https://user:****@127.0.0.1:9/x?token=****"),
            std::string::npos)
      << no_secret.error().message;
  EXPECT_EQ(no_secret.error().message.find("pass@"), std::string::npos);
  auto bad = ParseHandlerSpecs("x=https://user:pass@h/ bogus");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("'x=https://user:****@h/ bogus'"), std::string::npos)
      << bad.error().message;
  // Nothing listens on port 1: the delivery's error names the URL, masked.
  auto h = MakeHttpHandler({"http://user:pass@127.0.0.1:1/", std::string(16, 's')});
  ASSERT_TRUE(h);
  class Events : public EventEmitter {
    void Emit(const std::string&, Json) override {}
  } events;
  TaskContext ctx;
  ctx.events = &events;
  auto r = (*h)(ctx);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.rfind("http://user:****@127.0.0.1:1/: ", 0), 0u) << r.error().message;
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

// A declaration naming a program that cannot run is a usage error (exit 2), as a malformed one is.
TEST(ExecHandler, MissingProgramIsRefusedAtRegistration) {
  auto missing = MakeExecHandler({{"/nonexistent/prog"}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument) << missing.error().message;
  EXPECT_FALSE(MakeExecHandler({{}}));
  EXPECT_TRUE(MakeExecHandler({{"/bin/sh"}}));
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

// A long stderr line is one log event of its first 8 KiB saying how much was cut; an event line
// is judged by its whole length.
TEST(ExecHandler, LongLinesAreJudgedWhole) {
  const std::string x200k = "head -c 200000 /dev/zero | tr '\\0' x";
  {
    auto h = MakeExecHandler({{"/bin/sh", "-c", x200k + " >&2; echo >&2; echo null"}});
    ASSERT_TRUE(h);
    NullEmitter e;
    TaskContext ctx = Context(e);
    ASSERT_TRUE((*h)(ctx));
    ASSERT_EQ(e.events.size(), 1u);
    EXPECT_EQ(e.events[0].second["line"], std::string(8192, 'x') + " ... (191808 more bytes cut)");
  }
  {
    auto h = MakeExecHandler({{"/bin/sh", "-c", x200k + " >&3; echo null"}});
    ASSERT_TRUE(h);
    NullEmitter e;
    TaskContext ctx = Context(e);
    auto r = (*h)(ctx);
    ASSERT_FALSE(r);
    EXPECT_FALSE(r.error().retryable);
    EXPECT_NE(r.error().message.find("event line 1 is longer than 16384 bytes"), std::string::npos)
        << r.error().message;
  }
  // 80,000 bytes of one JSON event, with a limit above it: it arrives whole and is read.
  ExecOptions o;
  o.argv = {"/bin/sh", "-c",
            "printf '{\"type\":\"big\",\"data\":\"' >&3; head -c 79974 /dev/zero | tr '\\0' y >&3;"
            "printf '\"}\\n' >&3; echo null"};
  o.max_event_bytes = 100000;
  auto h = MakeExecHandler(o);
  ASSERT_TRUE(h);
  NullEmitter e;
  TaskContext ctx = Context(e);
  auto r = (*h)(ctx);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(e.events.size(), 1u);
  EXPECT_EQ(e.events[0].first, "big");
  EXPECT_EQ(e.events[0].second.get<std::string>().size(), 79974u);
}

// A stderr line of 8 KiB is one whole log event; one byte more is cut, and says so.
TEST(ExecHandler, AStderrLineIsKeptTo8KiB) {
  auto h = MakeExecHandler({{"/bin/sh", "-c",
                             "head -c 8192 /dev/zero | tr '\\0' a >&2; echo >&2; "
                             "head -c 8193 /dev/zero | tr '\\0' b >&2; echo >&2; echo null"}});
  ASSERT_TRUE(h);
  NullEmitter e;
  TaskContext ctx = Context(e);
  ASSERT_TRUE((*h)(ctx));
  ASSERT_EQ(e.events.size(), 2u);
  EXPECT_EQ(e.events[0].second["line"], std::string(8192, 'a'));
  EXPECT_EQ(e.events[1].second["line"], std::string(8192, 'b') + " ... (1 more bytes cut)");
}

// An event line is judged the moment it passes 16 KiB, newline or not: a program that writes
// one byte too many and then sleeps is stopped at once; 16,384 bytes and a newline are read.
TEST(ExecHandler, AnUnterminatedEventLineIsJudgedAsSoonAsItPassesTheLimit) {
  const std::string y16360 = "head -c 16360 /dev/zero | tr '\\0' y >&3";
  {
    auto h = MakeExecHandler({{"/bin/sh", "-c",
                               "printf '{\"type\":\"big\",\"data\":\"' >&3; " + y16360 +
                                   "; printf '\"}x' >&3; exec sleep 30"}});
    ASSERT_TRUE(h);
    NullEmitter e;
    TaskContext ctx = Context(e);
    const auto start = std::chrono::steady_clock::now();
    auto r = (*h)(ctx);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r);
    EXPECT_FALSE(r.error().retryable);
    EXPECT_NE(r.error().message.find("event line 1 is longer than 16384 bytes"), std::string::npos)
        << r.error().message;
    // Not judged when the program ends: it was stopped long before its 30 s sleep ended.
    EXPECT_LT(took, std::chrono::seconds(20));
  }
  auto h = MakeExecHandler({{"/bin/sh", "-c",
                             "printf '{\"type\":\"big\",\"data\":\"' >&3; " + y16360 +
                                 "; printf '\"}\\n' >&3; echo null"}});
  ASSERT_TRUE(h);
  NullEmitter e;
  TaskContext ctx = Context(e);
  auto r = (*h)(ctx);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(e.events.size(), 1u);
  EXPECT_EQ(e.events[0].second.get<std::string>().size(), 16360u);
}

// A program may not write the task's own events (a reader would take "succeeded" for the task's
// end): the attempt fails without retry, in any case; a near miss is the program's own type.
TEST(ExecHandler, TheTasksOwnEventTypesAreRefused) {
  for (const std::string type : {"succeeded", "Failed", "running", "cancel_requested"}) {
    auto h =
        MakeExecHandler({{"/bin/sh", "-c", "echo '{\"type\":\"" + type + "\"}' >&3; echo null"}});
    ASSERT_TRUE(h);
    NullEmitter e;
    TaskContext ctx = Context(e);
    auto r = (*h)(ctx);
    ASSERT_FALSE(r) << type;
    EXPECT_FALSE(r.error().retryable);
    EXPECT_NE(r.error().message.find("\"" + type + "\" is one of the task's own events"),
              std::string::npos)
        << r.error().message;
    EXPECT_TRUE(e.events.empty()) << type;
  }
  auto h = MakeExecHandler({{"/bin/sh", "-c", "echo '{\"type\":\"succeeded2\"}' >&3; echo null"}});
  ASSERT_TRUE(h);
  NullEmitter e;
  TaskContext ctx = Context(e);
  ASSERT_TRUE((*h)(ctx));
  ASSERT_EQ(e.events.size(), 1u);
  EXPECT_EQ(e.events[0].first, "succeeded2");
}

// The error's last 500 bytes of stderr start on a character: 1,000 bytes of "€" (3 each) cut at
// 500 would begin inside one.
TEST(ExecHandler, TheStderrTailStartsOnACharacter) {
  std::string euros;
  for (int i = 0; i < 400; ++i) euros += "\xE2\x82\xAC";
  auto h = MakeExecHandler({{"/bin/sh", "-c", "printf '%s' '" + euros + "' >&2; exit 1"}});
  ASSERT_TRUE(h);
  NullEmitter e;
  TaskContext ctx = Context(e);
  auto r = (*h)(ctx);
  ASSERT_FALSE(r);
  const std::string& m = r.error().message;
  const size_t at = m.find("...");
  ASSERT_NE(at, std::string::npos) << m;
  EXPECT_EQ(m.substr(at + 3), euros.substr(euros.size() - 498)) << "166 whole characters";
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
