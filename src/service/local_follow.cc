// LocalService: following a run's or a task's events as they are written.
#include <algorithm>
#include <thread>

#include "core/time_util.h"
#include "runs/runs.h"
#include "service/arguments.h"
#include "service/local_service.h"
#include "views/views.h"

namespace ferry::service {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

milliseconds Left(SteadyClock::time_point deadline) {
  return std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
}

// Whether a follower waits out `e`, a read that failed after earlier ones had answered: the
// store or Redis briefly away (a restart, a failover) is waited for until the deadline, pausing
// `poll`, as the API's event streams wait, while the run or task goes on meanwhile. The first
// read's errors, and errors that are not the server being away, are the caller's at once.
bool WaitOut(const Error& e, bool followed, SteadyClock::time_point deadline, milliseconds poll) {
  if (!followed || !e.Retryable() || Left(deadline).count() <= 0) return false;
  std::this_thread::sleep_for(std::min(poll, Left(deadline)));
  return true;
}

}  // namespace

Result<LocalService::EventStep> LocalService::RunEventStep(const std::string& id, int64_t after,
                                                           int limit) {
  return With(stores_, [&](Store& store) -> Result<EventStep> {
    // The status first: every event written before the run ended is then read below.
    auto run = store.GetRun(id);
    if (!run) return Fail(run.error());
    if (!*run) return Fail(ErrorCode::kNotFound, "no run " + id);
    auto page = store.ListRunEventPage(
        id, {.after_seq = after, .limit = limit, .max_bytes = options_.run_event_page_bytes});
    if (!page) return Fail(page.error());
    EventStep step;
    bool finished_read = false;
    for (const auto& e : page->events) {
      step.events.push_back({std::to_string(e.seq), e.type, views::RunEvent(e)});
      if (e.type == runs::kEventFinished) finished_read = true;
    }
    // As a page of the API: full at its limit, or when cut short by its bytes.
    step.full = page->more || static_cast<int>(page->events.size()) == limit;
    const bool terminal = IsTerminal((*run)->status);
    // The store stamps finished_ms with the wall clock, so the settling time is measured on it.
    const bool settled = WallNowMs() - (*run)->finished_ms >= options_.run_events_settle.count();
    if (terminal && !step.full && !finished_read && !settled && after > 0) {
      // The previous page was full and ended exactly on run.finished: the event at the cursor
      // says so, and the follower need not wait the settling time.
      auto at = store.ListRunEventPage(
          id, {.after_seq = after - 1, .limit = 1, .types = {std::string(runs::kEventFinished)}});
      if (!at) return Fail(at.error());
      finished_read = !at->events.empty() && at->events[0].seq == after;
    }
    step.ended = !step.full && terminal && (finished_read || settled);
    return step;
  });
}

Result<LocalService::EventStep> LocalService::TaskEventStep(const std::string& id,
                                                            const std::string& after, int limit,
                                                            milliseconds block) {
  return With(brokers_, [&](Broker& b) -> Result<EventStep> {
    // The record, not the event stream, says when the task is over (a retry is not an end); it
    // is read first, so every event written before the end is read below.
    auto task = b.GetTask(id);
    if (!task) return Fail(task.error());
    if (!*task) return Fail(ErrorCode::kNotFound, "no task " + id);
    const bool ended = IsTerminal((*task)->status);
    auto events = b.ReadEvents(id, after, limit, ended ? milliseconds(0) : block);
    if (!events) return Fail(events.error());
    EventStep step;
    for (const auto& e : *events) step.events.push_back({e.id, e.type, views::TaskEvent(e)});
    step.full = static_cast<int>(events->size()) == limit;
    step.ended = !step.full && ended;
    return step;
  });
}

Status LocalService::FollowRunEvents(const std::string& id, int64_t after, milliseconds timeout,
                                     const EventSink& sink) {
  if (auto st = CheckRunId(id); !st) return Fail(st.error());
  const auto deadline = SteadyClock::now() + timeout;
  bool followed = false;
  while (true) {
    auto step = RunEventStep(id, after, 500);
    if (!step && WaitOut(step.error(), followed, deadline, options_.follow_poll)) continue;
    if (!step) return Fail(step.error());
    followed = true;
    for (auto& e : step->events) {
      after = std::stoll(e.id);  // a run event's seq, as RunEventStep wrote it
      if (!sink(e.view)) return {};
    }
    if (step->ended) return {};
    if (step->full) continue;
    if (Left(deadline).count() <= 0) {
      return Fail(ErrorCode::kTimeout,
                  "run " + id + " has not ended after " + std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::min(options_.follow_poll, Left(deadline)));
  }
}

Status LocalService::FollowTaskEvents(const std::string& id, milliseconds timeout,
                                      const EventSink& sink) {
  if (auto st = CheckTaskId(id); !st) return Fail(st.error());
  const auto deadline = SteadyClock::now() + timeout;
  std::string after = "0";
  bool followed = false;
  while (true) {
    const milliseconds left = Left(deadline);
    auto step = TaskEventStep(id, after, 100, std::clamp(left, milliseconds(0), milliseconds(500)));
    // A task deleted while followed (retention, a purge) has ended; one never there is an error.
    if (!step && step.error().code == ErrorCode::kNotFound && followed) return {};
    if (!step && WaitOut(step.error(), followed, deadline, milliseconds(500))) continue;
    if (!step) return Fail(step.error());
    followed = true;
    for (auto& e : step->events) {
      after = e.id;
      if (!sink(e.view)) return {};
    }
    if (step->ended) return {};
    if (!step->full && left.count() <= 0) {
      return Fail(ErrorCode::kTimeout, "timed out following task " + id);
    }
  }
}

}  // namespace ferry::service
