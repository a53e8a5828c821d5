#include "engine/lua_sandbox.h"

#include <cmath>
#include <cstdlib>
#include <lua.hpp>
#include <memory>
#include <string>

namespace ferry::engine {
namespace {

constexpr int kHookEvery = 1000;
// Values cross the Lua boundary as deep as ParseJson lets them in, and no deeper.
constexpr int kMaxConvertDepth = kMaxJsonDepth;

// Lives in the lua_State's extra space so the hook and the allocator can find it.
struct SandboxState {
  size_t used = 0;
  size_t limit = 0;
  bool memory_exceeded = false;
  uint64_t instructions = 0;
  uint64_t max_instructions = 0;
  bool budget_exceeded = false;
  std::stop_token stop;
  bool stopped = false;
  const std::function<void(const std::string&)>* log = nullptr;
};

void* SandboxAlloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* s = static_cast<SandboxState*>(ud);
  // When ptr is null, osize encodes the object type, not a size.
  size_t old = ptr != nullptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);  // NOLINT(cppcoreguidelines-no-malloc): lua_Alloc contract
    s->used -= old;
    return nullptr;
  }
  // Lua requires shrinking to succeed, so only growth is checked against the budget.
  if (nsize > old && s->used - old + nsize > s->limit) {
    s->memory_exceeded = true;
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);  // NOLINT(cppcoreguidelines-no-malloc)
  if (p == nullptr) return nullptr;
  s->used = s->used - old + nsize;
  return p;
}

SandboxState* StateOf(lua_State* L) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return static_cast<SandboxState*>(ud);
}

void CountHook(lua_State* L, lua_Debug* /*ar*/) {
  SandboxState* s = StateOf(L);
  s->instructions += kHookEvery;
  if (s->stop.stop_requested()) s->stopped = true;
  if (s->instructions > s->max_instructions) s->budget_exceeded = true;
  if (s->stopped || s->budget_exceeded) {
    // From now on fire on every instruction: a pcall can catch this error, but the very next
    // instruction outside it raises again, so no script can loop its way past the limit.
    lua_sethook(L, CountHook, LUA_MASKCOUNT, 1);
    luaL_error(L, s->stopped ? "stopped" : "instruction budget exceeded");
  }
}

struct LuaCloser {
  void operator()(lua_State* L) const noexcept { lua_close(L); }
};
using LuaPtr = std::unique_ptr<lua_State, LuaCloser>;

// ---- JSON <-> Lua ----------------------------------------------------------------------------

void PushJson(lua_State* L, const Json& v, int depth) {
  luaL_checkstack(L, 3, "json too deep");
  if (depth > kMaxConvertDepth) {
    luaL_error(L, "input nested too deeply");
  }
  switch (v.type()) {
    case Json::value_t::null:
      lua_pushnil(L);
      break;
    case Json::value_t::boolean:
      lua_pushboolean(L, v.get<bool>() ? 1 : 0);
      break;
    case Json::value_t::number_integer:
      lua_pushinteger(L, v.get<int64_t>());
      break;
    case Json::value_t::number_unsigned: {
      // ParseJson refuses integers past INT64_MAX; one built otherwise is refused here too, since
      // as a Lua number it would have other digits.
      auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        luaL_error(L, "input integer %s is out of range (Lua's integers are signed 64-bit)",
                   std::to_string(u).c_str());
      }
      lua_pushinteger(L, static_cast<lua_Integer>(u));
      break;
    }
    case Json::value_t::number_float:
      lua_pushnumber(L, v.get<double>());
      break;
    case Json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case Json::value_t::array: {
      lua_createtable(L, static_cast<int>(v.size()), 0);
      lua_Integer i = 1;
      for (const auto& e : v) {
        PushJson(L, e, depth + 1);
        lua_rawseti(L, -2, i++);
      }
      break;
    }
    case Json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(v.size()));
      for (auto it = v.begin(); it != v.end(); ++it) {
        lua_pushlstring(L, it.key().data(), it.key().size());
        PushJson(L, it.value(), depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    default:
      lua_pushnil(L);
      break;
  }
}

