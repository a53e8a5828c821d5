// "Did you mean": the closest known word to a misspelt one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

// Levenshtein-based suggestion: the closest candidate within a small edit distance, if any.
std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates);

}  // namespace ferry
