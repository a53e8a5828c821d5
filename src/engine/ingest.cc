#include "engine/ingest.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/crypto.h"
#include "core/suggest.h"
#include "core/time_util.h"
#include "engine/lua_sandbox.h"
#include "engine/secrets.h"
#include "engine/template.h"

namespace ferry::engine {

std::string Diagnostic::ToString() const {
  std::string out;
  if (line > 0) out = "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
  if (!path.empty()) out += path + ": ";
  return out + message;
}

std::string FormatDiagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) {
    if (!out.empty()) out += '\n';
    out += d.ToString();
  }
  return out;
}

namespace {

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxJsonNodes = 100'000;  // bounds alias ("billion laughs") expansion
constexpr size_t kMaxNodes = 1000;

const std::regex& WorkflowNameRe() {
  static const std::regex re("[a-z0-9][a-z0-9_-]{0,63}");
  return re;
}
const std::regex& NodeIdRe() {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_-]{0,63}");
  return re;
}
const std::regex& InputNameRe() {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_]{0,63}");
  return re;
}

// Stops collection once the diagnostic cap is reached.
struct TooManyDiagnostics {};

struct Field {
  YAML::Node key;
  YAML::Node value;
};

// A template found while reading nodes; checked once the graph is known.
struct TemplateSite {
  std::string text;
  YAML::Mark mark;
  std::string path;
  int node = -1;  // index into nodes, -1 for workflow-level fields
  bool condition = false;
};

class Ingester {
 public:
  Ingester(std::string_view source, const IngestOptions& options) : src_(source), opts_(options) {}

