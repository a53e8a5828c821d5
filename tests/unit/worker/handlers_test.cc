// Built-in handlers and worker option checks; no servers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "core/json.h"
#include "worker/handler.h"
#include "worker/seconds_text.h"
#include "worker/worker.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class RecordingEmitter final : public EventEmitter {
 public:
  void Emit(const std::string& type, Json data) override {
    std::lock_guard lock(mu);
    events.emplace_back(type, std::move(data));
  }
  std::mutex mu;
  std::vector<std::pair<std::string, Json>> events;
};

class BuiltinHandlers : public ::testing::Test {
 protected:
  BuiltinHandlers() { RegisterBuiltinHandlers(registry_); }

  HandlerResult Call(const std::string& kind, Json payload, std::stop_token stop = {}) {
    const Handler* h = registry_.Find(kind);
    EXPECT_NE(h, nullptr) << kind;
    if (h == nullptr) return tl::unexpected<HandlerError>(HandlerError{"missing", false});
    TaskContext ctx;
    ctx.id = "T1";
    ctx.kind = kind;
    ctx.payload = std::move(payload);
    ctx.stop = stop;
    ctx.events = &emitter_;
    return (*h)(ctx);
  }

  HandlerRegistry registry_;
  RecordingEmitter emitter_;
};

TEST_F(BuiltinHandlers, RegistersTheFiveKinds) {
  EXPECT_THAT(registry_.Kinds(), ::testing::ElementsAre("echo", "fail", "noop", "shell", "sleep"));
}

TEST_F(BuiltinHandlers, NoopAndEcho) {
  auto r = Call("noop", Json{{"x", 1}});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_null());
  Json payload = {{"a", 1}, {"b", {1, 2, "three"}}};
  r = Call("echo", payload);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, payload);
}

TEST_F(BuiltinHandlers, FailUsesMessageAndRetryable) {
  auto r = Call("fail", Json{{"message", "boom"}, {"retryable", false}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "boom");
  EXPECT_FALSE(r.error().retryable);
  r = Call("fail", Json::object());
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().retryable);
  r = Call("fail", Json{{"retryable", "yes"}});
  ASSERT_FALSE(r);
  EXPECT_FALSE(r.error().retryable);
  EXPECT_THAT(r.error().message, HasSubstr("'retryable'"));
}

TEST_F(BuiltinHandlers, SleepSleeps) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = Call("sleep", Json{{"ms", 50}});
  ASSERT_TRUE(r);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  EXPECT_EQ((*r)["slept_ms"], 50);
}

TEST_F(BuiltinHandlers, SleepStopsOnStopToken) {
  std::stop_source source;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    source.request_stop();
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = Call("sleep", Json{{"ms", 30000}}, source.get_token());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "stopped");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));  // not the 30 s
}

TEST_F(BuiltinHandlers, SleepBadPayloadNamesTheField) {
  for (Json bad : {Json::object(), Json{{"ms", "10"}}, Json{{"ms", -1}}, Json(5)}) {
    auto r = Call("sleep", bad);
    ASSERT_FALSE(r) << bad.dump();
    EXPECT_FALSE(r.error().retryable);
    EXPECT_THAT(r.error().message, ::testing::AnyOf(HasSubstr("'ms'"), HasSubstr("object")));
  }
}

TEST_F(BuiltinHandlers, ShellRunsWithoutAShellAndReturnsOutput) {
  auto r = Call("shell", Json{{"argv", {"sh", "-c", "echo \"$GREETING\" in $(pwd); echo e >&2"}},
                              {"env", {{"GREETING", "hi"}}},
                              {"cwd", "/"}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)["exit_code"], 0);
  EXPECT_EQ((*r)["stdout"], "hi in /\n");
  EXPECT_EQ((*r)["stderr"], "e\n");
  EXPECT_EQ((*r)["truncated"], false);
  EXPECT_TRUE((*r)["duration_ms"].is_number_integer());
  // Each output line is a "log" event.
  std::lock_guard lock(emitter_.mu);
  ASSERT_EQ(emitter_.events.size(), 2u);
  EXPECT_EQ(emitter_.events[0].first, "log");
}

// A line of any length is one "log" event: its first 64 KiB and how many bytes were cut.
TEST_F(BuiltinHandlers, ShellLongLineIsOneLogEventSayingHowMuchWasCut) {
  auto r =
      Call("shell",
           Json{{"argv", {"sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; echo; echo end"}}});
  ASSERT_TRUE(r) << r.error().message;
  std::lock_guard lock(emitter_.mu);
  ASSERT_EQ(emitter_.events.size(), 2u);
  EXPECT_EQ(emitter_.events[0].second["line"],
            std::string(65536, 'x') + " ... (134464 more bytes cut)");
  EXPECT_EQ(emitter_.events[1].second["line"], "end");
}

