// Ingestion: parse and validate a workflow definition (YAML, or JSON, which is read by the same
// YAML parser so both get line numbers) before anything is stored.
//
// Every problem is collected, not just the first, each with a 1-based line and column: unknown
// fields (with a "did you mean"), wrong types, missing fields, needs that name no node, cycles
// (with the cycle's path), duplicate ids, templates that do not parse or read something they may
// not (a node that is not a transitive dependency, an undeclared input, an unknown root), Lua
// that does not compile, bad durations, malformed triggers.
//
// Garbage input never crashes or hangs: the source size, YAML nesting, alias expansion and the
// number of diagnostics are all bounded, and parser exceptions are caught here.
//
// Thread-safety: Ingest is a pure function; call it from any thread.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "engine/definition.h"

namespace ferry::engine {

struct Diagnostic {
  int line = 0;      // 1-based; 0 when the problem has no position (e.g. an empty document)
  int column = 0;    // 1-based
  std::string path;  // e.g. "nodes.build.needs[1]"
  std::string message;
  // "line 12, column 5: nodes.build.needs[1]: no node 'tset' (did you mean 'test'?)"
  std::string ToString() const;
};

// Hook for the scheduler's cron parser: returns an error message for a bad expression.
using CronValidator = std::function<std::optional<std::string>(std::string_view expression)>;

// Hook for the time zone database: returns an error message for an unknown zone name.
using ZoneValidator = std::function<std::optional<std::string>(std::string_view zone)>;
// Hook for the scheduler's time parser: returns an error message for a time that is none (a
// day the month does not have, an hour 25), though shaped as ISO 8601.
using TimeValidator = std::function<std::optional<std::string>(std::string_view time)>;

// The largest definition Ferry takes (docs/workflows.md). The CLI refuses a larger file before
// reading it whole, with the same words (SourceTooLarge).
inline constexpr size_t kMaxSourceBytes = 1 << 20;

// "definition larger than 1048576 bytes (1 MiB)": the one message for a definition too large.
std::string SourceTooLarge(size_t max_bytes);

struct IngestOptions {
  // Larger sources are rejected outright.
  size_t max_source_bytes = kMaxSourceBytes;
  // Called for each cron trigger's schedule once its shape looks right; unset: shape check only.
  CronValidator validate_cron;
  // Called for each cron trigger's timezone once its shape looks right; unset: shape check only.
  ZoneValidator validate_zone;
  // Called for each cron trigger's start and end once its shape looks right; unset: shape only.
  TimeValidator validate_time;
  // Stop collecting after this many problems.
  size_t max_diagnostics = 100;
  // Treat every secrets.NAME a template reads as declared when the document has no `secrets:`
  // at all: only for graphs stored before declarations existed (IngestStoredGraph).
  bool allow_undeclared_secrets = false;
  // Refuse a cron trigger on a workflow with a required input that cron runs are not given
  // (kCronRunInputs). Off for stored graphs: one applied before the check still loads, and its
  // occurrences are recorded without a run (docs/scheduler.md).
  bool check_cron_inputs = true;
};

struct Ingested {
  Workflow workflow;
  Json canonical;        // ToCanonicalJson(workflow)
  std::string checksum;  // lowercase hex SHA-256 of the compact canonical JSON
};

// The checksum covers the canonical form, not the source text: reformatting, reordering keys,
// comments, or converting YAML to JSON do not make a new version; any change in meaning does.
tl::expected<Ingested, std::vector<Diagnostic>> Ingest(std::string_view source,
                                                       const IngestOptions& options = {});

// Same, with the diagnostics joined into one kInvalidArgument error (one per line).
Result<Ingested> IngestWorkflow(std::string_view source, const IngestOptions& options = {});

// Re-reads a canonical graph Ferry stored after ingesting it (WorkflowVersion::graph).
Result<Ingested> IngestStoredGraph(std::string_view graph);

std::string FormatDiagnostics(const std::vector<Diagnostic>& diagnostics);

// The one JSON shape of diagnostics, as the API answers an invalid definition:
// [{"line": 5, "column": 3, "path": "nodes.a.needs[0]", "message": "..."}], and back (an entry
// not of that shape, from a server of another version, reads as a diagnostic with no position).
Json DiagnosticsJson(const std::vector<Diagnostic>& diagnostics);
std::vector<Diagnostic> DiagnosticsFromJson(const Json& list);

}  // namespace ferry::engine
