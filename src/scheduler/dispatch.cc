#include "scheduler/dispatch.h"

#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <optional>

#include "core/time_util.h"
#include "engine/ingest.h"
#include "runs/runs.h"

namespace ferry::scheduler {
namespace {

using Action = FireOutcome::Action;

// The current version of a workflow, ingested once per tick.
struct LoadedWorkflow {
  int version = 0;
  engine::Workflow definition;
  // Why the stored graph does not load (one stored before a check that now refuses it); empty
  // when it does. Kept: a stored version never changes, so it is read once, not at every tick.
  std::string load_error;
};

class WorkflowCache {
 public:
  explicit WorkflowCache(Store& store) : store_(store) {}

  Result<const LoadedWorkflow*> Get(const std::string& workflow_id) {
    auto it = cache_.find(workflow_id);
    if (it != cache_.end()) return it->second.get();
    auto version = store_.GetWorkflowVersion(workflow_id, 0);
    if (!version) return Fail(version.error());
    if (!*version) return Fail(ErrorCode::kNotFound, "workflow " + workflow_id + " has no version");
    auto ingested = engine::IngestStoredGraph((*version)->graph);
    auto loaded = std::make_unique<LoadedWorkflow>();
    loaded->version = (*version)->version;
    if (ingested) {
      loaded->definition = std::move(ingested->workflow);
    } else {
      loaded->load_error = "its stored graph (version " + std::to_string((*version)->version) +
                           ") does not load: " + ingested.error().message +
                           "; apply the workflow again";
    }
    const LoadedWorkflow* p = loaded.get();
    cache_.emplace(workflow_id, std::move(loaded));
    return p;
  }

 private:
  Store& store_;
  std::map<std::string, std::unique_ptr<LoadedWorkflow>> cache_;
};

class TriggerDispatch {
 public:
  TriggerDispatch(Store& store, Broker& broker, WorkflowCache& workflows,
                  const DispatchOptions& options, const Trigger& trigger,
                  const CronTriggerConfig& config, DispatchReport& report)
      : store_(store),
        broker_(broker),
        workflows_(workflows),
        options_(options),
        trigger_(trigger),
        config_(config),
        report_(report) {}

  void Run(SystemTime now) {
    PlanOptions po;
    po.grace = options_.misfire_grace;
    po.max_scan = options_.max_scan;
    DuePlan plan = PlanDue(config_, CursorOf(trigger_), now, po);
    if (plan.dropped > 0) {
      FireOutcome o = Outcome(Action::kSkippedMisfire, plan.dropped_last_ms);
      o.count = plan.dropped;
      o.detail = std::string(plan.truncated ? "at least " : "") + std::to_string(plan.dropped) +
                 " missed occurrence(s) from " + FormatIsoMs(plan.dropped_first_ms) + " to " +
                 FormatIsoMs(plan.dropped_last_ms) + " not run (misfire: " +
                 std::string(engine::MisfirePolicyName(config_.spec.misfire)) + ")";
      spdlog::info("cron {} {}: {}", trigger_.workflow_name, trigger_.key, o.detail);
      report_.outcomes.push_back(std::move(o));
    }

    int64_t last_fired = trigger_.last_fire_ms;
    int64_t cursor = plan.next_after_ms;
    int64_t active = -1;  // unknown until an occurrence needs the overlap check
    bool acted = plan.dropped > 0;
    for (const PlannedFire& f : plan.fires) {
      acted = true;
      if (config_.spec.overlap != engine::OverlapPolicy::kAllow && active < 0) {
        auto n = CountActiveRuns(store_, trigger_);
        if (!n) {
          report_.outcomes.push_back(Error(f.fire_ms, "overlap check: " + n.error().message));
          cursor = f.fire_ms;
          break;
        }
        active = *n;
      }
      OverlapAction action = DecideOverlap(config_.spec.overlap, active);
      if (action == OverlapAction::kHold) {
        report_.outcomes.push_back(Outcome(Action::kHeld, f.fire_ms));
        cursor = f.fire_ms;
        break;
      }
      if (action == OverlapAction::kSkip) {
        auto recorded = store_.RecordCronFire(trigger_.id, f.fire_ms, "");
        if (!recorded) {
          report_.outcomes.push_back(Error(f.fire_ms, recorded.error().message));
          cursor = f.fire_ms;
          break;
        }
        report_.outcomes.push_back(
            Outcome(*recorded ? Action::kSkippedOverlap : Action::kDuplicate, f.fire_ms));
        if (*recorded) {
          spdlog::info("cron {} {}: occurrence {} skipped: a run is still active (overlap: skip)",
                       trigger_.workflow_name, trigger_.key, Iso(f.fire_ms));
        }
        continue;
      }
      FireOutcome o = Fire(f);
      Action a = o.action;
      report_.outcomes.push_back(std::move(o));
      if (a == Action::kError) {
        cursor = f.fire_ms;
        break;
      }
      if (a == Action::kFired) {
        last_fired = std::max(last_fired, f.fire_ms);
        if (active >= 0) ++active;
      } else if (a == Action::kDuplicate) {
        active = -1;  // someone else fired it: look again
      }
    }

    if (!acted && cursor == trigger_.next_fire_ms) return;  // nothing seen, nothing to record
    if (auto st = store_.UpdateTriggerFireTimes(trigger_.id, last_fired, cursor); !st) {
      spdlog::warn("cron {} {}: could not record progress: {}", trigger_.workflow_name,
                   trigger_.key, st.error().message);
    }
  }

