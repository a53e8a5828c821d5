#include "engine/lua_sandbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <thread>

namespace ferry::engine {
namespace {

using ::testing::HasSubstr;

Result<Json> RunScript(const std::string& src, LuaLimits limits = {}, LuaEnvironment env = {}) {
  return RunLua(LuaProgram{src, "s", 0}, env, limits, std::stop_token{});
}

TEST(LuaSandbox, ReturnsJsonFromGlobals) {
  LuaEnvironment env;
  env.inputs = Json{{"who", "Ada"}, {"n", 2}, {"list", {1, 2, 3}}};
  env.nodes = Json{{"a", {{"output", {{"x", 1.5}}}}}};
  env.args = Json{{"k", "v"}};
  auto r = RunScript(R"(
    local total = 0
    for _, v in ipairs(inputs.list) do total = total + v end
    return { greeting = "hi " .. inputs.who, total = total, x = nodes.a.output.x,
             k = args.k, list = {"a", "b"}, empty = {}, flag = true, none = nil }
  )",
                     {}, env);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, Json::parse(R"({"greeting": "hi Ada", "total": 6, "x": 1.5, "k": "v",
                                "list": ["a", "b"], "empty": {}, "flag": true})"));
}

// An integer Lua cannot hold is an error, not a double with other digits; INT64_MAX crosses.
TEST(LuaSandbox, InputIntegersPastInt64AreErrorsNotDoubles) {
  LuaEnvironment env;
  env.inputs = Json{{"n", std::numeric_limits<uint64_t>::max()}};
  auto r = RunScript("return inputs.n", {}, env);
  ASSERT_FALSE(r.has_value()) << r->dump();
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message, HasSubstr("input integer 18446744073709551615 is out of range"));
  env.inputs = Json{{"n", static_cast<uint64_t>(std::numeric_limits<int64_t>::max())}};
  auto edge = RunScript("return inputs.n", {}, env);
  ASSERT_TRUE(edge.has_value()) << edge.error().message;
  EXPECT_EQ(*edge, Json(std::numeric_limits<int64_t>::max()));
}

TEST(LuaSandbox, NothingReturnedIsNull) {
  auto r = RunScript("local x = 1");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->is_null());
}

TEST(LuaSandbox, DangerousLibrariesAreGone) {
  const std::vector<std::string> escapes = {
      "return io.open('/etc/passwd')",
      "return os.execute('true')",
      "return os.getenv('HOME')",
      "return os.remove('/tmp/x')",
      "return load('return 1')()",
      "return loadstring('return 1')()",
      "return dofile('/etc/passwd')",
      "return loadfile('/etc/passwd')",
      "return require('os')",
      "return debug.getinfo(1)",
      "return package.loadlib('libc.so.6', 'system')",
      "return collectgarbage('count')",
      "return string.dump(function() end)",
  };
  for (const auto& e : escapes) {
    auto r = RunScript(e);
    EXPECT_FALSE(r.has_value()) << e << " returned " << (r ? r->dump() : "");
  }
  // The clock functions remain.
  auto t =
      RunScript("return os.time() > 0 and type(os.clock()) == 'number' and #os.date('%Y') == 4");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(*t, Json(true));
}

TEST(LuaSandbox, InfiniteLoopHitsTheInstructionBudget) {
  LuaLimits limits;
  limits.max_instructions = 1'000'000;
  auto r = RunScript("while true do end", limits);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("instruction budget exceeded"));
  // pcall cannot swallow it for long: the budget is still exhausted on the next check.
  auto p =
      RunScript("for i = 1, 100 do pcall(function() while true do end end) end return 1", limits);
  ASSERT_FALSE(p.has_value());
  EXPECT_THAT(p.error().message, HasSubstr("instruction budget exceeded"));
}

TEST(LuaSandbox, MemoryBombHitsTheMemoryBudget) {
  LuaLimits limits;
  limits.max_memory_bytes = 4u << 20;
  auto r = RunScript("return string.rep('x', 1 << 30)", limits);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("memory budget exceeded"));
  auto t = RunScript("local t = {} for i = 1, 1e8 do t[i] = i end", limits);
  ASSERT_FALSE(t.has_value());
  EXPECT_THAT(t.error().message, HasSubstr("memory budget exceeded"));
}

TEST(LuaSandbox, StopTokenInterruptsATightLoop) {
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop.request_stop();
  });
  LuaLimits limits;
  limits.max_instructions = UINT64_MAX;
  auto r = RunLua(LuaProgram{"while true do end", "s", 0}, {}, limits, stop.get_token());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
}

TEST(LuaSandbox, LogAndPrintEmitLines) {
  std::vector<std::string> lines;
  LuaEnvironment env;
  env.log = [&](const std::string& l) { lines.push_back(l); };
  auto r = RunScript("log('hello', 42) print('p') return 1", {}, env);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(lines, (std::vector<std::string>{"hello\t42", "p"}));
}

TEST(LuaSandbox, RuntimeErrorsNameTheFileLine) {
  auto r = RunLua(LuaProgram{"local a = 1\nerror('boom')", "nodes.t.script", 10}, {}, {},
                  std::stop_token{});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("nodes.t.script:2 (workflow line 11): boom"));
}

TEST(LuaSandbox, UnconvertibleResultsAreErrors) {
  EXPECT_FALSE(RunScript("return function() end").has_value());
  EXPECT_FALSE(RunScript("local t = {} t.self = t return t").has_value());
  EXPECT_FALSE(RunScript("return {[{}] = 1}").has_value());
}

TEST(LuaSandbox, BytecodeIsRefused) {
  EXPECT_TRUE(CheckLuaSyntax(LuaProgram{"\x1bLua", "s", 0}).has_value());
}

TEST(LuaSandbox, SyntaxCheck) {
  EXPECT_FALSE(CheckLuaSyntax(LuaProgram{"return 1", "s", 0}).has_value());
  auto err = CheckLuaSyntax(LuaProgram{"return (", "s", 3});
  ASSERT_TRUE(err.has_value());
  EXPECT_THAT(*err, HasSubstr("s:1 (workflow line 3)"));
}

}  // namespace
}  // namespace ferry::engine
