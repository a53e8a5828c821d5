#include "remediation/attempt.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>

#include "core/backoff.h"
#include "core/time_util.h"
#include "process/process.h"
#include "remediation/redact.h"
#include "remediation/workspace.h"
#include "runs/apply.h"
#include "runs/runs.h"

namespace ferry::remediation {
namespace {

using std::chrono::milliseconds;

constexpr const char* kAgentPath = "/usr/local/bin:/usr/bin:/bin";
constexpr size_t kAgentOutputBytes = 64 * 1024;
constexpr size_t kStderrTailBytes = 2048;

std::string Tail(const std::string& text, size_t n) {
  if (text.size() <= n) return text;
  size_t cut = text.size() - n;
  while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) ++cut;
  return "…" + text.substr(cut);
}

std::string Substitute(std::string word, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    size_t pos = 0;
    while ((pos = word.find(key, pos)) != std::string::npos) {
      word.replace(pos, key.size(), value);
      pos += value.size();
    }
  }
  return word;
}

Json FromText(const std::string& text, Json fallback) {
  if (text.empty()) return fallback;
  auto j = ParseJson(text);
  return j ? *j : fallback;
}

class Attempt {
 public:
  Attempt(Store& store, Broker& broker, const Remediation& claimed, const AttemptOptions& options,
          std::stop_token stop)
      : store_(store),
        broker_(broker),
        c_(claimed),
        o_(options),
        s_(options.settings),
        stop_(std::move(stop)) {
    out_.remediation = claimed;
  }

  Result<AttemptOutcome> Run() {
    auto wf = store_.GetWorkflowById(c_.workflow_id);
    if (!wf) return Fail(wf.error());
    if (!*wf) return Failed("the workflow is gone", true);
    workflow_name_ = (*wf)->name;
    if ((*wf)->current_version != c_.version) {
      return Failed("version " + std::to_string(c_.version) + " failed, but " + workflow_name_ +
                        " is at version " + std::to_string((*wf)->current_version) +
                        " now; a fix must start from the current version",
                    true);
    }
    auto version = store_.GetWorkflowVersion(c_.workflow_id, c_.version);
    if (!version) return Fail(version.error());
    if (!*version) return Failed("version " + std::to_string(c_.version) + " is gone", true);
    // A fix of a fix is a person's call: each failing fix is a new version, so a new fingerprint
    // and a new candidate, and the agent would chain versions until the daily cap. Held as
    // failed without further attempts, the candidate still gathers the failures; reopened, it
    // is tried (attempt_base then counts the attempts before the reopen).
    if ((*version)->author == kAuthor && c_.attempt_base == 0) {
      return Failed("version " + std::to_string(c_.version) +
                        " is itself an automatic fix, and it fails: not fixed again "
                        "automatically; `ferry remediation reopen " +
                        c_.id + "` lets the agent try",
                    true);
    }
    format_ = (*version)->format;

    redact_ = Redaction(ResolvedSecrets((*version)->source, o_.secrets));
    base_source_ = redact_.Text((*version)->source);

    const Json context = FromText(c_.context, Json::object());
    WorkspaceFiles files;
    files.workflow_file = WorkflowFileName(format_);
    files.source = base_source_;
    files.failure = Json{{"candidate", c_.id},
                         {"workflow", workflow_name_},
                         {"version", c_.version},
                         {"workflow_file", files.workflow_file},
                         {"run_id", c_.run_id},
                         {"last_run_id", c_.last_run_id},
                         {"failed_node", c_.failed_node},
                         {"error", c_.error},
                         {"error_normalized", c_.error_normalized},
                         {"occurrences", c_.occurrences},
                         {"first_seen", FormatIsoMs(c_.first_seen_ms)},
                         {"last_seen", FormatIsoMs(c_.last_seen_ms)},
                         {"attempt", c_.attempts - c_.attempt_base},
                         {"max_attempts", s_.attempt_cap},
                         {"run", context.value("run", Json::object())},
                         {"inputs", context.value("inputs", Json::object())},
                         {"classifications",
                          {"workflow_fixable", "node_workaround", "runtime_or_platform",
                           "external_dependency", "unknown"}}};
    files.events = context.value("events", Json::array());
    auto ws = CreateWorkspace(s_.workspace_dir, c_.id, files);
    if (!ws) return Fail(ws.error());
    workspace_ = *ws;
    if (s_.keep_workspaces) out_.workspace = workspace_;
    auto result = RunInWorkspace(files.workflow_file);
    if (!s_.keep_workspaces) RemoveWorkspace(workspace_);
    return result;
  }

