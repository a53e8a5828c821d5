// Ingest: nodes, as a list or a mapping by id, and the fields every node has (id, needs, when,
// retry, timeout). The kind is read first because it decides which other fields a node may have;
// its own fields are read by its file (node_<kind>.cc, engine/node_kinds.h).
#include <algorithm>
#include <regex>

#include "engine/ingest_internal.h"
#include "engine/node_kinds.h"

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
  std::vector<std::pair<std::string, NodeKind>> kinds;
  std::string kind_names;  // "shell, http, ... or task"
  for (const auto& def : NodeKinds()) {
    kinds.emplace_back(NodeKindName(def.kind), def.kind);
    if (!kind_names.empty()) kind_names += &def == &NodeKinds().back() ? " or " : ", ";
    kind_names += NodeKindName(def.kind);
  }
  if (kind_node) {
    kind = Enum(Field{*kind_node, *kind_node}, path + ".kind", kinds);
  } else {
    Add(at, path, "missing required field 'kind' (" + kind_names + ")");
  }
  std::vector<std::string> allowed = kCommon;
  std::unordered_map<std::string, std::string> foreign;
  for (const auto& def : NodeKinds()) {
    for (const auto& name : def.fields) {
      if (kind && def.kind == *kind) {
        allowed.push_back(name);
      } else if (kind && foreign.count(name) == 0) {
        foreign[name] = "'" + name + "' belongs to " + std::string(NodeKindName(def.kind)) +
                        " nodes, this one is " + std::string(NodeKindName(*kind));
      }
    }
  }
  if (kind) {
    // `queue: q` on a task node instead of under its `task:`.
    const NodeKindDef& def = NodeKindOf(*kind);
    for (const auto& name : def.nested_fields) {
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      foreign[name] = "'" + name + "' belongs under '" + def.nested + ":', the " + def.nested +
                      " this " + std::string(NodeKindName(*kind)) + " node submits";
    }
  }
  if (!kind) {  // unknown kind: accept every kind's fields so only the kind is reported
    for (const auto& def : NodeKinds())
      allowed.insert(allowed.end(), def.fields.begin(), def.fields.end());
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
    NodeFields in{*this, fs, n, path, idx, src_};
    node.spec = NodeKindOf(*kind).read(in);
  }
  wf_.nodes.push_back(std::move(node));
}

}  // namespace ferry::engine::ingest_internal
