#include "broker/redis/redis_scripts.h"

#include <array>

namespace ferry::redis_broker {

namespace scripts {
extern const std::string_view k_submit, k_submit_sha1;
extern const std::string_view k_claim, k_claim_sha1;
extern const std::string_view k_reclaim, k_reclaim_sha1;
extern const std::string_view k_renew, k_renew_sha1;
extern const std::string_view k_complete, k_complete_sha1;
extern const std::string_view k_cancel, k_cancel_sha1;
extern const std::string_view k_retry, k_retry_sha1;
extern const std::string_view k_promote, k_promote_sha1;
extern const std::string_view k_events, k_events_sha1;
extern const std::string_view k_purge, k_purge_sha1;
extern const std::string_view k_retry_dead, k_retry_dead_sha1;
extern const std::string_view k_delete_queue, k_delete_queue_sha1;
extern const std::string_view k_wake, k_wake_sha1;
extern const std::string_view k_register_queue;
}  // namespace scripts

namespace {

constexpr size_t kCount = static_cast<size_t>(Script::kCount);

struct Entry {
  std::string_view name;
  const std::string_view* text;
  const std::string_view* sha;  // computed at build time (cmake/FerryEmbed.cmake, SHA1)
};

// In Script's order. Pointers, because the embedded constants are defined in another translation
// unit: their values cannot be read in a constant expression, their addresses can.
constexpr std::array<Entry, kCount> kScripts = {{
    {"submit", &scripts::k_submit, &scripts::k_submit_sha1},
    {"claim", &scripts::k_claim, &scripts::k_claim_sha1},
    {"reclaim", &scripts::k_reclaim, &scripts::k_reclaim_sha1},
    {"renew", &scripts::k_renew, &scripts::k_renew_sha1},
    {"complete", &scripts::k_complete, &scripts::k_complete_sha1},
    {"cancel", &scripts::k_cancel, &scripts::k_cancel_sha1},
    {"retry", &scripts::k_retry, &scripts::k_retry_sha1},
    {"promote", &scripts::k_promote, &scripts::k_promote_sha1},
    {"events", &scripts::k_events, &scripts::k_events_sha1},
    {"purge", &scripts::k_purge, &scripts::k_purge_sha1},
    {"retry_dead", &scripts::k_retry_dead, &scripts::k_retry_dead_sha1},
    {"delete_queue", &scripts::k_delete_queue, &scripts::k_delete_queue_sha1},
    {"wake", &scripts::k_wake, &scripts::k_wake_sha1},
}};

}  // namespace

std::string_view ScriptText(Script s) {
  const auto i = static_cast<size_t>(s);
  return i < kCount ? *kScripts[i].text : std::string_view{};
}

std::string_view ScriptName(Script s) {
  const auto i = static_cast<size_t>(s);
  return i < kCount ? kScripts[i].name : "?";
}

std::string_view ScriptSha(Script s) {
  const auto i = static_cast<size_t>(s);
  return i < kCount ? *kScripts[i].sha : std::string_view{};
}

std::string_view RegisterQueueScriptText() { return scripts::k_register_queue; }

}  // namespace ferry::redis_broker
