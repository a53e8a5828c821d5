#include "api/http_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/ids.h"
#include "core/utf8.h"

namespace ferry::api {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && Lower(a) == Lower(b);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A body is meant as JSON when its Content-Type says so or it opens like a JSON document.
bool LooksLikeJson(const HeaderList& headers, std::string_view trimmed_body) {
  if (auto type = FindHeader(headers, "Content-Type")) {
    const std::string t = Lower(*type);
    if (t.rfind("application/json", 0) == 0 || t.find("+json") != std::string::npos) return true;
  }
  return trimmed_body.front() == '{' || trimmed_body.front() == '[';
}

}  // namespace

std::optional<std::string> BearerToken(std::string_view authorization) {
  authorization = Trim(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !IEquals(authorization.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  std::string_view token = Trim(authorization.substr(kScheme.size()));
  if (token.empty() || token.find(' ') != std::string_view::npos) return std::nullopt;
  return std::string(token);
}

bool IsScrubbedHeader(const engine::WebhookTrigger& trigger, std::string_view name) {
  const std::string n = Lower(name);
  static const char* const kExact[] = {"authorization", "proxy-authorization", "cookie",
                                       "remote_addr",   "remote_port",         "local_addr",
                                       "local_port"};
  for (const char* e : kExact) {
    if (n == e) return true;
  }
  if (n == Lower(trigger.signature_header)) return true;
  for (const char* part : {"signature", "secret", "token", "api-key", "apikey"}) {
    if (n.find(part) != std::string::npos) return true;
  }
  return false;
}

Result<Json> WebhookTriggerData(const engine::WebhookTrigger& trigger, std::string_view method,
                                const HeaderList& headers,
                                const std::vector<std::pair<std::string, std::string>>& query,
                                std::string_view raw_body) {
  // What a run gets is JSON text, which holds only UTF-8: bytes that are not would reach it as
  // U+FFFD, not as what was sent (and signed). Refused instead, naming where.
  auto not_utf8 = [](std::string_view text, const std::string& what) -> std::optional<Error> {
    auto at = Utf8FirstInvalid(text);
    if (!at) return std::nullopt;
    return Error{ErrorCode::kInvalidArgument,
                 "webhook " + what + " is not UTF-8 text (byte " + std::to_string(*at + 1) +
                     "); a run's trigger data is JSON, so binary data must be sent encoded "
                     "(base64, for one)"};
  };
  std::map<std::string, std::string> joined;
  for (const auto& [k, v] : headers) {
    if (IsScrubbedHeader(trigger, k)) continue;
    if (auto e = not_utf8(v, "header " + k)) return Fail(*e);
    auto [it, inserted] = joined.try_emplace(k, v);
    if (!inserted) it->second += ", " + v;
  }
  // trigger.query holds one text per name: a repeated name is refused, not cut to one value.
  std::map<std::string, std::string> first;
  for (const auto& [k, v] : query) {
    if (auto e = not_utf8(k, "query parameter name")) return Fail(*e);
    if (auto e = not_utf8(v, "query parameter " + k)) return Fail(*e);
    if (!first.try_emplace(k, v).second) {
      return Fail(ErrorCode::kInvalidArgument,
                  "webhook query parameter '" + k +
                      "' given twice; a run's trigger.query holds one value per name");
    }
  }
  Json h = Json::object();
  for (const auto& [k, v] : joined) h[k] = v;
  Json q = Json::object();
  for (const auto& [k, v] : first) q[k] = v;
  Json body;
  const std::string_view trimmed = Trim(raw_body);
  if (trimmed.empty()) {
    body = nullptr;
  } else if (auto parsed = ParseJson(raw_body)) {
    body = std::move(*parsed);
  } else if (LooksLikeJson(headers, trimmed)) {
    // Meant as JSON but refused (malformed, too deep, a number out of range): say so rather
    // than start a run whose inputs silently went missing.
    return Fail(ErrorCode::kInvalidArgument, "webhook body: " + parsed.error().message);
  } else {
    if (auto e = not_utf8(raw_body, "body")) return Fail(*e);
    body = std::string(raw_body);  // form posts and plain text are kept as they came
  }
  return Json{{"method", std::string(method)},
              {"headers", std::move(h)},
              {"query", std::move(q)},
              {"body", std::move(body)}};
}

std::optional<std::string> UrlVerificationChallenge(const Json& body) {
  if (!body.is_object()) return std::nullopt;
  const Json type = body.value("type", Json());
  const Json challenge = body.value("challenge", Json());
  if (!type.is_string() || !challenge.is_string()) return std::nullopt;
  if (type.get<std::string>() != "url_verification") return std::nullopt;
  return challenge.get<std::string>();
}

}  // namespace ferry::api
