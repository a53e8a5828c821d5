#include "store/sqlite/commit_groups.h"

#include <sys/stat.h>

#include <algorithm>
#include <string>

#include "store/sql_counters.h"
#include "store/sqlite/per_file.h"

namespace ferry::store_internal {

std::shared_ptr<CommitGroups> CommitGroups::ForFile(const std::string& path) {
  std::string key = CanonicalFileKey(path);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    key += "@" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
  return SharedPerFile<CommitGroups>(key, [] { return std::make_shared<CommitGroups>(); });
}

Result<std::vector<SqlResult>> CommitGroups::Run(const std::vector<SqlStatement>& stmts,
                                                 std::chrono::steady_clock::time_point deadline,
                                                 std::chrono::milliseconds waited,
                                                 const Lead& lead) {
  Request me(stmts);
  std::unique_lock lock(mu_);
  waiting_.push_back(&me);
  if (leading_) {
    const auto ready = [&] { return me.done || me.lead; };
    if (!me.cv.wait_until(lock, deadline, ready)) {
      if (!me.taken) {
        // Not taken in time: it leaves the line, as a writer whose turn never came does.
        std::erase(waiting_, &me);
        return Fail(ErrorCode::kUnavailable,
                    "sqlite: database is locked (this process's other writers held it for " +
                        std::to_string(waited.count()) + " ms)");
      }
      // Taken just now: the group holds its statements, and it ends.
      me.cv.wait(lock, ready);
    }
    if (me.done) return std::move(me.result);
  }
  // Leading: this caller is first in line (it found none, or the last leader named it).
  leading_ = true;
  me.lead = false;
  lock.unlock();
  std::vector<Request*> group;
  const Take take = [&]() -> const std::vector<Request*>& {
    std::lock_guard taking(mu_);
    const size_t n = std::min(waiting_.size(), kMaxGroup);
    group.assign(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
    for (Request* r : group) r->taken = true;
    return group;
  };
  Status led;
  try {
    led = lead(take);
  } catch (...) {
    // `lead` answers its group itself; this is the last resort, so that the group's callers get
    // an answer and the next group a leader whatever happened.
    led = Fail(ErrorCode::kInternal, "sqlite: commit group: an exception while leading");
    for (Request* r : group) r->result = Fail(led.error());
  }
  lock.lock();
  if (!me.taken) {
    // It could not begin: only the leader fails; the others wait on with their deadlines.
    std::erase(waiting_, &me);
    me.result = Fail(led.error());
  }
  // The members committed, less the one transaction that held them (sql_counters.h); one that
  // stopped at a `needs_row` statement committed nothing.
  const auto committed = std::count_if(group.begin(), group.end(), [](const Request* r) {
    return r->result.has_value() && !StoppedAtNeededRow(r->stmts, *r->result);
  });
  if (committed > 1) CountGrouped(committed - 1);
  for (Request* r : group) {
    if (r == &me) continue;
    r->done = true;
    r->cv.notify_one();
  }
  if (waiting_.empty()) {
    leading_ = false;
  } else {
    waiting_.front()->lead = true;
    waiting_.front()->cv.notify_one();
  }
  return std::move(me.result);
}

size_t CommitGroups::Waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

}  // namespace ferry::store_internal
