#include "broker/task_cursor.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "broker/broker.h"
#include "core/ids.h"

namespace ferry {
namespace {

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

ListingOf ListingFor(std::optional<TaskStatus> status) {
  return status == TaskStatus::kFailed ? ListingOf::kDeadLetters : ListingOf::kIndex;
}

Result<TaskCursor> DecodeTaskCursor(std::string_view text, ListingOf of) {
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
    const std::string bad = "queue " + queue + "'s position is not " +
                            (of == ListingOf::kIndex ? "<ms>-<n>" : "<ms>-<task id>");
    if (dash == std::string_view::npos || dash == 0) return Fail(Malformed(bad));
    const auto [end, ec] = std::from_chars(pos.data(), pos.data() + dash, p.ms);
    if (ec != std::errc() || end != pos.data() + dash || p.ms < 0) return Fail(Malformed(bad));
    p.rest = std::string(pos.substr(dash + 1));
    if (of == ListingOf::kDeadLetters) {
      if (!LooksLikeId(p.rest)) return Fail(Malformed(bad));
    } else {
      // A stream id's sequence number: unsigned 64-bit decimal digits (no sign).
      uint64_t seq = 0;
      const char* last = p.rest.data() + p.rest.size();
      const auto [seq_end, seq_ec] = std::from_chars(p.rest.data(), last, seq);
      if (seq_ec != std::errc() || seq_end != last) return Fail(Malformed(bad));
      // No entry is 0-0, and Redis refuses to range after it: no page gave this.
      if (p.ms == 0 && seq == 0) return Fail(Malformed("queue " + queue + "'s position is 0-0"));
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

Status CheckTaskCursor(std::string_view text, ListingOf of) {
  if (IsStoredCursorName(text)) return {};
  if (auto c = DecodeTaskCursor(text, of); !c) return Fail(c.error());
  return {};
}

}  // namespace ferry
