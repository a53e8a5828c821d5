#include "remediation/redact.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

namespace ferry::remediation {
namespace {

constexpr int kMaxDepth = 32;

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

// Characters of tokens and base64/base64url/hex strings ('=' only as trailing padding, so
// "key=value" splits at it).
bool TokenChar(char c) {
  return IsAlnum(c) || c == '_' || c == '-' || c == '.' || c == '+' || c == '/' || c == '~';
}

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// 8-4-4-4-12 hex: an id, not a credential.
bool IsUuid(std::string_view t) {
  if (t.size() != 36) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? t[i] != '-' : !IsHex(t[i])) return false;
  }
  return true;
}

bool LooksLikeJwt(std::string_view t) {
  if (t.rfind("eyJ", 0) != 0) return false;
  size_t d1 = t.find('.');
  if (d1 == std::string_view::npos) return false;
  size_t d2 = t.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  return d1 >= 8 && d2 - d1 > 4 && t.find('.', d2 + 1) == std::string_view::npos;
}

// Long and random-looking: letters and digits mixed, at a length where words and ids stop.
bool LooksRandom(std::string_view t) {
  while (!t.empty() && (t.back() == '.' || t.back() == '=')) t.remove_suffix(1);
  if (t.size() < 20 || t.front() == '/' || IsUuid(t)) return false;
  bool lower = false, upper = false, digit = false;
  for (char c : t) {
    lower |= std::islower(static_cast<unsigned char>(c)) != 0;
    upper |= std::isupper(static_cast<unsigned char>(c)) != 0;
    digit |= std::isdigit(static_cast<unsigned char>(c)) != 0;
  }
  if (t.size() >= 32 && digit && (lower || upper)) return true;
  return lower && upper && digit;
}

constexpr std::array<std::string_view, 15> kStrongKeys = {
    "password",   "passwd",    "secret",        "token",       "apikey",
    "api_key",    "api-key",   "credential",    "private_key", "privatekey",
    "access_key", "accesskey", "authorization", "cookie",      "signature"};
constexpr std::array<std::string_view, 5> kExactKeys = {"auth", "pwd", "pass", "session", "x-auth"};
constexpr std::array<std::string_view, 4> kSchemes = {"bearer", "basic", "token", "digest"};

// Replaces each occurrence of the known values in `s`.
void ReplaceValues(std::string& s, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [value, name] : values) {
    const std::string marker = "[REDACTED:" + name + "]";
    size_t pos = 0;
    while ((pos = s.find(value, pos)) != std::string::npos) {
      s.replace(pos, value.size(), marker);
      pos += marker.size();
    }
  }
}

void RedactPem(std::string& s) {
  size_t pos = 0;
  while ((pos = s.find("-----BEGIN ", pos)) != std::string::npos) {
    size_t end = s.find("-----END ", pos);
    size_t close = end == std::string::npos ? std::string::npos : s.find("-----", end + 9);
    const size_t stop = close == std::string::npos ? s.size() : close + 5;
    const std::string marker = "[REDACTED PEM BLOCK]";
    s.replace(pos, stop - pos, marker);
    pos += marker.size();
  }
}

// scheme://user:password@host -> scheme://user:[REDACTED]@host
void RedactUrlPasswords(std::string& s) {
  size_t pos = 0;
  while ((pos = s.find("://", pos)) != std::string::npos) {
    const size_t start = pos + 3;
    size_t i = start;
    while (i < s.size() && s[i] != '@' && s[i] != '/' && s[i] != ' ' && s[i] != '"' &&
           s[i] != '\n') {
      ++i;
    }
    if (i < s.size() && s[i] == '@') {
      const size_t colon = s.find(':', start);
      if (colon != std::string::npos && colon < i && s.compare(colon + 1, 10, "[REDACTED]") != 0) {
        s.replace(colon + 1, i - colon - 1, kRedacted);
        i = colon + 1 + kRedacted.size();
      }
    }
    pos = i;
  }
}

