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

#include "core/crypto.h"
#include "core/json.h"
#include "core/result.h"
#include "engine/definition.h"
#include "http/message.h"

namespace ferry::api {

// ---------------------------------------------------------------------------------------------
// Requests (a JSON object body and a limit: core/json_fields.h)

// The token of an "Authorization: Bearer <token>" header; nullopt for any other scheme or shape.
std::optional<std::string> BearerToken(std::string_view authorization);

// ---------------------------------------------------------------------------------------------
// Webhooks

using http::FindHeader;
using http::HeaderList;

// Whether a header must never reach the store: credentials (Authorization, Proxy-Authorization,
// Cookie), the trigger's signature header, and any header whose name contains "signature",
// "secret", "token" or "api-key". Also the pseudo headers httplib adds (REMOTE_ADDR, ...).
bool IsScrubbedHeader(const engine::WebhookTrigger& trigger, std::string_view name);

// The run's `trigger` object: {method, headers (scrubbed; repeated headers joined with ", "),
// query, body (parsed JSON, or the raw text when it is not JSON)}. kInvalidArgument when the
// body is meant as JSON (Content-Type, or it opens with '{' or '[') but ParseJson refuses it.
Result<Json> WebhookTriggerData(const engine::WebhookTrigger& trigger, std::string_view method,
                                const HeaderList& headers,
                                const std::vector<std::pair<std::string, std::string>>& query,
                                std::string_view raw_body);

// The challenge of a Slack-style {"type":"url_verification","challenge":"..."} body, if it is one.
std::optional<std::string> UrlVerificationChallenge(const Json& body);

}  // namespace ferry::api
