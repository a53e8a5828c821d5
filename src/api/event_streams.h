// The Server-Sent Events streams of the API: a run's events and a task's events, read through
// the service (LocalService::RunEventStep, TaskEventStep). Each step of a stream sends what is
// new since the last one, or a keep-alive comment now and then, and the stream ends once its run
// or task has ended and nothing more arrived. Between steps a stream holds no thread
// (http::Stream).
//
// Thread-safety: a stream is driven by one server thread at a time; the service is thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "http/message.h"
#include "service/local_service.h"

namespace ferry::api {

// Events after seq `after`; `event:` is the event type, `id:` its seq. `still_granted` is asked
// once a second: false ends the stream (its token was revoked).
std::shared_ptr<http::Stream> MakeRunEventStream(service::LocalService& service, std::string run_id,
                                                 int64_t after, std::chrono::milliseconds poll,
                                                 std::chrono::milliseconds keep_alive,
                                                 std::function<bool()> still_granted);

// Events after stream id `after` ("0": all); `id:` is the Redis stream id.
std::shared_ptr<http::Stream> MakeTaskEventStream(service::LocalService& service,
                                                  std::string task_id, std::string after,
                                                  std::chrono::milliseconds poll,
                                                  std::chrono::milliseconds keep_alive,
                                                  std::function<bool()> still_granted);

}  // namespace ferry::api
