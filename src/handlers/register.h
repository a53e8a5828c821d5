// Registers the kinds declared by `--handler` (spec.h) in a worker's registry.
//
// Thread-safety: call before the worker starts (HandlerRegistry is not synchronised).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "handlers/spec.h"
#include "worker/handler.h"

namespace ferry::handlers {

struct ExternalHandlerOptions {
  // Signs the requests of http handlers that name no key of their own (FERRY_HANDLER_SECRET).
  std::string http_secret;
  // Reads the variables named by `secret-env=` (the process environment when empty).
  std::function<std::optional<std::string>(const std::string& name)> env;
};

// Fails, naming the kind, when a program is not found, an http handler has no key (or a key
// shorter than kMinSecretBytes), its `secret-env=` variable is unset, or the kind is already in
// `registry` (a program's own C++ handler is not silently replaced by a declaration).
Status RegisterExternalHandlers(const std::vector<HandlerSpec>& specs,
                                const ExternalHandlerOptions& options, HandlerRegistry& registry);

}  // namespace ferry::handlers
