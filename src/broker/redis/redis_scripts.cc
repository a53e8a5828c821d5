#include "broker/redis/redis_scripts.h"

#include <openssl/sha.h>

#include <array>

namespace ferry::redis_broker {

namespace scripts {
extern const std::string_view k_submit;
extern const std::string_view k_claim;
extern const std::string_view k_reclaim;
extern const std::string_view k_renew;
extern const std::string_view k_complete;
extern const std::string_view k_cancel;
extern const std::string_view k_retry;
extern const std::string_view k_promote;
extern const std::string_view k_events;
extern const std::string_view k_purge;
}  // namespace scripts

namespace {

constexpr size_t kCount = static_cast<size_t>(Script::kCount);

std::string Sha1Hex(std::string_view text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace

std::string_view ScriptText(Script s) {
  switch (s) {
    case Script::kSubmit:
      return scripts::k_submit;
    case Script::kClaim:
      return scripts::k_claim;
    case Script::kReclaim:
      return scripts::k_reclaim;
    case Script::kRenew:
      return scripts::k_renew;
    case Script::kComplete:
      return scripts::k_complete;
    case Script::kCancel:
      return scripts::k_cancel;
    case Script::kRetry:
      return scripts::k_retry;
    case Script::kPromote:
      return scripts::k_promote;
    case Script::kEvents:
      return scripts::k_events;
    case Script::kPurge:
      return scripts::k_purge;
    case Script::kCount:
      break;
  }
  return {};
}

std::string_view ScriptName(Script s) {
  static constexpr std::array<std::string_view, kCount> kNames = {
      "submit", "claim", "reclaim", "renew",  "complete",
      "cancel", "retry", "promote", "events", "purge"};
  size_t i = static_cast<size_t>(s);
  return i < kCount ? kNames[i] : "?";
}

const std::string& ScriptSha(Script s) {
  static const std::array<std::string, kCount> kShas = [] {
    std::array<std::string, kCount> out;
    for (size_t i = 0; i < kCount; ++i) out[i] = Sha1Hex(ScriptText(static_cast<Script>(i)));
    return out;
  }();
  return kShas[static_cast<size_t>(s)];
}

}  // namespace ferry::redis_broker
