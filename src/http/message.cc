#include "http/message.h"

#include <cctype>
#include <vector>

#include "core/json_fields.h"

namespace ferry::http {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The codings of a comma-separated header value, without spaces around them or empty elements.
std::vector<std::string_view> Codings(std::string_view value) {
  std::vector<std::string_view> out;
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view coding = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) {
      coding.remove_prefix(1);
    }
    while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) {
      coding.remove_suffix(1);
    }
    if (!coding.empty()) out.push_back(coding);
  }
  return out;
}

// Headers read as one value. FindHeader takes the first copy, while a proxy, a log or a sender's
// library in front of Ferry may take the last: a request with two Authorization headers, or two
// signatures, would be judged by one copy and seen by others with the other. RFC 9110 5.3 lets a
// field repeat only where its value is a comma-separated list, which none of these is. Refused
// for every route before any of its code runs, so no route has to remember. The webhook schemes'
// headers are here under their fixed or default names; names a webhook configures instead are
// checked where they are read (api/webhook_auth.cc).
constexpr std::string_view kSingletonHeaders[] = {
    "Host", "Origin", "Authorization", "Content-Type", "Last-Event-ID",
    // Webhook schemes: hmac (and secret: X-Ferry-Secret), github, stripe, slack, standard-webhooks.
    "X-Ferry-Signature", "X-Ferry-Timestamp", "X-Ferry-Secret", "X-Hub-Signature-256",
    "Stripe-Signature", "X-Slack-Signature", "X-Slack-Request-Timestamp", "webhook-id",
    "webhook-timestamp", "webhook-signature"};

}  // namespace

std::optional<std::string> RepeatedHeader(const HeaderList& headers, std::string_view name) {
  int seen = 0;
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name) && ++seen > 1) {
      return "header '" + std::string(name) + "' is given more than once";
    }
  }
  return std::nullopt;
}

std::optional<Response> MalformedHead(const HeaderList& headers, unsigned version) {
  for (std::string_view name : kSingletonHeaders) {
    if (auto repeated = RepeatedHeader(headers, name)) return ErrorResponse(400, *repeated);
  }
  if (version >= 11 && !FindHeader(headers, "Host")) {
    return ErrorResponse(400, "an HTTP/1.1 request must have a Host header");
  }
  // RFC 9112 6.1: HTTP/1.0 has no Transfer-Encoding, so such a message's framing is in doubt (a
  // 1.0 proxy in front would read the body by Content-Length or to the close, not as chunks):
  // reading it as chunked and keeping the connection is how requests get smuggled.
  if (version < 11 && FindHeader(headers, "Transfer-Encoding")) {
    return ErrorResponse(400,
                         "Transfer-Encoding is not HTTP/1.0: send HTTP/1.1, or the body with a "
                         "Content-Length");
  }
  return std::nullopt;
}

std::optional<std::string> FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return std::nullopt;
}

std::string Request::Query(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return {};
}

bool Request::HasQuery(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return true;
  }
  return false;
}

Json ErrorBody(std::string_view code, std::string_view message) {
  return Json{{"error", {{"code", std::string(code)}, {"message", std::string(message)}}}};
}

std::string_view StatusCodeName(int status) {
  switch (status) {
    case 400:
      return "invalid_argument";
    case 401:
      return "unauthenticated";
    case 403:
      return "permission_denied";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "timeout";
    case 409:
      return "conflict";
    case 413:
    case 414:
    case 431:
      return "too_large";
    case 415:
    case 501:
      return "unsupported";
    case 503:
      return "unavailable";
    case 504:
      return "timeout";
    default:
      return status >= 500 ? "internal" : "invalid_argument";
  }
}

Response JsonResponse(int status, const Json& body) {
  Response res;
  res.status = status;
  res.body = DumpJson(body);
  return res;
}

Response ErrorResponse(const Error& error) {
  return JsonResponse(ErrorHttpStatus(error.code), ErrorJson(error));
}

Response ErrorResponse(int status, std::string_view message) {
  return JsonResponse(status, ErrorBody(StatusCodeName(status), message));
}

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out += c;
  }
  return out;
}

Status ParseTarget(std::string_view target, std::string& path,
                   std::vector<std::pair<std::string, std::string>>& query) {
  if (target.empty() || target.front() != '/') {
    return Fail(ErrorCode::kInvalidArgument, "request target must be an absolute path");
  }
  const size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  // Routes match the decoded path, where an escaped slash would be a separator: a proxy in front
  // that blocks /api/v1/tokens would let /api%2Fv1%2Ftokens through. No path segment Ferry
  // names may hold a slash, so none is ever needed.
  for (size_t i = 0; i + 2 < raw_path.size(); ++i) {
    if (raw_path[i] == '%' && raw_path[i + 1] == '2' &&
        (raw_path[i + 2] == 'F' || raw_path[i + 2] == 'f')) {
      return Fail(ErrorCode::kInvalidArgument, "an escaped slash (%2F) in the path");
    }
  }
  auto decoded = PercentDecode(raw_path, false);
  if (!decoded)
    return Fail(ErrorCode::kInvalidArgument,
                "a malformed percent-escape or a NUL byte (%00) in the path");
  path = std::move(*decoded);
  query.clear();
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  if (const size_t hash = rest.find('#'); hash != std::string_view::npos)
    rest = rest.substr(0, hash);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!key || !value) {
      return Fail(ErrorCode::kInvalidArgument,
                  "a malformed percent-escape or a NUL byte (%00) in the query string");
    }
    query.emplace_back(std::move(*key), std::move(*value));
  }
  return {};
}

std::optional<Response> UnsupportedBodyCoding(const HeaderList& headers) {
  int chunked = 0;  // over every Transfer-Encoding line: they make one list
  for (const auto& [name, value] : headers) {
    if (IEquals(name, "Transfer-Encoding")) {
      for (std::string_view coding : Codings(value)) {
        if (!IEquals(coding, "chunked")) {
          return ErrorResponse(501, "Transfer-Encoding " + std::string(coding) +
                                        " is not supported: send the body as is or chunked");
        }
        ++chunked;
      }
    } else if (IEquals(name, "Content-Encoding")) {
      for (std::string_view coding : Codings(value)) {
        if (!IEquals(coding, "identity")) {
          return ErrorResponse(415, "Content-Encoding " + std::string(coding) +
                                        " is not supported: send the body uncompressed");
        }
      }
    }
  }
  // Chunked twice would make the parser see no chunked body at all (so an empty one, and the
  // chunks as the next request): RFC 9112 forbids it, and the length is then unknown.
  if (chunked > 1) {
    return ErrorResponse(400,
                         "Transfer-Encoding chunked is applied more than once: the body's "
                         "length is unknown");
  }
  return std::nullopt;
}

}  // namespace ferry::http
