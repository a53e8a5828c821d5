// LocalService: tasks, queues and workers (on the broker).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "broker/task_cursor.h"
#include "core/json_fields.h"
#include "core/time_util.h"
#include "runs/runs.h"
#include "service/arguments.h"
#include "service/local_service.h"
#include "service/query.h"
#include "service/task_submission.h"
#include "views/views.h"

namespace ferry::service {
namespace {

using namespace std::chrono_literals;

Error NoTask(const std::string& id) { return Error{ErrorCode::kNotFound, "no task " + id}; }

// "task X already ended (succeeded)" -> "it already ended (succeeded)", after "cannot cancel
// task X: ".
std::string AboutIt(const std::string& message, const std::string& id) {
  std::string prefix = "task " + id + " ";
  if (message.rfind(prefix, 0) == 0) return "it " + message.substr(prefix.size());
  return message;
}

// A change whose answer was lost says it may have been done (and keeps its details, so the API's
// body says "outcome": "unknown" and the CLI exits 4). `what`: "the cancel of task ID".
Error MayBeDone(Error e, const std::string& what, const std::string& check) {
  if (OutcomeIsUnknown(e)) {
    e.message = "no answer came after " + what + " was sent, so it may have been done (" + check +
                " shows whether): " + e.message;
  }
  return e;
}

// The broker's not-found and conflict errors, said the way a user asked ("cannot cancel task
// X: it already ended (succeeded)"), and a lost answer as MayBeDone says it.
Error AboutTask(const Error& e, const std::string& verb, const std::string& id) {
  if (e.code == ErrorCode::kNotFound) return NoTask(id);
  if (e.code == ErrorCode::kConflict) {
    return Error{ErrorCode::kConflict,
                 "cannot " + verb + " task " + id + ": " + AboutIt(e.message, id), e.details};
  }
  return MayBeDone(e, "the " + verb + " of task " + id, "`ferry task status " + id + "`");
}

// The refusal to retry a task a workflow run owns (`what` it is of the run): the run is what the
// user retries instead, so the refusal names it and the command, and gives it in its details.
Error RunOwnsTask(const std::string& id, const std::string& what, const std::string& run) {
  return Error{ErrorCode::kConflict,
               "cannot retry task " + id + ": it is " + what + " workflow run " + run +
                   ", which owns its end: retry the run instead (ferry run retry " + run + ")",
               DumpJson(Json{{"run_id", run}})};
}

// The refusal to retry the task of run `run`, its own (kind ferry.run), once that run has ended:
// run again it would find the run ended and do nothing, yet end `succeeded`, so the run is what
// to retry. None while the run goes on (its task dead-lettered while the store was away): the
// retried task resumes it.
Result<std::optional<Error>> EndedRunOwnsTask(Store& store, const std::string& id,
                                              const std::string& run) {
  auto found = store.GetRun(run);
  if (!found) return Fail(found.error());
  if (!*found || !IsTerminal((**found).status)) return std::optional<Error>();
  if ((**found).status != RunStatus::kSucceeded) return RunOwnsTask(id, "the task of", run);
  return Error{ErrorCode::kConflict,
               "cannot retry task " + id + ": it is the task of workflow run " + run +
                   ", which has succeeded: nothing is left to run",
               DumpJson(Json{{"run_id", run}})};
}

// A retry's refusal as AboutTask says it, except for a task a workflow run waits for (its task
// node's): the broker names the waiting task, and when that is a run's task, RunOwnsTask.
Error AboutRetry(Broker& b, const Error& e, const std::string& id) {
  if (e.code != ErrorCode::kConflict || e.details.empty()) return AboutTask(e, "retry", id);
  auto details = ParseJson(e.details);
  const std::string waiter = details && details->is_object() ? details->value("waiter", "") : "";
  if (waiter.empty()) return AboutTask(e, "retry", id);
  auto waiting = b.GetTask(waiter.substr(waiter.find('/') + 1));
  const std::string run = waiting && *waiting ? runs::RunServedBy(**waiting) : "";
  if (run.empty()) return AboutTask(e, "retry", id);
  return RunOwnsTask(id, "a task node's task of", run);
}

// A queue is what the broker lists: made by its first task or the first worker that serves it,
// and not deleted since. A name that is not one (a typo in a link or a command) is told so,
// as the delete route says it, instead of being shown as an empty queue.
Status RequireQueue(Broker& b, const std::string& queue) {
  auto names = b.ListQueues();
  if (!names) return Fail(names.error());
  if (std::find(names->begin(), names->end(), queue) == names->end()) {
    return Fail(ErrorCode::kNotFound, "no queue " + queue);
  }
  return {};
}

}  // namespace

LocalService::LocalService(Pool<Store>& stores, Pool<Broker>& brokers, LocalServiceOptions options)
    : stores_(stores), brokers_(brokers), options_(std::move(options)) {}

Result<Json> LocalService::SubmitTask(const Json& body) {
  auto submit = ReadTaskSubmission(body, options_.clock->NowMs(), options_.broker, "");
  if (!submit) return Fail(submit.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto submitted = b.Submit(*submit);
    if (!submitted) return Fail(submitted.error());
    return Json{{"id", submitted->id}, {"existing", submitted->existing}};
  });
}

