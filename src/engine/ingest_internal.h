// Internal to ingest: the Ingester behind Ingest (engine/ingest.h), declared here so that its
// parts live in one file each:
//   ingest.cc         the entry points, the document and the workflow sections (name, inputs,
//                     secrets, defaults, triggers: webhook and cron)
//   ingest_nodes.cc   nodes and the fields every node has; each kind's own fields are read by
//                     its file (node_<kind>.cc, engine/node_kinds.h)
//   ingest_checks.cc  the checks that need the whole graph: needs, cycles, templates
//   ingest_reader.cc  the YAML reading toolkit and diagnostics (engine/ingest_reader.h)
// Nothing outside src/engine/ingest*.cc includes this header.
//
// Thread-safety: one Ingester per Ingest call; not shared.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/definition.h"
#include "engine/ingest.h"
#include "engine/ingest_reader.h"

namespace ferry::engine::ingest_internal {

class Ingester final : private IngestReader {
 public:
  Ingester(std::string_view source, const IngestOptions& options)
      : IngestReader(options), src_(source) {}

  tl::expected<Ingested, std::vector<Diagnostic>> Run();

 private:
  // ---- sections (ingest.cc) ------------------------------------------------------------------

  void RunUnchecked();
  void ReadSecrets(const Field& f);
  void ReadInputs(const Field& f);
  // enum, pattern, max_length, allow_leading_dash: each must fit the input's type.
  void ReadInputConstraints(const std::unordered_map<std::string, Field>& fs,
                            const std::string& path, InputDef& in);
  std::optional<RetryPolicy> ReadRetry(const Field& f, const std::string& path, RetryPolicy base);
  void ReadDefaults(const Field& f);
  void ReadTriggers(const Field& f);
  void ReadWebhook(const Field& f);
  void ReadCron(const YAML::Node& n, const std::string& path);
  // A required input without a default that cron runs are not given (kCronRunInputs).
  void CheckCronInputs(const YAML::Node& root);
  // The shape of a cron expression; the scheduler's parser (validate_cron) checks the meaning.
  static std::optional<std::string> CronShape(const std::string& s);

  // ---- nodes (ingest_nodes.cc) ---------------------------------------------------------------

  void ReadNodes(const Field& f);
  void ReadNode(const YAML::Node& n, std::optional<std::string> map_id, const YAML::Node& at,
                size_t index = 0);

  // ---- graph (ingest_checks.cc) --------------------------------------------------------------

  void CheckGraph();
  std::set<std::string> Ancestors(int idx);
  void CheckTemplates();

  std::string_view src_;
  Workflow wf_;
  std::unordered_map<std::string, YAML::Mark> node_marks_;
  std::unordered_map<std::string, YAML::Mark> needs_marks_;
  // secrets.NAME reads found in templates: the first place each is read.
  struct SiteRef {
    YAML::Mark mark;
    std::string path;
  };
  std::map<std::string, SiteRef> read_secrets_;
  bool declared_ = false;  // the document has a `secrets:` field
};

}  // namespace ferry::engine::ingest_internal
