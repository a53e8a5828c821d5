#include "engine/executor.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "core/backoff.h"
#include "core/sleep.h"
#include "core/time_util.h"
#include "engine/http_client.h"
#include "engine/template.h"
#include "process/process.h"

namespace ferry::engine {

std::string_view StepStatusName(StepStatus s) {
  switch (s) {
    case StepStatus::kSucceeded:
      return "succeeded";
    case StepStatus::kFailed:
      return "failed";
    case StepStatus::kSkipped:
      return "skipped";
  }
  return "failed";
}

std::string_view RunOutcomeName(RunOutcome::Kind k) {
  switch (k) {
    case RunOutcome::Kind::kSucceeded:
      return "succeeded";
    case RunOutcome::Kind::kFailed:
      return "failed";
    case RunOutcome::Kind::kCancelled:
      return "cancelled";
    case RunOutcome::Kind::kAborted:
      return "aborted";
  }
  return "failed";
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Requests `target` once `d` passes, unless destroyed first. One per attempt with a timeout.
class AttemptTimer {
 public:
  AttemptTimer(milliseconds d, std::stop_source target) {
    if (d.count() <= 0) return;
    thread_ = std::jthread([this, d, target](std::stop_token st) mutable {
      if (SleepFor(st, d)) {
        fired_ = true;
        target.request_stop();
      }
    });
  }
  bool Fired() const { return fired_; }

 private:
  std::atomic<bool> fired_{false};
  std::jthread thread_;  // last: joined before fired_ goes away
};

struct NodeError {
  Error error;
  bool retryable = true;
  Json output;  // what the node produced before failing (shell exit status, http response)
};
using NodeResult = tl::expected<Json, NodeError>;

tl::unexpected<NodeError> NodeFail(ErrorCode code, std::string message, bool retryable,
                                   Json output = nullptr) {
  return tl::unexpected<NodeError>(
      NodeError{Error{code, std::move(message)}, retryable, std::move(output)});
}
tl::unexpected<NodeError> NodeFail(Error e, bool retryable) {
  return tl::unexpected<NodeError>(NodeError{std::move(e), retryable, nullptr});
}

struct Finished {
  std::string id;
  NodeResult result;
  int attempt = 1;
  bool cancelled = false;
};

// One run's execution: the coordinator (Run) plus a thread per running node.
class Execution {
 public:
  Execution(const Workflow& wf, const ExecutorOptions& opts, const RunContext& ctx, RunSink& sink)
      : wf_(wf), opts_(opts), ctx_(ctx), sink_(sink) {}

  RunOutcome Run(const std::map<std::string, StepRecord>& checkpoints, std::stop_token run_stop) {
    // Every secret the definition names is masked, even before a template resolves it, so a
    // value that leaks through another path (a shell command printing its env) is caught.
    if (opts_.secrets != nullptr) {
      for (const auto& name : wf_.secret_names) {
        if (auto v = opts_.secrets->Resolve(name)) redactor_.Add(*v);
      }
    }
    std::stop_callback on_run_stop(run_stop, [this] { nodes_stop_.request_stop(); });

    RunOutcome outcome;
    std::vector<const NodeDef*> pending;
    for (const auto& n : wf_.nodes) {
      auto it = checkpoints.find(n.id);
      if (it == checkpoints.end()) {
        pending.push_back(&n);
        continue;
      }
      done_[n.id] = it->second;
      if (it->second.status == StepStatus::kFailed && failed_node_.empty()) {
        failed_node_ = n.id;
        failed_error_ = it->second.error;
      }
    }

    std::map<std::string, std::jthread> threads;
    while (true) {
      // Start what is ready; rescan while skips settle nodes at once and free up more.
      bool pass_progressed = true;
      while (pass_progressed) {
        pass_progressed = false;
        for (auto it = pending.begin(); it != pending.end();) {
          if (!failed_node_.empty() || aborted_ || run_stop.stop_requested()) break;
          if (static_cast<int>(threads.size()) >= opts_.max_parallelism) break;
          const NodeDef& node = **it;
          if (!Ready(node)) {
            ++it;
            continue;
          }
          it = pending.erase(it);
          pass_progressed = true;
          StartOrSettle(node, threads);
        }
      }
      if (threads.empty()) break;
      Finished f;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !finished_.empty(); });
        f = std::move(finished_.front());
        finished_.pop_front();
      }
      threads.erase(f.id);  // joins; the thread has already handed over its result
      Settle(f);
    }
    nodes_stop_.request_stop();
    threads.clear();

