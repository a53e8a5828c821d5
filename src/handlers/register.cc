#include "handlers/register.h"

#include <cstdlib>

#include "handlers/exec_handler.h"
#include "handlers/http_handler.h"

namespace ferry::handlers {
namespace {

// The key an http handler signs with: its own variable when it names one (which must be set:
// falling back to the shared key would sign with a key the receiver does not expect), else the
// worker's FERRY_HANDLER_SECRET.
Result<std::string> HttpSecret(const HandlerSpec& spec, const ExternalHandlerOptions& options) {
  if (spec.secret_env.empty()) return options.http_secret;
  std::optional<std::string> value;
  if (options.env) {
    value = options.env(spec.secret_env);
  } else if (const char* v = std::getenv(spec.secret_env.c_str())) {
    value = v;
  }
  if (!value) {
    return Fail(ErrorCode::kInvalidArgument,
                "secret-env=" + spec.secret_env + ": " + spec.secret_env + " is not set");
  }
  return *value;
}

}  // namespace

Status RegisterExternalHandlers(const std::vector<HandlerSpec>& specs,
                                const ExternalHandlerOptions& options, HandlerRegistry& registry) {
  for (const HandlerSpec& spec : specs) {
    auto named = [&](const Error& e) {
      return Fail(e.code, "handler '" + spec.kind + "': " + e.message);
    };
    if (registry.Find(spec.kind) != nullptr) {
      return named(Error(ErrorCode::kInvalidArgument,
                         "kind '" + spec.kind +
                             "' is already registered by this program's own code; declare each "
                             "kind one way"));
    }
    Result<Handler> handler = Fail(ErrorCode::kInternal, "unknown handler type");
    if (spec.type == HandlerSpec::Type::kExec) {
      ExecOptions exec;
      exec.argv = spec.argv;
      handler = MakeExecHandler(std::move(exec));
    } else {
      auto secret = HttpSecret(spec, options);
      if (!secret) return named(secret.error());
      HttpHandlerOptions http;
      http.url = spec.url;
      http.secret = std::move(*secret);
      if (!spec.secret_env.empty()) http.secret_name = spec.secret_env;
      handler = MakeHttpHandler(std::move(http));
    }
    if (!handler) return named(handler.error());
    registry.Register(spec.kind, std::move(*handler));
  }
  return {};
}

}  // namespace ferry::handlers