 private:
  Result<AttemptOutcome> RunInWorkspace(const std::string& workflow_file) {
    if (stop_.stop_requested()) {
      out_.stopped = true;
      return out_;
    }
    const std::string ws = workspace_;
    const std::map<std::string, std::string> values = {
        {"{workspace}", ws},
        {"{workflow_file}", (std::filesystem::path(ws) / workflow_file).string()},
        {"{instructions}", (std::filesystem::path(ws) / std::string(kInstructionsFile)).string()},
        {"{candidate}", c_.id}};
    std::vector<std::string> argv;
    for (const auto& w : s_.agent_argv) argv.push_back(Substitute(w, values));

    SandboxOptions sandbox;
    sandbox.mode = s_.sandbox;
    sandbox.network = s_.agent_network;
    sandbox.read_paths = s_.agent_read_paths;
    sandbox.hide_paths = o_.hide_paths;
    const SandboxProbe& probe = s_.sandbox == SandboxMode::kNone ? SandboxProbe{} : ProbeSandbox();
    auto launch = WrapAgent(argv, ws, kAgentPath, sandbox, probe);
    if (!launch) return Failed("the agent cannot start: " + launch.error().message, false);
    result_["sandboxed"] = launch->sandboxed;
    if (!launch->sandboxed) {
      spdlog::warn(
          "remediation {}: the agent runs without a sandbox ({}); it can read what this "
          "process's user can",
          c_.id, s_.sandbox == SandboxMode::kNone ? "remediation-sandbox=none" : probe.detail);
    }

    ProcessSpec spec;
    spec.argv = launch->argv;
    spec.clear_env = true;
    spec.env = AgentEnv(ws);
    spec.cwd = ws;
    spec.timeout = s_.agent_timeout;
    spec.max_output_bytes = kAgentOutputBytes;
    auto ran = RunProcess(spec, stop_);
    if (!ran) return Failed("the agent cannot start: " + ran.error().message, false);
    agent_ms_ = ran->duration.count();
    if (ran->stopped) {
      out_.stopped = true;
      return out_;
    }
    result_["agent"] =
        Json{{"exit_code", ran->exit_code},
             {"signal", ran->signal},
             {"duration_ms", agent_ms_},
             {"timed_out", ran->timed_out},
             {"stderr_tail", redact_.Text(Tail(ran->stderr_text, kStderrTailBytes))}};
    if (ran->timed_out) {
      return Failed("the agent did not finish within " + FormatDuration(s_.agent_timeout) +
                        "; its process group was killed",
                    false);
    }
    if (ran->exit_code != 0) {
      std::string why = ran->signal != 0 ? "was killed by signal " + std::to_string(ran->signal)
                                         : "exited with status " + std::to_string(ran->exit_code);
      return Failed("the agent " + why, false);
    }
    auto artifacts = ReadArtifacts(ws, workflow_file, base_source_);
    if (!artifacts) return Failed("invalid artifacts: " + artifacts.error().message, false);
    a_ = std::move(*artifacts);
    result_["artifacts"] = a_.hashes;

    std::optional<runs::PreparedApply> prepared;
    if (a_.edited_source) {
      proposed_ = *a_.edited_source;
      if (Redaction::HasMarker(proposed_)) {
        return Failed("the edited source still holds [REDACTED] placeholders", false);
      }
      runs::ApplySourceRequest req;
      req.source = proposed_;
      req.format = format_;
      req.author = std::string(kAuthor);
      req.notes = "remediation " + c_.id + ": source run " + c_.run_id + ", classification " +
                  a_.classification + ": " + a_.summary;
      std::vector<engine::Diagnostic> diagnostics;
      auto p = runs::PrepareApply(req, &diagnostics);
      if (!p) {
        result_["diagnostics"] = engine::DiagnosticsJson(diagnostics);
        return Failed("the edited source does not pass ingestion: " + p.error().message, false);
      }
      if (p->apply.name != workflow_name_) {
        return Failed("the edited source names workflow '" + p->apply.name + "', not '" +
                          workflow_name_ + "'",
                      false);
      }
      prepared = std::move(*p);
    }
    result_["dry_run"] = s_.dry_run;
    if (!prepared || s_.dry_run) {
      result_["would_fix"] = prepared.has_value();
      return End(RemediationStatus::kNoteOnly, "", 0, "");
    }
    return Fix(*prepared);
  }