    if (aborted_) {
      outcome.kind = RunOutcome::Kind::kAborted;
      outcome.error = abort_error_;
    } else if (!failed_node_.empty()) {
      outcome.kind = RunOutcome::Kind::kFailed;
      outcome.failed_node = failed_node_;
      outcome.error = failed_error_;
    } else if (!pending.empty() || done_.size() < wf_.nodes.size()) {
      outcome.kind = RunOutcome::Kind::kCancelled;
      outcome.error = "cancelled";
    } else {
      outcome.kind = RunOutcome::Kind::kSucceeded;
    }
    for (const auto& [id, rec] : done_) {
      if (rec.status == StepStatus::kSucceeded) outcome.outputs[id] = rec.output;
    }
    return outcome;
  }

 private:
  bool Ready(const NodeDef& n) const {
    return std::all_of(n.needs.begin(), n.needs.end(),
                       [&](const std::string& id) { return done_.count(id) != 0; });
  }

  // Skips, fails or starts a ready node. Returns false when the run must stop starting nodes.
  bool StartOrSettle(const NodeDef& node, std::map<std::string, std::jthread>& threads) {
    for (const auto& need : node.needs) {
      if (done_[need].status != StepStatus::kSucceeded) {
        return Record(node.id, StepStatus::kSkipped, nullptr,
                      "skipped: needs '" + need + "', which was skipped", 0);
      }
    }
    Json scope_root = ScopeRoot();
    if (!node.when.empty()) {
      auto cond = ParseCondition(node.when);
      Result<Json> value =
          cond ? cond->Render(MakeScope(scope_root)) : Result<Json>(Fail(cond.error()));
      if (!value) {
        return Record(node.id, StepStatus::kFailed, nullptr,
                      redactor_.RedactText("when: " + value.error().message), 1);
      }
      if (!Truthy(*value)) {
        return Record(node.id, StepStatus::kSkipped, nullptr, "skipped: when was false", 0);
      }
    }
    threads.emplace(node.id, std::jthread([this, &node, root = std::move(scope_root)] {
                      Finished f = RunNode(node, root);
                      {
                        std::lock_guard lock(mu_);
                        finished_.push_back(std::move(f));
                      }
                      cv_.notify_one();
                    }));
    return true;
  }

  void Settle(Finished& f) {
    if (f.cancelled) return;  // interrupted, not finished: it runs again on resume
    if (f.result) {
      Record(f.id, StepStatus::kSucceeded, std::move(*f.result), "", f.attempt);
    } else {
      Record(f.id, StepStatus::kFailed, std::move(f.result.error().output),
             f.result.error().error.message, f.attempt);
    }
  }

  // Saves a finished step (redacted) and remembers it. False when the run must stop.
  bool Record(const std::string& id, StepStatus status, Json output, std::string error,
              int attempt) {
    StepRecord rec{status, redactor_.RedactJson(output), redactor_.RedactText(error), attempt};
    if (status == StepStatus::kSkipped) {
      sink_.Emit("node.finished", Json{{"node", id},
                                       {"status", "skipped"},
                                       {"attempt", 0},
                                       {"duration_ms", 0},
                                       {"reason", rec.error}});
      rec.error.clear();
    }
    if (auto s = sink_.SaveStep(id, status, rec.output, rec.error, attempt); !s) {
      aborted_ = true;
      abort_error_ = "checkpoint for node '" + id + "' not saved: " + s.error().message;
      nodes_stop_.request_stop();
      return false;
    }
    done_[id] = std::move(rec);
    if (status == StepStatus::kFailed) {
      if (failed_node_.empty()) {
        failed_node_ = id;
        failed_error_ = done_[id].error;
      }
      nodes_stop_.request_stop();
      return false;
    }
    return true;
  }

  Json ScopeRoot() const {
    Json nodes = Json::object();
    for (const auto& [id, rec] : done_) {
      nodes[id] = Json{{"output", rec.output}, {"status", StepStatusName(rec.status)}};
    }
    return Json{{"inputs", ctx_.inputs},
                {"nodes", std::move(nodes)},
                {"run", Json{{"id", ctx_.run_id},
                             {"workflow", ctx_.workflow},
                             {"triggered_by", ctx_.triggered_by}}},
                {"trigger", ctx_.trigger}};
  }

  Scope MakeScope(const Json& root) {
    Scope s;
    s.root = &root;
    s.secret = [this](const std::string& name) -> std::optional<std::string> {
      // Only what the applied definition names: that is what its applier was allowed to use.
      if (opts_.secrets == nullptr ||
          !std::binary_search(wf_.secret_names.begin(), wf_.secret_names.end(), name)) {
        return std::nullopt;
      }
      auto v = opts_.secrets->Resolve(name);
      if (v) redactor_.Add(*v);
      return v;
    };
    return s;
  }

  void Log(const std::string& node, const std::string& message, const char* stream,
           std::atomic<int>& count) {
    int n = ++count;
    if (n > opts_.max_log_events_per_node) {
      if (n == opts_.max_log_events_per_node + 1) {
        sink_.Emit("node.log", Json{{"node", node}, {"message", "(further log lines dropped)"}});
      }
      return;
    }
    Json data{{"node", node}, {"message", redactor_.RedactText(message)}};
    if (stream != nullptr) data["stream"] = stream;
    sink_.Emit("node.log", data);
  }

  // Runs a node's attempts on its own thread.
  Finished RunNode(const NodeDef& node, const Json& root) {
    std::stop_token node_stop = nodes_stop_.get_token();
    Finished f;
    f.id = node.id;
    std::atomic<int> log_count{0};
    for (int attempt = 1;; ++attempt) {
      f.attempt = attempt;
      auto started = Clock::now();
      sink_.Emit("node.started",
                 Json{{"node", node.id}, {"kind", NodeKindName(node.kind)}, {"attempt", attempt}});
      std::stop_source attempt_source;
      std::stop_callback link(node_stop, [&attempt_source] { attempt_source.request_stop(); });
      NodeResult r;
      bool timed_out = false;
      {
        AttemptTimer timer(node.timeout, attempt_source);
        r = Execute(node, root, attempt, attempt_source.get_token(), log_count);
        timed_out = timer.Fired();
      }
      if (!r && timed_out) {
        r = NodeFail(ErrorCode::kTimeout,
                     "timed out after " + std::to_string(node.timeout.count()) + "ms", true,
                     std::move(r.error().output));
      } else if (!r && node_stop.stop_requested()) {
        f.cancelled = true;
        sink_.Emit("node.finished",
                   Json{{"node", node.id}, {"status", "interrupted"}, {"attempt", attempt}});
        return f;
      }
      auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - started).count();
      if (r) {
        sink_.Emit("node.finished", Json{{"node", node.id},
                                         {"status", "succeeded"},
                                         {"attempt", attempt},
                                         {"duration_ms", ms}});
        f.result = redactor_.RedactJson(*r);
        return f;
      }
      std::string error = redactor_.RedactText(r.error().error.message);
      bool last = attempt >= node.retry.max_attempts || !r.error().retryable;
      if (last) {
        sink_.Emit("node.finished", Json{{"node", node.id},
                                         {"status", "failed"},
                                         {"attempt", attempt},
                                         {"duration_ms", ms},
                                         {"error", error}});
        f.result = std::move(r);
        return f;
      }
      auto delay = BackoffDelay(node.retry.backoff, attempt);
      delay = milliseconds(
          static_cast<int64_t>(static_cast<double>(delay.count()) * opts_.backoff_scale));
      sink_.Emit("node.retrying", Json{{"node", node.id},
                                       {"attempt", attempt},
                                       {"delay_ms", delay.count()},
                                       {"error", error}});
      if (!SleepFor(node_stop, delay)) {
        f.cancelled = true;
        return f;
      }
    }
  }

  NodeResult Execute(const NodeDef& node, const Json& root, int attempt, std::stop_token stop,
                     std::atomic<int>& log_count) {
    Scope scope = MakeScope(root);
    auto render = [&](const std::string& text) -> Result<std::string> {
      auto t = Template::Parse(text);
      if (!t) return Fail(t.error());
      return t->RenderString(scope);
    };
    auto render_map = [&](const std::map<std::string, std::string>& m)
        -> Result<std::map<std::string, std::string>> {
      std::map<std::string, std::string> out;
      for (const auto& [k, v] : m) {
        auto r = render(v);
        if (!r) return Fail(ErrorCode::kInvalidArgument, k + ": " + r.error().message);
        out[k] = std::move(*r);
      }
      return out;
    };
    // Template errors are the definition's or the inputs' fault: retrying cannot help.
    auto template_error = [](const Error& e) { return NodeFail(e, false); };

    switch (node.kind) {
      case NodeKind::kShell: {
        const auto& s = std::get<ShellSpec>(node.spec);
        ProcessSpec ps;
        for (const auto& a : s.argv) {
          auto r = render(a);
          if (!r) return template_error(r.error());
          ps.argv.push_back(std::move(*r));
        }
        auto env = render_map(s.env);
        if (!env) return template_error(env.error());
        ps.env = std::move(*env);
        // The worker's environment holds FERRY_SECRET_* values: never hand it to user programs.
        ps.clear_env = true;
        auto cwd = render(s.cwd);
        if (!cwd) return template_error(cwd.error());
        ps.cwd = std::move(*cwd);
        auto in = render(s.stdin_data);
        if (!in) return template_error(in.error());
        ps.stdin_data = std::move(*in);
        ps.max_output_bytes = opts_.max_output_bytes;
        ps.on_line = [&](bool is_stderr, const std::string& line) {
          Log(node.id, line, is_stderr ? "stderr" : "stdout", log_count);
        };
        auto r = RunProcess(ps, stop);
        if (!r) {
          bool retry = r.error().code == ErrorCode::kInternal;
          return NodeFail(r.error(), retry);
        }
        if (r->stopped) return NodeFail(ErrorCode::kCancelled, "stopped", false);
        Json out{
            {"exit_code", r->exit_code}, {"stdout", r->stdout_text}, {"stderr", r->stderr_text}};
        if (r->signal != 0) out["signal"] = r->signal;
        if (r->stdout_truncated) out["stdout_truncated"] = true;
        if (r->stderr_truncated) out["stderr_truncated"] = true;
        if (auto j = ParseJson(r->stdout_text)) out["json"] = std::move(*j);
        if (r->exit_code != 0) {
          std::string tail = r->stderr_text.size() > 500
                                 ? r->stderr_text.substr(r->stderr_text.size() - 500)
                                 : r->stderr_text;
          std::string why = r->signal != 0 ? "killed by signal " + std::to_string(r->signal)
                                           : "exit code " + std::to_string(r->exit_code);
          return NodeFail(ErrorCode::kInternal,
                          ps.argv[0] + ": " + why + (tail.empty() ? "" : ": " + tail), true,
                          std::move(out));
        }
        return out;
      }
      case NodeKind::kHttp: {
        const auto& h = std::get<HttpSpec>(node.spec);
        auto url = render(h.url);
        if (!url) return template_error(url.error());
        auto headers = render_map(h.headers);
        if (!headers) return template_error(headers.error());
        std::optional<Json> body;
        if (h.body) {
          auto b = RenderJsonTemplates(*h.body, scope);
          if (!b) return template_error(b.error());
          body = std::move(*b);
        }
        std::vector<std::pair<std::string, std::string>> hv(headers->begin(), headers->end());
        HttpRequest req = BuildHttpRequest(h.method, *url, hv, body ? &*body : nullptr);
        req.timeout = node.timeout;
        auto resp = PerformHttp(req, stop);
        if (!resp) {
          if (resp.error().code == ErrorCode::kCancelled) return NodeFail(resp.error(), false);
          return NodeFail(resp.error(), resp.error().code != ErrorCode::kInvalidArgument);
        }
        Json out = HttpResponseToJson(*resp);
        bool ok = h.expect_status.empty()
                      ? (resp->status >= 200 && resp->status < 300)
                      : std::find(h.expect_status.begin(), h.expect_status.end(),
                                  static_cast<int>(resp->status)) != h.expect_status.end();
        if (!ok) {
          return NodeFail(ErrorCode::kInternal,
                          "unexpected HTTP status " + std::to_string(resp->status), true,
                          std::move(out));
        }
        return out;
      }
      case NodeKind::kLua: {
        const auto& l = std::get<LuaSpec>(node.spec);
        auto args = render_map(l.args);
        if (!args) return template_error(args.error());
        LuaEnvironment env;
        env.inputs = root.value("inputs", Json::object());
        env.nodes = root.value("nodes", Json::object());
        env.run = root.value("run", Json::object());
        env.args = Json::object();
        for (auto& [k, v] : *args) env.args[k] = v;
        env.log = [&](const std::string& line) { Log(node.id, line, nullptr, log_count); };
        LuaProgram prog{l.script, "nodes." + node.id + ".script", l.script_line};
        auto r = RunLua(prog, env, opts_.lua, stop);
        if (!r) return NodeFail(r.error(), r.error().code != ErrorCode::kCancelled);
        return std::move(*r);
      }
      case NodeKind::kDelay: {
        const auto& d = std::get<DelaySpec>(node.spec);
        auto deadline = sink_.DelayDeadline(node.id, attempt, d.duration);
        if (!deadline) return NodeFail(deadline.error(), true);
        if (!SleepFor(stop, milliseconds(*deadline - WallNowMs()))) {
          return NodeFail(ErrorCode::kCancelled, "stopped", false);
        }
        // Counted from when the delay first began, in this execution or one before a crash.
        const int64_t began = *deadline - d.duration.count();
        return Json{{"waited_ms", WallNowMs() - began}, {"deadline_ms", *deadline}};
      }
      case NodeKind::kFail: {
        const auto& fl = std::get<FailSpec>(node.spec);
        auto msg = render(fl.message);
        if (!msg) return template_error(msg.error());
        return NodeFail(ErrorCode::kInvalidArgument, *msg, false);
      }
      case NodeKind::kTask: {
        const auto& t = std::get<TaskSpec>(node.spec);
        auto payload = RenderJsonTemplates(t.payload, scope);
        if (!payload) return template_error(payload.error());
        TaskNodeRequest req;
        req.run_id = ctx_.run_id;
        req.node_id = node.id;
        req.queue = t.queue;
        req.kind = t.kind;
        req.payload = std::move(*payload);
        req.max_attempts = t.max_attempts;
        req.timeout = t.timeout;
        req.unique_key = "ferry.run:" + ctx_.run_id + ":" + node.id + ":" + std::to_string(attempt);
        auto r = sink_.SubmitAndWait(req, stop);
        if (!r)
          return NodeFail(r.error(),
                          r.error().Retryable() || r.error().code == ErrorCode::kInternal);
        return std::move(*r);
      }
    }
    return NodeFail(ErrorCode::kInternal, "unknown node kind", false);
  }

  const Workflow& wf_;
  const ExecutorOptions& opts_;
  const RunContext& ctx_;
  RunSink& sink_;
  Redactor redactor_;
  std::stop_source nodes_stop_;  // every running node's attempts hang off this

  // Coordinator-only state (touched by Run's thread alone).
  std::map<std::string, StepRecord> done_;
  std::string failed_node_;
  std::string failed_error_;
  bool aborted_ = false;
  std::string abort_error_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Finished> finished_;  // Guarded by mu_
};

}  // namespace

RunExecutor::RunExecutor(const Workflow& workflow, ExecutorOptions options)
    : workflow_(workflow), options_(std::move(options)) {}

RunOutcome RunExecutor::Run(const RunContext& context,
                            const std::map<std::string, StepRecord>& checkpoints, RunSink& sink,
                            std::stop_token stop) {
  ExecutorOptions opts = options_;
  if (opts.max_parallelism < 1) opts.max_parallelism = 1;
  Execution exec(workflow_, opts, context, sink);
  return exec.Run(checkpoints, std::move(stop));
}

}  // namespace ferry::engine