// At most 1,000 output lines are log events; one more says how many were not recorded.
TEST_F(BuiltinHandlers, ShellLogLinesAreBoundedPerAttempt) {
  auto r = Call("shell", Json{{"argv", {"seq", "1001"}}});
  ASSERT_TRUE(r) << r.error().message;
  {
    std::lock_guard lock(emitter_.mu);
    ASSERT_EQ(emitter_.events.size(), 1001u);
    EXPECT_EQ(emitter_.events[999].second["line"], "1000");
    EXPECT_EQ(emitter_.events[1000].second["line"], "1 further output line(s) not recorded");
    EXPECT_FALSE(emitter_.events[1000].second.contains("stream"));
    emitter_.events.clear();
  }
  ASSERT_TRUE(Call("shell", Json{{"argv", {"seq", "1000"}}}));
  std::lock_guard lock(emitter_.mu);
  ASSERT_EQ(emitter_.events.size(), 1000u);
  EXPECT_EQ(emitter_.events[999].second["line"], "1000");
}

TEST_F(BuiltinHandlers, ShellArgvIsNotInterpreted) {
  auto r = Call("shell", Json{{"argv", {"echo", "$(id)", ";", "|"}}});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["stdout"], "$(id) ; |\n");
}

TEST_F(BuiltinHandlers, ShellTruncates) {
  auto r =
      Call("shell", Json{{"argv", {"head", "-c", "5000", "/dev/zero"}}, {"max_output_bytes", 100}});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["stdout"].get<std::string>().size(), 100u);
  EXPECT_EQ((*r)["truncated"], true);
}

// What the worker keeps of a result (DumpResult): at most kMaxResultBytes of JSON, every string
// UTF-8. A shell result is made so: its program succeeded, and the task failed for good.
void ExpectKeepable(const Json& result) {
  EXPECT_LE(DumpJson(result).size(), kMaxResultBytes);
  EXPECT_EQ(UnkeptJsonValue(result), std::nullopt);
}

TEST_F(BuiltinHandlers, ShellOutputIsCutToFitTheResultLimit) {
  // About 0.9 MiB of stdout and 0.6 MiB of stderr, each under the capture's 1 MiB, 1.4 MiB of
  // JSON together (the trial's case: 1,377,864 bytes, refused).
  auto both = Call("shell", Json{{"argv", {"sh", "-c", "seq 1 150000; seq 1 100000 >&2"}}});
  ASSERT_TRUE(both) << both.error().message;
  ExpectKeepable(*both);
  EXPECT_EQ((*both)["truncated"], true);
  EXPECT_EQ((*both)["exit_code"], 0);
  const size_t size = DumpJson(*both).size();
  EXPECT_GT(size, kMaxResultBytes - 1024) << "cut far more than it had to";
  EXPECT_EQ((*both)["stdout"].get<std::string>().rfind("1\n2\n3\n", 0), 0u);  // the first bytes
  EXPECT_EQ((*both)["stderr"].get<std::string>().rfind("1\n2\n3\n", 0), 0u);
  // A byte that JSON writes as six (NUL: \u0000): 300,000 of them are 1.8 MB of JSON.
  auto escaped = Call("shell", Json{{"argv", {"head", "-c", "300000", "/dev/zero"}}});
  ASSERT_TRUE(escaped) << escaped.error().message;
  ExpectKeepable(*escaped);
  EXPECT_EQ((*escaped)["truncated"], true);
  EXPECT_GT(DumpJson(*escaped).size(), kMaxResultBytes - 1024);
  // The near miss: output that fits is whole, and not said cut.
  auto fits = Call("shell", Json{{"argv", {"seq", "1", "100000"}}});
  ASSERT_TRUE(fits);
  EXPECT_EQ((*fits)["truncated"], false);
  EXPECT_EQ((*fits)["stdout"].get<std::string>().size(), 588895u);  // every line of seq
}

TEST_F(BuiltinHandlers, ShellOutputThatIsNotUtf8IsShownAndKeptExactly) {
  auto r = Call("shell", Json{{"argv", {"printf", "a\\377b"}}});
  ASSERT_TRUE(r) << r.error().message;
  ExpectKeepable(*r);
  EXPECT_EQ((*r)["stdout"],
            "a\xEF\xBF\xBD"
            "b");                              // shown, as a JSON dump shows it
  EXPECT_EQ((*r)["stdout_base64"], "Yf9i");    // the exact bytes: a 0xFF b
  EXPECT_FALSE(r->contains("stderr_base64"));  // UTF-8 (empty) stderr has none
  auto text = Call("shell", Json{{"argv", {"printf", "caf\xC3\xA9"}}});
  ASSERT_TRUE(text);
  EXPECT_EQ((*text)["stdout"], "caf\xC3\xA9");
  EXPECT_FALSE(text->contains("stdout_base64"));
}