  std::map<std::string, std::string> AgentEnv(const std::string& ws) const {
    std::map<std::string, std::string> env = {{"PATH", kAgentPath},
                                              {"HOME", ws},
                                              {"LANG", "C.UTF-8"},
                                              {"FERRY_REMEDIATION_WORKSPACE", ws},
                                              {"FERRY_REMEDIATION_CANDIDATE", c_.id}};
    for (const auto& name : s_.agent_env) {
      std::optional<std::string> v;
      if (o_.env) {
        v = o_.env(name);
      } else if (const char* e = std::getenv(name.c_str())) {
        v = e;
      }
      if (v) env[name] = *v;
    }
    return env;
  }

  Result<AttemptOutcome> Fix(const runs::PreparedApply& prepared) {
    std::string retry_run_id;
    std::string retry_error;
    int fixed_version = 0;
    // Why the fix was not applied; recorded after the transaction rolled back.
    std::optional<std::pair<std::string, bool>> refused;
    {
      auto tx = store_.Begin();
      if (!tx) return Fail(tx.error());
      auto applied = runs::ApplyPrepared(store_, prepared);
      if (!applied) {
        if (applied.error().Retryable()) return Fail(applied.error());
        refused.emplace("the fix could not be stored: " + applied.error().message, false);
      } else if (!applied->applied.created) {
        refused.emplace("the edited source defines the same workflow as version " +
                            std::to_string(applied->applied.version.version) +
                            " (only formatting or comments changed)",
                        false);
      } else if (applied->applied.version.version != c_.version + 1) {
        refused.emplace("the workflow moved past version " + std::to_string(c_.version) +
                            " meanwhile; the fix was not applied",
                        true);
      }
      if (!refused) {
        fixed_version = applied->applied.version.version;
        if (s_.retry_after_fix) {
          auto source = store_.GetRun(c_.run_id);
          if (!source) return Fail(source.error());
          if (!*source) {
            retry_error = "the failed run " + c_.run_id + " no longer exists; no retry";
          } else {
            CreateRunRequest create;
            create.workflow_id = c_.workflow_id;
            create.version = fixed_version;
            create.inputs = (*source)->inputs;
            create.triggered_by = TriggeredBy::kRemediation;
            create.trigger_id = c_.id;
            create.first_event.type = runs::kEventCreated;
            create.first_event.data = DumpJson(Json{{"triggered_by", "remediation"},
                                                    {"version", fixed_version},
                                                    {"remediation", c_.id},
                                                    {"retry_of", c_.run_id}});
            auto run = store_.CreateRun(create);
            if (!run) return Fail(run.error());
            retry_run_id = run->id;
            retry_run_ = *run;
          }
        }
        result_["fixed_version"] = fixed_version;
        auto ended = End(RemediationStatus::kFixed, "", fixed_version, retry_run_id);
        if (!ended || ended->lost) return ended;
        if (auto st = (*tx)->Commit(); !st) return Fail(st.error());
      }
    }
    if (refused) return Failed(refused->first, refused->second);
    spdlog::info("remediation.fixed id={} workflow={} version={} classification={} retry_run={}",
                 c_.id, workflow_name_, fixed_version, a_.classification,
                 retry_run_id.empty() ? "-" : retry_run_id);
    if (retry_run_) {
      runs::EnsureTaskOptions task;
      task.queue = o_.run_queue;
      task.reason = "remediation";
      auto ensured = runs::EnsureRunTask(store_, broker_, *retry_run_, task);
      if (!ensured) {
        retry_error = "the retry run " + retry_run_->id +
                      " is stored but could not be enqueued (the sweeper retries it): " +
                      ensured.error().message;
        spdlog::warn("remediation {}: {}", c_.id, retry_error);
      }
    }
    if (!retry_error.empty()) {
      if (auto st = store_.SetRemediationRetryError(c_.id, retry_error); st) {
        out_.remediation.retry_error = retry_error;
      }
    }
    return out_;
  }

