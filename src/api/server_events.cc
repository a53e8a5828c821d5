// The API server's event routes: a run's or a task's events as a Server-Sent Events stream
// (api/event_streams.h), or as a JSON page when the client accepts application/json
// (server_internal.h lists the server's files).
#include <charconv>
#include <string_view>
#include <utility>

#include "api/event_streams.h"
#include "api/server_internal.h"
#include "service/arguments.h"
#include "service/query.h"

namespace ferry::api {

using http::Request;
using http::Response;
using namespace server_internal;

namespace {

std::optional<int64_t> ParseInt64(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Whether the client asked for a JSON page rather than an event stream.
bool WantsJson(const Request& req) {
  auto accept = req.Header("Accept").value_or("");
  return accept.find("application/json") != std::string::npos &&
         accept.find("text/event-stream") == std::string::npos;
}

// Where a stream resumes: Last-Event-ID, else ?last_event_id (a browser's EventSource cannot
// set the header); "" for the start. Any other parameter is refused, as on every route: a
// ?after= meant for the JSON pages would otherwise replay the whole history without a word.
Result<std::string> ResumeFrom(const Request& req) {
  auto query = QueryOf(req);
  if (!query) return Fail(query.error());
  service::QueryReader q(*query);
  std::string from_query = q.Text("last_event_id");
  if (auto st = q.Finish(); !st) {
    return Fail(ErrorCode::kInvalidArgument,
                st.error().message +
                    " (an event stream resumes from Last-Event-ID; for pages of events, send "
                    "Accept: application/json)");
  }
  const std::string header = req.Header("Last-Event-ID").value_or("");
  return header.empty() ? from_query : header;
}

void StartStream(Response& res, std::shared_ptr<http::Stream> stream) {
  res.status = 200;
  res.content_type = "text/event-stream";
  res.SetHeader("Cache-Control", "no-cache");
  res.SetHeader("X-Accel-Buffering", "no");
  res.stream = std::move(stream);
}

}  // namespace

void ApiServer::Impl::RunEvents(const Request& req, Response& res) {
  if (WantsJson(req)) {
    auto query = QueryOf(req);
    if (!query) return SendError(res, query.error());
    return Answer(res, service.RunEvents(req.params[0], *query));
  }
  int64_t after = 0;
  auto last_id = ResumeFrom(req);
  if (!last_id) return SendError(res, last_id.error());
  if (!last_id->empty()) {
    auto n = ParseInt64(*last_id);
    if (!n || *n < 0) {
      return SendError(res, ErrorCode::kInvalidArgument, "Last-Event-ID must be an event seq");
    }
    after = *n;
  }
  if (auto run = service.GetRun(req.params[0]); !run) return SendError(res, run.error());
  StartStream(res,
              MakeRunEventStream(service, req.params[0], after, options.sse_poll_interval,
                                 options.sse_keep_alive, StillGranted(req, service::Scope::kRead)));
}

void ApiServer::Impl::TaskEvents(const Request& req, Response& res) {
  if (WantsJson(req)) {
    auto query = QueryOf(req);
    if (!query) return SendError(res, query.error());
    return Answer(res, service.TaskEvents(req.params[0], *query));
  }
  auto resume = ResumeFrom(req);
  if (!resume) return SendError(res, resume.error());
  const std::string after = resume->empty() ? "0" : *resume;
  // Named as the client sent it (the check below would name `after`, which it did not send).
  if (!service::IsTaskEventId(after)) {
    return SendError(res, ErrorCode::kInvalidArgument,
                     "Last-Event-ID must be a task event id such as 1733212800000-0");
  }
  // The service checks the id's shape and that the task exists.
  if (auto page = service.TaskEvents(req.params[0], {{"after", after}, {"limit", "1"}}); !page) {
    return SendError(res, page.error());
  }
  StartStream(
      res, MakeTaskEventStream(service, req.params[0], after, options.sse_poll_interval,
                               options.sse_keep_alive, StillGranted(req, service::Scope::kRead)));
}

}  // namespace ferry::api
