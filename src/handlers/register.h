// Registers the kinds declared by `--handler` (spec.h) in a worker's registry.
//
// Thread-safety: call before the worker starts (HandlerRegistry is not synchronised).
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "handlers/spec.h"
#include "worker/handler.h"

namespace ferry::handlers {

struct ExternalHandlerOptions {
  // Signs every http handler's requests (FERRY_HANDLER_SECRET); required when there is one.
  std::string http_secret;
};

// Fails, naming the kind, when a program is not found or an http handler lacks its secret.
Status RegisterExternalHandlers(const std::vector<HandlerSpec>& specs,
                                const ExternalHandlerOptions& options, HandlerRegistry& registry);

}  // namespace ferry::handlers
