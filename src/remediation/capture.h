// Capture: records a remediation candidate for a run that was persisted as failed.
//
// The context (inputs, recent run events, the trigger) and the error are redacted (redact.h)
// before anything is stored; the values of the secrets the workflow references are redacted
// by value when a resolver is given. The fingerprint (fingerprint.h) deduplicates: while a
// candidate with it is open, the failure attaches to it (Store::RecordRemediation).
//
// Called by the `ferry.run` handler (runs::RunHandlerOptions::on_run_failed) and by run
// recovery after the run's FinishRun committed, so it never delays or undoes that transition:
// CaptureFailedRun reports its errors in the log only.
//
// Thread-safety: free functions; the Store is used from the caller's thread only.
#pragma once

#include "core/result.h"
#include "engine/secrets.h"
#include "remediation/settings.h"
#include "runs/runs.h"
#include "store/store.h"

namespace ferry::remediation {

struct CaptureOptions {
  // Resolves the `secrets.NAME` the workflow references, to redact their values. Not owned;
  // nullptr: pattern redaction only.
  const engine::SecretResolver* secrets = nullptr;
  // The most recent run events kept in the context: at most max_events (1..10000), and no
  // earlier than the one whose data, counted from the run's end, reaches max_event_bytes (each
  // may hold a node's whole output; strings are cut to max_text_bytes after the read).
  int max_events = 50;
  int64_t max_event_bytes = int64_t{4} << 20;
  // Per string in the context, and for the error.
  size_t max_text_bytes = 4096;
};

struct CaptureResult {
  Remediation remediation;
  bool created = false;  // false: attached to an open candidate
};

// kInvalidArgument when the run is not failed; store errors as they come.
Result<CaptureResult> Capture(Store& store, const Run& run, const CaptureOptions& options);

// Capture with every error logged instead of returned (for the run lifecycle hooks). Logs
// `remediation.recorded`.
void CaptureFailedRun(Store& store, const Run& run, const CaptureOptions& options) noexcept;

// The run lifecycle hook (runs::RunHandlerOptions / RecoveryOptions::on_run_failed) that
// captures each failed run; empty when remediation is disabled. `secrets` must outlive it.
runs::RunFailedHook CaptureHook(const Settings& settings, const engine::SecretResolver* secrets);

}  // namespace ferry::remediation
