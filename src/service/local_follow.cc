// LocalService: following a run's or a task's events as they are written.
#include <thread>

#include "runs/runs.h"
#include "service/local_service.h"
#include "views/views.h"

namespace ferry::service {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

milliseconds Left(SteadyClock::time_point deadline) {
  return std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
}

}  // namespace

Status LocalService::FollowRunEvents(const std::string& id, int64_t after, milliseconds timeout,
                                     const EventSink& sink) {
  const auto deadline = SteadyClock::now() + timeout;
  constexpr int kPage = 500;
  while (true) {
    bool ended = false;
    bool stop = false;
    auto polled = With(stores_, [&](Store& store) -> Status {
      // The status first: every event written before the run ended is then visible below.
      auto run = store.GetRun(id);
      if (!run) return Fail(run.error());
      if (!*run) return Fail(ErrorCode::kNotFound, "no run " + id);
      ended = IsTerminal((*run)->status);
      while (!stop) {
        auto events = store.ListRunEvents(id, after, kPage);
        if (!events) return Fail(events.error());
        for (const auto& e : *events) {
          after = e.seq;
          if (!sink(views::RunEvent(e))) {
            stop = true;
            break;
          }
        }
        if (static_cast<int>(events->size()) < kPage) break;
      }
      return {};
    });
    if (!polled) return polled;
    if (stop || ended) return {};
    if (Left(deadline).count() <= 0) {
      return Fail(ErrorCode::kTimeout,
                  "run " + id + " has not ended after " + std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::min(options_.follow_poll, Left(deadline)));
  }
}

Status LocalService::FollowTaskEvents(const std::string& id, milliseconds timeout,
                                      const EventSink& sink) {
  const auto deadline = SteadyClock::now() + timeout;
  constexpr int kPage = 100;
  return With(brokers_, [&](Broker& b) -> Status {
    auto task = b.GetTask(id);
    if (!task) return Fail(task.error());
    if (!*task) return Fail(ErrorCode::kNotFound, "no task " + id);
    std::string after = "0";
    bool ended = IsTerminal((*task)->status);
    while (true) {
      milliseconds block{0};
      if (!ended) {
        const milliseconds left = Left(deadline);
        if (left.count() <= 0) return Fail(ErrorCode::kTimeout, "timed out following task " + id);
        block = std::min(milliseconds(500), left);
      }
      auto events = b.ReadEvents(id, after, kPage, block);
      if (!events) return Fail(events.error());
      for (const auto& e : *events) {
        after = e.id;
        if (!sink(views::TaskEvent(e))) return {};
      }
      if (static_cast<int>(events->size()) == kPage) continue;  // more to read at once
      if (ended) return {};
      // The record, not the event stream, says when the task is over (a retry is not an end);
      // one more read after that drains the tail.
      auto now = b.GetTask(id);
      if (!now) return Fail(now.error());
      if (!*now || IsTerminal((*now)->status)) ended = true;
    }
  });
}

}  // namespace ferry::service
