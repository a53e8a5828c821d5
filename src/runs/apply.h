// Applying a workflow document, the one path shared by the API, the CLI and the demo: ingestion
// (validation with line numbers, cron expressions checked by the scheduler's parser) first, then
// the store's ApplyWorkflow (a new version only when the canonical checksum changed) and
// SyncTriggers, in one transaction.
//
// Trigger keys (stable across versions, so cron fire history survives re-applies): "webhook" for
// the webhook trigger, "cron:<i>" for the i-th cron trigger. Each trigger's config is its part of
// the canonical JSON (ToCanonicalJson(...)["triggers"]).
//
// Thread-safety: uses the given Store from the caller's thread only.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "engine/ingest.h"
#include "store/store.h"

namespace ferry::runs {

struct ApplySourceRequest {
  std::string source;
  std::string format;  // "yaml" or "json"; "" = guessed ("json" when it starts with '{')
  std::string author;
  std::string notes;
  // Who applies may use these secrets (nullopt: any, e.g. an operator with store access). A
  // workflow that uses another is kPermissionDenied naming it, before anything is stored.
  std::optional<std::function<bool(const std::string& secret)>> may_use_secret;
};

struct ApplySourceResult {
  ApplyWorkflowResult applied;
  std::vector<Trigger> triggers;  // enabled after the sync
};

// Error kInvalidArgument carries the diagnostics (one per line) in its message; `diagnostics`
// receives them as values when not null.
Result<ApplySourceResult> ApplyWorkflowSource(Store& store, const ApplySourceRequest& request,
                                              std::vector<engine::Diagnostic>* diagnostics);

// The two halves of ApplyWorkflowSource, for a caller that applies inside its own transaction
// (remediation checks the version it builds on in the same transaction).
struct PreparedApply {
  ApplyWorkflowRequest apply;
  std::vector<TriggerSpec> triggers;
};
// Ingestion only; no store access. Errors as ApplyWorkflowSource's.
Result<PreparedApply> PrepareApply(const ApplySourceRequest& request,
                                   std::vector<engine::Diagnostic>* diagnostics);
// ApplyWorkflow + SyncTriggers. REQUIRES: inside a Transaction on `store`.
Result<ApplySourceResult> ApplyPrepared(Store& store, const PreparedApply& prepared);

// The trigger specs a workflow declares (see the keys above).
std::vector<TriggerSpec> TriggerSpecs(const Json& canonical);

// Ingestion options every apply path uses: cron schedules are parsed by ferry_cron.
engine::IngestOptions ApplyIngestOptions();

}  // namespace ferry::runs
