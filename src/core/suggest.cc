#include "core/suggest.h"

#include <algorithm>
#include <limits>

namespace ferry {

std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates) {
  // Optimal string alignment distance: Levenshtein plus adjacent transpositions ("nedes").
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
        d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
          d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
      }
    }
    return d[a.size()][b.size()];
  };
  if (word.size() > 64) return std::nullopt;
  std::optional<std::string> best;
  size_t best_d = std::numeric_limits<size_t>::max();
  // Allow roughly one typo per three characters, at least one, at most three.
  size_t limit = std::clamp<size_t>(word.size() / 3, 1, 3);
  for (const auto& c : candidates) {
    size_t d = distance(word, c);
    // A truncated or extended name ("retries" for "retry") is a likely slip too.
    bool affix = std::min(word.size(), c.size()) >= 4 &&
                 (word.rfind(c, 0) == 0 || std::string_view(c).rfind(word, 0) == 0);
    if (affix) d = std::min(d, limit);
    if (d <= limit && d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

}  // namespace ferry
