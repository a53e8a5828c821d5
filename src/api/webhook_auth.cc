#include "api/webhook_auth.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "core/crypto.h"

namespace ferry::api {
namespace {

using engine::WebhookAuth;
using engine::WebhookTrigger;

constexpr size_t kMaxSignatures = 16;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

tl::unexpected<Error> Unauthenticated(std::string message) {
  return Fail(ErrorCode::kUnauthenticated, std::move(message));
}

// A header that must be present, non-empty and given once. The server refuses a repeated
// signature header before any route runs (http/message.cc), but only under the names it knows:
// the ones a webhook configures (hmac's and secret's) are checked here.
Result<std::string> Required(const http::HeaderList& headers, std::string_view name) {
  if (auto repeated = http::RepeatedHeader(headers, name)) {
    return Fail(ErrorCode::kInvalidArgument, *repeated);
  }
  auto v = http::FindHeader(headers, name);
  if (!v || Trim(*v).empty()) return Unauthenticated("missing " + std::string(name) + " header");
  return std::string(Trim(*v));
}

struct SentTime {
  std::string text;  // as sent: it is part of what is signed
  int64_t ms = 0;
};

// A timestamp header: Unix seconds.
Result<SentTime> Timestamp(const http::HeaderList& headers, std::string_view name) {
  auto text = Required(headers, name);
  if (!text) return Fail(text.error());
  auto seconds = ParseUnixSeconds(*text);
  if (!seconds) return Unauthenticated(std::string(name) + " must be Unix time in seconds");
  return SentTime{*text, *seconds * 1000};
}

Status WithinTolerance(const WebhookTrigger& trigger, std::string_view what, int64_t ts_ms,
                       int64_t now_ms) {
  const int64_t tolerance_ms = trigger.tolerance.count();
  // The sent time is whole seconds (the sender's clock truncated): compared with this clock
  // truncated alike, the window is as wide on both sides. Against the milliseconds, a timestamp
  // exactly `tolerance` old was refused most of each second while one as far ahead passed.
  const int64_t now_second_ms = now_ms - now_ms % 1000;
  if (ts_ms < now_second_ms - tolerance_ms || ts_ms > now_second_ms + tolerance_ms) {
    return Unauthenticated(std::string(what) + " is outside the allowed window of " +
                           std::to_string(tolerance_ms / 1000) + "s (check the sender's clock)");
  }
  return {};
}

// The index of the first secret whose expected value is among `given`, comparing every pair in
// constant time.
template <typename Expected>
std::optional<size_t> Match(const std::vector<std::string>& secrets,
                            const std::vector<std::string>& given, Expected expected) {
  std::optional<size_t> found;
  for (size_t i = 0; i < secrets.size(); ++i) {
    if (secrets[i].empty()) continue;
    const std::string want = expected(secrets[i]);
    for (const auto& g : given) {
      if (ConstantTimeEquals(g, want) && !found) found = i;
    }
  }
  return found;
}

tl::unexpected<Error> NoMatch() { return Unauthenticated("signature does not match"); }

Result<WebhookVerified> VerifyFerryHmac(const WebhookTrigger& t,
                                        const std::vector<std::string>& secrets,
                                        const http::HeaderList& headers, std::string_view body,
                                        int64_t now_ms) {
  auto ts = Timestamp(headers, t.timestamp_header);
  if (!ts) return Fail(ts.error());
  if (auto st = WithinTolerance(t, t.timestamp_header, ts->ms, now_ms); !st) {
    return Fail(st.error());
  }
  auto sig = Required(headers, t.signature_header);
  if (!sig) return Fail(sig.error());
  std::string given = Lower(*sig);
  if (given.rfind("sha256=", 0) == 0) given.erase(0, 7);
  const std::string payload = SignedPayload(ts->text, body);
  auto index =
      Match(secrets, {given}, [&](const std::string& s) { return HmacSha256Hex(s, payload); });
  if (!index) return NoMatch();
  return WebhookVerified{given, ts->ms + t.tolerance.count() + kReplayRecordMarginMs, *index};
}

Result<WebhookVerified> VerifySecretHeader(const WebhookTrigger& t,
                                           const std::vector<std::string>& secrets,
                                           const http::HeaderList& headers) {
  auto given = Required(headers, t.signature_header);
  if (!given) return Fail(given.error());
  auto index = Match(secrets, {*given}, [](const std::string& s) { return s; });
  if (!index) return Unauthenticated("secret does not match");
  return WebhookVerified{"", 0, *index};
}

Result<WebhookVerified> VerifyGitHub(const WebhookTrigger& t,
                                     const std::vector<std::string>& secrets,
                                     const http::HeaderList& headers, std::string_view body,
                                     int64_t now_ms) {
  auto sig = Required(headers, "X-Hub-Signature-256");
  if (!sig) return Fail(sig.error());
  std::string given = Lower(*sig);
  if (given.rfind("sha256=", 0) != 0) {
    return Unauthenticated("X-Hub-Signature-256 must be sha256=<hex>");
  }
  given.erase(0, 7);
  auto index =
      Match(secrets, {given}, [&](const std::string& s) { return HmacSha256Hex(s, body); });
  if (!index) return NoMatch();
  // GitHub signs no timestamp, and its X-GitHub-Delivery id is not signed (a replayer could
  // change it): the signature itself is the nonce, remembered for the replay window.
  return WebhookVerified{"github:" + given,
                         now_ms + t.replay_window.count() + kReplayRecordMarginMs, *index};
}

Result<WebhookVerified> VerifyStripe(const WebhookTrigger& t,
                                     const std::vector<std::string>& secrets,
                                     const http::HeaderList& headers, std::string_view body,
                                     int64_t now_ms) {
  auto header = Required(headers, "Stripe-Signature");
  if (!header) return Fail(header.error());
  auto parsed = ParseStripeSignature(*header);
  if (!parsed) {
    return Unauthenticated("Stripe-Signature must be t=<unix seconds>,v1=<hex>[,v1=<hex>...], " +
                           std::to_string(2 * kMaxSignatures) + " entries at most");
  }
  const int64_t ts_ms = parsed->timestamp * 1000;
  if (auto st = WithinTolerance(t, "Stripe-Signature timestamp", ts_ms, now_ms); !st) {
    return Fail(st.error());
  }
  std::vector<std::string> given;
  for (const auto& v : parsed->v1) given.push_back(Lower(v));
  const std::string payload = std::to_string(parsed->timestamp) + "." + std::string(body);
  auto index =
      Match(secrets, given, [&](const std::string& s) { return HmacSha256Hex(s, payload); });
  if (!index) return NoMatch();
  const std::string want = HmacSha256Hex(secrets[*index], payload);
  return WebhookVerified{"stripe:" + want, ts_ms + t.tolerance.count() + kReplayRecordMarginMs,
                         *index};
}

Result<WebhookVerified> VerifySlack(const WebhookTrigger& t,
                                    const std::vector<std::string>& secrets,
                                    const http::HeaderList& headers, std::string_view body,
                                    int64_t now_ms) {
  auto ts = Timestamp(headers, "X-Slack-Request-Timestamp");
  if (!ts) return Fail(ts.error());
  if (auto st = WithinTolerance(t, "X-Slack-Request-Timestamp", ts->ms, now_ms); !st) {
    return Fail(st.error());
  }
  auto sig = Required(headers, "X-Slack-Signature");
  if (!sig) return Fail(sig.error());
  std::string given = Lower(*sig);
  if (given.rfind("v0=", 0) != 0) return Unauthenticated("X-Slack-Signature must be v0=<hex>");
  given.erase(0, 3);
  const std::string payload = "v0:" + ts->text + ":" + std::string(body);
  auto index =
      Match(secrets, {given}, [&](const std::string& s) { return HmacSha256Hex(s, payload); });
  if (!index) return NoMatch();
  return WebhookVerified{"slack:" + given, ts->ms + t.tolerance.count() + kReplayRecordMarginMs,
                         *index};
}

Result<WebhookVerified> VerifyStandardWebhooks(const WebhookTrigger& t,
                                               const std::vector<std::string>& secrets,
                                               const http::HeaderList& headers,
                                               std::string_view body, int64_t now_ms) {
  auto id = Required(headers, "webhook-id");
  if (!id) return Fail(id.error());
  if (id->size() > 256) return Unauthenticated("webhook-id longer than 256 characters");
  auto ts = Timestamp(headers, "webhook-timestamp");
  if (!ts) return Fail(ts.error());
  if (auto st = WithinTolerance(t, "webhook-timestamp", ts->ms, now_ms); !st) {
    return Fail(st.error());
  }
  auto header = Required(headers, "webhook-signature");
  if (!header) return Fail(header.error());
  const auto given = ParseStandardSignatures(*header);
  if (given.empty()) return Unauthenticated("webhook-signature holds no v1,<base64> signature");
  const std::string payload = *id + "." + ts->text + "." + std::string(body);
  bool usable_secret = false;
  auto index = Match(secrets, given, [&](const std::string& s) {
    auto key = StandardWebhooksKey(s);
    if (!key) return std::string("\n");  // never equal to a base64 signature
    usable_secret = true;
    return Base64Encode(HmacSha256(*key, payload));
  });
  if (!usable_secret) {
    return Fail(ErrorCode::kInternal,
                "this webhook's secret is not a Standard Webhooks secret (whsec_<base64>)");
  }
  if (!index) return NoMatch();
  // The message id is signed and stays the same across the sender's retries.
  return WebhookVerified{"standard-webhooks:" + *id,
                         ts->ms + t.tolerance.count() + kReplayRecordMarginMs, *index};
}

}  // namespace

std::string SignedPayload(std::string_view timestamp, std::string_view raw_body) {
  std::string out;
  out.reserve(timestamp.size() + 1 + raw_body.size());
  out.append(timestamp);
  out.push_back('.');
  out.append(raw_body);
  return out;
}

std::optional<int64_t> ParseUnixSeconds(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<StripeSignature> ParseStripeSignature(std::string_view header) {
  StripeSignature out;
  bool have_t = false;
  size_t items = 0;
  while (!header.empty()) {
    if (++items > 2 * kMaxSignatures) return std::nullopt;
    const size_t comma = header.find(',');
    std::string_view item = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = item.substr(0, eq);
    std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      auto ts = ParseUnixSeconds(value);
      if (have_t || !ts) return std::nullopt;
      out.timestamp = *ts;
      have_t = true;
    } else if (key == "v1") {
      if (value.empty()) return std::nullopt;
      out.v1.emplace_back(value);
    }
  }
  if (!have_t || out.v1.empty()) return std::nullopt;
  return out;
}

std::vector<std::string> ParseStandardSignatures(std::string_view header) {
  std::vector<std::string> out;
  while (!header.empty() && out.size() < kMaxSignatures) {
    const size_t space = header.find(' ');
    std::string_view item = header.substr(0, space);
    header = space == std::string_view::npos ? std::string_view() : header.substr(space + 1);
    if (item.rfind("v1,", 0) == 0 && item.size() > 3) out.emplace_back(item.substr(3));
  }
  return out;
}

std::optional<std::string> StandardWebhooksKey(std::string_view secret) {
  constexpr std::string_view kPrefix = "whsec_";
  if (secret.rfind(kPrefix, 0) != 0) return std::nullopt;
  auto key = Base64Decode(secret.substr(kPrefix.size()));
  if (!key || key->empty()) return std::nullopt;
  return key;
}

Result<WebhookVerified> VerifyWebhook(const WebhookTrigger& trigger,
                                      const std::vector<std::string>& secrets,
                                      const http::HeaderList& headers, std::string_view body,
                                      int64_t now_ms) {
  if (trigger.auth == WebhookAuth::kNone) return WebhookVerified{};
  if (std::none_of(secrets.begin(), secrets.end(), [](const auto& s) { return !s.empty(); })) {
    return Fail(ErrorCode::kInternal, "no secret of this webhook is set on the server");
  }
  switch (trigger.auth) {
    case WebhookAuth::kNone:
      break;
    case WebhookAuth::kHmac:
      return VerifyFerryHmac(trigger, secrets, headers, body, now_ms);
    case WebhookAuth::kSecret:
      return VerifySecretHeader(trigger, secrets, headers);
    case WebhookAuth::kGitHub:
      return VerifyGitHub(trigger, secrets, headers, body, now_ms);
    case WebhookAuth::kStripe:
      return VerifyStripe(trigger, secrets, headers, body, now_ms);
    case WebhookAuth::kSlack:
      return VerifySlack(trigger, secrets, headers, body, now_ms);
    case WebhookAuth::kStandardWebhooks:
      return VerifyStandardWebhooks(trigger, secrets, headers, body, now_ms);
  }
  return WebhookVerified{};
}

}  // namespace ferry::api
