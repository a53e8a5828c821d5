// Hashes, MACs and encodings shared by every part: API tokens (SHA-256), webhook and alert
// signatures (HMAC-SHA256, hex or base64), workflow checksums. OpenSSL's libcrypto underneath,
// loaded on the first hash (core/dynamic_library.h); a process that cannot load it stops with a
// message naming the package at that first hash, so processes that hash on every request check
// CryptoAvailable() when they start.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry {

// Loads libcrypto if it is not yet: kUnavailable naming the library and its package.
Status CryptoAvailable();

// Lowercase hex SHA-256.
std::string Sha256Hex(std::string_view data);
// HMAC-SHA256(key, data): the 32 raw bytes.
std::string HmacSha256(std::string_view key, std::string_view data);
// Lowercase hex HMAC-SHA256(key, data).
std::string HmacSha256Hex(std::string_view key, std::string_view data);
// Compares in time independent of where the inputs differ (the length is not secret).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

std::string HexEncode(std::string_view bytes);
// Standard base64 with padding.
std::string Base64Encode(std::string_view bytes);
// Standard base64; padding optional; nullopt for any other character or a bad length.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace ferry
