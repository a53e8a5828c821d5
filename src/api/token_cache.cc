#include "api/token_cache.h"

#include <algorithm>

namespace ferry::api {

std::optional<std::vector<std::string>> TokenCache::FindWithin(const std::string& token_hash,
                                                               int64_t now_ms, int64_t within_ms) {
  if (ttl_ms_ <= 0) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = entries_.find(token_hash);
  if (it == entries_.end()) return std::nullopt;
  const int64_t age = now_ms - it->second.verified_ms;
  // Past every use, or verified "in the future" (the clock stepped back): gone, looked up again.
  if (age >= std::max(ttl_ms_, outage_ttl_ms_) || age < 0) {
    entries_.erase(it);
    return std::nullopt;
  }
  if (age >= within_ms) return std::nullopt;
  return it->second.scopes;
}

void TokenCache::Put(const std::string& token_hash, std::vector<std::string> scopes,
                     int64_t now_ms) {
  if (ttl_ms_ <= 0) return;
  std::lock_guard lock(mu_);
  if (entries_.size() >= max_entries_ && entries_.count(token_hash) == 0) entries_.clear();
  entries_[token_hash] = Entry{std::move(scopes), now_ms};
}

}  // namespace ferry::api