  tl::expected<Ingested, std::vector<Diagnostic>> Run() {
    try {
      RunUnchecked();
    } catch (const TooManyDiagnostics&) {
      diags_.push_back(Diagnostic{0, 0, "", "too many problems; stopped here"});
    } catch (const YAML::Exception& e) {
      // Recorded without Add(): at the cap, Add would throw again from inside this handler.
      diags_.push_back(MakeDiagnostic(e.mark, "", "YAML: " + e.msg));
    } catch (const std::exception& e) {
      diags_.push_back(Diagnostic{0, 0, "", std::string("cannot read definition: ") + e.what()});
    }
    if (!diags_.empty()) {
      std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
      });
      return tl::unexpected(std::move(diags_));
    }
    Ingested out;
    out.canonical = ToCanonicalJson(wf_);
    out.checksum = Sha256Hex(DumpJson(out.canonical));
    out.workflow = std::move(wf_);
    return out;
  }

 private:
  // ---- diagnostics ---------------------------------------------------------------------------

  static Diagnostic MakeDiagnostic(const YAML::Mark& mark, const std::string& path,
                                   const std::string& message) {
    Diagnostic d;
    if (!mark.is_null() && mark.line >= 0) {
      d.line = mark.line + 1;
      d.column = mark.column + 1;
    }
    d.path = path;
    d.message = message;
    return d;
  }
  void Add(const YAML::Mark& mark, const std::string& path, const std::string& message) {
    diags_.push_back(MakeDiagnostic(mark, path, message));
    if (diags_.size() >= opts_.max_diagnostics) throw TooManyDiagnostics{};
  }
  void Add(const YAML::Node& node, const std::string& path, const std::string& message) {
    Add(node.IsDefined() ? node.Mark() : YAML::Mark::null_mark(), path, message);
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  static const char* KindOf(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Map:
        return "a mapping";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Scalar:
        return "a scalar";
      case YAML::NodeType::Null:
        return "null";
      default:
        return "nothing";
    }
  }

  // ---- mappings ------------------------------------------------------------------------------

  // Reads a mapping's fields, reporting non-string keys, duplicates and unknown names.
  // `foreign` maps field names that belong elsewhere to a hint ("it belongs to http nodes").
  std::unordered_map<std::string, Field> Fields(
      const YAML::Node& map, const std::string& path, const std::vector<std::string>& allowed,
      const std::unordered_map<std::string, std::string>& foreign = {}) {
    std::unordered_map<std::string, Field> out;
    for (const auto& kv : map) {
      const YAML::Node& k = kv.first;
      if (!k.IsScalar()) {
        Add(k, path, "keys must be strings");
        continue;
      }
      std::string name = k.Scalar();
      if (out.count(name) != 0) {
        Add(k, path, "duplicate field '" + name + "'");
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string msg = "unknown field '" + name + "'";
        if (auto f = foreign.find(name); f != foreign.end()) {
          msg += " (" + f->second + ")";
        } else if (auto s = ClosestMatch(name, allowed)) {
          msg += " (did you mean '" + *s + "'?)";
        } else {
          std::string list;
          for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
          msg += "; expected one of: " + list;
        }
        Add(k, path, msg);
        continue;
      }
      out[name] = Field{k, kv.second};
    }
    return out;
  }

  static const Field* Get(const std::unordered_map<std::string, Field>& f, const std::string& k) {
    auto it = f.find(k);
    return it == f.end() ? nullptr : &it->second;
  }

  bool ExpectMap(const YAML::Node& n, const std::string& path) {
    if (n.IsMap()) return true;
    Add(n, path, std::string("expected a mapping, got ") + KindOf(n));
    return false;
  }

  // ---- scalars -------------------------------------------------------------------------------

  static bool IsPlain(const YAML::Node& n) { return n.Tag() == "?"; }

  std::optional<std::string> String(const Field& f, const std::string& path) {
    if (!f.value.IsScalar()) {
      Add(f.value.IsNull() ? f.key : f.value, path,
          std::string("expected a string, got ") + KindOf(f.value));
      return std::nullopt;
    }
    return f.value.Scalar();
  }

  std::optional<bool> Bool(const Field& f, const std::string& path) {
    if (f.value.IsScalar() && IsPlain(f.value)) {
      const std::string& s = f.value.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    Add(f.value.IsNull() ? f.key : f.value, path, "expected true or false");
    return std::nullopt;
  }

  std::optional<int64_t> Int(const Field& f, const std::string& path, int64_t lo, int64_t hi) {
    if (f.value.IsScalar()) {
      const std::string& s = f.value.Scalar();
      std::size_t used = 0;
      try {
        long long v = std::stoll(s, &used, 10);
        if (used == s.size() && v >= lo && v <= hi) return v;
      } catch (...) {
      }
    }
    Add(f.value.IsNull() ? f.key : f.value, path,
        "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return std::nullopt;
  }

  std::optional<std::chrono::milliseconds> Duration(const Field& f, const std::string& path) {
    if (!f.value.IsScalar()) {
      Add(f.value.IsNull() ? f.key : f.value, path,
          "expected a duration such as 500ms, 30s, 5m, 2h");
      return std::nullopt;
    }
    auto d = ParseDuration(f.value.Scalar());
    if (!d) {
      Add(f.value, path, d.error().message);
      return std::nullopt;
    }
    return *d;
  }

  template <typename E>
  std::optional<E> Enum(const Field& f, const std::string& path,
                        const std::vector<std::pair<std::string, E>>& values) {
    std::vector<std::string> names;
    for (const auto& [n, _] : values) names.push_back(n);
    if (f.value.IsScalar()) {
      for (const auto& [n, v] : values) {
        if (n == f.value.Scalar()) return v;
      }
    }
    std::string msg = "expected one of:";
    for (const auto& n : names) msg += " " + n;
    if (f.value.IsScalar()) {
      msg = "'" + f.value.Scalar() + "' is not valid; " + msg;
      if (auto s = ClosestMatch(f.value.Scalar(), names)) msg += " (did you mean '" + *s + "'?)";
    }
    Add(f.value.IsNull() ? f.key : f.value, path, msg);
    return std::nullopt;
  }

  // A list of strings; a single string is accepted as a one-element list when `allow_single`.
  std::optional<std::vector<std::pair<std::string, YAML::Node>>> StringList(const Field& f,
                                                                            const std::string& path,
                                                                            bool allow_single) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    if (allow_single && f.value.IsScalar()) {
      out.emplace_back(f.value.Scalar(), f.value);
      return out;
    }
    if (!f.value.IsSequence()) {
      Add(f.value.IsNull() ? f.key : f.value, path,
          std::string("expected a list of strings, got ") + KindOf(f.value));
      return std::nullopt;
    }
    bool ok = true;
    size_t i = 0;
    for (const auto& e : f.value) {
      if (!e.IsScalar()) {
        Add(e, path + "[" + std::to_string(i) + "]",
            std::string("expected a string, got ") + KindOf(e));
        ok = false;
      } else {
        out.emplace_back(e.Scalar(), e);
      }
      ++i;
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // A mapping of string -> string (env, headers, args).
  std::optional<std::map<std::string, std::string>> StringMap(const Field& f,
                                                              const std::string& path, int node) {
    std::map<std::string, std::string> out;
    if (f.value.IsNull()) return out;
    if (!ExpectMap(f.value, path)) return std::nullopt;
    bool ok = true;
    for (const auto& kv : f.value) {
      if (!kv.first.IsScalar()) {
        Add(kv.first, path, "keys must be strings");
        ok = false;
        continue;
      }
      std::string k = kv.first.Scalar();
      std::string p = path + "." + k;
      if (!kv.second.IsScalar()) {
        Add(kv.second.IsNull() ? kv.first : kv.second, p,
            std::string("expected a string, got ") + KindOf(kv.second));
        ok = false;
        continue;
      }
      if (out.count(k) != 0) {
        Add(kv.first, path, "duplicate key '" + k + "'");
        ok = false;
        continue;
      }
      out[k] = kv.second.Scalar();
      Site(kv.second.Scalar(), kv.second.Mark(), p, node);
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // YAML -> JSON with YAML 1.2 core scalar typing (quoted scalars are always strings).
  std::optional<Json> ToJson(const YAML::Node& n, const std::string& path, int depth) {
    if (++json_nodes_ > kMaxJsonNodes) {
      if (!json_overflow_) Add(n, path, "document too large (aliases expand too far)");
      json_overflow_ = true;
      return std::nullopt;
    }
    if (depth > kMaxJsonDepth) {
      Add(n, path, "nested too deeply");
      return std::nullopt;
    }
    switch (n.Type()) {
      case YAML::NodeType::Null:
        return Json(nullptr);
      case YAML::NodeType::Scalar: {
        const std::string& s = n.Scalar();
        if (!IsPlain(n)) return Json(s);
        if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
          return Json(nullptr);
        if (s == "true" || s == "True" || s == "TRUE") return Json(true);
        if (s == "false" || s == "False" || s == "FALSE") return Json(false);
        static const std::regex int_re("[-+]?[0-9]+");
        static const std::regex float_re("[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");
        try {
          if (std::regex_match(s, int_re)) return Json(static_cast<int64_t>(std::stoll(s)));
          if (std::regex_match(s, float_re)) {
            double d = std::stod(s);
            if (std::isfinite(d)) return Json(d);
          }
        } catch (...) {
          // Out of range: keep the text.
        }
        return Json(s);
      }
      case YAML::NodeType::Sequence: {
        Json arr = Json::array();
        size_t i = 0;
        for (const auto& e : n) {
          auto v = ToJson(e, path + "[" + std::to_string(i++) + "]", depth + 1);
          if (!v) return std::nullopt;
          arr.push_back(std::move(*v));
        }
        return arr;
      }
      case YAML::NodeType::Map: {
        Json obj = Json::object();
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) {
            Add(kv.first, path, "keys must be strings");
            return std::nullopt;
          }
          auto v = ToJson(kv.second, path + "." + kv.first.Scalar(), depth + 1);
          if (!v) return std::nullopt;
          obj[kv.first.Scalar()] = std::move(*v);
        }
        return obj;
      }
      default:
        return Json(nullptr);
    }
  }

  // Registers every string inside a JSON value (from `n`) as a template.
  void JsonSites(const Json& v, const YAML::Node& n, const std::string& path, int node) {
    if (v.is_string()) {
      Site(v.get<std::string>(), n.Mark(), path, node);
    } else if (v.is_array() && n.IsSequence()) {
      for (size_t i = 0; i < v.size() && i < n.size(); ++i) {
        JsonSites(v[i], n[i], path + "[" + std::to_string(i) + "]", node);
      }
    } else if (v.is_object() && n.IsMap()) {
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) continue;
        auto f = v.find(kv.first.Scalar());
        if (f != v.end()) JsonSites(*f, kv.second, path + "." + kv.first.Scalar(), node);
      }
    }
  }

  void Site(const std::string& text, const YAML::Mark& mark, const std::string& path, int node,
            bool condition = false) {
    if (!condition && text.find("{{") == std::string::npos &&
        text.find("}}") == std::string::npos) {
      return;  // plain text: nothing to check
    }
    sites_.push_back(TemplateSite{text, mark, path, node, condition});
  }

  // ---- sections ------------------------------------------------------------------------------

  void RunUnchecked() {
    if (src_.size() > opts_.max_source_bytes) {
      diags_.push_back(Diagnostic{
          0, 0, "", "definition larger than " + std::to_string(opts_.max_source_bytes) + " bytes"});
      return;
    }
    YAML::Node root = YAML::Load(std::string(src_));
    if (!root.IsDefined() || root.IsNull()) {
      diags_.push_back(Diagnostic{0, 0, "",
                                  "the document is empty; expected a mapping with "
                                  "name and nodes"});
      return;
    }
    if (!ExpectMap(root, "")) return;
    auto f = Fields(root, "",
                    {"name", "description", "inputs", "secrets", "triggers", "defaults", "nodes"});

    if (const Field* n = Get(f, "name")) {
      if (auto s = String(*n, "name")) {
        if (!std::regex_match(*s, WorkflowNameRe())) {
          Add(n->value, "name", "'" + *s + "' is not a valid name: use [a-z0-9][a-z0-9_-]{0,63}");
        }
        wf_.name = *s;
      }
    } else {
      Add(root, "", "missing required field 'name'");
    }
    if (const Field* d = Get(f, "description")) {
      if (auto s = String(*d, "description")) wf_.description = *s;
    }
    if (const Field* i = Get(f, "inputs")) ReadInputs(*i);
    if (const Field* sec = Get(f, "secrets")) ReadSecrets(*sec);
    if (const Field* d = Get(f, "defaults")) ReadDefaults(*d);
    if (const Field* t = Get(f, "triggers")) ReadTriggers(*t);
    if (const Field* n = Get(f, "nodes")) {
      ReadNodes(*n);
    } else {
      Add(root, "", "missing required field 'nodes'");
    }
    CheckGraph();
    CheckTemplates();
    std::set<std::string> used(wf_.declared_secrets.begin(), wf_.declared_secrets.end());
    if (wf_.webhook) used.insert(wf_.webhook->secrets.begin(), wf_.webhook->secrets.end());
    for (const auto& [name, site] : read_secrets_) {
      if (std::binary_search(wf_.declared_secrets.begin(), wf_.declared_secrets.end(), name)) {
        continue;
      }
      if (!declared_ && opts_.allow_undeclared_secrets) {
        used.insert(name);  // a graph stored before declarations existed
        continue;
      }
      Add(site.mark, site.path,
          "secrets." + name +
              " is not declared: list it under the workflow's `secrets:` (a workflow names "
              "every secret it reads)");
    }
    wf_.secret_names.assign(used.begin(), used.end());
  }

  void ReadSecrets(const Field& f) {
    declared_ = true;
    auto list = StringList(f, "secrets", false);
    if (!list) return;
    std::set<std::string> names;
    for (auto& [name, node] : *list) {
      if (!IsValidSecretName(name)) {
        Add(node, "secrets", "'" + name + "' is not a secret name (use A-Z, 0-9 and _)");
      } else if (!names.insert(name).second) {
        Add(node, "secrets", "secret " + name + " is listed twice");
      }
    }
    wf_.declared_secrets.assign(names.begin(), names.end());
  }

  void ReadInputs(const Field& f) {
    if (f.value.IsNull()) return;
    if (!ExpectMap(f.value, "inputs")) return;
    std::set<std::string> seen;
    for (const auto& kv : f.value) {
      if (!kv.first.IsScalar()) {
        Add(kv.first, "inputs", "keys must be strings");
        continue;
      }
      InputDef in;
      in.name = kv.first.Scalar();
      std::string path = "inputs." + in.name;
      if (!std::regex_match(in.name, InputNameRe())) {
        Add(kv.first, path, "bad input name: use [A-Za-z_][A-Za-z0-9_]*");
      }
      if (!seen.insert(in.name).second) Add(kv.first, path, "duplicate input");
      static const std::vector<std::pair<std::string, InputType>> kTypes = {
          {"string", InputType::kString},
          {"number", InputType::kNumber},
          {"boolean", InputType::kBoolean},
          {"object", InputType::kObject},
          {"array", InputType::kArray}};
      if (kv.second.IsScalar()) {  // shorthand: `who: string`
        if (auto t = Enum(Field{kv.first, kv.second}, path, kTypes)) in.type = *t;
        wf_.inputs.push_back(std::move(in));
        continue;
      }
      if (kv.second.IsNull()) {
        wf_.inputs.push_back(std::move(in));
        continue;
      }
      if (!ExpectMap(kv.second, path)) continue;
      auto fs = Fields(kv.second, path,
                       {"type", "required", "default", "description", "enum", "pattern",
                        "max_length", "allow_leading_dash"});
      if (const Field* t = Get(fs, "type")) {
        if (auto v = Enum(*t, path + ".type", kTypes)) in.type = *v;
      }
      if (const Field* r = Get(fs, "required"))
        in.required = Bool(*r, path + ".required").value_or(false);
      if (const Field* d = Get(fs, "description")) {
        in.description = String(*d, path + ".description").value_or("");
      }
      ReadInputConstraints(fs, path, in);
      if (const Field* d = Get(fs, "default")) {
        if (auto v = ToJson(d->value, path + ".default", 0)) {
          if (!v->is_null() && !TypeMatches(in.type, *v)) {
            Add(d->value, path + ".default",
                "default does not match type " + std::string(InputTypeName(in.type)));
          } else if (!v->is_null()) {
            if (auto st = CheckInputValue(in, *v); !st) {
              Add(d->value, path + ".default", "default: " + st.error().message);
            }
          }
          if (!v->is_null()) in.default_value = std::move(*v);
        }
      }
      wf_.inputs.push_back(std::move(in));
    }
  }

  // enum, pattern, max_length, allow_leading_dash: each must fit the input's type.
  void ReadInputConstraints(const std::unordered_map<std::string, Field>& fs,
                            const std::string& path, InputDef& in) {
    const bool is_string = in.type == InputType::kString;
    auto strings_only = [&](const Field* f, const char* key) {
      if (f != nullptr && !is_string) {
        Add(f->key, path + "." + key, "applies to string inputs only");
        return false;
      }
      return f != nullptr;
    };
    if (const Field* e = Get(fs, "enum")) {
      if (!e->value.IsSequence() || e->value.size() == 0) {
        Add(e->value, path + ".enum", "expected a non-empty list of allowed values");
      } else if (in.type != InputType::kString && in.type != InputType::kNumber &&
                 in.type != InputType::kBoolean) {
        Add(e->key, path + ".enum", "applies to string, number and boolean inputs");
      } else {
        for (size_t i = 0; i < e->value.size(); ++i) {
          auto v = ToJson(e->value[i], path + ".enum[" + std::to_string(i) + "]", 0);
          if (!v) continue;
          if (!TypeMatches(in.type, *v)) {
            Add(e->value[i], path + ".enum",
                "value does not match type " + std::string(InputTypeName(in.type)));
          } else {
            in.allowed.push_back(std::move(*v));
          }
        }
      }
    }
    if (const Field* p = Get(fs, "pattern"); strings_only(p, "pattern")) {
      if (auto text = String(*p, path + ".pattern")) {
        auto compiled = CompileInputPattern(*text);
        if (!compiled) {
          Add(p->value, path + ".pattern", compiled.error().message);
        } else {
          in.pattern = std::move(*compiled);
        }
      }
    }
    if (const Field* m = Get(fs, "max_length"); strings_only(m, "max_length")) {
      if (auto n = Int(*m, path + ".max_length", 1, 1 << 20)) in.max_length = *n;
    }
    if (const Field* a = Get(fs, "allow_leading_dash"); strings_only(a, "allow_leading_dash")) {
      in.allow_leading_dash = Bool(*a, path + ".allow_leading_dash").value_or(false);
    }
  }

  std::optional<RetryPolicy> ReadRetry(const Field& f, const std::string& path, RetryPolicy base) {
    if (f.value.IsScalar()) {  // shorthand: `retry: 3`
      auto n = Int(f, path, 1, 100);
      if (!n) return std::nullopt;
      base.max_attempts = static_cast<int>(*n);
      return base;
    }
    if (!ExpectMap(f.value, path)) return std::nullopt;
    auto fs = Fields(f.value, path, {"max_attempts", "backoff"});
    if (const Field* m = Get(fs, "max_attempts")) {
      if (auto n = Int(*m, path + ".max_attempts", 1, 100))
        base.max_attempts = static_cast<int>(*n);
    }
    if (const Field* b = Get(fs, "backoff")) {
      std::string bp = path + ".backoff";
      if (b->value.IsScalar()) {
        if (auto d = Duration(*b, bp)) base.backoff.base = *d;
      } else if (ExpectMap(b->value, bp)) {
        auto bs = Fields(b->value, bp, {"base", "max"});
        if (const Field* x = Get(bs, "base")) {
          if (auto d = Duration(*x, bp + ".base")) base.backoff.base = *d;
        }
        if (const Field* x = Get(bs, "max")) {
          if (auto d = Duration(*x, bp + ".max")) base.backoff.cap = *d;
        }
      }
      if (base.backoff.cap < base.backoff.base) base.backoff.cap = base.backoff.base;
    }
    return base;
  }

  void ReadDefaults(const Field& f) {
    if (f.value.IsNull()) return;
    if (!ExpectMap(f.value, "defaults")) return;
    auto fs = Fields(f.value, "defaults", {"retry", "timeout"});
    if (const Field* r = Get(fs, "retry")) {
      if (auto p = ReadRetry(*r, "defaults.retry", wf_.default_retry)) wf_.default_retry = *p;
    }
    if (const Field* t = Get(fs, "timeout")) {
      if (auto d = Duration(*t, "defaults.timeout")) wf_.default_timeout = *d;
    }
  }

  void ReadTriggers(const Field& f) {
    if (f.value.IsNull()) return;
    if (!ExpectMap(f.value, "triggers")) return;
    auto fs = Fields(f.value, "triggers", {"webhook", "cron"});
    if (const Field* w = Get(fs, "webhook")) ReadWebhook(*w);
    if (const Field* c = Get(fs, "cron")) {
      if (c->value.IsSequence()) {
        size_t i = 0;
        for (const auto& e : c->value) {
          ReadCron(e, "triggers.cron[" + std::to_string(i++) + "]");
        }
      } else {
        ReadCron(c->value, "triggers.cron");
      }
    }
  }

  void ReadWebhook(const Field& f) {
    const std::string path = "triggers.webhook";
    WebhookTrigger w;
    if (f.value.IsNull()) {
      wf_.webhook = w;
      return;
    }
    if (!ExpectMap(f.value, path)) return;
    auto fs =
        Fields(f.value, path,
               {"methods", "auth", "secret", "secrets", "signature_header", "timestamp_header",
                "tolerance", "replay_window", "max_body_bytes", "slack_url_verification"},
               {{"secret_env",
                 "name the secret with 'secret: NAME'; its value comes from "
                 "FERRY_SECRET_NAME or the secrets file"}});
    if (const Field* m = Get(fs, "methods")) {
      if (auto list = StringList(*m, path + ".methods", true)) {
        w.methods.clear();
        static const std::vector<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
        for (auto& [name, node] : *list) {
          std::string up = name;
          for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          if (std::find(kMethods.begin(), kMethods.end(), up) == kMethods.end()) {
            Add(node, path + ".methods", "unsupported method '" + name + "'");
          } else if (std::find(w.methods.begin(), w.methods.end(), up) == w.methods.end()) {
            w.methods.push_back(up);
          }
        }
        if (w.methods.empty()) Add(m->value, path + ".methods", "needs at least one method");
      }
    }
    const Field* auth = Get(fs, "auth");
    const Field* secret = Get(fs, "secret");
    const Field* secrets = Get(fs, "secrets");
    if (auth) {
      static const std::vector<std::pair<std::string, WebhookAuth>> kSchemes = {
          {"none", WebhookAuth::kNone},
          {"hmac", WebhookAuth::kHmac},
          {"secret", WebhookAuth::kSecret},
          {"github", WebhookAuth::kGitHub},
          {"stripe", WebhookAuth::kStripe},
          {"slack", WebhookAuth::kSlack},
          {"standard-webhooks", WebhookAuth::kStandardWebhooks}};
      if (auto a = Enum(*auth, path + ".auth", kSchemes)) w.auth = *a;
    } else if (secret || secrets) {
      w.auth = WebhookAuth::kHmac;  // a secret without an auth mode means signed requests
    }
    // The names of the secrets: `secret: NAME`, or `secrets: [NEW, OLD]` while rotating.
    std::vector<std::pair<std::string, YAML::Node>> names;
    if (secret && secrets) {
      Add(secrets->key, path, "give 'secret' or 'secrets', not both");
    } else if (secret) {
      if (auto one = String(*secret, path + ".secret")) names.emplace_back(*one, secret->value);
    } else if (secrets) {
      if (auto list = StringList(*secrets, path + ".secrets", false)) {
        names = std::move(*list);
        if (names.empty() || names.size() > kMaxWebhookSecrets) {
          Add(secrets->value, path + ".secrets",
              "name 1 to " + std::to_string(kMaxWebhookSecrets) + " secrets");
        }
      }
    }
    for (auto& [raw, node] : names) {
      std::string name = raw.rfind("secrets.", 0) == 0 ? raw.substr(8) : raw;
      if (!IsValidSecretName(name)) {
        Add(node, path + (secret ? ".secret" : ".secrets"),
            "expected a secret name such as GITHUB_HOOK (its value comes from "
            "FERRY_SECRET_GITHUB_HOOK or the secrets file), never the secret itself");
      } else if (std::find(w.secrets.begin(), w.secrets.end(), name) != w.secrets.end()) {
        Add(node, path + ".secrets", "secret " + name + " is named twice");
      } else {
        w.secrets.push_back(name);
      }
    }
    if (w.auth != WebhookAuth::kNone && names.empty() && !secret && !secrets) {
      Add(auth ? auth->value : f.value, path,
          "auth '" + std::string(WebhookAuthName(w.auth)) + "' needs 'secret: NAME'");
    }
    if (w.auth == WebhookAuth::kNone && (secret || secrets)) {
      Add((secret ? secret : secrets)->key, path, "auth none takes no secret");
    }
    // Header names: settable for Ferry's own schemes; the senders' schemes fix theirs.
    const bool own = w.auth == WebhookAuth::kHmac || w.auth == WebhookAuth::kSecret;
    w.signature_header = w.auth == WebhookAuth::kSecret ? "X-Ferry-Secret" : "X-Ferry-Signature";
    for (const char* key : {"signature_header", "timestamp_header"}) {
      const Field* h = Get(fs, key);
      if (h == nullptr) continue;
      const bool applies =
          std::string_view(key) == "signature_header" ? own : w.auth == WebhookAuth::kHmac;
      if (!applies) {
        Add(h->key, path + "." + key,
            "does not apply to auth " + std::string(WebhookAuthName(w.auth)) +
                (own ? "" : " (its sender fixes the header names)"));
        continue;
      }
      if (auto v = String(*h, path + "." + key)) {
        static const std::regex re("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}");
        if (!std::regex_match(*v, re))
          Add(h->value, path + "." + key, "bad header name '" + *v + "'");
        (std::string_view(key) == "signature_header" ? w.signature_header : w.timestamp_header) =
            *v;
      }
    }
    if (const Field* t = Get(fs, "tolerance")) {
      if (!WebhookAuthHasTimestamp(w.auth)) {
        Add(t->key, path + ".tolerance",
            "does not apply to auth " + std::string(WebhookAuthName(w.auth)) +
                " (it signs no timestamp)");
      } else if (auto d = Duration(*t, path + ".tolerance")) {
        // 0 would refuse every delivery (no clock is exact); over a day makes replays cheap.
        if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(24)) {
          Add(t->value, path + ".tolerance", "must be from 1s to 24h");
        } else {
          w.tolerance = *d;
        }
      }
    }
    if (const Field* r = Get(fs, "replay_window")) {
      if (w.auth != WebhookAuth::kGitHub) {
        Add(r->key, path + ".replay_window", "applies to auth github only");
      } else if (auto d = Duration(*r, path + ".replay_window")) {
        if (*d < std::chrono::minutes(1) || *d > std::chrono::hours(24 * 90)) {
          Add(r->value, path + ".replay_window", "must be from 1m to 90d");
        } else {
          w.replay_window = *d;
        }
      }
    }
    if (const Field* m = Get(fs, "max_body_bytes")) {
      if (auto n = Int(*m, path + ".max_body_bytes", 1, 64LL << 20)) w.max_body_bytes = *n;
    }
    if (const Field* s = Get(fs, "slack_url_verification")) {
      w.slack_url_verification = Bool(*s, path + ".slack_url_verification").value_or(false);
    }
    wf_.webhook = w;
  }

  void ReadCron(const YAML::Node& n, const std::string& path) {
    if (!ExpectMap(n, path)) return;
    CronTrigger c;
    auto fs = Fields(
        n, path, {"schedule", "timezone", "start", "end", "misfire", "catch_up_max", "overlap"});
    if (const Field* s = Get(fs, "schedule")) {
      if (auto text = String(*s, path + ".schedule")) {
        c.schedule = *text;
        if (auto problem = CronShape(*text)) {
          Add(s->value, path + ".schedule", *problem);
        } else if (opts_.validate_cron) {
          if (auto err = opts_.validate_cron(*text)) Add(s->value, path + ".schedule", *err);
        }
      }
    } else {
      Add(n, path, "missing required field 'schedule'");
    }
    if (const Field* t = Get(fs, "timezone")) {
      if (auto s = String(*t, path + ".timezone")) {
        static const std::regex re("[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}");
        if (!std::regex_match(*s, re) || s->size() > 64) {
          Add(t->value, path + ".timezone",
              "'" + *s +
                  "' is not an IANA time zone name "
                  "(e.g. UTC, Europe/Paris)");
        } else if (opts_.validate_zone) {
          if (auto err = opts_.validate_zone(*s)) Add(t->value, path + ".timezone", *err);
        }
        c.timezone = *s;
      }
    }
    for (const char* key : {"start", "end"}) {
      if (const Field* t = Get(fs, key)) {
        if (auto s = String(*t, path + "." + key)) {
          static const std::regex re(
              "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?"
              "(Z|[+-][0-9]{2}:?[0-9]{2})?)?");
          if (!std::regex_match(*s, re)) {
            Add(t->value, path + "." + key,
                "expected an ISO 8601 date or time such as 2026-01-31 or 2026-01-31T09:00:00Z");
          }
          (std::string(key) == "start" ? c.start : c.end) = *s;
        }
      }
    }
    if (!c.start.empty() && !c.end.empty() && c.start.size() == c.end.size() && c.end < c.start) {
      Add(n, path, "end is before start");
    }
    if (const Field* m = Get(fs, "misfire")) {
      if (auto v = Enum(*m, path + ".misfire",
                        std::vector<std::pair<std::string, MisfirePolicy>>{
                            {"skip", MisfirePolicy::kSkip},
                            {"run_once", MisfirePolicy::kRunOnce},
                            {"catch_up", MisfirePolicy::kCatchUp}})) {
        c.misfire = *v;
      }
    }
    if (const Field* m = Get(fs, "catch_up_max")) {
      if (auto v = Int(*m, path + ".catch_up_max", 1, 1000)) c.catch_up_max = static_cast<int>(*v);
      if (c.misfire != MisfirePolicy::kCatchUp) {
        Add(m->key, path + ".catch_up_max", "only applies with misfire: catch_up");
      }
    }
    if (const Field* o = Get(fs, "overlap")) {
      if (auto v = Enum(*o, path + ".overlap",
                        std::vector<std::pair<std::string, OverlapPolicy>>{
                            {"allow", OverlapPolicy::kAllow},
                            {"skip", OverlapPolicy::kSkip},
                            {"queue", OverlapPolicy::kQueue}})) {
        c.overlap = *v;
      }
    }
    wf_.cron.push_back(std::move(c));
  }

  // The shape of a cron expression; the scheduler's parser (validate_cron) checks the meaning.
  static std::optional<std::string> CronShape(const std::string& s) {
    if (s.empty()) return "empty schedule";
    if (s[0] == '@') {
      static const std::regex re(
          "@(yearly|annually|monthly|weekly|daily|midnight|hourly|every [0-9]+(ms|s|m|h|d)"
          "([0-9]+(ms|s|m|h|d))*)");
      if (!std::regex_match(s, re)) {
        return "unknown macro '" + s +
               "': use @yearly, @monthly, @weekly, @daily, @hourly or "
               "@every <duration>";
      }
      return std::nullopt;
    }
    static const std::regex field_re("[0-9A-Za-z*?/,#-]+");
    std::vector<std::string> fields;
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      size_t j = i;
      while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j > i) fields.emplace_back(s.substr(i, j - i));
      i = j;
    }
    if (fields.size() != 5 && fields.size() != 6) {
      return "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with "
             "leading seconds, got " +
             std::to_string(fields.size());
    }
    for (size_t k = 0; k < fields.size(); ++k) {
      if (!std::regex_match(fields[k], field_re)) {
        return "field " + std::to_string(k + 1) + " ('" + fields[k] +
               "') has characters a "
               "cron field cannot hold";
      }
    }
    return std::nullopt;
  }

  // ---- nodes ---------------------------------------------------------------------------------

  void ReadNodes(const Field& f) {
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

  void ReadNode(const YAML::Node& n, std::optional<std::string> map_id, const YAML::Node& at,
                size_t index = 0) {
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

  ShellSpec ReadShell(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
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

  HttpSpec ReadHttp(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
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

  LuaSpec ReadLua(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
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

  DelaySpec ReadDelay(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
                      const std::string& path) {
    DelaySpec d;
    if (const Field* f = Get(fs, "duration")) {
      if (auto v = Duration(*f, path + ".duration")) d.duration = *v;
    } else {
      Add(n, path, "missing required field 'duration'");
    }
    return d;
  }

  FailSpec ReadFail(const std::unordered_map<std::string, Field>& fs, const YAML::Node& /*n*/,
                    const std::string& path, int idx) {
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

  TaskSpec ReadTask(const std::unordered_map<std::string, Field>& fs, const YAML::Node& n,
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

  // ---- graph ---------------------------------------------------------------------------------

  void CheckGraph() {
    std::vector<std::string> ids;
    for (const auto& n : wf_.nodes) ids.push_back(n.id);
    for (const auto& n : wf_.nodes) {
      for (const auto& need : n.needs) {
        YAML::Mark m = needs_marks_[n.id + "\n" + need];
        if (need == n.id) {
          Add(m, "nodes." + n.id + ".needs", "a node cannot need itself");
        } else if (wf_.FindNode(need) == nullptr) {
          std::string msg = "no node '" + need + "'";
          if (auto s = ClosestMatch(need, ids)) msg += " (did you mean '" + *s + "'?)";
          Add(m, "nodes." + n.id + ".needs", msg);
        }
      }
    }
    // Cycles: depth-first with colours; a grey target closes a cycle, read off the stack.
    std::unordered_map<std::string, int> color;
    std::vector<std::string> stack;
    std::set<std::set<std::string>> reported;
    std::function<void(const NodeDef&)> visit = [&](const NodeDef& n) {
      color[n.id] = 1;
      stack.push_back(n.id);
      for (const auto& need : n.needs) {
        const NodeDef* d = wf_.FindNode(need);
        if (d == nullptr || need == n.id) continue;
        if (color[need] == 1) {
          auto from = std::find(stack.begin(), stack.end(), need);
          std::vector<std::string> cyc(from, stack.end());
          std::set<std::string> key(cyc.begin(), cyc.end());
          if (reported.insert(key).second) {
            // The stack runs dependent -> dependency; print in execution order, starting from
            // the cycle's first node in definition order so the message is deterministic.
            std::reverse(cyc.begin(), cyc.end());
            auto first =
                std::min_element(cyc.begin(), cyc.end(), [&](const auto& x, const auto& y) {
                  return node_marks_[x].pos < node_marks_[y].pos;
                });
            std::rotate(cyc.begin(), first, cyc.end());
            std::string text;
            for (const auto& id : cyc) text += id + " -> ";
            text += cyc.front();
            Add(node_marks_[need], "nodes." + need + ".needs", "cycle: " + text);
          }
        } else if (color[need] == 0) {
          visit(*d);
        }
      }
      stack.pop_back();
      color[n.id] = 2;
    };
    for (const auto& n : wf_.nodes) {
      if (color[n.id] == 0) visit(n);
    }
  }

  std::set<std::string> Ancestors(int idx) {
    std::set<std::string> out;
    std::vector<std::string> todo(wf_.nodes[static_cast<size_t>(idx)].needs);
    while (!todo.empty()) {
      std::string id = todo.back();
      todo.pop_back();
      if (!out.insert(id).second) continue;
      if (const NodeDef* d = wf_.FindNode(id))
        todo.insert(todo.end(), d->needs.begin(), d->needs.end());
    }
    return out;
  }

  void CheckTemplates() {
    std::vector<std::string> input_names;
    for (const auto& in : wf_.inputs) input_names.push_back(in.name);
    std::vector<std::string> node_ids;
    for (const auto& n : wf_.nodes) node_ids.push_back(n.id);
    static const std::vector<std::string> kRoots = {"inputs", "nodes", "secrets", "run", "trigger"};
    static const std::vector<std::string> kRun = {"id", "workflow", "triggered_by"};
    static const std::vector<std::string> kTrigger = {"body", "headers", "query", "scheduled_for",
                                                      "timezone"};
    std::unordered_map<int, std::set<std::string>> ancestors;
    for (const auto& site : sites_) {
      auto t = site.condition ? ParseCondition(site.text) : Template::Parse(site.text);
      if (!t) {
        Add(site.mark, site.path, "bad template: " + t.error().message);
        continue;
      }
      if (!t->HasExpressions() && site.text.find("}}") != std::string::npos) {
        Add(site.mark, site.path, "'}}' without an opening '{{'");
        continue;
      }
      for (const auto& part : t->Parts()) {
        if (!part.expr) continue;
        for (const auto& ref : part.expr->References()) {
          const auto& p = ref.parts;
          std::string where = "{{" + part.expr->Text() + "}}: ";
          auto bad = [&](const std::string& msg) { Add(site.mark, site.path, where + msg); };
          const std::string& root = p[0];
          if (std::find(kRoots.begin(), kRoots.end(), root) == kRoots.end()) {
            std::string msg = "unknown name '" + root +
                              "'; templates read inputs, nodes.<id>.output, secrets.NAME, run "
                              "and trigger";
            if (auto s = ClosestMatch(root, kRoots)) msg += " (did you mean '" + *s + "'?)";
            bad(msg);
            continue;
          }
          if (root == "inputs") {
            if (p.size() < 2) continue;  // the whole inputs object
            if (std::find(input_names.begin(), input_names.end(), p[1]) == input_names.end()) {
              std::string msg = "no input '" + p[1] + "' is declared";
              if (auto s = ClosestMatch(p[1], input_names)) msg += " (did you mean '" + *s + "'?)";
              bad(msg);
            }
          } else if (root == "nodes") {
            if (p.size() < 3 || (p[2] != "output" && p[2] != "status")) {
              bad("read a node's result as nodes.<id>.output (or nodes.<id>.status)");
              continue;
            }
            if (site.node < 0) {
              bad("only node fields can read node outputs");
              continue;
            }
            if (wf_.FindNode(p[1]) == nullptr) {
              std::string msg = "no node '" + p[1] + "'";
              if (auto s = ClosestMatch(p[1], node_ids)) msg += " (did you mean '" + *s + "'?)";
              bad(msg);
              continue;
            }
            if (!ancestors.count(site.node)) ancestors[site.node] = Ancestors(site.node);
            if (ancestors[site.node].count(p[1]) == 0) {
              bad("node '" + p[1] +
                  "' is not in this node's needs (directly or through "
                  "another need), so its output may not exist yet; add it to needs");
            }
          } else if (root == "secrets") {
            if (p.size() < 2 || !IsValidSecretName(p[1])) {
              bad("read a secret as secrets.NAME");
            } else {
              read_secrets_.emplace(p[1], SiteRef{site.mark, site.path});
            }
          } else if (root == "run") {
            if (p.size() >= 2 && std::find(kRun.begin(), kRun.end(), p[1]) == kRun.end()) {
              bad("run has id, workflow and triggered_by, not '" + p[1] + "'");
            }
          } else if (root == "trigger") {
            if (p.size() >= 2 &&
                std::find(kTrigger.begin(), kTrigger.end(), p[1]) == kTrigger.end()) {
              std::string msg =
                  "trigger has body, headers, query (webhooks) and scheduled_for, "
                  "timezone (cron), not '" +
                  p[1] + "'";
              if (auto s = ClosestMatch(p[1], kTrigger)) msg += " (did you mean '" + *s + "'?)";
              bad(msg);
            }
          }
        }
      }
    }
  }

  std::string_view src_;
  const IngestOptions& opts_;
  std::vector<Diagnostic> diags_;
  Workflow wf_;
  std::vector<TemplateSite> sites_;
  std::unordered_map<std::string, YAML::Mark> node_marks_;
  std::unordered_map<std::string, YAML::Mark> needs_marks_;
  // secrets.NAME reads found in templates: the first place each is read.
  struct SiteRef {
    YAML::Mark mark;
    std::string path;
  };
  std::map<std::string, SiteRef> read_secrets_;
  bool declared_ = false;  // the document has a `secrets:` field
  size_t json_nodes_ = 0;
  bool json_overflow_ = false;
};

}  // namespace

tl::expected<Ingested, std::vector<Diagnostic>> Ingest(std::string_view source,
                                                       const IngestOptions& options) {
  Ingester ingester(source, options);
  return ingester.Run();
}

Result<Ingested> IngestWorkflow(std::string_view source, const IngestOptions& options) {
  auto r = Ingest(source, options);
  if (!r) return Fail(ErrorCode::kInvalidArgument, FormatDiagnostics(r.error()));
  return std::move(*r);
}

Result<Ingested> IngestStoredGraph(std::string_view graph) {
  IngestOptions options;
  options.allow_undeclared_secrets = true;
  return IngestWorkflow(graph, options);
}

}  // namespace ferry::engine
