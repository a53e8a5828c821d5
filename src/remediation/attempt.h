// One remediation attempt on a claimed candidate:
//
//   1. checks the failed version is still the workflow's current one;
//   2. makes a fresh workspace (workspace.h) with the redacted source, failure.json, events.json
//      and instructions.md;
//   3. runs the agent (settings.agent_argv) in the sandbox (sandbox.h) with a clean environment:
//      PATH, HOME and LANG, FERRY_REMEDIATION_WORKSPACE and FERRY_REMEDIATION_CANDIDATE, and the
//      variables named by settings.agent_env, nothing else; its process group is killed at the
//      timeout or when `stop` is requested;
//   4. checks the artifacts and, for an edited source, the same ingestion as `ferry workflow
//      apply` (diagnostics kept in the candidate's result);
//   5. ends the attempt: note_only (dry run, or a class that is not fixable), fixed (a new
//      version authored `ferry-remediation`, in one transaction with the candidate's transition
//      and, with retry_after_fix, the new version's run, which is enqueued after the commit; an
//      enqueue failure is recorded on the candidate and leaves the version), or failed with the
//      reason (a next attempt after the backoff while the attempt cap allows).
//
// Every transition is conditional on the claim (owner, attempt): a claim that expired and was
// taken over, or a candidate dismissed meanwhile, ends the attempt without writing
// (AttemptOutcome::lost).
//
// Thread-safety: RunAttempt uses the given Store and Broker from the caller's thread only.
#pragma once

#include <stop_token>
#include <string>

#include "broker/broker.h"
#include "core/clock.h"
#include "core/result.h"
#include "engine/secrets.h"
#include "remediation/sandbox.h"
#include "remediation/settings.h"
#include "store/store.h"

namespace ferry::remediation {

inline constexpr std::string_view kAuthor = "ferry-remediation";

struct AttemptOptions {
  Settings settings;
  // The claim's owner (the scheduler's id).
  std::string owner;
  // Queue of the retry run's task.
  std::string run_queue = "default";
  // Paths masked in the sandbox (the store, the secrets file, the data directory, the config).
  std::vector<std::string> hide_paths;
  // Resolves the secrets the workflow references, so their values are redacted from the
  // workspace by value. Not owned; may be null.
  const engine::SecretResolver* secrets = nullptr;
  // The process environment the agent_env allow-list reads from. Empty: getenv.
  std::function<std::optional<std::string>(const std::string&)> env;
  // Backoff jitter source in [0, 1); empty: random.
  std::function<double()> jitter;
  const Clock* clock = &SystemClock::Instance();
};

struct AttemptOutcome {
  // The candidate as the attempt left it (unchanged when stopped or lost).
  Remediation remediation;
  // Stopped on request before the attempt ended: the caller releases the claim.
  bool stopped = false;
  // The claim was gone when the attempt tried to end it; nothing was written.
  bool lost = false;
  std::string workspace;  // kept when settings.keep_workspaces
};

// `claimed` is the candidate as ClaimRemediations returned it (its attempts is the claim's
// attempt number). Errors: store or broker failures that left the claim in place (it expires
// and is taken over).
Result<AttemptOutcome> RunAttempt(Store& store, Broker& broker, const Remediation& claimed,
                                  const AttemptOptions& options, std::stop_token stop);

// Whether attempts under `settings` can start at all, for the processes that run them to check
// as they start (a wrong setting would otherwise fail every candidate's attempts, one by one,
// and count against the day's cap): with remediation on and an agent given, its program must be
// on the agents' PATH, and a workspace directory given, when it is there, a directory.
// kInvalidArgument naming the setting.
Status CheckAttemptSettings(const Settings& settings);

}  // namespace ferry::remediation
