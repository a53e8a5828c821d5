// Webhook delivery verification, one recipe per sender (engine::WebhookAuth): Ferry's own hmac
// scheme, a shared secret header, GitHub, Stripe, Slack and Standard Webhooks. Pure functions
// with no server and no I/O: each recipe is unit tested against the senders' published test
// vectors and fuzzed (fuzz/).
//
// Replay protection: every accepted delivery yields a nonce the caller records until
// `nonce_expires_ms` (with the run it starts: CreateRunRequest::nonce); a second delivery with
// the same nonce is a replay.
// The nonce is something the signature covers, so a replayer cannot change it: the signature
// itself (hmac, github, stripe, slack) or the signed message id (standard-webhooks).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "engine/definition.h"
#include "http/message.h"

namespace ferry::api {

// How much longer a nonce is remembered than a delivery with it could be accepted. The store
// compares the record's end with its own clock, read after the window check's (and, with several
// servers, with another host's clock): a record that ended with the window would have let a
// replay sent at the window's last moment through.
inline constexpr int64_t kReplayRecordMarginMs = 10 * 60 * 1000;

struct WebhookVerified {
  // What replay protection remembers; "" when the scheme has none (none, secret).
  std::string nonce;
  // When the nonce may be forgotten (epoch ms): timestamp + tolerance for timestamped schemes,
  // now + replay_window for github, each + kReplayRecordMarginMs.
  int64_t nonce_expires_ms = 0;
  // Which of the trigger's secrets matched (0 = the first).
  size_t secret_index = 0;
};

// Verifies a delivery. `secrets` holds the values of trigger.secrets in the same order ("" for
// one this server does not have; at least one must be set). kUnauthenticated otherwise, with a
// message that names the header or the check that failed but never an expected value.
Result<WebhookVerified> VerifyWebhook(const engine::WebhookTrigger& trigger,
                                      const std::vector<std::string>& secrets,
                                      const http::HeaderList& headers, std::string_view body,
                                      int64_t now_ms);

// --- the recipes' pieces, exposed for tests and fuzzing ---

// Ferry's hmac scheme: the signed bytes, "<timestamp>.<raw body>".
std::string SignedPayload(std::string_view timestamp, std::string_view raw_body);

// Unix seconds as a sender writes them: 1 to 12 decimal digits, nothing else.
std::optional<int64_t> ParseUnixSeconds(std::string_view text);

// Stripe-Signature: "t=1492774577,v1=5257a8...,v1=...,v0=..." (order free; unknown schemes
// ignored). nullopt without exactly one t, or without any v1.
struct StripeSignature {
  int64_t timestamp = 0;
  std::vector<std::string> v1;  // lowercase hex as sent
};
std::optional<StripeSignature> ParseStripeSignature(std::string_view header);

// Standard Webhooks webhook-signature: space-separated "v1,<base64>" entries (other versions,
// such as the asymmetric v1a, are skipped). At most 16 entries are read.
std::vector<std::string> ParseStandardSignatures(std::string_view header);

// A Standard Webhooks secret "whsec_<base64>": the key bytes. nullopt without the prefix or for
// bad base64.
std::optional<std::string> StandardWebhooksKey(std::string_view secret);

}  // namespace ferry::api
