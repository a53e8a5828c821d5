// The lua node: a script in the sandbox (engine/lua_sandbox.h) that reads inputs, earlier nodes'
// outputs and its templated args, and returns the node's output. Its syntax is checked at ingest.
// See node_kinds.h for what a kind file holds.
#include <algorithm>
#include <utility>

#include "engine/lua_sandbox.h"
#include "engine/node_kinds.h"

namespace ferry::engine {
namespace {

NodeSpec Read(NodeFields& in) {
  auto& r = in.reader;
  const std::string& path = in.path;
  LuaSpec l;
  if (const auto* s = r.Get(in.fields, "script")) {
    if (auto v = r.String(*s, path + ".script")) {
      l.script = *v;
      const YAML::Mark m = s->value.Mark();
      auto pos = static_cast<size_t>(std::max(0, m.pos));
      bool block = pos < in.source.size() && (in.source[pos] == '|' || in.source[pos] == '>');
      if (block)
        l.script_line = m.line + 2;  // content starts on the line after '|'
      else if (v->find('\n') == std::string::npos)
        l.script_line = m.line + 1;
      LuaProgram prog{*v, path + ".script", l.script_line};
      if (auto err = CheckLuaSyntax(prog)) r.Add(s->value, path + ".script", "lua: " + *err);
    }
  } else {
    r.Add(in.node, path, "missing required field 'script'");
  }
  if (const auto* a = r.Get(in.fields, "args")) {
    if (a->value.IsNull()) {
      // `args:` with nothing after it: none.
    } else if (!a->value.IsMap()) {
      r.Add(a->value, path + ".args",
            std::string("expected a map of names to values, got ") + r.KindOf(a->value));
    } else if (auto v = r.ToJson(a->value, path + ".args", 0)) {
      r.JsonSites(*v, a->value, path + ".args", in.index);
      l.args = std::move(*v);
    }
  }
  return l;
}

Json Canonical(const NodeSpec& spec) {
  const auto& s = std::get<LuaSpec>(spec);
  return Json{{"script", s.script}, {"args", s.args}};
}

NodeResult Run(const NodeSpec& spec, NodeAttempt& a) {
  const auto& l = std::get<LuaSpec>(spec);
  auto args = RenderJsonTemplates(l.args, a.scope);
  if (!args) return TemplateFail(args.error());
  LuaEnvironment env;
  env.inputs = a.root.value("inputs", Json::object());
  env.nodes = a.root.value("nodes", Json::object());
  env.run = a.root.value("run", Json::object());
  env.args = std::move(*args);
  env.log = [&a](const std::string& line) { a.log(line, nullptr, 0); };
  LuaProgram prog{l.script, "nodes." + a.node.id + ".script", l.script_line};
  auto r = RunLua(prog, env, a.options.lua, a.stop);
  if (!r) return NodeFail(r.error(), r.error().code != ErrorCode::kCancelled);
  return std::move(*r);
}

}  // namespace

const NodeKindDef& LuaNode() {
  static const NodeKindDef def{NodeKind::kLua, {"script", "args"}, Read, Canonical, Run};
  return def;
}

}  // namespace ferry::engine
