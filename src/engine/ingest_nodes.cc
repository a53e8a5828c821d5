// Ingest: nodes, as a list or a mapping by id, and each node kind's fields. The kind is read
// first because it decides which other fields a node may have.
#include <algorithm>
#include <cctype>
#include <regex>

#include "engine/ingest_internal.h"
#include "engine/lua_sandbox.h"

namespace ferry::engine::ingest_internal {
namespace {

constexpr size_t kMaxNodes = 1000;

const std::regex& NodeIdRe() {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_-]{0,63}");
  return re;
}

}  // namespace

void Ingester::ReadNodes(const Field& f) {
  if (f.value.IsMap()) {
    for (const auto& kv : f.value) {
      if (!kv.first.IsScalar()) {
        Add(kv.first, "nodes", "node ids must be strings");
        continue;
      }
      ReadNode(kv.second, kv.first.Scalar(), kv.first);
    }
  } else if (f.value.IsSequence()) {
    size_t i = 0;
    for (const auto& n : f.value) ReadNode(n, std::nullopt, n, i++);
  } else {
    Add(f.value.IsNull() ? f.key : f.value, "nodes",
        std::string("expected a list or mapping of nodes, got ") + KindOf(f.value));
    return;
  }
  if (wf_.nodes.empty() && node_marks_.empty())
    Add(f.key, "nodes", "a workflow needs at least one node");
  if (wf_.nodes.size() > kMaxNodes) Add(f.key, "nodes", "more than 1000 nodes");
}

void Ingester::ReadNode(const YAML::Node& n, std::optional<std::string> map_id,
                        const YAML::Node& at, size_t index) {
  std::string path = map_id ? "nodes." + *map_id : "nodes[" + std::to_string(index) + "]";
  if (!ExpectMap(n, path)) return;

  static const std::vector<std::string> kCommon = {"id",    "kind",    "needs",      "when",
                                                   "retry", "timeout", "description"};
  static const std::vector<std::pair<NodeKind, std::vector<std::string>>> kKindFields = {
      {NodeKind::kShell, {"argv", "env", "cwd", "stdin"}},
      {NodeKind::kHttp, {"method", "url", "headers", "body", "expect_status"}},
      {NodeKind::kLua, {"script", "args"}},
      {NodeKind::kDelay, {"duration"}},
      {NodeKind::kFail, {"message"}},
      {NodeKind::kTask, {"task"}},
  };
  // Kind first: it decides which other fields are allowed.
  std::optional<NodeKind> kind;
  std::optional<YAML::Node> kind_node;  // a default YAML::Node is a defined null: use optional
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) continue;
    if (kv.first.Scalar() == "kind") kind_node = kv.second;
    // Name list-form nodes by id in every message, not by position.
    if (kv.first.Scalar() == "id" && !map_id && kv.second.IsScalar() &&
        std::regex_match(kv.second.Scalar(), NodeIdRe())) {
      path = "nodes." + kv.second.Scalar();
    }
  }
  const std::vector<std::pair<std::string, NodeKind>> kKinds = {
      {"shell", NodeKind::kShell}, {"http", NodeKind::kHttp}, {"lua", NodeKind::kLua},
      {"delay", NodeKind::kDelay}, {"fail", NodeKind::kFail}, {"task", NodeKind::kTask}};
  if (kind_node) {
    kind = Enum(Field{*kind_node, *kind_node}, path + ".kind", kKinds);
  } else {
    Add(at, path, "missing required field 'kind' (shell, http, lua, delay, fail or task)");
  }
  std::vector<std::string> allowed = kCommon;
  std::unordered_map<std::string, std::string> foreign;
  for (const auto& [k, names] : kKindFields) {
    for (const auto& name : names) {
      if (kind && k == *kind) {
        allowed.push_back(name);
      } else if (kind && foreign.count(name) == 0) {
        foreign[name] = "'" + name + "' belongs to " + std::string(NodeKindName(k)) +
                        " nodes, this one is " + std::string(NodeKindName(*kind));
      }
    }
  }
  if (!kind) {  // unknown kind: accept every kind's fields so only the kind is reported
    for (const auto& [k, names] : kKindFields)
      allowed.insert(allowed.end(), names.begin(), names.end());
  }
  auto fs = Fields(n, path, allowed, foreign);

  NodeDef node;
  node.line = at.Mark().line + 1;
  if (const Field* id = Get(fs, "id")) {
    if (auto s = String(*id, path + ".id")) {
      if (map_id && *s != *map_id) {
        Add(id->value, path + ".id", "id '" + *s + "' differs from its key '" + *map_id + "'");
      }
      node.id = *s;
    }
  } else if (map_id) {
    node.id = *map_id;
  } else {
    Add(n, path, "missing required field 'id'");
  }
  if (!node.id.empty()) {
    if (!std::regex_match(node.id, NodeIdRe())) {
      Add(at, path, "bad node id '" + node.id + "': use [A-Za-z_][A-Za-z0-9_-]{0,63}");
    }
    if (!map_id) path = "nodes." + node.id;
    if (node_marks_.count(node.id) != 0) {
      Add(at, path,
          "duplicate node id '" + node.id + "' (first defined on line " +
              std::to_string(node_marks_[node.id].line + 1) + ")");
      return;
    }
    node_marks_[node.id] = at.Mark();
  }
  int idx = static_cast<int>(wf_.nodes.size());

  if (const Field* nd = Get(fs, "needs")) {
    if (!nd->value.IsNull()) {
      if (auto list = StringList(*nd, path + ".needs", true)) {
        for (auto& [name, mark_node] : *list) {
          if (std::find(node.needs.begin(), node.needs.end(), name) != node.needs.end()) {
            Add(mark_node, path + ".needs", "'" + name + "' listed twice");
            continue;
          }
          node.needs.push_back(name);
          needs_marks_[node.id + "\n" + name] = mark_node.Mark();
        }
      }
    }
  }
  if (const Field* w = Get(fs, "when")) {
    if (auto s = String(*w, path + ".when")) {
      node.when = *s;
      Site(*s, w->value.Mark(), path + ".when", idx, true);
    }
  }
  node.retry = wf_.default_retry;
  if (const Field* r = Get(fs, "retry")) {
    if (auto p = ReadRetry(*r, path + ".retry", wf_.default_retry)) node.retry = *p;
  }
  node.timeout = wf_.default_timeout;
  if (const Field* t = Get(fs, "timeout")) {
    if (auto d = Duration(*t, path + ".timeout")) node.timeout = *d;
  }
  if (const Field* d = Get(fs, "description")) String(*d, path + ".description");

  if (kind) {
    node.kind = *kind;
    switch (*kind) {
      case NodeKind::kShell:
        node.spec = ReadShell(fs, n, path, idx);
        break;
      case NodeKind::kHttp:
        node.spec = ReadHttp(fs, n, path, idx);
        break;
      case NodeKind::kLua:
        node.spec = ReadLua(fs, n, path, idx);
        break;
      case NodeKind::kDelay:
        node.spec = ReadDelay(fs, n, path);
        break;
      case NodeKind::kFail:
        node.spec = ReadFail(fs, n, path, idx);
        break;
      case NodeKind::kTask:
        node.spec = ReadTask(fs, n, path, idx);
        break;
    }
  }
  wf_.nodes.push_back(std::move(node));
}

