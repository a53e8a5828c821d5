// Internal to ingest (ingest*.cc, and node_<kind>.cc for each node kind's fields): the YAML
// reading toolkit the Ingester is built on. It turns YAML nodes into typed values (strings,
// booleans, bounded integers, durations, enums, lists, string maps, JSON) and reports every
// problem as a Diagnostic with its line, column and path, so a section reader only says what it
// expects. It also collects the templates it meets; they are checked once the whole graph is
// known (ingest_checks.cc).
//
// Thread-safety: one reader per Ingest call; not shared.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/suggest.h"
#include "engine/ingest.h"

namespace ferry::engine::ingest_internal {

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

class IngestReader {
 public:
  // ---- diagnostics ---------------------------------------------------------------------------

  static Diagnostic MakeDiagnostic(const YAML::Mark& mark, const std::string& path,
                                   const std::string& message);
  // Throws TooManyDiagnostics once opts_.max_diagnostics are collected.
  void Add(const YAML::Mark& mark, const std::string& path, const std::string& message);
  void Add(const YAML::Node& node, const std::string& path, const std::string& message);

  static std::string Join(const std::string& path, const std::string& key);
  static const char* KindOf(const YAML::Node& n);

  // ---- mappings ------------------------------------------------------------------------------

  // Reads a mapping's fields, reporting non-string keys, duplicates and unknown names.
  // `foreign` maps field names that belong elsewhere to a hint ("it belongs to http nodes").
  std::unordered_map<std::string, Field> Fields(
      const YAML::Node& map, const std::string& path, const std::vector<std::string>& allowed,
      const std::unordered_map<std::string, std::string>& foreign = {});

  static const Field* Get(const std::unordered_map<std::string, Field>& f, const std::string& k);

  bool ExpectMap(const YAML::Node& n, const std::string& path);

  // ---- scalars -------------------------------------------------------------------------------

  static bool IsPlain(const YAML::Node& n);

  std::optional<std::string> String(const Field& f, const std::string& path);
  std::optional<bool> Bool(const Field& f, const std::string& path);
  std::optional<int64_t> Int(const Field& f, const std::string& path, int64_t lo, int64_t hi);
  std::optional<std::chrono::milliseconds> Duration(const Field& f, const std::string& path);

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
                                                                            bool allow_single);

  // A mapping of string -> string (env, headers, args).
  std::optional<std::map<std::string, std::string>> StringMap(const Field& f,
                                                              const std::string& path, int node);

  // YAML -> JSON with YAML 1.2 core scalar typing (quoted scalars are always strings).
  std::optional<Json> ToJson(const YAML::Node& n, const std::string& path, int depth);

  // Registers every string inside a JSON value (from `n`) as a template.
  void JsonSites(const Json& v, const YAML::Node& n, const std::string& path, int node);

  void Site(const std::string& text, const YAML::Mark& mark, const std::string& path, int node,
            bool condition = false);

 protected:
  explicit IngestReader(const IngestOptions& options) : opts_(options) {}

  const IngestOptions& opts_;
  std::vector<Diagnostic> diags_;
  std::vector<TemplateSite> sites_;

 private:
  size_t json_nodes_ = 0;
  bool json_overflow_ = false;
};

}  // namespace ferry::engine::ingest_internal
