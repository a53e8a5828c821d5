#include "core/mask.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace ferry {
namespace {

constexpr std::string_view kMask = "****";

bool IsCredentialName(std::string_view name) {
  static constexpr std::array<std::string_view, 16> kNames = {
      "password", "passwd",        "pwd",         "pass",      "token", "access_token",
      "auth",     "secret",        "sig",         "signature", "key",   "api_key",
      "apikey",   "client_secret", "sslpassword", "x-api-key"};
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(kNames.begin(), kNames.end(), lower) != kNames.end();
}

// Masks NAME=value pairs separated by any of `separators` whose NAME is a credential.
std::string MaskPairs(std::string_view text, std::string_view separators) {
  std::string out;
  size_t i = 0;
  while (i <= text.size()) {
    size_t end = text.find_first_of(separators, i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view pair = text.substr(i, end - i);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && eq + 1 < pair.size() &&
        IsCredentialName(pair.substr(0, eq))) {
      out.append(pair.substr(0, eq + 1));
      out.append(kMask);
    } else {
      out.append(pair);
    }
    if (end < text.size()) out += text[end];
    i = end + 1;
  }
  return out;
}

}  // namespace

std::string MaskCredentials(std::string_view text, bool userinfo_is_secret) {
  const size_t scheme = text.find("://");
  if (scheme == std::string_view::npos) {
    // A libpq conninfo string ("host=db password=x") or a plain path.
    if (text.find('=') == std::string_view::npos) return std::string(text);
    return MaskPairs(text, " ");
  }
  const size_t start = scheme + 3;
  const size_t end_of_authority = text.find_first_of("/?#", start);
  std::string_view authority = text.substr(
      start, (end_of_authority == std::string_view::npos ? text.size() : end_of_authority) - start);
  std::string out(text.substr(0, start));
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    const size_t colon = userinfo.find(':');
    if (colon != std::string_view::npos) {
      out.append(userinfo.substr(0, colon + 1));
      out.append(kMask);
    } else if (userinfo_is_secret) {
      out.append(kMask);
    } else {
      out.append(userinfo);
    }
    out.append(authority.substr(at));
  } else {
    out.append(authority);
  }
  if (end_of_authority == std::string_view::npos) return out;
  std::string_view rest = text.substr(end_of_authority);
  const size_t q = rest.find('?');
  if (q == std::string_view::npos) return out.append(rest);
  out.append(rest.substr(0, q + 1));
  const size_t hash = rest.find('#', q);
  std::string_view query =
      rest.substr(q + 1, hash == std::string_view::npos ? std::string_view::npos : hash - q - 1);
  out.append(MaskPairs(query, "&;"));
  if (hash != std::string_view::npos) out.append(rest.substr(hash));
  return out;
}

std::string MaskUrlsInText(std::string_view text) {
  constexpr std::string_view kBetweenWords = " \t\r\n;";
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = text.find_first_not_of(kBetweenWords, i);
    out.append(
        text.substr(i, start == std::string_view::npos ? std::string_view::npos : start - i));
    if (start == std::string_view::npos) break;
    size_t end = text.find_first_of(kBetweenWords, start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(start, end - start);
    if (word.find("://") == std::string_view::npos) {
      out.append(word);
    } else {
      out.append(MaskCredentials(word));
    }
    i = end;
  }
  return out;
}

}  // namespace ferry