bool IsUpperName(std::string_view v) {
  if (v.size() < 2 || !std::isupper(static_cast<unsigned char>(v[0]))) return false;
  for (char c : v) {
    if (!(std::isupper(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

bool IsSchemeWord(std::string_view w) {
  const std::string l = LowerCopy(w);
  return std::find(kSchemes.begin(), kSchemes.end(), l) != kSchemes.end();
}

// `key = value`, `key: value`, `"key": "value"`, `Authorization: Bearer value`, `Bearer value`.
void RedactKeyValues(std::string& s) {
  const std::string low = LowerCopy(s);
  std::string out;
  out.reserve(s.size());
  size_t copied = 0;
  size_t i = 0;
  while (i < s.size()) {
    // Only at the start of a word.
    if (!(IsAlnum(s[i]) || s[i] == '_') || (i > 0 && (IsAlnum(s[i - 1]) || s[i - 1] == '_'))) {
      ++i;
      continue;
    }
    size_t w = i;
    while (w < s.size() && (IsAlnum(s[w]) || s[w] == '_' || s[w] == '-')) ++w;
    const std::string_view word = std::string_view(low).substr(i, w - i);
    bool keyish = false;
    for (auto k : kStrongKeys) keyish |= word.find(k) != std::string_view::npos;
    for (auto k : kExactKeys) keyish |= word == k;
    // key [quotes] [spaces] (':' | '=') [spaces] [quote] value
    size_t j = w;
    bool pair = false;
    if (keyish) {
      while (j < s.size() && (s[j] == '"' || s[j] == '\'')) ++j;
      while (j < s.size() && s[j] == ' ') ++j;
      if (j < s.size() && (s[j] == ':' || s[j] == '=')) {
        pair = true;
        ++j;
        while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
        if (j < s.size() && (s[j] == '"' || s[j] == '\'')) ++j;
      }
    }
    // scheme SPACE credential (at least 8 characters, so prose like "token is" stays).
    bool scheme = false;
    if (!pair && IsSchemeWord(word) && w < s.size() && s[w] == ' ') {
      scheme = true;
      j = w;
      while (j < s.size() && s[j] == ' ') ++j;
    }
    if (!pair && !scheme) {
      i = w;
      continue;
    }
    size_t v = j;
    while (v < s.size() && !std::isspace(static_cast<unsigned char>(s[v])) && s[v] != '"' &&
           s[v] != '\'' && s[v] != ',' && s[v] != ';' && s[v] != '&' && s[v] != '}' &&
           s[v] != ')' && s[v] != ']') {
      ++v;
    }
    const std::string_view value = std::string_view(s).substr(j, v - j);
    // A template reference stays; "Authorization: Bearer xyz" keeps the scheme and goes on to
    // the credential after it.
    // An upper-case identifier is the NAME of a secret (a webhook trigger's `secret:
    // HELLO_WEBHOOK`, an environment variable), not a value.
    const bool keep = value.empty() || value.rfind("{{", 0) == 0 || IsUpperName(value) ||
                      value.rfind("[REDACTED", 0) == 0 || (pair && IsSchemeWord(value)) ||
                      (scheme && value.size() < 8);
    if (keep) {
      i = pair && IsSchemeWord(value) ? j : std::max(v, w);
      continue;
    }
    out.append(s, copied, j - copied);
    out.append(kRedacted);
    copied = v;
    i = v;
  }
  out.append(s, copied, std::string::npos);
  s = std::move(out);
}

void RedactTokens(std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (!TokenChar(s[i])) {
      out.push_back(s[i++]);
      continue;
    }
    size_t e = i;
    while (e < s.size() && TokenChar(s[e])) ++e;
    while (e < s.size() && s[e] == '=') ++e;
    const std::string_view t = std::string_view(s).substr(i, e - i);
    if (LooksLikeJwt(t) || LooksRandom(t)) {
      out.append(kRedacted);
    } else {
      out.append(t);
    }
    i = e;
  }
  s = std::move(out);
}

}  // namespace

Redaction::Redaction(KnownSecrets secrets) {
  for (auto& [value, name] : secrets) {
    if (value.size() >= 4) secrets_.emplace_back(std::move(value), std::move(name));
  }
  std::sort(secrets_.begin(), secrets_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::string Redaction::Segment(std::string_view text) const {
  std::string s(text);
  ReplaceValues(s, secrets_);
  RedactPem(s);
  RedactUrlPasswords(s);
  RedactKeyValues(s);
  RedactTokens(s);
  return s;
}

std::string Redaction::Text(std::string_view text) const {
  // Known values go everywhere first (a template never legitimately holds one); then the
  // pattern rules run on the text between `{{ ... }}` expressions only.
  std::string known(text);
  ReplaceValues(known, secrets_);
  std::string out;
  out.reserve(known.size());
  size_t pos = 0;
  while (pos < known.size()) {
    const size_t open = known.find("{{", pos);
    if (open == std::string::npos) break;
    const size_t close = known.find("}}", open + 2);
    if (close == std::string::npos) break;
    out += Segment(std::string_view(known).substr(pos, open - pos));
    out.append(known, open, close + 2 - open);
    pos = close + 2;
  }
  out += Segment(std::string_view(known).substr(pos));
  return out;
}

bool Redaction::SecretLikeKey(std::string_view key) {
  const std::string k = LowerCopy(key);
  for (auto s : kStrongKeys) {
    if (k.find(s) != std::string::npos) return true;
  }
  for (auto s : kExactKeys) {
    if (k == s) return true;
  }
  return false;
}

bool Redaction::HasMarker(std::string_view text) {
  return text.find("[REDACTED") != std::string_view::npos;
}

Json Redaction::Value(const Json& value) const { return ValueAt(value, 0); }

Json Redaction::ValueAt(const Json& value, int depth) const {
  if (depth > kMaxDepth) return Json("[TRUNCATED]");
  if (value.is_string()) return Json(Text(value.get<std::string>()));
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& v : value) out.push_back(ValueAt(v, depth + 1));
    return out;
  }
  if (!value.is_object()) return value;
  Json out = Json::object();
  for (auto it = value.begin(); it != value.end(); ++it) {
    std::string key = it.key();
    ReplaceValues(key, secrets_);
    const Json& v = it.value();
    if (SecretLikeKey(key) && !v.is_null() && !v.is_boolean()) {
      const bool reference = v.is_string() && v.get<std::string>().find("{{") == 0 &&
                             v.get<std::string>().find("}}") != std::string::npos;
      out[key] = reference ? Json(Text(v.get<std::string>())) : Json(kRedacted);
      continue;
    }
    out[key] = ValueAt(v, depth + 1);
  }
  return out;
}

KnownSecrets ResolvedSecrets(std::string_view source, const engine::SecretResolver* resolver) {
  KnownSecrets out;
  if (resolver == nullptr) return out;
  for (const auto& name : ReferencedSecrets(source)) {
    if (auto value = resolver->Resolve(name)) out.emplace_back(*value, "secrets." + name);
  }
  return out;
}

namespace {

void AddSecretLikeValuesAt(const Json& value, const std::string& path, int depth,
                           KnownSecrets& out) {
  if (depth > kMaxDepth) return;
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string at = path + "." + it.key();
      const Json& v = it.value();
      if (Redaction::SecretLikeKey(it.key()) && (v.is_string() || v.is_number())) {
        // A numeric PIN prints as its digits.
        out.emplace_back(v.is_string() ? v.get<std::string>() : DumpJson(v), at);
      } else {
        AddSecretLikeValuesAt(it.value(), at, depth + 1, out);
      }
    }
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      AddSecretLikeValuesAt(value[i], path + "[" + std::to_string(i) + "]", depth + 1, out);
    }
  }
}

}  // namespace

void AddSecretLikeValues(const Json& value, const std::string& path, KnownSecrets& out) {
  AddSecretLikeValuesAt(value, path, 0, out);
}

std::vector<std::string> ReferencedSecrets(std::string_view source) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = source.find("secrets.", pos)) != std::string_view::npos) {
    const bool boundary = pos == 0 || !(IsAlnum(source[pos - 1]) || source[pos - 1] == '_');
    size_t e = pos + 8;
    while (e < source.size() && (IsAlnum(source[e]) || source[e] == '_')) ++e;
    if (boundary && e > pos + 8) {
      std::string name(source.substr(pos + 8, e - pos - 8));
      if (seen.insert(name).second) out.push_back(std::move(name));
    }
    pos = e;
  }
  return out;
}

std::string Truncate(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  // Back off to a UTF-8 character boundary.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "…[truncated " + std::to_string(text.size() - cut) +
         " bytes]";
}

}  // namespace ferry::remediation
