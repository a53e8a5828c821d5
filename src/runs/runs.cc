#include "runs/runs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/ids.h"
#include "core/time_util.h"
#include "engine/ingest.h"
#include "runs/definitions.h"

namespace ferry::runs {
namespace {

constexpr int kMaxGenerationProbes = 64;

bool TaskAlive(TaskStatus s) { return !IsTerminal(s); }

// Calls `each(event, data)` for each of the run's events of `types` whose data is a JSON object,
// oldest first, in pages bounded by bytes (run.created carries the trigger's body), so a long
// run's other events are not read at all.
template <typename Each>
Status EachRunEvent(Store& store, const std::string& run_id, std::vector<std::string> types,
                    Each each) {
  RunEventQuery query{.limit = 1000, .types = std::move(types)};
  while (true) {
    auto page = store.ListRunEventPage(run_id, query);
    if (!page) return Fail(page.error());
    for (const auto& e : page->events) {
      auto data = ParseStoredJson(e.data);
      if (data && data->is_object()) each(e, *data);
    }
    if (!page->more || page->events.empty()) return {};
    query.after_seq = page->events.back().seq;
  }
}

SubmitRequest RunTaskRequest(const std::string& run_id, int generation, const std::string& queue,
                             int max_attempts, std::chrono::milliseconds timeout) {
  SubmitRequest req;
  req.kind = std::string(kRunTaskKind);
  req.payload = RunTaskPayload(run_id, generation);
  req.queue = queue;
  req.max_attempts = max_attempts;
  req.timeout = timeout;
  req.unique_key = RunTaskUniqueKey(run_id, generation);
  return req;
}

}  // namespace

int64_t RunFencingToken(int generation, int64_t task_epoch) {
  return (static_cast<int64_t>(generation) << 32) | (task_epoch & 0xffffffffLL);
}

int RunGeneration(int64_t fencing_token) { return static_cast<int>(fencing_token >> 32); }

std::string RunTaskUniqueKey(const std::string& run_id, int generation) {
  return generation == 0 ? run_id : run_id + "#" + std::to_string(generation);
}

Json RunTaskPayload(const std::string& run_id, int generation) {
  return Json{{"run_id", run_id}, {"generation", generation}};
}

std::string RunServedBy(const TaskRecord& task) {
  if (task.kind != kRunTaskKind) return "";
  auto payload = ParseStoredJson(task.payload);
  if (!payload || !payload->is_object()) return "";
  auto it = payload->find("run_id");
  return it != payload->end() && it->is_string() ? it->get<std::string>() : "";
}

Result<StartRunResult> StartRun(Store& store, Broker& broker, const StartRunRequest& request) {
  auto result = CommitRun(store, request);
  if (result && !SubmitRunTask(broker, *result)) RecordEnqueueFailed(store, *result);
  return result;
}

Result<StartRunResult> CommitRun(Store& store, const StartRunRequest& request) {
  if (!request.trigger.empty() && !KeepsTrigger(request.triggered_by)) {
    return Fail(ErrorCode::kInvalidArgument,
                "a run triggered by " + std::string(TriggeredByName(request.triggered_by)) +
                    " has no trigger context; only webhook and cron runs do");
  }
  // A name this process has seen needs no read of the workflow: the run is created only if the
  // version seen is still current, and the workflow is read afresh when it is not. (A webhook
  // comes with what its admission read; a run with a nonce is not tried twice: a second try would
  // find the nonce used.)
  std::optional<SeenWorkflow> seen;
  if (!request.known && !request.nonce) seen = LastSeenWorkflow(request.workflow);
  std::optional<Run> run;
  std::string task_id;
  while (!run) {
    StartRunRequest::Known target;
    if (request.known) {
      target = *request.known;
    } else if (seen) {
      target = {seen->id, seen->version};
    } else {
      auto wf = store.GetWorkflow(request.workflow);
      if (!wf) return Fail(wf.error());
      if (!*wf) return Fail(ErrorCode::kNotFound, "no workflow " + request.workflow);
      target = {(*wf)->id, (*wf)->current_version};
      RememberWorkflow(request.workflow, {target.workflow_id, target.version});
    }
    // A version this process has seen costs no read.
    auto def = LoadDefinition(store, target.workflow_id, target.version);
    if (!def && seen && def.error().code == ErrorCode::kNotFound) {
      seen.reset();  // not in this store (below): read the workflow
      continue;
    }
    if (!def) {
      if (def.error().code == ErrorCode::kNotFound) {
        return Fail(ErrorCode::kNotFound, "workflow " + request.workflow + " has no version");
      }
      return Fail(def.error());
    }
    auto inputs =
        engine::ResolveInputs(*def->workflow, request.inputs, request.allow_unknown_inputs);
    if (!inputs) return Fail(ErrorCode::kInvalidArgument, inputs.error().message);

    CreateRunRequest create;
    create.workflow_id = target.workflow_id;
    create.version = def->version;
    create.only_if_current = seen.has_value();
    create.inputs = DumpJson(*inputs);
    create.triggered_by = request.triggered_by;
    create.trigger_id = request.trigger_id;
    // The run carries its "created" event into its own commit: no reader sees a run without the
    // event that says how it was triggered. The webhook's nonce joins that commit too (below), so
    // the database syncs once.
    // It also names the run's first task, whose id is drawn now and which is submitted once the
    // run is committed: no commit of its own records the enqueue (a failed one is recorded on the
    // run: RecordEnqueueFailed).
    task_id = NewId();
    Json created{{"triggered_by", TriggeredByName(request.triggered_by)},
                 {"version", def->version},
                 {"task_id", task_id},
                 {"queue", request.queue},
                 {"generation", 0}};
    if (!request.trigger.empty()) created["trigger"] = request.trigger;
    create.first_event.type = kEventCreated;
    create.first_event.data = DumpJson(created);
    // The webhook's nonce is remembered in the run's own commit (one round trip on PostgreSQL
    // with the run and its event); already used, nothing is written.
    if (request.nonce) {
      create.nonce.scope = request.nonce->scope;
      create.nonce.value = request.nonce->value;
      create.nonce.expires_ms = request.nonce->expires_ms;
    }
    auto created_run = store.CreateRun(create);
    if (!created_run) {
      const ErrorCode code = created_run.error().code;
      // With a nonce the run's id is new and the version is not asked to be still current (the
      // workflow was not read from memory): a conflict can only be the nonce's.
      if (request.nonce && code == ErrorCode::kConflict) {
        return Fail(ErrorCode::kConflict,
                    "replayed delivery: this signed request was already accepted (a sender "
                    "signs each delivery afresh)");
      }
      // Another version was applied since (kConflict), or what was seen is not in this store at
      // all (kNotFound: the memory is the process's, and a process may use more than one
      // database): read the workflow, once.
      if (seen && (code == ErrorCode::kConflict || code == ErrorCode::kNotFound)) {
        seen.reset();
        continue;
      }
      return Fail(created_run.error());
    }
    run = std::move(*created_run);
  }

  // The run is committed: from here on, nothing may turn this into an error.
  StartRunResult result;
  result.run = *run;
  result.task = RunTaskRequest(run->id, 0, request.queue, request.max_attempts, request.timeout);
  result.task->id = task_id;
  // Named in run.created, in the run's own commit, the task is found by that id by whoever looks
  // for it (recovery: LatestRunTask), and a failed submit is never repeated with this id: no
  // unique key is needed to keep a second one from being made. Without one, a run costs a
  // SET NX and a key held a day less. (The scheduler's runs, whose run.created names no task,
  // keep theirs: EnsureRunTask.)
  result.task->unique_key.clear();
  return result;
}

bool SubmitRunTask(Broker& broker, StartRunResult& result) {
  if (!result.task) return true;
  const SubmitRequest task = std::move(*result.task);
  result.task.reset();
  auto submitted = broker.Submit(task);
  if (!submitted) {
    result.enqueue_error = submitted.error().message;
    return false;
  }
  result.enqueued = true;
  result.task_id = submitted->id;
  return true;
}

void RecordEnqueueFailed(Store& store, const StartRunResult& result) {
  spdlog::warn("run {}: stored as pending, but enqueueing failed ({}); the sweeper will retry",
               result.run.id, result.enqueue_error);
  RecordRunEvent(store, result.run.id, kEventEnqueueFailed, Json{{"error", result.enqueue_error}});
}

std::optional<RunWaiting> LastRunWaiting(Store& store, const std::string& run_id) {
  auto page = store.ListRunEventPage(
      run_id, {.limit = 1, .types = {std::string(kEventWaiting)}, .last = true});
  if (!page || page->events.empty()) return std::nullopt;
  auto data = ParseStoredJson(page->events.back().data);
  if (!data || !data->is_object() || !(*data)["until_ms"].is_number_integer()) return std::nullopt;
  RunWaiting w;
  w.until_ms = (*data)["until_ms"].get<int64_t>();
  if (auto it = data->find("tasks"); it != data->end() && it->is_array()) {
    for (const auto& t : *it) {
      if (t.is_string()) w.tasks.push_back(t.get<std::string>());
    }
  }
  return w;
}

void CancelTasksItWaitedFor(Store& store, Broker& broker, const std::string& run_id) {
  // Each attempt of a task node tells its task once (node.waiting), in a commit of the run's
  // before the run gives its slot back: these name every task it left, in its slot or out of it.
  std::set<std::string> tasks;
  (void)EachRunEvent(store, run_id, {std::string(kEventNodeWaiting)},
                     [&](const RunEvent&, const Json& data) {
                       if (data.contains("task") && data["task"].is_string()) {
                         tasks.insert(data["task"].get<std::string>());
                       }
                     });
  for (const auto& task : tasks) (void)broker.Cancel(task);  // ended ones refuse
}

void EndUnheldRun(Store& store, Broker* broker, const std::string& run_id, const Json& finished) {
  // The nodes it left mid-attempt, each told interrupted once, in order of start: those its
  // history shows started and not finished since (a handler that died told no end for them),
  // and those with a stored wait whose history tells no end (the wait's start may not have been
  // written before the handler went; an end that was, as a last node's before its checkpoint,
  // is the node's).
  std::vector<std::pair<std::string, int>> open;  // node, attempt
  std::set<std::string> ended;                    // last told finished, not interrupted
  const auto forget = [&](const std::string& node) {
    open.erase(
        std::remove_if(open.begin(), open.end(), [&](const auto& o) { return o.first == node; }),
        open.end());
  };
  (void)EachRunEvent(store, run_id,
                     {std::string(kEventNodeStarted), std::string(kEventNodeFinished)},
                     [&](const RunEvent& e, const Json& data) {
                       if (!data.contains("node") || !data["node"].is_string()) return;
                       const std::string node = data["node"].get<std::string>();
                       forget(node);
                       if (e.type == kEventNodeStarted) {
                         ended.erase(node);
                         open.emplace_back(node, data.value("attempt", 1));
                       } else if (data.value("status", "") != "interrupted") {
                         ended.insert(node);  // an interrupted node goes on when its run does
                       }
                     });
  if (auto steps = store.ListSteps(run_id)) {
    for (const auto& s : *steps) {
      if (s.status != kStepWaiting || ended.count(s.node_id) != 0) continue;
      forget(s.node_id);
      open.emplace_back(s.node_id, s.attempt);
    }
  }
  std::vector<NewRunEvent> events;
  for (const auto& [node, attempt] : open) {
    events.push_back(NewRunEvent{
        std::string(kEventNodeFinished),
        DumpJson(Json{{"node", node}, {"status", "interrupted"}, {"attempt", attempt}})});
  }
  events.push_back(NewRunEvent{std::string(kEventFinished), DumpJson(finished)});
  if (auto written = store.AppendRunEvents(run_id, events); !written) {
    spdlog::warn("run {}: could not record its end in its history: {}", run_id,
                 written.error().message);
  }
  if (broker != nullptr) CancelTasksItWaitedFor(store, *broker, run_id);
}

std::vector<RunStep> InterruptedSteps(Store& store, const std::string& run_id,
                                      const std::vector<RunStep>& steps) {
  std::set<std::string> stored;
  for (const auto& s : steps) stored.insert(s.node_id);
  std::map<std::string, RunStep> interrupted;  // the last telling of each node wins
  std::map<std::string, int64_t> started;      // each node's last start
  const auto each = [&](const RunEvent& e, const Json& data) {
    if (!data.contains("node") || !data["node"].is_string()) return;
    const std::string node = data["node"].get<std::string>();
    if (stored.count(node) != 0) return;
    if (e.type == kEventNodeStarted) {
      started[node] = e.ts_ms;
      return;
    }
    if (data.value("status", "") != "interrupted") {
      interrupted.erase(node);  // it went on and ended otherwise
      return;
    }
    RunStep step;
    step.run_id = run_id;
    step.node_id = node;
    step.status = "interrupted";
    step.attempt = data.value("attempt", 0);
    step.started_ms = started.count(node) != 0 ? started[node] : 0;
    step.finished_ms = e.ts_ms;
    interrupted[node] = std::move(step);
  };
  (void)EachRunEvent(store, run_id,
                     {std::string(kEventNodeStarted), std::string(kEventNodeFinished)}, each);
  std::vector<RunStep> out;
  for (auto& [node, step] : interrupted) out.push_back(std::move(step));
  std::sort(out.begin(), out.end(),
            [](const RunStep& a, const RunStep& b) { return a.finished_ms < b.finished_ms; });
  return out;
}

Result<std::optional<RunTaskRef>> LatestRunTask(Store& store, const std::string& run_id) {
  std::optional<RunTaskRef> latest;
  // Only the events that name a task.
  auto read = EachRunEvent(
      store, run_id,
      {std::string(kEventCreated), std::string(kEventEnqueued), std::string(kEventStarted)},
      [&](const RunEvent&, const Json& data) {
        if (!data.contains("task_id")) return;
        RunTaskRef ref;
        ref.task_id = data.value("task_id", "");
        ref.queue = data.value("queue", "default");
        ref.generation = data.value("generation", 0);
        if (ref.task_id.empty()) return;
        // A higher generation always supersedes; within one, the later record wins.
        if (!latest || ref.generation >= latest->generation) latest = ref;
      });
  if (!read) return Fail(read.error());
  return latest;
}

Result<EnsureTaskResult> EnsureRunTask(Store& store, Broker& broker, const Run& run,
                                       const EnsureTaskOptions& options) {
  EnsureTaskResult result;
  result.queue = options.queue;
  int next = 0;
  auto latest = LatestRunTask(store, run.id);
  if (!latest) return Fail(latest.error());
  if (*latest) {
    const RunTaskRef& ref = **latest;
    result.queue = ref.queue;
    auto task = broker.GetTask(ref.task_id);
    if (!task) return Fail(task.error());
    if (*task && TaskAlive((*task)->status)) {
      result.action = EnsureTaskResult::Action::kAlive;
      result.task_id = ref.task_id;
      result.generation = ref.generation;
      result.task_status = (*task)->status;
      return result;
    }
    result.previous = *task ? std::string(TaskStatusName((*task)->status)) +
                                  ((*task)->error.empty() ? "" : ": " + (*task)->error)
                            : "missing";
    next = ref.generation + 1;
  }
  // A running run was marked by some generation; only a newer one can take it over.
  if (run.status == RunStatus::kRunning) next = std::max(next, RunGeneration(run.epoch) + 1);

  for (int probe = 0; probe < kMaxGenerationProbes; ++probe, ++next) {
    SubmitRequest request =
        RunTaskRequest(run.id, next, result.queue, options.max_attempts, options.timeout);
    if (options.eta_ms && *options.eta_ms > WallNowMs()) request.eta_ms = options.eta_ms;
    auto submitted = broker.Submit(request);
    if (!submitted) return Fail(submitted.error());
    if (submitted->existing) {
      // Someone (a racing recoverer, an earlier pass whose event append failed) already
      // submitted this generation. Use it if it is alive, else go one further.
      auto task = broker.GetTask(submitted->id);
      if (!task) return Fail(task.error());
      if (!*task || !TaskAlive((*task)->status)) {
        result.previous = *task ? std::string(TaskStatusName((*task)->status)) : "missing";
        continue;
      }
      result.action = EnsureTaskResult::Action::kAlive;
      result.task_status = (*task)->status;
    } else {
      result.action = EnsureTaskResult::Action::kEnqueued;
      result.task_status = TaskStatus::kPending;
    }
    result.task_id = submitted->id;
    result.generation = next;
    RecordRunEvent(store, run.id, kEventEnqueued,
                   Json{{"task_id", submitted->id},
                        {"queue", result.queue},
                        {"generation", next},
                        {"reason", result.previous.empty() ? options.reason : result.previous}});
    return result;
  }
  return Fail(ErrorCode::kInternal, "run " + run.id + ": no usable task generation after " +
                                        std::to_string(kMaxGenerationProbes) + " probes");
}

void RecordRunEvent(Store& store, const std::string& run_id, std::string_view type,
                    const Json& data) {
  if (auto seq = store.AppendRunEvent(run_id, std::string(type), DumpJson(data)); !seq) {
    spdlog::warn("run {}: could not record {} event: {}", run_id, type, seq.error().message);
  }
}

}  // namespace ferry::runs
