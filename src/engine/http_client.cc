#include "engine/http_client.h"

// The loaded library's functions are called through pointers: curl's type-checking macros would
// rename those calls.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <vector>

#include "core/dynamic_library.h"
#include "core/json_fields.h"

namespace ferry::engine {
namespace {

// libcurl, loaded on the first outbound request rather than at process start: with Kerberos,
// LDAP, GnuTLS and the rest behind it, its load alone leaves megabytes resident in every process,
// most of which never make an HTTP request (core/dynamic_library.h).
#define FERRY_LIBCURL_FUNCTIONS(X) \
  X(curl_easy_cleanup)             \
  X(curl_easy_getinfo)             \
  X(curl_easy_init)                \
  X(curl_easy_perform)             \
  X(curl_easy_reset)               \
  X(curl_easy_setopt)              \
  X(curl_easy_strerror)            \
  X(curl_global_init)              \
  X(curl_slist_append)             \
  X(curl_slist_free_all)

struct LibCurl {
  FERRY_LIBCURL_FUNCTIONS(FERRY_DL_FIELD)
};

// The functions, loaded and curl_global_init'ed once; an error (the same every time) when
// libcurl cannot be loaded.
const Result<LibCurl>& LoadCurl() {
  // Never destroyed: handles cleaned up by other statics' destructors during exit still call it.
  static const auto* loaded = new Result<LibCurl>([]() -> Result<LibCurl> {
    auto curl = DynamicLibrary::LoadTable<LibCurl>(
        kLibCurl, [](auto&& bind, LibCurl& table) { FERRY_LIBCURL_FUNCTIONS(FERRY_DL_BIND) });
    if (!curl) return curl;
    if (CURLcode rc = curl->curl_global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
      return Fail(ErrorCode::kUnavailable,
                  std::string("curl_global_init: ") + curl->curl_easy_strerror(rc));
    }
    return curl;
  }());
  return *loaded;
}

// Only called once a handle exists or is about to be made, after LoadCurl succeeded.
const LibCurl& Curl() { return *LoadCurl(); }

struct CurlDeleter {
  void operator()(CURL* c) const noexcept { Curl().curl_easy_cleanup(c); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { Curl().curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct Transfer {
  HttpResponse* response = nullptr;
  size_t max_bytes = 0;
  bool too_large = false;
  std::stop_token stop;
  const std::function<bool(std::string_view)>* on_body = nullptr;
  bool ended_by_reader = false;
};

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  if (t->on_body != nullptr && *t->on_body) {
    if ((*t->on_body)(std::string_view(data, n))) return n;
    t->ended_by_reader = true;
    return 0;  // aborts the transfer
  }
  if (t->response->body.size() + n > t->max_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->response->body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t nitems, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nitems;
  std::string line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->headers.clear();  // a new response (after 100 Continue)
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  std::string name = line.substr(0, colon);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string value = line.substr(colon + 1);
  size_t b = value.find_first_not_of(" \t");
  size_t e = value.find_last_not_of(" \t\r\n");
  value = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  t->response->headers.emplace_back(std::move(name), std::move(value));
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->stop.stop_requested() ? 1 : 0;  // non-zero aborts with CURLE_ABORTED_BY_CALLBACK
}

bool HasHeader(const std::vector<std::pair<std::string, std::string>>& headers,
               std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) {
    return h.first.size() == name.size() &&
           std::equal(h.first.begin(), h.first.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  });
}

}  // namespace

struct HttpConnectionPool::Impl {
  size_t max_idle = 0;
  std::mutex mu;
  std::vector<CurlPtr> idle;  // Guarded by mu

