#include "store/sqlite/commit_groups.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>

#include "store/sql_counters.h"

namespace ferry::store_internal {

std::shared_ptr<CommitGroups> CommitGroups::ForFile(const std::string& path) {
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) key = path;
  static std::mutex mu;
  // Never freed: one small object per database file the process opened.
  static auto* files = new std::map<std::string, std::weak_ptr<CommitGroups>>();
  std::lock_guard lock(mu);
  std::erase_if(*files, [](const auto& f) { return f.second.expired(); });
  auto& slot = (*files)[key];
  auto groups = slot.lock();
  if (!groups) {
    groups = std::make_shared<CommitGroups>();
    slot = groups;
  }
  return groups;
}

Result<std::vector<SqlResult>> CommitGroups::Run(const std::vector<SqlStatement>& stmts,
                                                 const Lead& lead) {
  Request me(stmts);
  std::unique_lock lock(mu_);
  waiting_.push_back(&me);
  if (leading_) {
    me.cv.wait(lock, [&] { return me.done || me.lead; });
    if (me.done) return std::move(me.result);
  }
  // Leading: this caller is first in line (it found none, or the last leader named it).
  leading_ = true;
  lock.unlock();
  std::vector<Request*> group;
  const Take take = [&] {
    std::lock_guard taking(mu_);
    const size_t n = std::min(waiting_.size(), kMaxGroup);
    group.assign(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
    return group;
  };
  try {
    lead(take);
  } catch (const std::exception& e) {
    // Whatever happened, the group's callers get an answer and the next group a leader.
    if (group.empty()) take();
    for (Request* r : group) {
      r->result = Fail(ErrorCode::kInternal, std::string("sqlite: commit group: ") + e.what());
    }
  }
  lock.lock();
  // The members committed, less the one transaction that held them (sql_counters.h).
  const auto committed = std::count_if(group.begin(), group.end(),
                                       [](const Request* r) { return r->result.has_value(); });
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