ShellSpec Ingester::ReadShell(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
                              const std::string& path, int idx) {
  ShellSpec s;
  if (const Field* a = Get(fs, "argv")) {
    if (auto list = StringList(*a, path + ".argv", false)) {
      size_t i = 0;
      for (auto& [text, node] : *list) {
        Site(text, node.Mark(), path + ".argv[" + std::to_string(i++) + "]", idx);
        s.argv.push_back(text);
      }
      if (s.argv.empty())
        Add(a->value, path + ".argv", "argv needs at least the program");
      else if (s.argv[0].empty())
        Add(a->value, path + ".argv", "argv[0] is empty");
    }
  } else {
    Add(n, path,
        "missing required field 'argv' (a list: program, then arguments; no shell "
        "is involved)");
  }
  if (const Field* e = Get(fs, "env")) {
    if (auto m = StringMap(*e, path + ".env", idx)) s.env = std::move(*m);
  }
  if (const Field* c = Get(fs, "cwd")) {
    if (auto v = String(*c, path + ".cwd")) {
      s.cwd = *v;
      Site(*v, c->value.Mark(), path + ".cwd", idx);
    }
  }
  if (const Field* c = Get(fs, "stdin")) {
    if (auto v = String(*c, path + ".stdin")) {
      s.stdin_data = *v;
      Site(*v, c->value.Mark(), path + ".stdin", idx);
    }
  }
  return s;
}

