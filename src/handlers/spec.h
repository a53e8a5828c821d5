// What `ferry worker start --handler` (FERRY_HANDLERS, config key `handlers`) declares: task
// kinds run by a program (`exec`) or by an HTTP service (`http` push), docs/handlers.md.
//
// Text form, one declaration per `--handler` flag, or several separated by `;` or newlines:
//   resize=exec:python3 /opt/handlers/resize.py     argv split on spaces, no shell, no quoting
//   charge=https://billing.internal/ferry/charge    POST per task, signed with FERRY_HANDLER_SECRET
//   charge=https://billing.internal/ferry/charge secret-env=BILLING_SECRET   its own key
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ferry::handlers {

struct HandlerSpec {
  enum class Type { kExec, kHttp };
  std::string kind;
  Type type = Type::kExec;
  std::vector<std::string> argv;  // kExec
  std::string url;                // kHttp
  // kHttp: the environment variable holding this handler's HMAC key; empty = the worker's
  // FERRY_HANDLER_SECRET. One key per receiving service, so one leaked key forges for one only.
  std::string secret_env;
};

// Parses one or more declarations. Errors (kInvalidArgument) quote the declaration and say what
// is wrong: a bad kind name, a kind declared twice or built in, an empty program, a URL that is
// not http(s), an unknown word after the URL.
Result<std::vector<HandlerSpec>> ParseHandlerSpecs(std::string_view text);

// Kinds a declaration may not take: the worker's own (noop, echo, sleep, fail, shell, ferry.*).
bool IsReservedKind(std::string_view kind);

}  // namespace ferry::handlers
