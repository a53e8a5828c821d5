#include "api/batch.h"

#include "core/json_fields.h"
#include "service/task_submission.h"

namespace ferry::api {

http::Response SubmitTaskBatch(const http::Request& request, Pool<Broker>& brokers,
                               const BrokerOptions& options, int64_t now_ms) {
  auto body = ParseJsonObject(request.body);
  if (!body) return http::ErrorResponse(body.error());
  auto requests = service::ReadTaskBatch(*body, now_ms, options);
  if (!requests) return http::ErrorResponse(requests.error());
  auto broker = brokers.Acquire();
  if (!broker) return http::ErrorResponse(broker.error());
  auto submitted = (*broker)->SubmitBatch(*requests);
  if (!submitted) {
    const ErrorCode code = submitted.error().code;
    if (code == ErrorCode::kUnavailable || code == ErrorCode::kInternal) broker->MarkBad();
    return http::ErrorResponse(submitted.error());
  }
  Json answer = service::BatchAnswer(*submitted);
  const int status = answer["created"].get<int64_t>() > 0 ? 201 : 200;
  return http::JsonResponse(status, answer);
}

}  // namespace ferry::api
