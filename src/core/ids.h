// Identifiers. Task and run ids are 26-character, time-ordered, Crockford base32 strings
// (48 bits of milliseconds + 80 random bits, ULID layout), so they sort by creation time.
// Thread-safe: each thread draws from its own random generator.
#pragma once

#include <cstdint>
#include <string>

namespace ferry {

std::string NewId(int64_t now_ms);
std::string NewId();
// Lowercase hex of n random bytes (worker id suffixes, tokens).
std::string RandomHex(size_t n_bytes);
// True when s looks like an id NewId() made (26 Crockford base32 characters).
bool LooksLikeId(const std::string& s);

}  // namespace ferry
