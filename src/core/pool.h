// A small pool of connections (Store or Broker), each used by one thread at a time.
//
// Why: a Store/Broker instance is one connection and not thread-safe, while the run handler runs
// on many slot threads. Opening per execution is correct but costs a connect (and a migration
// check) per run; the pool keeps up to `max_idle` connections between executions (0: every one
// it opened, which is as many as were in use at once at the peak). A lease whose
// user saw an error is marked bad and closed instead of returned, so a broken connection is
// never handed out again.
//
// Thread-safety: Pool is thread-safe; a Lease is owned by one thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ferry {

template <typename T>
class Pool {
 public:
  using Opener = std::function<Result<std::unique_ptr<T>>()>;

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<T> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          conn_(std::move(other.conn_)),
          bad_(other.bad_) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (pool_ != nullptr && conn_ && !bad_) pool_->Return(std::move(conn_));
    }
    T& operator*() const { return *conn_; }
    T* operator->() const { return conn_.get(); }
    // Close instead of returning it (it saw an error; it may be broken).
    void MarkBad() { bad_ = true; }

   private:
    Pool* pool_;
    std::unique_ptr<T> conn_;
    bool bad_ = false;
  };

  Pool(Opener open, int max_idle) : open_(std::move(open)), max_idle_(max_idle) {}

  Result<Lease> Acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(conn));
      }
    }
    auto conn = open_();
    if (!conn) return Fail(conn.error());
    return Lease(this, std::move(*conn));
  }

 private:
  void Return(std::unique_ptr<T> conn) {
    std::lock_guard lock(mu_);
    if (max_idle_ <= 0 || static_cast<int>(idle_.size()) < max_idle_)
      idle_.push_back(std::move(conn));
  }

  // Constant after construction.
  const Opener open_;
  const int max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<T>> idle_;  // Guarded by mu_
};

}  // namespace ferry