Result<Json> LocalService::SubmitTasks(const Json& body) {
  auto requests = ReadTaskBatch(body, options_.clock->NowMs(), options_.broker);
  if (!requests) return Fail(requests.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto submitted = b.SubmitBatch(*requests);
    if (!submitted) return Fail(submitted.error());
    return BatchAnswer(*submitted);
  });
}

Result<Json> LocalService::ListTasks(const Query& query) {
  QueryReader q(query);
  TaskListFilter filter;
  filter.limit = q.Limit(50, kMaxPageLimit);
  if (auto s = q.Text("status"); !s.empty()) {
    filter.status = ParseTaskStatus(s);
    if (!filter.status) {
      q.Problem("unknown status '" + s +
                "'; valid: pending, scheduled, running, retrying, succeeded, failed (or dead), "
                "cancelled");
    }
  }
  if (auto name = q.Text("queue"); !name.empty()) {
    if (auto st = ValidateQueueName(name); !st) q.Problem(st.error().message);
    filter.queue = name;
  }
  if (auto kind = q.Text("kind"); !kind.empty()) {
    if (auto st = ValidateTaskKind(kind); !st) q.Problem(st.error().message);
    filter.kind = kind;
  }
  filter.cursor = q.Text("cursor");
  if (auto st = CheckTaskCursor(filter.cursor, ListingFor(filter.status)); !st) {
    q.Problem(st.error().message);
  }
  if (auto st = q.Finish(); !st) return Fail(st.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto page = b.ListTasks(filter);
    if (!page) return Fail(page.error());
    Json out = Json::array();
    for (const auto& t : page->tasks) out.push_back(views::Task(t));
    return views::Page("tasks", std::move(out), page->next);
  });
}

Result<Json> LocalService::GetTask(const std::string& id) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto task = b.GetTask(id);
    if (!task) return Fail(task.error());
    if (!*task) return Fail(NoTask(id));
    return Json{{"task", views::Task(**task)}};
  });
}

Result<Json> LocalService::CancelTask(const std::string& id) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto status = b.Cancel(id);
    if (!status) return Fail(AboutTask(status.error(), "cancel", id));
    // A waiting task is cancelled at once; a running one is only flagged, and its worker stops
    // the handler and records the cancellation.
    const bool requested = *status == TaskStatus::kRunning;
    return Json{{"id", id},
                {"status", TaskStatusName(*status)},
                {"outcome", requested ? "cancel_requested" : "cancelled"}};
  });
}

Result<Json> LocalService::RetryTask(const std::string& id) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto task = b.GetTask(id);
    if (!task) return Fail(AboutTask(task.error(), "retry", id));
    // Only a failed or cancelled task is retried; the broker refuses the others.
    const bool retryable = *task && ((**task).status == TaskStatus::kFailed ||
                                     (**task).status == TaskStatus::kCancelled);
    if (const std::string run = retryable ? runs::RunServedBy(**task) : ""; !run.empty()) {
      auto store = stores_.Acquire();
      if (!store) return Fail(store.error());
      auto refusal = EndedRunOwnsTask(**store, id, run);
      if (!refusal) {
        if (MayBreakConnection(refusal.error())) store->MarkBad();
        return Fail(refusal.error());
      }
      if (*refusal) return Fail(**refusal);
    }
    if (auto st = b.Retry(id); !st) return Fail(AboutRetry(b, st.error(), id));
    // The status the retry left it in. Not read back: a worker may have claimed, or even
    // finished, it in between, and the answer would then describe that instead.
    return Json{{"id", id}, {"status", "pending"}, {"outcome", "requeued"}};
  });
}

Result<Json> LocalService::TaskEvents(const std::string& id, const Query& query) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  QueryReader q(query);
  const int limit = q.Limit(100, 1000);
  std::string after = q.Text("after");
  if (after.empty()) after = "0";
  if (!IsTaskEventId(after)) q.Problem("after must be an event id such as 1733212800000-0");
  if (auto st = q.Finish(); !st) return Fail(st.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto task = b.GetTask(id);
    if (!task) return Fail(task.error());
    if (!*task) return Fail(NoTask(id));
    auto events = b.ReadEvents(id, after, limit, 0ms);
    if (!events) return Fail(events.error());
    Json out = Json::array();
    for (const auto& e : *events) out.push_back(views::TaskEvent(e));
    const bool full = static_cast<int>(events->size()) == limit;
    return views::Page("events", std::move(out), full ? events->back().id : "");
  });
}

