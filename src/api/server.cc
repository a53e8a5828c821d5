#include "api/server.h"

namespace ferry::api {

struct ApiServer::Impl {
  ApiServerOptions options;
  int port = 0;
};

ApiServer::ApiServer(ApiServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}
ApiServer::~ApiServer() { Stop(); }
Result<int> ApiServer::Start() { return Fail(ErrorCode::kInternal, "not implemented yet"); }
void ApiServer::Stop() {}
int ApiServer::port() const { return impl_->port; }

}  // namespace ferry::api