// Converts the value at `idx`. Throws a Lua error for things JSON cannot hold.
Json ToJson(lua_State* L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > kMaxConvertDepth) luaL_error(L, "result nested too deeply (or cyclic)");
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return nullptr;
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) != 0;
    case LUA_TNUMBER: {
      if (lua_isinteger(L, idx)) return static_cast<int64_t>(lua_tointeger(L, idx));
      double d = lua_tonumber(L, idx);
      if (!std::isfinite(d)) return nullptr;
      return d;
    }
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, idx, &len);
      return std::string(s, len);
    }
    case LUA_TTABLE: {
      luaL_checkstack(L, 4, "result too deep");
      // A table whose keys are exactly 1..n (n > 0) is an array; anything else an object.
      lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, idx));
      lua_Integer count = 0;
      bool all_int = true;
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        ++count;
        if (!lua_isinteger(L, -2)) all_int = false;
        lua_pop(L, 1);
      }
      if (n > 0 && all_int && count == n) {
        Json arr = Json::array();
        for (lua_Integer i = 1; i <= n; ++i) {
          lua_rawgeti(L, idx, i);
          arr.push_back(ToJson(L, -1, depth + 1));
          lua_pop(L, 1);
        }
        return arr;
      }
      Json obj = Json::object();
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        std::string key;
        if (lua_type(L, -2) == LUA_TSTRING) {
          size_t len = 0;
          const char* k = lua_tolstring(L, -2, &len);
          key.assign(k, len);
        } else if (lua_type(L, -2) == LUA_TNUMBER) {
          // Copy before converting: lua_tolstring on a key would confuse lua_next.
          lua_pushvalue(L, -2);
          key = lua_tostring(L, -1);
          lua_pop(L, 1);
        } else {
          luaL_error(L, "result has a %s key; only string and number keys convert to JSON",
                     luaL_typename(L, -2));
        }
        obj[key] = ToJson(L, -1, depth + 1);
        lua_pop(L, 1);
      }
      return obj;
    }
    default:
      luaL_error(L, "cannot convert a %s to JSON", luaL_typename(L, idx));
      return nullptr;
  }
}

int LuaLog(lua_State* L) {
  int n = lua_gettop(L);
  std::string line;
  for (int i = 1; i <= n; ++i) {
    if (i > 1) line += '\t';
    size_t len = 0;
    const char* s = luaL_tolstring(L, i, &len);
    line.append(s, len);
    lua_pop(L, 1);
  }
  SandboxState* s = StateOf(L);
  if (s->log != nullptr && *s->log) (*s->log)(line);
  return 0;
}

