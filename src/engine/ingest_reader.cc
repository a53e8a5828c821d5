#include "engine/ingest_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <regex>

#include "core/time_util.h"

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

Json DiagnosticsJson(const std::vector<Diagnostic>& diagnostics) {
  Json list = Json::array();
  for (const auto& d : diagnostics) {
    list.push_back(
        {{"line", d.line}, {"column", d.column}, {"path", d.path}, {"message", d.message}});
  }
  return list;
}

std::vector<Diagnostic> DiagnosticsFromJson(const Json& list) {
  std::vector<Diagnostic> out;
  if (!list.is_array()) return out;
  auto number = [](const Json& d, const char* key) {
    const auto it = d.find(key);
    return it != d.end() && it->is_number_integer() && *it >= 0 && *it <= INT32_MAX ? it->get<int>()
                                                                                    : 0;
  };
  auto text = [](const Json& d, const char* key) {
    const auto it = d.find(key);
    return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  for (const auto& d : list) {
    Diagnostic diagnostic;
    if (d.is_object()) {
      diagnostic.line = number(d, "line");
      diagnostic.column = number(d, "column");
      diagnostic.path = text(d, "path");
      diagnostic.message = text(d, "message");
    } else {
      diagnostic.message = DumpJson(d);
    }
    out.push_back(std::move(diagnostic));
  }
  return out;
}

namespace ingest_internal {
namespace {

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxJsonNodes = 100'000;  // bounds alias ("billion laughs") expansion

}  // namespace

// ---- diagnostics -----------------------------------------------------------------------------

Diagnostic IngestReader::MakeDiagnostic(const YAML::Mark& mark, const std::string& path,
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

void IngestReader::Add(const YAML::Mark& mark, const std::string& path,
                       const std::string& message) {
  diags_.push_back(MakeDiagnostic(mark, path, message));
  if (diags_.size() >= opts_.max_diagnostics) throw TooManyDiagnostics{};
}

void IngestReader::Add(const YAML::Node& node, const std::string& path,
                       const std::string& message) {
  Add(node.IsDefined() ? node.Mark() : YAML::Mark::null_mark(), path, message);
}

std::string IngestReader::Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

const char* IngestReader::KindOf(const YAML::Node& n) {
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

// ---- mappings --------------------------------------------------------------------------------

std::unordered_map<std::string, Field> IngestReader::Fields(
    const YAML::Node& map, const std::string& path, const std::vector<std::string>& allowed,
    const std::unordered_map<std::string, std::string>& foreign) {
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

const Field* IngestReader::Get(const std::unordered_map<std::string, Field>& f,
                               const std::string& k) {
  auto it = f.find(k);
  return it == f.end() ? nullptr : &it->second;
}

bool IngestReader::ExpectMap(const YAML::Node& n, const std::string& path) {
  if (n.IsMap()) return true;
  Add(n, path, std::string("expected a mapping, got ") + KindOf(n));
  return false;
}

// ---- scalars ---------------------------------------------------------------------------------

bool IngestReader::IsPlain(const YAML::Node& n) { return n.Tag() == "?"; }

std::optional<std::string> IngestReader::String(const Field& f, const std::string& path) {
  if (!f.value.IsScalar()) {
    Add(f.value.IsNull() ? f.key : f.value, path,
        std::string("expected a string, got ") + KindOf(f.value));
    return std::nullopt;
  }
  return f.value.Scalar();
}

std::optional<bool> IngestReader::Bool(const Field& f, const std::string& path) {
  if (f.value.IsScalar() && IsPlain(f.value)) {
    const std::string& s = f.value.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  Add(f.value.IsNull() ? f.key : f.value, path, "expected true or false");
  return std::nullopt;
}

std::optional<int64_t> IngestReader::Int(const Field& f, const std::string& path, int64_t lo,
                                         int64_t hi) {
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

std::optional<std::chrono::milliseconds> IngestReader::Duration(const Field& f,
                                                                const std::string& path) {
  if (!f.value.IsScalar()) {
    Add(f.value.IsNull() ? f.key : f.value, path, "expected a duration such as 500ms, 30s, 5m, 2h");
    return std::nullopt;
  }
  auto d = ParseDuration(f.value.Scalar());
  if (!d) {
    Add(f.value, path, d.error().message);
    return std::nullopt;
  }
  return *d;
}

std::optional<std::vector<std::pair<std::string, YAML::Node>>> IngestReader::StringList(
    const Field& f, const std::string& path, bool allow_single) {
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

std::optional<std::map<std::string, std::string>> IngestReader::StringMap(const Field& f,
                                                                          const std::string& path,
                                                                          int node) {
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

std::optional<Json> IngestReader::ToJson(const YAML::Node& n, const std::string& path, int depth) {
  if (++json_nodes_ > kMaxJsonNodes) {
    if (!json_overflow_) Add(n, path, "document too large (aliases expand too far)");
    json_overflow_ = true;
    return std::nullopt;
  }
  if (depth > kMaxJsonDepth) {
    Add(n, path, "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return std::nullopt;
  }
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return Json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (!IsPlain(n)) return Json(s);
      if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Json(nullptr);
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

void IngestReader::JsonSites(const Json& v, const YAML::Node& n, const std::string& path,
                             int node) {
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

void IngestReader::Site(const std::string& text, const YAML::Mark& mark, const std::string& path,
                        int node, bool condition) {
  if (!condition && text.find("{{") == std::string::npos && text.find("}}") == std::string::npos) {
    return;  // plain text: nothing to check
  }
  sites_.push_back(TemplateSite{text, mark, path, node, condition});
}

}  // namespace ingest_internal
}  // namespace ferry::engine