Result<Json> LocalService::ListWorkers() {
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto workers = b.ListWorkers();
    if (!workers) return Fail(workers.error());
    // Live ones first, then by id: the same order on every surface.
    std::stable_sort(workers->begin(), workers->end(),
                     [](const WorkerInfo& x, const WorkerInfo& y) {
                       if (x.alive != y.alive) return x.alive;
                       return x.id < y.id;
                     });
    Json out = Json::array();
    const int64_t now = options_.clock->NowMs();
    for (const auto& w : *workers) out.push_back(views::Worker(w, now));
    return views::Page("workers", std::move(out), "");
  });
}

Result<Json> LocalService::ListQueues() {
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto names = b.ListQueues();
    if (!names) return Fail(names.error());
    Json out = Json::array();
    const int64_t now = options_.clock->NowMs();
    for (const auto& name : *names) {
      auto stats = b.GetQueueStats(name);
      if (!stats) return Fail(stats.error());
      out.push_back(views::Queue(*stats, now));
    }
    return views::Page("queues", std::move(out), "");
  });
}

Result<Json> LocalService::GetQueue(const std::string& name) {
  if (auto st = ValidateQueueName(name); !st) return Fail(st.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    if (auto st = RequireQueue(b, name); !st) return Fail(st.error());
    auto stats = b.GetQueueStats(name);
    if (!stats) return Fail(stats.error());
    return Json{{"queue", views::Queue(*stats, options_.clock->NowMs())}};
  });
}

Result<Json> LocalService::ListDead(const std::string& queue, const Query& query) {
  QueryReader q(query);
  const int limit = q.Limit(50, kMaxPageLimit);
  if (auto st = ValidateQueueName(queue); !st) q.Problem(st.error().message);
  if (auto st = q.Finish(); !st) return Fail(st.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    if (auto st = RequireQueue(b, queue); !st) return Fail(st.error());
    auto dead = b.ListDead(queue, limit);
    if (!dead) return Fail(dead.error());
    Json out = Json::array();
    for (const auto& t : *dead) out.push_back(views::Task(t));
    return views::Page("tasks", std::move(out), "");
  });
}

Result<Json> LocalService::PurgeDead(const std::string& queue) {
  return OnDeadLetters(queue, "purged", "purge", &Broker::PurgeDead);
}

Result<Json> LocalService::RetryDead(const std::string& queue) {
  return OnDeadLetters(queue, "retried", "retry", &Broker::RetryDead);
}

// Both act on the tasks dead-lettered up to now, so a later failure is left for the next call.
Result<Json> LocalService::OnDeadLetters(const std::string& queue, const char* done_field,
                                         const char* verb,
                                         Result<int64_t> (Broker::*act)(const std::string&,
                                                                        int64_t)) {
  if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
  const int64_t now = options_.clock->NowMs();
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    auto done = (b.*act)(queue, now);
    if (!done) {
      return Fail(MayBeDone(done.error(),
                            std::string("the ") + verb + " of queue " + queue + "'s dead letters",
                            "`ferry queue dead " + queue + "`"));
    }
    // None done may mean no such queue: asked only then, so the call costs no more.
    if (*done == 0) {
      if (auto st = RequireQueue(b, queue); !st) return Fail(st.error());
    }
    return Json{{"queue", queue}, {done_field, *done}};
  });
}

Result<Json> LocalService::DeleteQueue(const std::string& queue) {
  if (auto st = ValidateQueueName(queue); !st) return Fail(st.error());
  return With(brokers_, [&](Broker& b) -> Result<Json> {
    // A live worker would make the queue again at its next read; asking first says who serves
    // it instead of deleting a queue that comes straight back.
    auto workers = b.ListWorkers();
    if (!workers) return Fail(workers.error());
    std::vector<std::string> serving;
    for (const auto& w : *workers) {
      if (w.alive && std::find(w.queues.begin(), w.queues.end(), queue) != w.queues.end()) {
        serving.push_back(w.id);
      }
    }
    if (!serving.empty()) {
      return Fail(ErrorCode::kConflict,
                  fmt::format("queue {} is served by {} live worker{} ({}): stop them, or start "
                              "them without it, first",
                              queue, serving.size(), serving.size() == 1 ? "" : "s",
                              fmt::join(serving, ", ")));
    }
    if (auto st = b.DeleteQueue(queue); !st) return Fail(st.error());
    return Json{{"queue", queue}, {"deleted", true}};
  });
}

}  // namespace ferry::service
