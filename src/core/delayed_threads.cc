#include "core/delayed_threads.h"

#include <spdlog/spdlog.h>

#include <system_error>
#include <utility>

namespace ferry {

namespace {
// How long a slot whose thread could not be started waits before the next try.
constexpr std::chrono::milliseconds kRetryAfterFailure(100);
}  // namespace

DelayedThreads::Handle& DelayedThreads::Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    Stop();
    owner_ = std::exchange(other.owner_, nullptr);
    slot_ = std::move(other.slot_);
  }
  return *this;
}

void DelayedThreads::Handle::Stop() {
  if (!slot_) return;
  std::jthread thread;
  {
    std::lock_guard lock(owner_->mu_);
    if (slot_->queued) {
      owner_->due_.erase(slot_->where);
      slot_->queued = false;
    }
    thread = std::move(slot_->thread);
  }
  // Joined outside the lock: the timer thread may be starting another slot's thread meanwhile.
  if (thread.joinable()) {
    thread.request_stop();
    thread.join();
  }
  slot_.reset();
}

bool DelayedThreads::Handle::started() const {
  if (!slot_) return false;
  std::lock_guard lock(owner_->mu_);
  return slot_->thread.joinable();
}

DelayedThreads::~DelayedThreads() {
  if (timer_.joinable()) {
    timer_.request_stop();
    timer_.join();
  }
}

DelayedThreads::Handle DelayedThreads::Start(std::chrono::milliseconds delay,
                                             std::function<void(std::stop_token)> fn) {
  auto slot = std::make_shared<Slot>();
  slot->fn = std::move(fn);
  bool earliest = false;
  {
    std::lock_guard lock(mu_);
    // The timer first: if it cannot start, this throws with no slot left behind to run later
    // for a caller that never got its handle.
    if (!timer_.joinable()) timer_ = std::jthread([this](std::stop_token st) { TimerLoop(st); });
    slot->where = due_.emplace(Clock::now() + delay, slot);
    earliest = slot->where == due_.begin();
  }
  // Only a slot that is now the earliest changes what the timer waits for. (Waking it for every
  // slot would be a wake-up per run again; with one delay for all, a new slot is the earliest
  // only when none was waiting.)
  if (earliest) wake_.notify_one();
  return Handle(this, std::move(slot));
}

std::optional<DelayedThreads::Clock::time_point> DelayedThreads::SleepingUntil() {
  std::lock_guard lock(mu_);
  return sleeping_until_;
}

void DelayedThreads::TimerLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    if (due_.empty()) {
      wake_.wait(lock, stop, [this] { return !due_.empty(); });
      continue;
    }
    const auto when = due_.begin()->first;
    if (Clock::now() < when) {
      // Wakes early when a slot that is due sooner arrives. (One that goes is not waited for:
      // the timer wakes at its time and finds the next one not due yet.)
      sleeping_until_ = when;
      wake_.wait_until(lock, stop, when,
                       [this, when] { return !due_.empty() && due_.begin()->first < when; });
      sleeping_until_.reset();
      continue;
    }
    // Started under the lock, so a Handle that stops now either finds its slot still queued or
    // finds its thread: never a thread about to start for an owner that is gone.
    auto slot = due_.begin()->second;
    due_.erase(due_.begin());
    try {
      slot->thread = std::jthread(slot->fn);
      slot->queued = false;
    } catch (const std::system_error& e) {
      // No thread to be had (a process at its limit): tried again a moment later, not the end
      // of the process. Its owner still stops it as a queued slot.
      spdlog::warn("delayed thread not started ({}); trying again in {} ms", e.what(),
                   kRetryAfterFailure.count());
      slot->where = due_.emplace(Clock::now() + kRetryAfterFailure, slot);
    }
  }
}

}  // namespace ferry
