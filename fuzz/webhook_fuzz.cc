// Webhook signature verification (src/api/webhook_auth.h) against a fixed trigger per scheme.
// Input: byte 0 picks the scheme, byte 1 holds flags, then "Name: value" header lines, a blank
// line and the body. With flag bit 0 the target also adds the headers a real sender would (a
// correct signature over the fuzzed timestamp and body), so the checks after the HMAC comparison
// are reached too; an accepted delivery must then carry a nonce. The trigger-data builder and
// the header parsers run on the same input.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "api/http_util.h"
#include "api/webhook_auth.h"
#include "core/crypto.h"
#include "fuzz_check.h"

namespace {

using ferry::engine::WebhookAuth;
using ferry::fuzz::Check;

constexpr std::array<WebhookAuth, 6> kSchemes = {
    WebhookAuth::kHmac,   WebhookAuth::kSecret, WebhookAuth::kGitHub,
    WebhookAuth::kStripe, WebhookAuth::kSlack,  WebhookAuth::kStandardWebhooks};
constexpr int64_t kNowMs = 1700000000000;

// The server lacks the first secret; the second and third are set (rotation).
std::vector<std::string> Secrets(WebhookAuth auth) {
  if (auth == WebhookAuth::kStandardWebhooks) {
    return {"", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kIGtleQ=="};
  }
  return {"", "It's a Secret to Everybody", "second"};
}

ferry::http::HeaderList ParseHeaders(std::string_view& text) {
  ferry::http::HeaderList headers;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      headers.emplace_back(std::string(line), "");
    } else {
      std::string_view value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
  }
  return headers;
}

// What a sender signing with `secret` adds. Timestamps come from the fuzzed headers when present.
void Sign(WebhookAuth auth, const std::string& secret, std::string_view body,
          ferry::http::HeaderList& headers) {
  auto header_or = [&](std::string_view name, std::string fallback) {
    auto v = ferry::http::FindHeader(headers, name);
    if (v) return *v;
    headers.emplace_back(std::string(name), fallback);
    return fallback;
  };
  const std::string now = std::to_string(kNowMs / 1000);
  const std::string b(body);
  switch (auth) {
    case WebhookAuth::kNone:
      break;
    case WebhookAuth::kHmac: {
      const std::string ts = header_or("X-Ferry-Timestamp", now);
      headers.emplace_back("X-Ferry-Signature",
                           ferry::HmacSha256Hex(secret, ferry::api::SignedPayload(ts, body)));
      break;
    }
    case WebhookAuth::kSecret:
      headers.emplace_back("X-Ferry-Secret", secret);
      break;
    case WebhookAuth::kGitHub:
      headers.emplace_back("X-Hub-Signature-256", "sha256=" + ferry::HmacSha256Hex(secret, body));
      break;
    case WebhookAuth::kStripe:
      headers.emplace_back("Stripe-Signature",
                           "t=" + now + ",v1=" + ferry::HmacSha256Hex(secret, now + "." + b));
      break;
    case WebhookAuth::kSlack: {
      const std::string ts = header_or("X-Slack-Request-Timestamp", now);
      headers.emplace_back("X-Slack-Signature",
                           "v0=" + ferry::HmacSha256Hex(secret, "v0:" + ts + ":" + b));
      break;
    }
    case WebhookAuth::kStandardWebhooks: {
      const std::string id = header_or("webhook-id", "msg_1");
      const std::string ts = header_or("webhook-timestamp", now);
      auto key = ferry::api::StandardWebhooksKey(secret);
      Check(key.has_value(), "the fixed secrets are whsec_ keys");
      headers.emplace_back("webhook-signature", "v1," + ferry::Base64Encode(ferry::HmacSha256(
                                                            *key, id + "." + ts + "." + b)));
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const WebhookAuth auth = kSchemes[data[0] % kSchemes.size()];
  const bool sign = (data[1] & 1) != 0;
  const size_t secret_index = (data[1] & 2) != 0 ? 2 : 1;
  std::string_view rest = ferry::fuzz::Text(data + 2, size - 2);
  ferry::http::HeaderList headers = ParseHeaders(rest);
  const std::string_view body = rest;

  ferry::engine::WebhookTrigger trigger;
  trigger.auth = auth;
  trigger.secrets = {"old", "current", "next"};
  if (auth == WebhookAuth::kSecret) trigger.signature_header = "X-Ferry-Secret";
  const std::vector<std::string> secrets = Secrets(auth);
  if (sign) Sign(auth, secrets[secret_index], body, headers);

  auto verified = ferry::api::VerifyWebhook(trigger, secrets, headers, body, kNowMs);
  if (verified) {
    Check(verified->secret_index >= 1 && verified->secret_index < secrets.size(),
          "a match names a secret the server has");
    if (auth != WebhookAuth::kSecret) {
      Check(!verified->nonce.empty(), "a signed delivery has a nonce");
      Check(verified->nonce_expires_ms > 0, "a nonce expires");
    }
  } else {
    Check(!verified.error().message.empty(), "a refusal says why");
    for (const auto& s : secrets) {
      if (s.size() >= 8) {
        Check(verified.error().message.find(s) == std::string::npos,
              "a refusal never names a secret");
      }
    }
  }

  for (const auto& [name, value] : headers) {
    (void)ferry::api::IsScrubbedHeader(trigger, name);
    (void)ferry::api::ParseUnixSeconds(value);
    if (auto stripe = ferry::api::ParseStripeSignature(value)) {
      Check(!stripe->v1.empty(), "a Stripe signature has a v1");
    }
    Check(ferry::api::ParseStandardSignatures(value).size() <= 16, "at most 16 signatures");
  }
  (void)ferry::api::WebhookTriggerData(trigger, "POST", headers, {{"q", "1"}}, body);
  return 0;
}
