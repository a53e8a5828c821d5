#include "core/decimal.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <system_error>

namespace ferry {

std::optional<double> ParseDecimal(std::string_view text) {
  const auto digits = std::count_if(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
  const auto points = std::count(text.begin(), text.end(), '.');
  if (digits == 0 || points > 1 || static_cast<size_t>(digits + points) != text.size()) {
    return std::nullopt;
  }
  double value = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, value, std::chars_format::fixed);
  if (ec != std::errc() || p != end) return std::nullopt;  // out of range: hundreds of digits
  return value;
}

}  // namespace ferry
