// Reading the record views (src/views) back into table cells: every command renders its table
// from the same JSON it prints with --json, so a table looks the same whether the answer came
// from Redis and the store or from a server (--server).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/json.h"

namespace ferry::cli {

// A field as text: strings as they are, other values as JSON, null or absent as "-".
std::string Field(const Json& record, std::string_view key);
// A `*_at` field (ISO 8601) in ms since the epoch; 0 when null, absent or unreadable.
int64_t FieldMs(const Json& record, std::string_view key);
// A `*_at` field as the tables show times ("2026-12-03 10:30:15 UTC"), "-" when null.
std::string FieldTime(const Json& record, std::string_view key);
// An integer field; 0 when null or absent.
int64_t FieldInt(const Json& record, std::string_view key);

}  // namespace ferry::cli
