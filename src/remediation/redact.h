// Redaction of a failure's context before it is stored or shown to an agent.
//
// What goes: values of secret-like keys (password, token, api_key, authorization, cookie, ...),
// bearer/basic credentials, passwords in URLs, PEM blocks, JWT-like tokens, long random-looking
// strings, and every value of a secret the workflow references (`secrets.NAME`, resolved on this
// host) wherever it appears. What stays: `{{ ... }}` template expressions, so a reference such
// as `{{ secrets.API_TOKEN }}` remains a reference; ids (ULIDs, UUIDs) and ordinary words.
//
// The scanners are hand-written (no std::regex: its recursion grows with the input) and linear
// in the text's length.
//
// Thread-safety: a Redaction is immutable after construction; safe to share.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "engine/secrets.h"

namespace ferry::remediation {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// (value, what it is: "secrets.NAME", "inputs.password") of each value known to be secret.
using KnownSecrets = std::vector<std::pair<std::string, std::string>>;

class Redaction {
 public:
  // Known secret values, each with what it is shown in its place ("[REDACTED:secrets.NAME]").
  // Empty values and values shorter than 4 bytes are ignored (they would match everywhere).
  explicit Redaction(KnownSecrets secrets = {});

  std::string Text(std::string_view text) const;
  // Object values under secret-like keys become "[REDACTED]" (unless they are a template
  // reference); strings are redacted as text; keys keep their names. Depth is capped at 32;
  // deeper values become "[TRUNCATED]".
  Json Value(const Json& value) const;

  // Whether `text` holds a marker this class writes ("[REDACTED" ...).
  static bool HasMarker(std::string_view text);
  // Whether a JSON object key names a secret ("password", "api_key", "Authorization", ...).
  static bool SecretLikeKey(std::string_view key);

 private:
  std::string Segment(std::string_view text) const;
  Json ValueAt(const Json& value, int depth) const;

  std::vector<std::pair<std::string, std::string>> secrets_;  // longest value first
};

// The `secrets.NAME` references in a workflow source, without duplicates.
std::vector<std::string> ReferencedSecrets(std::string_view source);

// The value of each secret `source` references that `resolver` knows (none when null), as
// "secrets.NAME".
KnownSecrets ResolvedSecrets(std::string_view source, const engine::SecretResolver* resolver);

// Appends the text and number values under secret-like keys of `value` (a run's inputs), at any
// depth up to Value's cap, each as "<path>.<key>": Value hides them where they stand, and with them
// known, Text hides their copies elsewhere too (a program that printed its password into the
// error).
void AddSecretLikeValues(const Json& value, const std::string& path, KnownSecrets& out);

// `text` cut to `max_bytes` (on a UTF-8 boundary) with a "…[truncated N bytes]" note.
std::string Truncate(std::string_view text, size_t max_bytes);

}  // namespace ferry::remediation