TEST_F(BuiltinHandlers, ShellNonZeroExitFailsWithCodeAndStderrTail) {
  auto r =
      Call("shell", Json{{"argv", {"sh", "-c", "echo first >&2; echo last words >&2; exit 7"}}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().retryable);
  EXPECT_THAT(r.error().message, HasSubstr("exit code 7"));
  EXPECT_THAT(r.error().message, HasSubstr("last words"));
}

TEST_F(BuiltinHandlers, ShellOwnTimeout) {
  auto r = Call("shell", Json{{"argv", {"sleep", "30"}}, {"timeout_ms", 200}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().retryable);
  EXPECT_THAT(r.error().message, HasSubstr("timed out after 0.2s"));
}

TEST_F(BuiltinHandlers, ShellStopsOnStopToken) {
  std::stop_source source;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    source.request_stop();
  });
  auto r = Call("shell", Json{{"argv", {"sleep", "30"}}}, source.get_token());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "stopped");
}

TEST_F(BuiltinHandlers, ShellProgramNotFoundIsPermanent) {
  auto r = Call("shell", Json{{"argv", {"ferry-no-such-program"}}});
  ASSERT_FALSE(r);
  EXPECT_FALSE(r.error().retryable);
  EXPECT_THAT(r.error().message, HasSubstr("ferry-no-such-program"));
}

TEST_F(BuiltinHandlers, ShellBadPayloadsNameTheField) {
  struct Case {
    Json payload;
    std::string field;
  };
  std::vector<Case> cases = {
      {Json::object(), "'argv'"},
      {Json{{"argv", Json::array()}}, "'argv'"},
      {Json{{"argv", "ls -l"}}, "'argv'"},
      {Json{{"argv", {"ls", 1}}}, "'argv'"},
      {Json{{"argv", {"ls"}}, {"env", {{"A", 1}}}}, "'env'"},
      {Json{{"argv", {"ls"}}, {"env", "A=1"}}, "'env'"},
      {Json{{"argv", {"ls"}}, {"cwd", 5}}, "'cwd'"},
      {Json{{"argv", {"ls"}}, {"timeout_ms", -5}}, "'timeout_ms'"},
      {Json{{"argv", {"ls"}}, {"timeout_ms", "5"}}, "'timeout_ms'"},
      {Json{{"argv", {"ls"}}, {"max_output_bytes", 1.5}}, "'max_output_bytes'"},
      {Json("ls"), "object"},
  };
  for (const auto& c : cases) {
    auto r = Call("shell", c.payload);
    ASSERT_FALSE(r) << c.payload.dump();
    EXPECT_FALSE(r.error().retryable) << c.payload.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.field)) << c.payload.dump();
  }
}

TEST(SecondsText, Formats) {
  EXPECT_EQ(SecondsText(std::chrono::milliseconds(2000)), "2s");
  EXPECT_EQ(SecondsText(std::chrono::milliseconds(500)), "0.5s");
  EXPECT_EQ(SecondsText(std::chrono::milliseconds(1250)), "1.25s");
}

TEST(DefaultWorkerId, HostPidRandom) {
  std::string id = DefaultWorkerId();
  EXPECT_THAT(id, HasSubstr("-" + std::to_string(::getpid()) + "-"));
  EXPECT_THAT(id.substr(id.size() - 9), MatchesRegex("-[0-9a-f]{8}"));
  EXPECT_NE(id, DefaultWorkerId());
}

TEST(MakeWorker, RejectsBadOptions) {
  HandlerRegistry registry;
  WorkerOptions o;
  o.concurrency = 0;
  auto w = MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::kInvalidArgument);
  o = WorkerOptions{};
  o.queues = {"bad queue"};
  EXPECT_FALSE(MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker)));
  o = WorkerOptions{};
  o.queues = {};
  EXPECT_FALSE(MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker)));
  o = WorkerOptions{};
  o.broker.redis_url = "http://nope";
  EXPECT_FALSE(MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker)));
  for (int nice : {-1, 20}) {
    o = WorkerOptions{};
    o.nice = nice;
    auto bad = MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker));
    ASSERT_FALSE(bad) << nice;
    EXPECT_EQ(bad.error().message, "nice must be 0-19, not " + std::to_string(nice));
  }
  o = WorkerOptions{};
  o.nice = 19;
  EXPECT_TRUE(MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker)));
  o = WorkerOptions{};
  EXPECT_FALSE(MakeWorker(o, registry, nullptr)) << "a worker needs a broker factory";
  EXPECT_TRUE(MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker)));  // no connection yet
}

TEST(MakeWorker, StartFailsClearlyWhenRedisIsUnreachable) {
  HandlerRegistry registry;
  WorkerOptions o;
  o.broker.redis_url = "redis://127.0.0.1:1";
  o.broker.io_timeout = std::chrono::milliseconds(500);
  auto w = MakeWorker(o, registry, MakeRedisBrokerFactory(o.broker));
  ASSERT_TRUE(w);
  auto st = (*w)->Start();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace ferry
