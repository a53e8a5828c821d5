// Strict reading of a JSON object's fields, for request bodies and other outside input: each
// field is named once with its type and range, and a field nobody asked for is an error (a typo
// such as "input" for "inputs" must not silently fall back to a default).
//
//   FieldReader f(body);
//   req.kind = f.String("kind", kRequired).value_or("");
//   req.max_attempts = f.Int("max_attempts", 1, 1000).value_or(3);
//   if (auto st = f.Finish(); !st) return Fail(st.error());
//
// The first problem is kept and reported by Finish() as kInvalidArgument naming the field
// ("max_attempts must be an integer from 1 to 1000, got 2.5"); later calls return nullopt.
//
// Thread-safety: a FieldReader is used by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/result.h"

namespace ferry {

inline constexpr bool kRequired = true;

class FieldReader {
 public:
  // `object` must outlive the reader. `prefix` names the object in messages ("task." ->
  // "task.kind").
  explicit FieldReader(const Json& object, std::string prefix = "");

  // null counts as absent. Absent and not required: nullopt, no error.
  std::optional<std::string> String(std::string_view name, bool required = false);
  std::optional<bool> Bool(std::string_view name, bool required = false);
  // A JSON integer (not 2.5, not "3") within [min, max].
  std::optional<int64_t> Int(std::string_view name, int64_t min, int64_t max,
                             bool required = false);
  // "30s", "250ms", "5m" (core/time_util ParseDuration) within [min, max].
  std::optional<std::chrono::milliseconds> Duration(std::string_view name,
                                                    std::chrono::milliseconds min,
                                                    std::chrono::milliseconds max,
                                                    bool required = false);
  // A string that, when given, is not empty: where "" would read as "no value" to the caller,
  // it is refused instead ("unique_key must not be empty (leave it out for no key)").
  std::optional<std::string> NonEmptyString(std::string_view name, std::string_view leave_out);
  // A JSON object.
  std::optional<Json> Object(std::string_view name, bool required = false);
  // Any JSON value.
  std::optional<Json> Any(std::string_view name, bool required = false);
  // Any JSON value but null: for a field whose absence means a value of its own ({} for a
  // payload), so that a null is not quietly taken for it.
  std::optional<Json> AnyButNull(std::string_view name, std::string_view leave_out);

  // The first problem, or an unknown field (with a suggestion when one is close).
  Status Finish() const;
  bool ok() const { return !error_; }

 private:
  const Json* Find(std::string_view name, bool required);
  void Problem(std::string_view name, const std::string& what);

  const Json& object_;
  const std::string prefix_;
  std::set<std::string, std::less<>> known_;
  std::optional<std::string> error_;
};

// Parses a request body that must be a JSON object. kInvalidArgument names the byte offset of a
// syntax error ("malformed JSON: ... at byte 12") or says what the body was instead of an object.
Result<Json> ParseJsonObject(std::string_view body);

// A positive integer query parameter with bounds; `text` empty = the default.
Result<int> ParseLimit(std::string_view text, int default_value, int max_value);

// The one JSON shape of an error, for API responses and `--json` output alike:
// {"error": {"code": "invalid_argument", "message": "...", <the fields of error.details>}}.
Json ErrorJson(const Error& error);

// The details of an error after which what a call sent may or may not have taken effect (it
// reached its server, Redis or HTTP, and the answer was lost), joined to an API error's body as
// its `outcome`.
inline constexpr std::string_view kOutcomeUnknown = R"({"outcome": "unknown"})";
// `e` marked so.
inline Error OutcomeUnknown(Error e) {
  e.details = std::string(kOutcomeUnknown);
  return e;
}
// True when the error's details say `"outcome": "unknown"`, in any spelling (the API's body
// comes back through --server compacted).
bool OutcomeIsUnknown(const Error& error);

// The JSON type of `v` as a user would name it: "a string", "an integer", "a number", ...
std::string JsonKindName(const Json& v);

}  // namespace ferry
