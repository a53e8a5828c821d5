// Request parsing, error bodies, and webhook verification for the API: pure functions with no
// server and no I/O, so each rule is unit tested on its own (tests/unit/api).
//
// Thread-safety: every function here is pure and may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "engine/definition.h"
#include "http/message.h"

namespace ferry::api {

// ---------------------------------------------------------------------------------------------
// Requests

// Parses a request body that must be a JSON object. kInvalidArgument names the byte offset of a
// syntax error ("malformed JSON: ... at byte 12") or says what the body was instead of an object.
Result<Json> ParseJsonObject(std::string_view body);

// The token of an "Authorization: Bearer <token>" header; nullopt for any other scheme or shape.
std::optional<std::string> BearerToken(std::string_view authorization);

// A positive integer query parameter with bounds; `text` empty = the default.
Result<int> ParseLimit(std::string_view text, int default_value, int max_value);

// ---------------------------------------------------------------------------------------------
// Crypto

// Lowercase hex HMAC-SHA256(key, data).
std::string HmacSha256Hex(std::string_view key, std::string_view data);
// Compares in time independent of where the inputs differ (the length is not secret).
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// "fy_" + 64 random hex characters: what `ferry token create` prints once.
std::string NewApiTokenSecret();

// ---------------------------------------------------------------------------------------------
// Webhooks

using http::FindHeader;
using http::HeaderList;

// The exact bytes an hmac webhook signs: "<timestamp>.<raw body>", the timestamp being the
// decimal Unix seconds sent in the timestamp header, the body the request body as received.
std::string SignedPayload(std::string_view timestamp, std::string_view raw_body);

struct HmacCheck {
  // The signature as the nonce for replay protection (lowercase hex), when the check passed.
  std::string signature;
  // When the nonce may be forgotten: timestamp + tolerance (epoch ms).
  int64_t nonce_expires_ms = 0;
};

// Verifies an hmac webhook request: the timestamp header holds Unix seconds within
// `trigger.tolerance` of now_ms, and the signature header holds hex HMAC-SHA256(secret,
// SignedPayload(timestamp, body)), optionally prefixed "sha256=". kUnauthenticated otherwise,
// with a message that says which part failed but never the expected signature.
Result<HmacCheck> VerifyHmac(const engine::WebhookTrigger& trigger, const std::string& secret,
                             const HeaderList& headers, std::string_view raw_body, int64_t now_ms);

// Verifies a shared-secret webhook request (the signature header carries the secret itself).
Status VerifySharedSecret(const engine::WebhookTrigger& trigger, const std::string& secret,
                          const HeaderList& headers);

// Whether a header must never reach the store: credentials (Authorization, Proxy-Authorization,
// Cookie), the trigger's signature header, and any header whose name contains "signature",
// "secret", "token" or "api-key". Also the pseudo headers httplib adds (REMOTE_ADDR, ...).
bool IsScrubbedHeader(const engine::WebhookTrigger& trigger, std::string_view name);

// The run's `trigger` object: {method, headers (scrubbed; repeated headers joined with ", "),
// query, body (parsed JSON, or the raw text when it is not JSON)}.
Json WebhookTriggerData(const engine::WebhookTrigger& trigger, std::string_view method,
                        const HeaderList& headers,
                        const std::vector<std::pair<std::string, std::string>>& query,
                        std::string_view raw_body);

// The challenge of a Slack-style {"type":"url_verification","challenge":"..."} body, if it is one.
std::optional<std::string> UrlVerificationChallenge(const Json& body);

}  // namespace ferry::api