 private:
  std::string Iso(int64_t ms) const { return cron::FormatIso8601(FromMs(ms), config_.zone); }

  FireOutcome Outcome(Action a, int64_t fire_ms) const {
    FireOutcome o;
    o.action = a;
    o.trigger_id = trigger_.id;
    o.workflow = trigger_.workflow_name;
    o.trigger_key = trigger_.key;
    o.fire_ms = fire_ms;
    return o;
  }

  FireOutcome Error(int64_t fire_ms, std::string detail) const {
    FireOutcome o = Outcome(Action::kError, fire_ms);
    o.detail = std::move(detail);
    spdlog::warn("cron {} {}: occurrence {}: {}", trigger_.workflow_name, trigger_.key,
                 Iso(fire_ms), o.detail);
    return o;
  }

  // The workflow's version cannot take a cron run (a required input without default, a stored
  // graph that no longer loads): the occurrence is recorded without a run, so it is not retried
  // every tick, and why is logged once per version.
  FireOutcome Reject(int64_t fire_ms, const LoadedWorkflow& wf, const std::string& why) {
    auto recorded = store_.RecordCronFire(trigger_.id, fire_ms, "");
    if (!recorded) return Error(fire_ms, recorded.error().message);
    FireOutcome o = Outcome(Action::kRejected, fire_ms);
    o.detail = why + "; occurrence recorded without a run";
    if (options_.rejected_versions == nullptr ||
        options_.rejected_versions->FirstTime(trigger_.workflow_id, wf.version)) {
      spdlog::error(
          "cron {} {}: occurrence {}: {} (logged once for version {}: its later occurrences are "
          "recorded without a run too)",
          trigger_.workflow_name, trigger_.key, Iso(fire_ms), o.detail, wf.version);
    }
    return o;
  }

  FireOutcome Fire(const PlannedFire& f) {
    const std::string scheduled_for = Iso(f.fire_ms);
    auto wf = workflows_.Get(trigger_.workflow_id);
    if (!wf) return Error(f.fire_ms, wf.error().message);
    if (!(*wf)->load_error.empty()) return Reject(f.fire_ms, **wf, (*wf)->load_error);
    Json given{{"scheduled_for", scheduled_for}, {"timezone", config_.spec.timezone}};
    if (f.missed_count > 0) given["missed_count"] = f.missed_count;
    auto inputs = engine::ResolveInputs((*wf)->definition, given, /*allow_unknown=*/true);
    if (!inputs) return Reject(f.fire_ms, **wf, "inputs rejected: " + inputs.error().message);
    CreateRunRequest req;
    req.workflow_id = trigger_.workflow_id;
    req.version = (*wf)->version;
    req.inputs = DumpJson(*inputs);
    req.triggered_by = TriggeredBy::kCron;
    req.trigger_id = trigger_.id;
    Json trig{{"kind", "cron"},
              {"trigger_id", trigger_.id},
              {"key", trigger_.key},
              {"schedule", config_.spec.schedule},
              {"timezone", config_.spec.timezone},
              {"scheduled_for", scheduled_for},
              {"fire_ms", f.fire_ms},
              {"late", f.late}};
    if (f.missed_count > 0) trig["missed_count"] = f.missed_count;
    if (options_.fencing_token > 0) trig["scheduler_token"] = options_.fencing_token;
    // The run's "created" event goes into the commit that claims the occurrence.
    req.first_event.type = runs::kEventCreated;
    req.first_event.data =
        DumpJson(Json{{"triggered_by", "cron"}, {"version", req.version}, {"trigger", trig}});
    auto created = store_.CreateCronRun(trigger_.id, f.fire_ms, req);
    if (!created) return Error(f.fire_ms, created.error().message);
    if (!*created) return Outcome(Action::kDuplicate, f.fire_ms);
    const ferry::Run& run = **created;

    FireOutcome o = Outcome(Action::kFired, f.fire_ms);
    o.run_id = run.id;
    runs::EnsureTaskOptions eo;
    eo.queue = options_.queue;
    eo.reason = "cron";
    auto task = runs::EnsureRunTask(store_, broker_, run, eo);
    if (!task) {
      o.detail =
          "stored as pending, enqueue failed (the sweeper will retry): " + task.error().message;
      (void)store_.AppendRunEvent(run.id, std::string(runs::kEventEnqueueFailed),
                                  DumpJson(Json{{"error", task.error().message}}));
      spdlog::warn("cron {} {}: run {} for {}: {}", trigger_.workflow_name, trigger_.key, run.id,
                   scheduled_for, o.detail);
    } else {
      spdlog::info("cron {} {}: run {} for {}{}", trigger_.workflow_name, trigger_.key, run.id,
                   scheduled_for,
                   f.missed_count > 0
                       ? " (stands for " + std::to_string(f.missed_count) + " missed occurrences)"
                       : std::string(f.late ? " (late)" : ""));
    }
    return o;
  }

