// Sandboxed Lua 5.4 for `lua` nodes.
//
// A script gets the base library without load/loadstring/loadfile/dofile/require/collectgarbage,
// plus string (without string.dump), table, math, utf8, coroutine, and `os` reduced to
// os.time/os.clock/os.date. No io, debug or package. Globals: `inputs`, `nodes`
// (nodes.<id>.output), `args` (the node's rendered `args:` map, {} when none), `run`, and
// `log(...)` / `print(...)`, which emit log events. The script's return value is the output.
//
// Budgets: an instruction count (checked by a count hook every 1000 VM instructions) and a
// memory limit enforced by the allocator. The hook also watches the stop token, so a cancel or a
// node timeout interrupts even a tight loop. Ferry links the C++ build of Lua, so a Lua error
// unwinds C++ destructors instead of longjmp-ing over them.
//
// Thread-safety: every call creates and destroys its own lua_State; calls may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/result.h"

namespace ferry::engine {

struct LuaLimits {
  // VM instructions a script may execute. Must be > 0.
  uint64_t max_instructions = 50'000'000;
  // Bytes the script's state may hold at once, including the standard library (~30 KiB).
  size_t max_memory_bytes = 64u << 20;
};

struct LuaProgram {
  std::string source;
  // Name in error messages ("nodes.transform.script:3: ...").
  std::string chunk_name = "script";
  // Line of the workflow file where the script's first line is (0: unknown). Errors then also
  // name the file line: "nodes.t.script:3 (workflow line 14): attempt to call a nil value".
  int file_line = 0;
};

// Compiles without running. Returns the syntax error (already mapped to the file line).
std::optional<std::string> CheckLuaSyntax(const LuaProgram& program);

struct LuaEnvironment {
  Json inputs = Json::object();
  Json nodes = Json::object();
  Json args = Json::object();
  Json run = Json::object();
  std::function<void(const std::string&)> log;  // may be empty
};

// Runs the script and converts its first return value to JSON (nothing or nil -> null).
// Errors: kInvalidArgument for script errors (syntax, runtime, unconvertible results, budgets),
// kCancelled when `stop` was requested while it ran.
Result<Json> RunLua(const LuaProgram& program, const LuaEnvironment& env, const LuaLimits& limits,
                    std::stop_token stop);

}  // namespace ferry::engine
