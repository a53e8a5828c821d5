// Plain decimal numbers as people write them in settings: "0.5", "10", ".25".
#pragma once

#include <optional>
#include <string_view>

namespace ferry {

// The value of `text` when it is digits with at most one '.' among them (at least one digit);
// nullopt otherwise. No sign, spaces, exponent, hex, "inf" or "nan": strtod's extras would let
// a setting such as "nan" through range checks that every comparison with NaN fails. The '.' is
// the decimal point whatever the locale.
std::optional<double> ParseDecimal(std::string_view text);

}  // namespace ferry
