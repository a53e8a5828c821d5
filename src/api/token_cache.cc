#include "api/token_cache.h"

namespace ferry::api {

std::optional<std::vector<std::string>> TokenCache::Find(const std::string& token_hash,
                                                         int64_t now_ms) {
  if (ttl_ms_ <= 0) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = entries_.find(token_hash);
  if (it == entries_.end()) return std::nullopt;
  // A clock that stepped back counts as stale too: look the token up again.
  if (now_ms - it->second.verified_ms >= ttl_ms_ || now_ms < it->second.verified_ms) {
    entries_.erase(it);
    return std::nullopt;
  }
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
