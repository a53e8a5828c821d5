// Bearer tokens the API server verified recently: a token seen again within `ttl` is not looked
// up in the store again. Every API request carries a token, and the store lookup (a SQL query on
// a pooled connection) cost more than the rest of a one-task submission (docs/benchmarks.md).
//
// The price is revocation latency: a token revoked with `ferry token revoke` (on any host) stops
// working on this server within `ttl` (1 s by default), not at once. Unknown tokens are never
// cached, so a token just created works at once, and a flood of wrong tokens costs what it did.
//
// While the store cannot be reached, a token verified within `outage_ttl` (5 minutes) keeps its
// scopes (FindDuringOutage): submitting tasks needs only Redis, and a store outage would
// otherwise refuse every request. A revocation made in the last `ttl` before the outage then
// takes effect when the store answers again.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ferry::api {

class TokenCache {
 public:
  explicit TokenCache(std::chrono::milliseconds ttl = std::chrono::seconds(1),
                      size_t max_entries = 4096,
                      std::chrono::milliseconds outage_ttl = std::chrono::minutes(5))
      : ttl_ms_(ttl.count()), outage_ttl_ms_(outage_ttl.count()), max_entries_(max_entries) {}

  // The scopes of `token_hash` if it was verified less than `ttl` before `now_ms`.
  std::optional<std::vector<std::string>> Find(const std::string& token_hash, int64_t now_ms) {
    return FindWithin(token_hash, now_ms, ttl_ms_);
  }
  // The same within `outage_ttl`: only for when the store cannot be asked.
  std::optional<std::vector<std::string>> FindDuringOutage(const std::string& token_hash,
                                                           int64_t now_ms) {
    return FindWithin(token_hash, now_ms, outage_ttl_ms_);
  }
  // Records a token the store just verified. When full, every entry is dropped (the next
  // requests look their tokens up again) rather than growing without bound.
  void Put(const std::string& token_hash, std::vector<std::string> scopes, int64_t now_ms);

 private:
  struct Entry {
    std::vector<std::string> scopes;
    int64_t verified_ms = 0;
  };
  std::optional<std::vector<std::string>> FindWithin(const std::string& token_hash, int64_t now_ms,
                                                     int64_t within_ms);

  const int64_t ttl_ms_;
  const int64_t outage_ttl_ms_;
  const size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace ferry::api
