// Time as a seam: leases, backoff, cron and retention take a Clock& so tests can use FakeClock.
// Thread-safety: SystemClock is stateless; FakeClock is safe to read and advance from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ferry {

using SystemTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SystemTime Now() const = 0;
  int64_t NowMs() const {
    return std::chrono::duration_cast<Millis>(Now().time_since_epoch()).count();
  }
};

class SystemClock final : public Clock {
 public:
  SystemTime Now() const override { return std::chrono::system_clock::now(); }
  static SystemClock& Instance();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : ms_(start_ms) {}
  SystemTime Now() const override { return SystemTime(Millis(ms_.load())); }
  void Advance(Millis d) { ms_ += d.count(); }
  void SetMs(int64_t ms) { ms_ = ms; }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace ferry