HttpSpec Ingester::ReadHttp(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
                            const std::string& path, int idx) {
  HttpSpec h;
  if (const Field* m = Get(fs, "method")) {
    if (auto v = String(*m, path + ".method")) {
      std::string up = *v;
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      static const std::vector<std::string> kMethods = {"GET",    "POST", "PUT",    "PATCH",
                                                        "DELETE", "HEAD", "OPTIONS"};
      if (std::find(kMethods.begin(), kMethods.end(), up) == kMethods.end()) {
        Add(m->value, path + ".method", "unsupported method '" + *v + "'");
      }
      h.method = up;
    }
  }
  if (const Field* u = Get(fs, "url")) {
    if (auto v = String(*u, path + ".url")) {
      h.url = *v;
      Site(*v, u->value.Mark(), path + ".url", idx);
      if (v->find("{{") == std::string::npos && v->rfind("http://", 0) != 0 &&
          v->rfind("https://", 0) != 0) {
        Add(u->value, path + ".url", "url must start with http:// or https://");
      }
    }
  } else {
    Add(n, path, "missing required field 'url'");
  }
  if (const Field* hd = Get(fs, "headers")) {
    if (auto m = StringMap(*hd, path + ".headers", idx)) h.headers = std::move(*m);
  }
  if (const Field* b = Get(fs, "body")) {
    if (auto v = ToJson(b->value, path + ".body", 0)) {
      JsonSites(*v, b->value, path + ".body", idx);
      h.body = std::move(*v);
    }
  }
  if (const Field* e = Get(fs, "expect_status")) {
    std::vector<YAML::Node> items;
    if (e->value.IsSequence()) {
      for (const auto& x : e->value) items.push_back(x);
    } else {
      items.push_back(e->value);
    }
    size_t i = 0;
    for (const auto& x : items) {
      if (auto code =
              Int(Field{x, x}, path + ".expect_status[" + std::to_string(i++) + "]", 100, 599)) {
        h.expect_status.push_back(static_cast<int>(*code));
      }
    }
  }
  return h;
}

LuaSpec Ingester::ReadLua(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
                          const std::string& path, int idx) {
  LuaSpec l;
  if (const Field* s = Get(fs, "script")) {
    if (auto v = String(*s, path + ".script")) {
      l.script = *v;
      const YAML::Mark m = s->value.Mark();
      auto pos = static_cast<size_t>(std::max(0, m.pos));
      bool block = pos < src_.size() && (src_[pos] == '|' || src_[pos] == '>');
      if (block)
        l.script_line = m.line + 2;  // content starts on the line after '|'
      else if (v->find('\n') == std::string::npos)
        l.script_line = m.line + 1;
      LuaProgram prog{*v, path + ".script", l.script_line};
      if (auto err = CheckLuaSyntax(prog)) Add(s->value, path + ".script", "lua: " + *err);
    }
  } else {
    Add(n, path, "missing required field 'script'");
  }
  if (const Field* a = Get(fs, "args")) {
    if (auto m = StringMap(*a, path + ".args", idx)) l.args = std::move(*m);
  }
  return l;
}

DelaySpec Ingester::ReadDelay(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
                              const std::string& path) {
  DelaySpec d;
  if (const Field* f = Get(fs, "duration")) {
    if (auto v = Duration(*f, path + ".duration")) d.duration = *v;
  } else {
    Add(n, path, "missing required field 'duration'");
  }
  return d;
}

FailSpec Ingester::ReadFail(const std::unordered_map<std::string, Field>& fs,
                            const YAML::Node& /*n*/, const std::string& path, int idx) {
  FailSpec f;
  f.message = "failed by a fail node";
  if (const Field* m = Get(fs, "message")) {
    if (auto v = String(*m, path + ".message")) {
      f.message = *v;
      Site(*v, m->value.Mark(), path + ".message", idx);
    }
  }
  return f;
}

TaskSpec Ingester::ReadTask(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
                            const std::string& path, int idx) {
  TaskSpec t;
  const Field* tf = Get(fs, "task");
  if (tf == nullptr) {
    Add(n, path, "missing required field 'task' ({kind, queue, payload, max_attempts, timeout})");
    return t;
  }
  std::string tp = path + ".task";
  if (!ExpectMap(tf->value, tp)) return t;
  auto ts = Fields(tf->value, tp, {"kind", "queue", "payload", "max_attempts", "timeout"});
  if (const Field* k = Get(ts, "kind")) {
    if (auto v = String(*k, tp + ".kind")) {
      t.kind = *v;
      if (v->empty()) Add(k->value, tp + ".kind", "empty task kind");
    }
  } else {
    Add(tf->value, tp, "missing required field 'kind' (the task handler's name)");
  }
  if (const Field* q = Get(ts, "queue")) {
    if (auto v = String(*q, tp + ".queue")) {
      static const std::regex re("[A-Za-z0-9_.-]{1,64}");
      if (!std::regex_match(*v, re)) Add(q->value, tp + ".queue", "bad queue name '" + *v + "'");
      t.queue = *v;
    }
  }
  if (const Field* p = Get(ts, "payload")) {
    if (auto v = ToJson(p->value, tp + ".payload", 0)) {
      JsonSites(*v, p->value, tp + ".payload", idx);
      t.payload = std::move(*v);
    }
  }
  if (const Field* m = Get(ts, "max_attempts")) {
    if (auto v = Int(*m, tp + ".max_attempts", 1, 100)) t.max_attempts = static_cast<int>(*v);
  }
  if (const Field* m = Get(ts, "timeout")) {
    if (auto v = Duration(*m, tp + ".timeout")) t.timeout = *v;
  }
  return t;
}

}  // namespace ferry::engine::ingest_internal
