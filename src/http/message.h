// HTTP requests and responses as Ferry's handlers see them: plain values, no socket, no library
// types, so routes are written and unit tested without a server.
//
// Thread-safety: plain values; a Request is owned by the one handler call that receives it.
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace ferry::http {

// Header names as received (compare with FindHeader, which ignores case); repeated headers stay
// repeated.
using HeaderList = std::vector<std::pair<std::string, std::string>>;
// The first header called `name`, ignoring case.
std::optional<std::string> FindHeader(const HeaderList& headers, std::string_view name);

struct Request {
  std::string method;  // upper case, as sent: "GET", "POST", ...
  std::string target;  // as sent: "/api/v1/runs?status=failed"
  std::string path;    // the target's path, percent-decoded: "/api/v1/runs"
  // The query string's pairs, percent-decoded ('+' is a space), in order.
  std::vector<std::pair<std::string, std::string>> query;
  HeaderList headers;
  std::string body;
  // The peer's address ("127.0.0.1", "::1").
  std::string remote_address;
  // What the route's pattern captured, in order ("/api/v1/runs/{id}" -> {id}).
  std::vector<std::string> params;
  // What the route's Admit step found, handed to its handler (e.g. a webhook's trigger).
  std::any context;

  std::optional<std::string> Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
  // The first value of a query parameter; "" when absent.
  std::string Query(std::string_view name) const;
  bool HasQuery(std::string_view name) const;
};

// A body sent piece by piece (Server-Sent Events). The server calls Next() on a handler thread,
// writes what it appended, waits until the write is done and `wait` has passed, then calls it
// again; no thread waits on the client in between. Next() is never called twice at once.
// Close() is called exactly once, when the stream ends for any reason (finished, client gone,
// write deadline passed, server stopping), possibly while a last Next() still runs.
class Stream {
 public:
  struct Step {
    // No more calls: the stream ends once what was appended is written.
    bool done = false;
    // Before the next call (0: as soon as the write completes).
    std::chrono::milliseconds wait{0};
  };
  virtual ~Stream() = default;
  virtual Step Next(std::string& out, bool stopping) = 0;
  virtual void Close() {}
};

struct Response {
  int status = 200;
  HeaderList headers;  // Content-Type goes in content_type
  std::string content_type = "application/json";
  std::string body;
  // When set, the body is this stream (chunked), and `body` is ignored.
  std::shared_ptr<Stream> stream;
  // Close the connection after this response.
  bool close = false;
  // Work that belongs to this request but not to its answer: it runs on the handler thread once
  // the answer has been handed to the I/O thread (a webhook's enqueue after its run is committed).
  // Only a route handler's answer runs it (an admission check's early answer does not). What it
  // throws is logged.
  std::function<void()> after;

  void SetHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// {"error":{"code":"not_found","message":"..."}}: the body of every error answer.
Json ErrorBody(std::string_view code, std::string_view message);
// The status code's error code name ("invalid_argument" for 400, "unavailable" for 503, ...).
std::string_view StatusCodeName(int status);
// A JSON response.
Response JsonResponse(int status, const Json& body);
// The error's HTTP status (core/result.h ErrorHttpStatus) with ErrorJson (core/json_fields.h).
Response ErrorResponse(const Error& error);
Response ErrorResponse(int status, std::string_view message);

// Percent-decoding. nullopt for a malformed escape or a decoded NUL byte.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);
// Splits a target into its decoded path and query pairs. kInvalidArgument for a malformed
// escape, a NUL byte, or a target that is not an absolute path.
Status ParseTarget(std::string_view target, std::string& path,
                   std::vector<std::pair<std::string, std::string>>& query);
// "header 'NAME' is given more than once" when `headers` hold `name` (ignoring case) more than
// once; nothing otherwise.
std::optional<std::string> RepeatedHeader(const HeaderList& headers, std::string_view name);
// The refusal (400) for a request head no route should see: a header meant to be given once
// (credentials, signatures and their timestamps, Host, Origin, Content-Type, Last-Event-ID)
// given more than once, or an HTTP/1.1 request (`version` 11) without Host (RFC 9112 3.2).
// Nothing when the head is fine.
std::optional<Response> MalformedHead(const HeaderList& headers, unsigned version);
// The refusal for a body the server would not hand to its handler as sent: a transfer coding
// other than chunked (501: the parser would pass gzip's bytes on as the body), or a content coding
// other than identity (415: a gzipped JSON body would be refused as malformed JSON, or fail its
// webhook signature, with an error that does not say why), or chunked more than once (400: the
// length is then unknown). Nothing when the body is plain or chunked once; codings compare
// ignoring case, and empty list elements are skipped.
std::optional<Response> UnsupportedBodyCoding(const HeaderList& headers);

}  // namespace ferry::http
