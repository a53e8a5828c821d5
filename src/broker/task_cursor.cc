#include "broker/task_cursor.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "broker/broker.h"
#include "core/ids.h"

namespace ferry {
namespace {

// Longest part after the '-': a sequence number (20 digits) or a task id (26 characters).
constexpr size_t kRestMax = 32;

Error Malformed(const std::string& why) {
  return Error{ErrorCode::kInvalidArgument,
               "malformed cursor (" + why + "); pass a listing's next_cursor as it came"};
}

}  // namespace

std::string EncodeTaskCursor(const TaskCursor& cursor) {
  std::string out;
  for (const auto& [queue, pos] : cursor) {
    if (!out.empty()) out += ',';
    out += queue + "~" + (pos.inclusive ? "=" : "") + std::to_string(pos.ms) + "-" + pos.rest;
  }
  return out;
}

Result<TaskCursor> DecodeTaskCursor(std::string_view text) {
  TaskCursor out;
  if (text.empty()) return out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view part = text.substr(start, comma - start);
    const size_t tilde = part.find('~');
    if (tilde == std::string_view::npos) return Fail(Malformed("a part has no '~'"));
    const std::string queue(part.substr(0, tilde));
    if (auto st = ValidateQueueName(queue); !st) return Fail(Malformed(st.error().message));
    std::string_view pos = part.substr(tilde + 1);
    ListPosition p;
    if (!pos.empty() && pos.front() == '=') {
      p.inclusive = true;
      pos.remove_prefix(1);
    }
    const size_t dash = pos.find('-');
    if (dash == std::string_view::npos || dash == 0) {
      return Fail(Malformed("queue " + queue + "'s position is not <ms>-<n>"));
    }
    const auto [end, ec] = std::from_chars(pos.data(), pos.data() + dash, p.ms);
    if (ec != std::errc() || end != pos.data() + dash || p.ms < 0) {
      return Fail(Malformed("queue " + queue + "'s position is not <ms>-<n>"));
    }
    p.rest = std::string(pos.substr(dash + 1));
    if (p.rest.empty() || p.rest.size() > kRestMax ||
        !std::all_of(p.rest.begin(), p.rest.end(),
                     [](unsigned char c) { return std::isdigit(c) || std::isupper(c); })) {
      return Fail(Malformed("queue " + queue + "'s position is not <ms>-<n>"));
    }
    if (!out.emplace(queue, std::move(p)).second) {
      return Fail(Malformed("queue " + queue + " is named twice"));
    }
    start = comma + 1;
  }
  return out;
}

bool IsStoredCursorName(std::string_view text) {
  return !text.empty() && text.front() == kStoredCursorMark &&
         LooksLikeId(std::string(text.substr(1)));
}

Status CheckTaskCursor(std::string_view text) {
  if (IsStoredCursorName(text)) return {};
  if (auto c = DecodeTaskCursor(text); !c) return Fail(c.error());
  return {};
}

}  // namespace ferry
