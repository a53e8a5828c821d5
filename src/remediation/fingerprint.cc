#include "remediation/fingerprint.h"

#include <cctype>

#include "core/crypto.h"

namespace ferry::remediation {
namespace {

constexpr size_t kMaxNormalized = 512;

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Crockford base32 upper case, 26 long: a Ferry id.
bool IsCrockford(char c) {
  return (c >= '0' && c <= '9') ||
         (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U');
}

size_t WordEnd(std::string_view s, size_t i) {
  while (i < s.size() && (IsWordChar(s[i]) || s[i] == '-')) ++i;
  return i;
}

bool IsUuidAt(std::string_view s, size_t i) {
  if (s.size() - i < 36) return false;
  for (size_t k = 0; k < 36; ++k) {
    const bool dash = k == 8 || k == 13 || k == 18 || k == 23;
    if (dash ? s[i + k] != '-' : !IsHex(s[i + k])) return false;
  }
  return i + 36 == s.size() || !IsWordChar(s[i + 36]);
}

}  // namespace

std::string NormalizeError(std::string_view s) {
  std::string out;
  out.reserve(std::min(s.size(), kMaxNormalized));
  size_t i = 0;
  bool space = false;
  while (i < s.size() && out.size() < kMaxNormalized) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      ++i;
      continue;
    }
    if (space) {
      out.push_back(' ');
      space = false;
    }
    const bool word_start = i == 0 || !IsWordChar(s[i - 1]);
    if (word_start && IsUuidAt(s, i)) {
      out += "<uuid>";
      i += 36;
      continue;
    }
    if (word_start && IsWordChar(c)) {
      const size_t e = WordEnd(s, i);
      const std::string_view w = s.substr(i, e - i);
      bool crockford = w.size() == 26;
      bool hex = w.size() >= 8;
      bool has_digit = false;
      for (char x : w) {
        crockford &= IsCrockford(x);
        hex &= IsHex(x);
        has_digit |= IsDigit(x);
      }
      if (crockford && has_digit) {
        out += "<id>";
        i = e;
        continue;
      }
      if (hex && has_digit) {
        out += "<hex>";
        i = e;
        continue;
      }
    }
    // IPv4: four dot-separated numbers.
    if (IsDigit(c) && word_start) {
      size_t k = i;
      int parts = 0;
      while (parts < 4) {
        size_t d = k;
        while (d < s.size() && IsDigit(s[d])) ++d;
        if (d == k || d - k > 3) break;
        ++parts;
        k = d;
        if (parts < 4 && k < s.size() && s[k] == '.') {
          ++k;
        } else {
          break;
        }
      }
      if (parts == 4) {
        out += "<ip>";
        i = k;
        continue;
      }
    }
    if (IsDigit(c)) {
      while (i < s.size() && IsDigit(s[i])) ++i;
      // 1.5, 1,000
      while (i + 1 < s.size() && (s[i] == '.' || s[i] == ',') && IsDigit(s[i + 1])) {
        ++i;
        while (i < s.size() && IsDigit(s[i])) ++i;
      }
      out += "<n>";
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

std::string Fingerprint(std::string_view checksum, std::string_view failed_node,
                        std::string_view normalized_error) {
  std::string text;
  text.reserve(checksum.size() + failed_node.size() + normalized_error.size() + 2);
  text.append(checksum).append("\n").append(failed_node).append("\n").append(normalized_error);
  return Sha256Hex(text);
}

}  // namespace ferry::remediation
