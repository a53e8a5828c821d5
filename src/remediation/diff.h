// A unified diff of two texts by lines (Myers' algorithm), for `ferry remediation diff` and the
// API: the source the agent was given against the one it proposed.
//
// Thread-safety: pure function.
#pragma once

#include <string>
#include <string_view>

namespace ferry::remediation {

// "--- from_label\n+++ to_label\n@@ -a,b +c,d @@\n..." with `context` lines around each change;
// "" when the texts are equal. Past max_edits changed lines the diff is whole-file (every old
// line removed, every new one added), which keeps the cost bounded.
std::string UnifiedDiff(std::string_view from, std::string_view to, std::string_view from_label,
                        std::string_view to_label, int context = 3, int max_edits = 20000);

}  // namespace ferry::remediation
