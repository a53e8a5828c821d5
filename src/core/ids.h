// Identifiers. Task and run ids are 26-character, time-ordered, Crockford base32 strings
// (48 bits of milliseconds + 80 random bits, ULID layout), so they sort by creation time.
// Thread-safe: each thread draws from its own random generator.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry {

std::string NewId(int64_t now_ms);
std::string NewId();
// Lowercase hex of n random bytes (worker id suffixes, tokens).
std::string RandomHex(size_t n_bytes);
// True when s looks like an id NewId() made (26 Crockford base32 characters).
bool LooksLikeId(const std::string& s);
// kInvalidArgument unless `id` LooksLikeId: "a task id is required", or "malformed task id 'X'
// (26 characters, as `ferry task list` shows)" for what = "task", shown_by = "ferry task list".
// A malformed id is the caller's mistake to name, not a record to look up and report missing.
Status RequireId(std::string_view what, const std::string& id, std::string_view shown_by);

}  // namespace ferry