  // Ends the attempt as failed. `final`: no further attempt helps (the version moved on).
  Result<AttemptOutcome> Failed(const std::string& reason, bool final) {
    const int used = c_.attempts - c_.attempt_base;
    const bool last = final || used >= s_.attempt_cap;
    int64_t next = 0;
    if (!last) {
      BackoffPolicy policy{s_.backoff, std::chrono::hours(24)};
      const double r = o_.jitter ? o_.jitter() : -1;
      const milliseconds d = r >= 0 ? BackoffDelay(policy, used, r) : BackoffDelay(policy, used);
      next = std::max<int64_t>(1, o_.clock->NowMs() + d.count());
    }
    return End(RemediationStatus::kFailed, reason, next, "");
  }

  Result<AttemptOutcome> End(RemediationStatus status, const std::string& reason,
                             int64_t next_or_version, const std::string& retry_run_id) {
    FinishRemediationRequest f;
    f.id = c_.id;
    f.owner = o_.owner;
    f.attempt = c_.attempts;
    f.status = status;
    f.classification = a_.classification;
    f.summary = a_.summary;
    f.confidence = a_.confidence;
    f.note = a_.note;
    f.reason = reason;
    f.result = DumpJson(result_);
    f.base_source = base_source_;
    f.proposed_source = proposed_;
    f.agent_ms = agent_ms_;
    if (status == RemediationStatus::kFailed) f.next_attempt_ms = next_or_version;
    if (status == RemediationStatus::kFixed) {
      f.fixed_version = static_cast<int>(next_or_version);
      f.retry_run_id = retry_run_id;
    }
    auto done = store_.FinishRemediation(f);
    if (!done) {
      if (done.error().code != ErrorCode::kConflict) return Fail(done.error());
      out_.lost = true;
      spdlog::warn("remediation.lost id={} attempt={}: {}", c_.id, c_.attempts,
                   done.error().message);
      return out_;
    }
    out_.remediation = *done;
    if (status == RemediationStatus::kNoteOnly) {
      spdlog::info(
          "remediation.note_only id={} workflow={} classification={} dry_run={} "
          "would_fix={}",
          c_.id, workflow_name_, a_.classification, s_.dry_run ? "yes" : "no",
          result_.value("would_fix", false) ? "yes" : "no");
    } else if (status == RemediationStatus::kFailed) {
      spdlog::info("remediation.failed id={} workflow={} attempt={} next_attempt={} reason=\"{}\"",
                   c_.id, workflow_name_, c_.attempts - c_.attempt_base,
                   done->next_attempt_ms > 0 ? FormatIsoMs(done->next_attempt_ms) : "none", reason);
    }
    return out_;
  }

  Store& store_;
  Broker& broker_;
  const Remediation& c_;
  const AttemptOptions& o_;
  const Settings& s_;
  std::stop_token stop_;

  AttemptOutcome out_;
  std::string workflow_name_;
  std::string format_;
  Redaction redact_;
  std::string base_source_;
  std::string proposed_;
  std::string workspace_;
  Artifacts a_;
  Json result_ = Json::object();
  int64_t agent_ms_ = -1;
  std::optional<ferry::Run> retry_run_;
};

}  // namespace

Result<AttemptOutcome> RunAttempt(Store& store, Broker& broker, const Remediation& claimed,
                                  const AttemptOptions& options, std::stop_token stop) {
  if (options.settings.agent_argv.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "no agent command configured");
  }
  return Attempt(store, broker, claimed, options, std::move(stop)).Run();
}

Status CheckAttemptSettings(const Settings& settings) {
  if (!settings.enabled) return {};
  if (!settings.agent_argv.empty() && !FindProgram(settings.agent_argv[0], kAgentPath)) {
    return Fail(ErrorCode::kInvalidArgument,
                "remediation-agent: the agent program '" + settings.agent_argv[0] +
                    "' is not found or not executable (agents are looked up on " + kAgentPath +
                    ")");
  }
  // One not there yet is made by the first attempt; one that is there must be a directory.
  std::error_code ec;
  if (!settings.workspace_dir.empty() && std::filesystem::exists(settings.workspace_dir, ec) &&
      !std::filesystem::is_directory(settings.workspace_dir, ec)) {
    return Fail(ErrorCode::kInvalidArgument,
                "remediation-workspace-dir: " + settings.workspace_dir + " is not a directory");
  }
  return {};
}

}  // namespace ferry::remediation
