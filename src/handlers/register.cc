#include "handlers/register.h"

#include "handlers/exec_handler.h"
#include "handlers/http_handler.h"

namespace ferry::handlers {

Status RegisterExternalHandlers(const std::vector<HandlerSpec>& specs,
                                const ExternalHandlerOptions& options, HandlerRegistry& registry) {
  for (const HandlerSpec& spec : specs) {
    Result<Handler> handler = Fail(ErrorCode::kInternal, "unknown handler type");
    if (spec.type == HandlerSpec::Type::kExec) {
      ExecOptions exec;
      exec.argv = spec.argv;
      handler = MakeExecHandler(std::move(exec));
    } else {
      HttpHandlerOptions http;
      http.url = spec.url;
      http.secret = options.http_secret;
      handler = MakeHttpHandler(std::move(http));
    }
    if (!handler) {
      return Fail(handler.error().code, "handler '" + spec.kind + "': " + handler.error().message);
    }
    registry.Register(spec.kind, std::move(*handler));
  }
  return {};
}

}  // namespace ferry::handlers
