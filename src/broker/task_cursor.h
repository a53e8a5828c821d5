// The cursor of a task listing (Broker::ListTasks): where each queue's part of the listing
// resumes. A listing merges several queues, each read newest first from its own index (or dead
// set), so one position per queue says exactly what was listed: a task is on one page only, and
// tasks submitted after the first page never appear on later ones. A queue absent from a cursor
// has nothing more to list.
//
// Text form (opaque to clients, checked strictly): "QUEUE~POS" joined by ',', where POS is
// "<ms>-<n>" (an index entry id, or a dead letter's score and task id) or "=<ms>-<n>" when the
// listing resumes at that entry rather than after it. Which of the two a position is follows
// from the listing (ListingFor), and a position of the other shape is refused: the broker hands
// it to Redis as it is, and Redis's own error about it would be an internal error.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "broker/broker.h"
#include "core/result.h"

namespace ferry {

struct ListPosition {
  int64_t ms = 0;          // the index entry's milliseconds, or the dead letter's score
  std::string rest;        // the entry's sequence number, or the dead letter's task id
  bool inclusive = false;  // the listing resumes at this entry (else after it)
};

using TaskCursor = std::map<std::string, ListPosition>;  // by queue

// What a listing's positions are. Dead letters (status failed) are listed from the dead set, at
// a dead letter's score and task id; the others from each queue's index, at an entry's stream id:
// <ms>-<seq>, both decimal, seq at most 2^64-1, and never 0-0 (Redis gives no entry that id).
enum class ListingOf { kIndex, kDeadLetters };
ListingOf ListingFor(std::optional<TaskStatus> status);

std::string EncodeTaskCursor(const TaskCursor& cursor);
// kInvalidArgument "malformed cursor ..." for anything EncodeTaskCursor would not write for a
// listing `of` that kind.
Result<TaskCursor> DecodeTaskCursor(std::string_view text, ListingOf of);

// A cursor too long for a URL (hundreds of queues) is kept by the broker, and a page names it:
// this mark and an id (Broker::ListTasks).
inline constexpr char kStoredCursorMark = '@';
// Whether `text` names a stored cursor: the mark and a well-formed id.
bool IsStoredCursorName(std::string_view text);
// kInvalidArgument "malformed cursor ..." unless DecodeTaskCursor takes `text` or it names a
// stored cursor.
Status CheckTaskCursor(std::string_view text, ListingOf of);

}  // namespace ferry
