#include "remediation/diff.h"

#include <algorithm>
#include <optional>
#include <vector>

namespace ferry::remediation {
namespace {

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      out.push_back(text.substr(start));
      break;
    }
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// One line of the edit script: ' ' kept, '-' removed from a, '+' added from b.
struct Op {
  char kind;
  int a;  // index in a (kept, removed)
  int b;  // index in b (kept, added)
};

// Myers' O((N+M)D) shortest edit script; nullopt past max_d.
std::optional<std::vector<Op>> Script(const std::vector<std::string_view>& a,
                                      const std::vector<std::string_view>& b, int max_d) {
  const int n = static_cast<int>(a.size());
  const int m = static_cast<int>(b.size());
  const int max = std::min(n + m, max_d);
  const int offset = max + 1;
  std::vector<int> v(static_cast<size_t>(2 * max + 3), 0);
  std::vector<std::vector<int>> trace;
  int found = -1;
  for (int d = 0; d <= max && found < 0; ++d) {
    trace.push_back(v);
    for (int k = -d; k <= d; k += 2) {
      const size_t ki = static_cast<size_t>(k + offset);
      int x = (k == -d || (k != d && v[ki - 1] < v[ki + 1])) ? v[ki + 1] : v[ki - 1] + 1;
      int y = x - k;
      while (x < n && y < m && a[static_cast<size_t>(x)] == b[static_cast<size_t>(y)]) {
        ++x;
        ++y;
      }
      v[ki] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return std::nullopt;
  std::vector<Op> ops;
  int x = n;
  int y = m;
  for (int d = found; d >= 0; --d) {
    const std::vector<int>& vd = trace[static_cast<size_t>(d)];
    const int k = x - y;
    const size_t ki = static_cast<size_t>(k + offset);
    int prev_k = 0;
    if (d == 0) {
      prev_k = 0;
    } else {
      prev_k = (k == -d || (k != d && vd[ki - 1] < vd[ki + 1])) ? k + 1 : k - 1;
    }
    const int prev_x = d == 0 ? 0 : vd[static_cast<size_t>(prev_k + offset)];
    const int prev_y = prev_x - prev_k;
    while (x > prev_x && y > prev_y) {
      --x;
      --y;
      ops.push_back({' ', x, y});
    }
    if (d > 0) {
      if (x == prev_x) {
        --y;
        ops.push_back({'+', x, y});
      } else {
        --x;
        ops.push_back({'-', x, y});
      }
    }
  }
  std::reverse(ops.begin(), ops.end());
  return ops;
}

std::string Range(int start, int count) {
  // Unified format: a zero-length range names the line before it.
  if (count == 0) return std::to_string(start) + ",0";
  if (count == 1) return std::to_string(start + 1);
  return std::to_string(start + 1) + "," + std::to_string(count);
}

}  // namespace

std::string UnifiedDiff(std::string_view from, std::string_view to, std::string_view from_label,
                        std::string_view to_label, int context, int max_edits) {
  if (from == to) return "";
  const auto a = Lines(from);
  const auto b = Lines(to);
  std::vector<Op> ops;
  if (auto s = Script(a, b, max_edits)) {
    ops = std::move(*s);
  } else {
    for (int i = 0; i < static_cast<int>(a.size()); ++i) ops.push_back({'-', i, 0});
    for (int j = 0; j < static_cast<int>(b.size()); ++j) {
      ops.push_back({'+', static_cast<int>(a.size()), j});
    }
  }
  std::string out = "--- " + std::string(from_label) + "\n+++ " + std::string(to_label) + "\n";
  const int total = static_cast<int>(ops.size());
  int i = 0;
  while (i < total) {
    while (i < total && ops[static_cast<size_t>(i)].kind == ' ') ++i;
    if (i >= total) break;
    // A hunk: from `context` kept lines before the change to `context` after the last change
    // that is not separated from the next by more than 2 * context kept lines.
    int start = std::max(0, i - context);
    int end = i;
    int last_change = i;
    while (end < total) {
      if (ops[static_cast<size_t>(end)].kind != ' ') {
        last_change = end;
      } else if (end - last_change > 2 * context) {
        break;
      }
      ++end;
    }
    end = std::min(total, last_change + context + 1);
    int a_start = -1, b_start = -1, a_count = 0, b_count = 0;
    std::string body;
    for (int k = start; k < end; ++k) {
      const Op& op = ops[static_cast<size_t>(k)];
      if (a_start < 0) {
        a_start = op.a;
        b_start = op.b;
      }
      if (op.kind != '+') ++a_count;
      if (op.kind != '-') ++b_count;
      const std::string_view line =
          op.kind == '+' ? b[static_cast<size_t>(op.b)] : a[static_cast<size_t>(op.a)];
      body.push_back(op.kind);
      body.append(line);
      body.push_back('\n');
    }
    out += "@@ -" + Range(a_start, a_count) + " +" + Range(b_start, b_count) + " @@\n" + body;
    i = end;
  }
  return out;
}

}  // namespace ferry::remediation
