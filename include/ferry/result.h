// Errors as values. Every fallible Ferry call returns Result<T>; "not found" is std::optional,
// not an error. Error codes say what the caller should do, and map to one HTTP status and one
// CLI exit code (see ErrorHttpStatus / ErrorExitCode).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace ferry {

enum class ErrorCode {
  kInvalidArgument,   // the caller's input is wrong; retrying the same call cannot help
  kNotFound,          // the thing named does not exist
  kConflict,          // illegal state transition or a lost race (stale epoch)
  kUnavailable,       // a dependency (Redis, database) is unreachable; retry later
  kUnauthenticated,   // missing or wrong credentials
  kPermissionDenied,  // authenticated but not allowed
  kTooLarge,          // a body or payload over its limit
  kTimeout,           // a deadline passed
  kCancelled,         // stopped on request
  kInternal,          // a bug or an unexpected reply
};

std::string_view ErrorCodeName(ErrorCode code);
// The code named by ErrorCodeName, for errors that come back over the API; nullopt if unknown.
std::optional<ErrorCode> ParseErrorCodeName(std::string_view name);

struct Error {
  Error() = default;
  Error(ErrorCode c, std::string m, std::string d = {})
      : code(c), message(std::move(m)), details(std::move(d)) {}

  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // Structured detail for clients, as the text of a JSON object whose fields join the error body
  // (`{"diagnostics": [...]}` for an invalid workflow); empty for none. Text, so this header needs
  // no JSON library.
  std::string details;

  // Whether trying the same operation again later may succeed.
  bool Retryable() const { return code == ErrorCode::kUnavailable || code == ErrorCode::kTimeout; }
  std::string ToString() const;
};

template <typename T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}
inline tl::unexpected<Error> Fail(Error error) { return tl::unexpected<Error>(std::move(error)); }

// One mapping from error to HTTP status and to CLI exit code.
int ErrorHttpStatus(ErrorCode code);
int ErrorExitCode(ErrorCode code);

}  // namespace ferry
