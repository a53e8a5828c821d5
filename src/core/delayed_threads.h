// Threads that start only if their owner is still there after a delay.
//
// A workflow run watches its store (cancel checks, timed event flushes) on a thread of its own,
// but most runs end before that thread's first turn: starting and ending a thread per run cost
// about a twentieth of the machine's CPU per one-node run (docs/benchmarks.md). A DelayedThreads
// keeps one timer thread for all of them and starts a run's thread only once the run has
// outlived the delay; a run that ends first never had one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

namespace ferry {

class DelayedThreads {
  struct Slot;

 public:
  using Clock = std::chrono::steady_clock;

  // The thread of one Start: ends with its handle. Destroying (or Stop) before the delay passed
  // means `fn` never runs; after, it requests `fn`'s stop and joins it.
  class Handle {
   public:
    Handle() = default;
    Handle(Handle&& other) noexcept = default;
    Handle& operator=(Handle&& other) noexcept;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { Stop(); }

    void Stop();
    // Whether `fn` was started (for tests).
    bool started() const;

   private:
    friend class DelayedThreads;
    Handle(DelayedThreads* owner, std::shared_ptr<Slot> slot)
        : owner_(owner), slot_(std::move(slot)) {}
    DelayedThreads* owner_ = nullptr;
    std::shared_ptr<Slot> slot_;
  };

  DelayedThreads() = default;
  // Every Handle must be gone by then: the threads started are theirs to join.
  ~DelayedThreads();
  DelayedThreads(const DelayedThreads&) = delete;
  DelayedThreads& operator=(const DelayedThreads&) = delete;

  // Starts `fn` on its own thread once `delay` has passed, unless the handle is gone by then.
  // The timer thread itself is started by the first call, which throws std::system_error if it
  // cannot be (nothing is left queued then). A thread that cannot be started when its time
  // comes is tried again 100 ms later (and logged).
  Handle Start(std::chrono::milliseconds delay, std::function<void(std::stop_token)> fn);

  // The time the timer thread is asleep until, or nullopt when it is not asleep on a slot (for
  // tests: they wait for it before racing a sooner slot against it).
  std::optional<Clock::time_point> SleepingUntil();

 private:
  struct Slot {
    std::function<void(std::stop_token)> fn;
    std::jthread thread;  // set by the timer thread when the delay passed
    bool queued = true;   // still waiting in due_
    std::multimap<Clock::time_point, std::shared_ptr<Slot>>::iterator where;
  };

  void TimerLoop(std::stop_token stop);

  std::mutex mu_;
  std::condition_variable_any wake_;
  std::multimap<Clock::time_point, std::shared_ptr<Slot>> due_;
  std::optional<Clock::time_point> sleeping_until_;
  std::jthread timer_;  // last member: it stops and joins first
};

}  // namespace ferry
