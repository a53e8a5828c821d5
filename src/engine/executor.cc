#include "engine/executor.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/backoff.h"
#include "core/sleep.h"
#include "core/time_util.h"
#include "engine/node_kinds.h"
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
    case RunOutcome::Kind::kWaiting:
      return "waiting";
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

struct Finished {
  const NodeDef* node = nullptr;
  std::string id;
  NodeResult result;
  int attempt = 1;
  bool cancelled = false;
  int64_t wait_until_ms = 0;  // > 0: not finished: to run again then (NodeWait)
  std::string wait_task;      // with wait_until_ms: the task it waits for (NodeWaitForTask)
  int64_t wait_task_created_ms = 0;
  int64_t began_ms = 0;  // wall-clock: when its last attempt began
};

// One run's execution: the coordinator (Run), which runs a lone node itself and each of several
// running at once on a thread of its own.
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
      output_bytes_ += DumpJson(it->second.output).size();
      if (it->second.status == StepStatus::kFailed && failed_node_.empty()) {
        failed_node_ = n.id;
        failed_error_ = it->second.error;
      }
    }

    std::map<std::string, std::jthread> threads;
    const auto stopping = [&] {
      return !failed_node_.empty() || aborted_ || run_stop.stop_requested();
    };
    bool give_back = false;  // left with only waits, too long to wait here
    while (true) {
      if (!stopping()) TakeDueWaits(pending);
      // Start what is ready; rescan while skips settle nodes at once and free up more. A node
      // started here changes nothing another one waits for until it finishes, so the starts
      // are collected first.
      std::vector<Launch> launches;
      bool pass_progressed = true;
      while (pass_progressed) {
        pass_progressed = false;
        for (auto it = pending.begin(); it != pending.end();) {
          if (stopping()) break;
          if (static_cast<int>(threads.size() + launches.size()) >= opts_.max_parallelism) break;
          const NodeDef& node = **it;
          if (!Ready(node)) {
            ++it;
            continue;
          }
          it = pending.erase(it);
          pass_progressed = true;
          if (auto launch = StartOrSettle(node)) launches.push_back(std::move(*launch));
        }
      }
      // A node that failed, a checkpoint not saved or a stop later in the pass: what was
      // collected before it is not started (it would only be interrupted at once).
      if (stopping()) launches.clear();
      // The only node running: it runs on this thread, which would only wait for it (a
      // one-node run, a chain's next link), instead of on a thread of its own. Not while a wait
      // is timed here: this thread must be free to start its node when it ends.
      if (threads.empty() && launches.size() == 1 && waits_.empty()) {
        Finished f = RunNode(launches[0]);
        Settle(f);
        continue;
      }
      for (auto& launch : launches) StartThread(std::move(launch), threads);
      if (threads.empty()) {
        // Nothing runs, nothing can start: only waits are left (or nothing at all).
        if (waits_.empty() || stopping()) break;
        if (AllWaitsLong()) {
          give_back = true;
          break;
        }
        SleepFor(run_stop, WaitsSleep());
        continue;
      }
      Finished f;
      {
        std::unique_lock lock(mu_);
        const auto any = [this] { return !finished_.empty(); };
        if (waits_.empty() || stopping()) {
          cv_.wait(lock, any);
        } else if (!cv_.wait_for(lock, TimedWait(NearestWait() - WallNowMs()), any)) {
          continue;  // a wait is due: its node starts beside the running ones
        }
        f = std::move(finished_.front());
        finished_.pop_front();
      }
      threads.erase(f.id);  // joins; the thread has already handed over its result
      Settle(f);
    }
    nodes_stop_.request_stop();
    threads.clear();
    if (!give_back) {
      // Waits a stop ended, told as a node interrupted in its wait would be.
      for (const auto& w : waits_) TellInterrupted(*w.node, w.attempt);
    }

    if (aborted_) {
      outcome.kind = RunOutcome::Kind::kAborted;
      outcome.error = abort_error_;
    } else if (!failed_node_.empty()) {
      outcome.kind = RunOutcome::Kind::kFailed;
      outcome.failed_node = failed_node_;
      outcome.error = failed_error_;
    } else if (give_back) {
      outcome.kind = RunOutcome::Kind::kWaiting;
      outcome.resume_at_ms = ResumeAt();
      for (const auto& w : waits_) {
        if (!w.task.empty()) {
          outcome.waiting_tasks.push_back({w.node->id, w.attempt, w.began_ms, w.task});
        }
      }
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

  // A ready node to run, with the scope it was found ready in.
  struct Launch {
    const NodeDef* node = nullptr;
    Json root;
    int first_attempt = 1;
    bool after_wait = false;  // its wait just ended: it goes on, it does not start again
    int64_t began_ms = 0;     // wall-clock: when its first attempt began, if before this launch
  };

  // A node waiting for its time (NodeWait), or for a task with until_ms when to look again
  // (NodeWaitForTask), in the attempt it waits in, begun at began_ms.
  struct Wait {
    const NodeDef* node = nullptr;
    int attempt = 1;
    int64_t until_ms = 0;
    int64_t began_ms = 0;
    std::string task;
    int64_t task_created_ms = 0;
  };

  // How long to wait at once for a wait `left` ms away: not past it, and not so far that the
  // clock's arithmetic overflows (a delay may be centuries long); the loop then waits again.
  static milliseconds TimedWait(int64_t left) {
    return milliseconds(std::clamp<int64_t>(left, 0, 3'600'000));
  }

  int64_t NearestWait() const {
    int64_t nearest = waits_.front().until_ms;
    for (const auto& w : waits_) nearest = std::min(nearest, w.until_ms);
    return nearest;
  }

  // Whether the run, with nothing but waits left, should give its worker slot back: each delay
  // ends more than give_back_waits_over from now, and each task has been waited for that long
  // (a short task is waited for here: giving back costs a store commit and a claim). A task
  // node with a timeout of its own gives it back too (holding it could starve its own task of a
  // slot until that timeout): the timeout counts from when its attempt began, across the wait.
  bool AllWaitsLong() const {
    int64_t over = opts_.give_back_waits_over.count();
    if (over < 0) return false;
    if (SlotWanted()) over = std::min(over, opts_.slot_wanted_give_back.count());
    const int64_t now = WallNowMs();
    return std::all_of(waits_.begin(), waits_.end(), [&](const Wait& w) {
      if (w.task.empty()) return w.until_ms - now > over;
      return now - w.began_ms >= over;
    });
  }

  bool SlotWanted() const { return ctx_.slot_wanted && ctx_.slot_wanted(); }

  // How long the coordinator, with only waits left, sleeps before looking again: until the
  // nearest wait, or, told that work may come to want its slot, no more than that short look.
  milliseconds WaitsSleep() const {
    int64_t left = NearestWait() - WallNowMs();
    if (ctx_.slot_wanted && opts_.give_back_waits_over.count() >= 0) {
      left = std::min(left, opts_.slot_wanted_give_back.count());
    }
    return TimedWait(left);
  }

  // When a run that gave its slot back is to run again: at its nearest delay's end, and while
  // it waits for a task (whose end normally wakes it sooner) no later than task_wait_recheck
  // from now, or the task's age, up to 20 times that: this only bounds a wake that never came.
  // A task node with a timeout of its own comes back by that timeout, to end its attempt.
  int64_t ResumeAt() const {
    int64_t at = std::numeric_limits<int64_t>::max();
    const int64_t now = WallNowMs();
    const int64_t recheck = opts_.task_wait_recheck.count();
    for (const auto& w : waits_) {
      if (w.task.empty()) {
        at = std::min(at, w.until_ms);
        continue;
      }
      const int64_t age = w.task_created_ms > 0 ? now - w.task_created_ms : 0;
      at = std::min(at, now + std::clamp(age, recheck, 20 * recheck));
      if (w.node->timeout.count() > 0) at = std::min(at, w.began_ms + w.node->timeout.count());
    }
    return at;
  }

  // Waits whose time has come go back among the pending nodes, to start again in the attempt
  // they waited in.
  void TakeDueWaits(std::vector<const NodeDef*>& pending) {
    const int64_t now = WallNowMs();
    for (auto it = waits_.begin(); it != waits_.end();) {
      if (it->until_ms > now) {
        ++it;
        continue;
      }
      resumed_[it->node->id] = Resumed{it->attempt, it->began_ms};
      pending.push_back(it->node);
      it = waits_.erase(it);
    }
  }

  // Skips or fails a ready node at once, or says to start it.
  std::optional<Launch> StartOrSettle(const NodeDef& node) {
    for (const auto& need : node.needs) {
      if (done_[need].status != StepStatus::kSucceeded) {
        Record(node.id, StepStatus::kSkipped, nullptr,
               "skipped: needs '" + need + "', which was skipped", 0);
        return std::nullopt;
      }
    }
    Json scope_root = ScopeRoot();
    if (!node.when.empty()) {
      auto cond = ParseCondition(node.when);
      Result<Json> value =
          cond ? cond->Render(MakeScope(scope_root)) : Result<Json>(Fail(cond.error()));
      if (!value) {
        Record(node.id, StepStatus::kFailed, nullptr,
               redactor_.RedactText("when: " + value.error().message), 1);
        return std::nullopt;
      }
      if (!Truthy(*value)) {
        Record(node.id, StepStatus::kSkipped, nullptr, "skipped: when was false", 0);
        return std::nullopt;
      }
    }
    Launch launch{&node, std::move(scope_root)};
    if (auto it = resumed_.find(node.id); it != resumed_.end()) {
      launch.first_attempt = it->second.attempt;
      launch.began_ms = it->second.began_ms;
      launch.after_wait = true;
      resumed_.erase(it);
    } else if (node.kind == NodeKind::kDelay || node.kind == NodeKind::kTask) {
      // A wait an earlier execution stored goes on in its attempt, not a new wait in attempt 1,
      // and is not told as started (or waiting) again: a run that looks at a long task every few
      // minutes out of its slot adds no node events for it.
      if (auto stored = sink_.StoredWaitOf(node.id)) {
        launch.first_attempt = std::max(1, stored->attempt);
        launch.began_ms = stored->began_ms;
        launch.after_wait = true;
      }
    }
    return launch;
  }

  void StartThread(Launch launch, std::map<std::string, std::jthread>& threads) {
    const std::string id = launch.node->id;
    threads.emplace(id, std::jthread([this, launch = std::move(launch)] {
                      Finished f = RunNode(launch);
                      {
                        std::lock_guard lock(mu_);
                        finished_.push_back(std::move(f));
                      }
                      cv_.notify_one();
                    }));
  }

  void Settle(Finished& f) {
    if (f.cancelled) return;  // interrupted, not finished: it runs again on resume
    if (!f.result && f.result.error().aborts_run) {
      if (!aborted_) {
        aborted_ = true;
        abort_error_ =
            "node '" + f.id + "' could not record its progress: " + f.result.error().error.message;
      }
      return;
    }
    if (f.wait_until_ms > 0) {
      waits_.push_back(Wait{f.node, f.attempt, f.wait_until_ms, f.began_ms, f.wait_task,
                            f.wait_task_created_ms});
      return;
    }
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
    const bool last = done_.size() + 1 == wf_.nodes.size();
    auto s = last ? sink_.SaveLastStep(id, status, rec.output, rec.error, attempt)
                  : sink_.SaveStep(id, status, rec.output, rec.error, attempt);
    if (!s) {
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

  // What one node has logged so far, over its attempts.
  struct LogBudget {
    std::atomic<int> lines{0};
    std::atomic<int64_t> bytes{0};
    std::atomic<bool> full{false};
  };

  // One node.log event, within the node's budget: a line longer than max_log_line_bytes is cut
  // (and says by how much, `cut` bytes that never reached `message` included); past
  // max_log_events_per_node lines or max_log_bytes_per_node bytes, one notice and nothing more.
  // Each event is stored and streamed whole, and read back in pages.
  void Log(const std::string& node, const std::string& message, const char* stream, size_t cut,
           LogBudget& budget) {
    std::string text = CutLine(redactor_.RedactText(message), opts_.max_log_line_bytes, cut);
    const int n = ++budget.lines;
    const int64_t total = budget.bytes += static_cast<int64_t>(text.size());
    if (n > opts_.max_log_events_per_node || total > opts_.max_log_bytes_per_node) {
      if (!budget.full.exchange(true)) {
        sink_.Emit("node.log", Json{{"node", node}, {"message", "(further log lines dropped)"}});
      }
      return;
    }
    Json data{{"node", node}, {"message", std::move(text)}};
    if (stream != nullptr) data["stream"] = stream;
    sink_.Emit("node.log", data);
  }

  // Runs a node's attempts (on the coordinator's thread or one of its own).
  Finished RunNode(const Launch& launch) {
    const NodeDef& node = *launch.node;
    const Json& root = launch.root;
    std::stop_token node_stop = nodes_stop_.get_token();
    Finished f;
    f.node = &node;
    f.id = node.id;
    LogBudget log_budget;
    for (int attempt = launch.first_attempt;; ++attempt) {
      f.attempt = attempt;
      auto started = Clock::now();
      // A wait that goes on counts from when it began (in this execution or an earlier one).
      const bool goes_on = attempt == launch.first_attempt && launch.began_ms > 0;
      f.began_ms = goes_on ? launch.began_ms : WallNowMs();
      {
        // Launched beside a node that has failed the run since (or the run was stopped): it
        // does not start. A node launched in the same pass as one that fails at once would
        // otherwise start, and its program run, after that failure.
        std::lock_guard start(start_mu_);
        if (node_stop.stop_requested()) {
          // One that had begun (the wait it resumes, or an earlier attempt, now in its backoff)
          // is told interrupted, as a stop mid-attempt is; one that had not is not told at all.
          const bool resumes = launch.after_wait && attempt == launch.first_attempt;
          if (resumes || attempt > launch.first_attempt) {
            TellInterrupted(node, resumes ? attempt : attempt - 1);
          }
          f.cancelled = true;
          return f;
        }
        if (!launch.after_wait || attempt != launch.first_attempt) {
          sink_.Emit(
              "node.started",
              Json{{"node", node.id}, {"kind", NodeKindName(node.kind)}, {"attempt", attempt}});
        }
      }
      std::stop_source attempt_source;
      std::stop_callback link(node_stop, [&attempt_source] { attempt_source.request_stop(); });
      NodeResult r;
      bool timed_out = false;
      // A task node's attempt that goes on after a look has what is left of its timeout (it
      // waits in its slot, in this execution). A delay's, resumed after its deadline, does not:
      // it ends at once, however late the resume.
      milliseconds timeout = node.timeout;
      if (goes_on && node.kind == NodeKind::kTask && timeout.count() > 0) {
        timeout -= milliseconds(WallNowMs() - f.began_ms);
      }
      if (node.timeout.count() > 0 && timeout.count() <= 0) {
        // A task node's task may have ended before its run could look (no slot came free for
        // the run in time): that end counts, and only a task still going times the attempt out.
        // (A look does not block: the node asks where its task is.)
        if (node.kind == NodeKind::kTask) {
          r = Execute(node, root, attempt, attempt_source.get_token(), log_budget);
        }
        if (node.kind != NodeKind::kTask || (!r && r.error().wait_until_ms > 0)) {
          r = NodeFail(ErrorCode::kTimeout, "timed out", true);
          timed_out = true;
        }
      } else {
        AttemptTimer timer(timeout, attempt_source);
        r = Execute(node, root, attempt, attempt_source.get_token(), log_budget);
        timed_out = timer.Fired();
      }
      if (!r && timed_out) {
        r = NodeFail(ErrorCode::kTimeout,
                     "timed out after " + std::to_string(node.timeout.count()) + "ms", true,
                     std::move(r.error().output));
      } else if (!r && node_stop.stop_requested()) {
        f.cancelled = true;
        TellInterrupted(node, attempt);
        return f;
      } else if (!r && r.error().aborts_run) {
        // The run stops (Settle); the node is told interrupted, as a stop mid-attempt is.
        {
          std::lock_guard start(start_mu_);
          nodes_stop_.request_stop();
        }
        TellInterrupted(node, attempt);
        f.result = std::move(r);
        return f;
      } else if (!r && r.error().wait_until_ms > 0) {
        f.wait_until_ms = r.error().wait_until_ms;
        // Its timeout, if it has one, ends the wait (and the attempt) on time.
        if (node.timeout.count() > 0) {
          f.wait_until_ms = std::min(f.wait_until_ms, f.began_ms + node.timeout.count());
        }
        f.wait_task = std::move(r.error().wait_task);
        f.wait_task_created_ms = r.error().wait_task_created_ms;
        if (node.kind != NodeKind::kTask) {
          sink_.Emit(
              "node.waiting",
              Json{{"node", node.id}, {"attempt", attempt}, {"deadline_ms", f.wait_until_ms}});
        } else if (!(launch.after_wait && attempt == launch.first_attempt)) {
          // Told once: the node is run again every time it looks at its task.
          Json waiting{{"node", node.id}, {"attempt", attempt}};
          if (!f.wait_task.empty()) waiting["task"] = f.wait_task;
          sink_.Emit("node.waiting", waiting);
        }
        return f;
      }
      auto ms = goes_on ? std::max<int64_t>(0, WallNowMs() - f.began_ms)
                        : std::chrono::duration_cast<milliseconds>(Clock::now() - started).count();
      if (r) r = WithinOutputBudget(std::move(*r));
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
        // It fails the run (Record): the nodes beside it stop now, and those launched with it
        // that have not started yet never do, instead of starting until the coordinator has
        // recorded this.
        std::lock_guard start(start_mu_);
        nodes_stop_.request_stop();
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
        TellInterrupted(node, attempt);
        f.cancelled = true;
        return f;
      }
    }
  }

  // A node a stop ended before it finished (mid-attempt, in its backoff, or resuming a wait).
  void TellInterrupted(const NodeDef& node, int attempt) {
    sink_.Emit("node.finished",
               Json{{"node", node.id}, {"status", "interrupted"}, {"attempt", attempt}});
  }

  // The output if it fits the node's and the run's budgets (ExecutorOptions), whose bytes it then
  // takes from the run's; else a failure naming the limit, not retried: the node would return it
  // again.
  NodeResult WithinOutputBudget(Json output) {
    const size_t bytes = DumpJson(output).size();
    if (bytes > opts_.max_node_output_bytes) {
      return NodeFail(ErrorCode::kTooLarge,
                      "output of " + std::to_string(bytes) + " bytes is over the limit of " +
                          std::to_string(opts_.max_node_output_bytes) + " bytes for a node",
                      false);
    }
    const size_t before = output_bytes_.fetch_add(bytes);
    if (before + bytes > opts_.max_run_output_bytes) {
      output_bytes_ -= bytes;
      return NodeFail(ErrorCode::kTooLarge,
                      "output of " + std::to_string(bytes) +
                          " bytes would take the run's node "
                          "outputs to " +
                          std::to_string(before + bytes) + " bytes, over its limit of " +
                          std::to_string(opts_.max_run_output_bytes),
                      false);
    }
    return output;
  }

  NodeResult Execute(const NodeDef& node, const Json& root, int attempt, std::stop_token stop,
                     LogBudget& log_budget) {
    Scope scope = MakeScope(root);
    NodeAttempt a{node,
                  attempt,
                  std::move(stop),
                  root,
                  scope,
                  opts_,
                  ctx_,
                  sink_,
                  [&](const std::string& line, const char* stream, size_t cut) {
                    Log(node.id, line, stream, cut, log_budget);
                  }};
    return NodeKindOf(node.kind).run(node.spec, a);
  }

  const Workflow& wf_;
  const ExecutorOptions& opts_;
  const RunContext& ctx_;
  RunSink& sink_;
  Redactor redactor_;
  std::stop_source nodes_stop_;  // every running node's attempts hang off this
  // Held while a node thread checks nodes_stop_ and tells its start, and while a node failing
  // the run requests that stop and tells its failure: a node's start is told before that
  // failure or not at all.
  std::mutex start_mu_;
  // The bytes of the run's stored node outputs, and of those being stored (node threads).
  std::atomic<size_t> output_bytes_{0};

  // Coordinator-only state (touched by Run's thread alone).
  std::map<std::string, StepRecord> done_;
  std::vector<Wait> waits_;
  struct Resumed {
    int attempt = 1;
    int64_t began_ms = 0;
  };
  std::map<std::string, Resumed> resumed_;  // due waits' nodes: the attempt they waited in
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