void OpenSandboxLibraries(lua_State* L) {
  static const luaL_Reg kLibs[] = {
      {LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
      {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
      {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_COLIBNAME, luaopen_coroutine},
  };
  for (const auto& lib : kLibs) {
    luaL_requiref(L, lib.name, lib.func, 1);
    lua_pop(L, 1);
  }
  // Everything that reaches the file system, loads code, or inspects the VM goes.
  for (const char* name :
       {"dofile", "loadfile", "load", "loadstring", "require", "collectgarbage", "print"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);

  // os: only the clock functions.
  luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
  lua_createtable(L, 0, 3);
  for (const char* f : {"time", "clock", "date"}) {
    lua_getfield(L, -2, f);
    lua_setfield(L, -2, f);
  }
  lua_setglobal(L, LUA_OSLIBNAME);
  lua_pop(L, 1);
  // Drop the full os table from package.loaded-equivalent registry slot too.
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  lua_setfield(L, -2, LUA_OSLIBNAME);
  lua_pop(L, 1);

  lua_pushcfunction(L, LuaLog);
  lua_setglobal(L, "log");
  lua_pushcfunction(L, LuaLog);
  lua_setglobal(L, "print");
}

// "[nodes.x.script]:3: msg" -> "nodes.x.script:3 (workflow line 14): msg".
std::string MapError(const std::string& message, const LuaProgram& program) {
  std::string prefix = program.chunk_name + ":";
  if (message.rfind(prefix, 0) != 0) return message;
  size_t p = prefix.size();
  size_t q = p;
  while (q < message.size() && std::isdigit(static_cast<unsigned char>(message[q]))) ++q;
  if (q == p || q >= message.size() || message[q] != ':') return message;
  if (program.file_line <= 0) return message;
  int line = std::atoi(message.substr(p, q - p).c_str());
  return message.substr(0, q) + " (workflow line " + std::to_string(program.file_line + line - 1) +
         ")" + message.substr(q);
}

struct Loaded {
  std::unique_ptr<SandboxState> state;  // declared first: lua_close (in L's deleter) uses it
  LuaPtr L;
};

// Creates a sandboxed state and compiles the program onto its stack.
Result<Loaded> Load(const LuaProgram& program, const LuaLimits& limits, std::stop_token stop,
                    const std::function<void(const std::string&)>* log) {
  auto state = std::make_unique<SandboxState>();
  state->limit = limits.max_memory_bytes;
  state->max_instructions = limits.max_instructions;
  state->stop = std::move(stop);
  state->log = log;
  LuaPtr L(lua_newstate(SandboxAlloc, state.get()));
  if (!L) return Fail(ErrorCode::kInvalidArgument, "lua: memory budget exceeded");
  // Opening libraries can hit the memory budget; run it protected.
  lua_pushcfunction(L.get(), [](lua_State* l) -> int {
    OpenSandboxLibraries(l);
    return 0;
  });
  if (lua_pcall(L.get(), 0, 0, 0) != LUA_OK) {
    return Fail(ErrorCode::kInvalidArgument, "lua: cannot open libraries (memory budget?)");
  }
  std::string chunk = "=" + program.chunk_name;
  int rc = luaL_loadbufferx(L.get(), program.source.data(), program.source.size(), chunk.c_str(),
                            "t");  // text only: precompiled bytecode can crash the VM
  if (rc != LUA_OK) {
    std::string msg = lua_tostring(L.get(), -1) != nullptr ? lua_tostring(L.get(), -1) : "error";
    if (state->memory_exceeded) msg = "memory budget exceeded";
    return Fail(ErrorCode::kInvalidArgument, MapError(msg, program));
  }
  return Loaded{std::move(state), std::move(L)};
}

}  // namespace

std::optional<std::string> CheckLuaSyntax(const LuaProgram& program) {
  LuaLimits limits;
  auto loaded = Load(program, limits, std::stop_token{}, nullptr);
  if (!loaded) return loaded.error().message;
  return std::nullopt;
}

Result<Json> RunLua(const LuaProgram& program, const LuaEnvironment& env, const LuaLimits& limits,
                    std::stop_token stop) {
  auto loaded = Load(program, limits, stop, &env.log);
  if (!loaded) return Fail(loaded.error());
  lua_State* L = loaded->L.get();
  SandboxState* s = loaded->state.get();

  // Set the globals and run the chunk inside one protected call, so that an allocation failure
  // while building `inputs` is a script error, not an escaped exception.
  struct Call {
    const LuaEnvironment* env;
    Json result;
  } call{&env, nullptr};
  lua_pushcfunction(L, [](lua_State* l) -> int {
    auto* c = static_cast<Call*>(lua_touserdata(l, 1));
    lua_remove(l, 1);  // leaves the compiled chunk alone on the stack
    PushJson(l, c->env->inputs, 0);
    lua_setglobal(l, "inputs");
    PushJson(l, c->env->nodes, 0);
    lua_setglobal(l, "nodes");
    PushJson(l, c->env->args.is_null() ? Json::object() : c->env->args, 0);
    lua_setglobal(l, "args");
    PushJson(l, c->env->run, 0);
    lua_setglobal(l, "run");
    lua_sethook(l, CountHook, LUA_MASKCOUNT, kHookEvery);
    lua_call(l, 0, 1);
    lua_sethook(l, nullptr, 0, 0);
    c->result = ToJson(l, -1, 0);
    return 0;
  });
  lua_insert(L, -2);  // [wrapper, chunk]
  lua_pushlightuserdata(L, &call);
  // Stack: wrapper, chunk, &call -> the wrapper sees (chunk, &call); reorder so &call is arg 1.
  lua_insert(L, -2);  // [wrapper, &call, chunk]
  int rc = lua_pcall(L, 2, 0, 0);
  if (rc != LUA_OK) {
    if (s->stopped) return Fail(ErrorCode::kCancelled, "lua: stopped");
    if (s->memory_exceeded) return Fail(ErrorCode::kInvalidArgument, "lua: memory budget exceeded");
    if (s->budget_exceeded) {
      return Fail(ErrorCode::kInvalidArgument, "lua: instruction budget exceeded");
    }
    const char* m = lua_tostring(L, -1);
    std::string msg = m != nullptr ? m : "error object is not a string";
    return Fail(ErrorCode::kInvalidArgument, "lua: " + MapError(msg, program));
  }
  return std::move(call.result);
}

}  // namespace ferry::engine
