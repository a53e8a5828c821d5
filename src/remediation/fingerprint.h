// A failure's identity for deduplication: the version's checksum, the failed node and the
// error with its variable parts (numbers, ids, addresses, hex, quoted values) replaced, so the
// same bug failing again with another port, run id or timestamp attaches to the same candidate.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace ferry::remediation {

// At most 512 bytes; whitespace collapsed; "<n>", "<id>", "<uuid>", "<hex>", "<ip>" in place of
// the variable parts.
std::string NormalizeError(std::string_view error);

// Lowercase hex SHA-256 of checksum, failed node and normalized error (newline-separated).
std::string Fingerprint(std::string_view checksum, std::string_view failed_node,
                        std::string_view normalized_error);

}  // namespace ferry::remediation
