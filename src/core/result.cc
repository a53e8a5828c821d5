#include "core/result.h"

namespace ferry {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

std::optional<ErrorCode> ParseErrorCodeName(std::string_view name) {
  for (ErrorCode code :
       {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kConflict,
        ErrorCode::kUnavailable, ErrorCode::kUnauthenticated, ErrorCode::kPermissionDenied,
        ErrorCode::kTooLarge, ErrorCode::kTimeout, ErrorCode::kCancelled, ErrorCode::kInternal}) {
    if (ErrorCodeName(code) == name) return code;
  }
  return std::nullopt;
}

std::string Error::ToString() const { return std::string(ErrorCodeName(code)) + ": " + message; }

int ErrorHttpStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kCancelled:
      return 409;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kTimeout:
      return 504;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

int ErrorExitCode(ErrorCode code) {
  // 2 is reserved for usage errors (CLI11 parse failures and kInvalidArgument from flags).
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 2;
    case ErrorCode::kUnavailable:
    case ErrorCode::kUnauthenticated:
      return 3;
    default:
      return 1;
  }
}

}  // namespace ferry
