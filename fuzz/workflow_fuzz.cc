// Workflow ingestion (src/engine/ingest.h), YAML and JSON alike (both go through the YAML
// parser), with the cron and zone checks `ferry apply` uses. An accepted document's canonical
// form must ingest again to the same checksum, as stored graphs are reloaded that way.
#include <optional>
#include <string>

#include "core/json.h"
#include "cron/cron.h"
#include "engine/ingest.h"
#include "fuzz_check.h"

namespace {

using ferry::fuzz::Check;

ferry::engine::IngestOptions Options() {
  ferry::engine::IngestOptions options;
  options.validate_cron = [](std::string_view expression) -> std::optional<std::string> {
    auto parsed = ferry::cron::ParseCron(expression);
    if (!parsed) return parsed.error().message;
    return std::nullopt;
  };
  options.validate_zone = [](std::string_view zone) -> std::optional<std::string> {
    auto found = ferry::cron::LocateZone(zone);
    if (!found) return found.error().message;
    return std::nullopt;
  };
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ferry::engine::IngestOptions options = Options();
  auto ingested = ferry::engine::Ingest(ferry::fuzz::Text(data, size), options);
  if (!ingested) {
    Check(!ingested.error().empty(), "a refusal has a diagnostic");
    // At most max_diagnostics problems, then one "too many problems; stopped here".
    Check(ingested.error().size() <= options.max_diagnostics + 1, "diagnostics are bounded");
    for (const auto& d : ingested.error()) Check(!d.message.empty(), "diagnostics say something");
    (void)ferry::engine::FormatDiagnostics(ingested.error());
    return 0;
  }
  Check(ingested->checksum.size() == 64, "the checksum is hex SHA-256");
  auto again = ferry::engine::IngestWorkflow(ferry::DumpJson(ingested->canonical), options);
  Check(again.has_value(), "the canonical form ingests again");
  Check(again->checksum == ingested->checksum, "the canonical form keeps its checksum");
  auto stored = ferry::engine::IngestStoredGraph(ferry::DumpJson(ingested->canonical));
  Check(stored.has_value(), "the canonical form loads as a stored graph");
  return 0;
}