  CurlPtr Take() {
    {
      std::lock_guard lock(mu);
      if (!idle.empty()) {
        CurlPtr c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    return CurlPtr(Curl().curl_easy_init());
  }
  void Give(CurlPtr c) {
    // Forget the last request's options; the handle's connection cache stays.
    Curl().curl_easy_reset(c.get());
    std::lock_guard lock(mu);
    if (idle.size() < max_idle) idle.push_back(std::move(c));
  }
};

HttpConnectionPool::HttpConnectionPool(size_t max_idle) : impl_(std::make_unique<Impl>()) {
  impl_->max_idle = max_idle;
}
HttpConnectionPool::~HttpConnectionPool() = default;

HttpRequest BuildHttpRequest(const std::string& method, const std::string& url,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const Json* body) {
  HttpRequest r;
  r.method = method;
  r.url = url;
  r.headers = headers;
  if (body != nullptr && !body->is_null()) {
    r.has_body = true;
    if (body->is_string()) {
      r.body = body->get<std::string>();
    } else {
      r.body = DumpJson(*body);
      if (!HasHeader(r.headers, "content-type")) {
        r.headers.emplace_back("Content-Type", "application/json");
      }
    }
  }
  return r;
}

Result<HttpResponse> PerformHttp(const HttpRequest& request, std::stop_token stop,
                                 HttpConnectionPool* pool) {
  if (request.url.rfind("http://", 0) != 0 && request.url.rfind("https://", 0) != 0) {
    return Fail(ErrorCode::kInvalidArgument, "url must start with http:// or https://");
  }
  // libcurl takes C strings: a NUL would silently cut the URL or a header short.
  if (request.url.find('\0') != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument, "url holds a NUL byte (\\u0000)");
  }
  for (const auto& [name, value] : request.headers) {
    if (name.find_first_of(std::string_view(":\r\n\0", 4)) != std::string::npos ||
        value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Fail(ErrorCode::kInvalidArgument,
                  "header '" + name + "' holds a line break or a NUL byte");
    }
  }
  if (const auto& loaded = LoadCurl(); !loaded) return Fail(loaded.error());
  CurlPtr curl = pool != nullptr ? pool->impl().Take() : CurlPtr(Curl().curl_easy_init());
  if (!curl) return Fail(ErrorCode::kInternal, "curl_easy_init failed");
  // Back to the pool on every path out, so its connection is reused (curl closes a connection
  // left in a bad state, e.g. after an aborted transfer, by itself).
  struct GiveBack {
    HttpConnectionPool* pool;
    CurlPtr& curl;
    ~GiveBack() {
      if (pool != nullptr && curl) pool->impl().Give(std::move(curl));
    }
  } give_back{pool, curl};
  CURL* c = curl.get();
  HttpResponse response;
  Transfer transfer{&response,       request.max_response_bytes, false,
                    std::move(stop), &request.on_body,           false};

  SlistPtr header_list;
  for (const auto& [name, value] : request.headers) {
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    curl_slist* next = Curl().curl_slist_append(header_list.get(), line.c_str());
    if (next == nullptr) return Fail(ErrorCode::kInternal, "curl_slist_append failed");
    (void)header_list.release();
    header_list.reset(next);
  }
  // Without this, curl sends "Expect: 100-continue" for large bodies and waits a second.
  if (!HasHeader(request.headers, "expect")) {
    curl_slist* next = Curl().curl_slist_append(header_list.get(), "Expect:");
    if (next != nullptr) {
      (void)header_list.release();
      header_list.reset(next);
    }
  }

  Curl().curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  Curl().curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  Curl().curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  Curl().curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  Curl().curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method == "HEAD") Curl().curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (request.has_body) {
    Curl().curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    Curl().curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                            static_cast<curl_off_t>(request.body.size()));
  }
  Curl().curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  Curl().curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  Curl().curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  Curl().curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  Curl().curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  Curl().curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  Curl().curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  Curl().curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
  if (request.timeout.count() > 0) {
    Curl().curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                            static_cast<long>(request.timeout.count()));  // NOLINT
  }
  Curl().curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 30'000L);

  CURLcode rc = Curl().curl_easy_perform(c);
  if (rc == CURLE_WRITE_ERROR && transfer.ended_by_reader) rc = CURLE_OK;
  if (rc != CURLE_OK) {
    if (rc == CURLE_ABORTED_BY_CALLBACK) return Fail(ErrorCode::kCancelled, "http: stopped");
    if (transfer.too_large) {
      return Fail(ErrorCode::kTooLarge, "http: response larger than " +
                                            std::to_string(request.max_response_bytes) + " bytes");
    }
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
      return Fail(ErrorCode::kInvalidArgument,
                  std::string("http: ") + Curl().curl_easy_strerror(rc));
    }
    Error e =
        rc == CURLE_OPERATION_TIMEDOUT
            ? Error{ErrorCode::kTimeout, "http: timed out"}
            : Error{ErrorCode::kUnavailable, std::string("http: ") + Curl().curl_easy_strerror(rc)};
    // A request that may change something went out and no whole answer came back: it may
    // have been done (a connection that failed before sending says nothing of the kind).
    long request_bytes = 0;  // NOLINT(google-runtime-int): curl's type
    Curl().curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &request_bytes);
    const bool reads_only = request.method == "GET" || request.method == "HEAD";
    return Fail(request_bytes > 0 && !reads_only ? OutcomeUnknown(std::move(e)) : std::move(e));
  }
  Curl().curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

Json HttpResponseToJson(const HttpResponse& response) {
  Json headers = Json::object();
  for (const auto& [name, value] : response.headers) {
    if (headers.contains(name)) {
      headers[name] = headers[name].get<std::string>() + ", " + value;
    } else {
      headers[name] = value;
    }
  }
  Json body = response.body;
  bool json_type = false;
  for (const auto& [name, value] : response.headers) {
    if (name == "content-type" && value.find("json") != std::string::npos) json_type = true;
  }
  // Parse when the server says JSON, or when the text plainly is an object or array.
  size_t first = response.body.find_first_not_of(" \t\r\n");
  bool looks =
      first != std::string::npos && (response.body[first] == '{' || response.body[first] == '[');
  if (json_type || looks) {
    if (auto parsed = ParseJson(response.body)) body = std::move(*parsed);
  }
  return Json{
      {"status", response.status}, {"headers", std::move(headers)}, {"body", std::move(body)}};
}

}  // namespace ferry::engine