  Store& store_;
  Broker& broker_;
  WorkflowCache& workflows_;
  const DispatchOptions& options_;
  const Trigger& trigger_;
  const CronTriggerConfig& config_;
  DispatchReport& report_;
};

}  // namespace

std::string_view FireActionName(FireOutcome::Action a) {
  switch (a) {
    case Action::kFired:
      return "fired";
    case Action::kDuplicate:
      return "duplicate";
    case Action::kSkippedOverlap:
      return "skipped_overlap";
    case Action::kHeld:
      return "held";
    case Action::kSkippedMisfire:
      return "skipped_misfire";
    case Action::kRejected:
      return "rejected";
    case Action::kError:
      return "error";
  }
  return "?";
}

int64_t DispatchReport::Count(FireOutcome::Action a) const {
  int64_t n = 0;
  for (const auto& o : outcomes) {
    if (o.action == a) n += o.count;
  }
  return n;
}

Json DispatchReport::ToJson() const {
  Json list = Json::array();
  for (const auto& o : outcomes) {
    Json j{{"action", FireActionName(o.action)},
           {"workflow", o.workflow},
           {"trigger_id", o.trigger_id},
           {"trigger", o.trigger_key},
           {"fire_time", o.fire_ms > 0 ? FormatIsoMs(o.fire_ms) : ""}};
    if (o.count != 1) j["count"] = o.count;
    if (!o.run_id.empty()) j["run_id"] = o.run_id;
    if (!o.detail.empty()) j["detail"] = o.detail;
    list.push_back(std::move(j));
  }
  return Json{{"triggers", triggers},
              {"fired", Count(Action::kFired)},
              {"duplicates", Count(Action::kDuplicate)},
              {"skipped_overlap", Count(Action::kSkippedOverlap)},
              {"held", Count(Action::kHeld)},
              {"skipped_misfire", Count(Action::kSkippedMisfire)},
              {"rejected", Count(Action::kRejected)},
              {"errors", Count(Action::kError)},
              {"stopped", stopped},
              {"outcomes", std::move(list)}};
}

Result<int64_t> CountActiveRuns(Store& store, const Trigger& trigger) {
  int64_t n = 0;
  for (RunStatus s : {RunStatus::kRunning, RunStatus::kPending}) {
    RunFilter f;
    f.workflow_id = trigger.workflow_id;
    f.status = s;
    f.limit = 1000;
    auto page = store.ListRuns(f);
    if (!page) return Fail(page.error());
    for (const auto& r : page->runs) {
      if (r.trigger_id == trigger.id) ++n;
    }
  }
  return n;
}

Result<DispatchReport> DispatchCron(Store& store, Broker& broker, const Clock& clock,
                                    const DispatchOptions& options) {
  TriggerFilter filter;
  filter.kind = TriggerKind::kCron;
  filter.enabled_only = true;
  auto triggers = store.ListTriggers(filter);
  if (!triggers) return Fail(triggers.error());
  DispatchReport report;
  WorkflowCache workflows(store);
  for (const Trigger& t : *triggers) {
    if (options.keep_going && !options.keep_going()) {
      report.stopped = true;
      break;
    }
    ++report.triggers;
    auto config = ParseCronTriggerConfig(t.config);
    if (!config) {
      FireOutcome o;
      o.action = Action::kError;
      o.trigger_id = t.id;
      o.workflow = t.workflow_name;
      o.trigger_key = t.key;
      o.detail = config.error().message;
      spdlog::warn("cron {} {}: {}", t.workflow_name, t.key, o.detail);
      report.outcomes.push_back(std::move(o));
      continue;
    }
    SystemTime now = clock.Now();
    if (t.workflow_paused) {
      // Paused: occurrences pass unfired, and resuming does not count them as missed.
      auto next = NextOccurrence(*config, now, AnchorOf(*config, CursorOf(t)));
      int64_t next_ms = next ? ToMs(*next) : 0;
      if (next_ms != t.next_fire_ms) {
        if (auto st = store.UpdateTriggerFireTimes(t.id, t.last_fire_ms, next_ms); !st) {
          spdlog::warn("cron {} {}: could not record progress: {}", t.workflow_name, t.key,
                       st.error().message);
        }
      }
      continue;
    }
    TriggerDispatch(store, broker, workflows, options, t, *config, report).Run(now);
  }
  return report;
}

}  // namespace ferry::scheduler
