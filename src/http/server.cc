#include "http/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

namespace ferry::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Runs jobs on a fixed set of threads. A job that would wait behind more than `max_queued`
// others is refused, so an overloaded server answers 503 instead of queueing without bound.
class HandlerPool {
 public:
  HandlerPool(int threads, int max_queued) : max_queued_(static_cast<size_t>(max_queued)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~HandlerPool() { Stop(); }
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;

  // `force`: bypass the backlog cap (stream steps of streams already admitted).
  bool Post(std::function<void()> job, bool force = false) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      if (!force && jobs_.size() >= max_queued_) return false;
      jobs_.push_back({std::move(job), Clock::now()});
    }
    cv_.notify_one();
    return true;
  }

  // How long the oldest job not yet started has waited; zero when none waits.
  Clock::duration OldestWait() {
    std::lock_guard lock(mu_);
    return jobs_.empty() ? Clock::duration::zero() : Clock::now() - jobs_.front().since;
  }

  // Drops queued jobs and waits for the running ones.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && threads_.empty()) return;
      stopping_ = true;
      jobs_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front().run);
        jobs_.pop_front();
      }
      job();
    }
  }

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Job {
    std::function<void()> run;
    Clock::time_point since;  // when it was queued
  };
  std::deque<Job> jobs_;   // Guarded by mu_
  bool stopping_ = false;  // Guarded by mu_
  std::vector<std::thread> threads_;
};

// What a connection's read buffer may hold: the request head (whose own limit is checked
// first) and room to read a body through. The parser keeps a chunk's size line (with any
// extensions) and a chunked body's trailer whole in this buffer, so this bounds them too, which
// neither the head's limit nor the body's counts; body bytes are consumed as they are parsed.
constexpr size_t kBodyReadRoom = 16 * 1024;
size_t BufferLimit(const ServerOptions& o) { return o.max_header_bytes + kBodyReadRoom; }

std::string Seconds(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + " s";
  return std::to_string(ms.count()) + " ms";
}

std::string ClientAddress(const tcp::socket& socket) {
  beast::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string();
  }
  return addr.to_string();
}

// Headers every answer gets unless its route set them: answers carry token secrets and live
// state, so no cache keeps one (routes whose answers may be kept, such as the console's files,
// say so), and no browser takes a body for another type than the one stated.
void SetDefaultHeaders(bhttp::fields& fields) {
  if (fields.find(bhttp::field::cache_control) == fields.end()) {
    fields.set(bhttp::field::cache_control, "no-store");
  }
  if (fields.find("X-Content-Type-Options") == fields.end()) {
    fields.set("X-Content-Type-Options", "nosniff");
  }
}

// Not partial_message: a client that stops sending in the middle of a request may only have
// half-closed its connection, and can still read the 400 that says what was missing.
bool IsDisconnect(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::broken_pipe || ec == asio::error::not_connected;
}

// The offset of the first LF in `text` that no CR precedes, from `from` on. The parser takes only
// CRLF as the end of a chunk line and waits for one, so a chunk line ended by a bare LF would wait
// for its deadline (a 408 that does not say what was wrong).
std::optional<size_t> FindBareLf(std::string_view text, size_t from) {
  for (size_t i = text.find('\n', from); i != std::string_view::npos; i = text.find('\n', i + 1)) {
    if (i == 0 || text[i - 1] != '\r') return i;
  }
  return std::nullopt;
}

// 413 for a body over `limit`; the connection then closes (the body may not have been read).
Response TooLargeResponse(std::optional<uint64_t> length, int64_t limit) {
  std::string what = "request body";
  if (length) what += " of " + std::to_string(*length) + " bytes";
  Response res =
      ErrorResponse(413, what + " is over the limit of " + std::to_string(limit) + " bytes");
  res.close = true;
  return res;
}

class Connection;

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, Router r) : options(std::move(o)), router(std::move(r)) {}

  // Constant after construction.
  const ServerOptions options;
  const Router router;

  // Declared first so it is destroyed last: its pending handlers own connections.
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread io_thread;
  std::unique_ptr<HandlerPool> pool;
  std::unique_ptr<HandlerPool> after_pool;  // Response::after

  std::atomic<int> port{0};
  std::atomic<int> open{0};
  std::atomic<int> streams{0};
  std::atomic<bool> stopping{false};

  // I/O thread only.
  std::unordered_map<std::string, int> per_client;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> live;

  std::mutex lifecycle_mu;  // serializes Start and Stop
  bool running = false;     // Guarded by lifecycle_mu
  bool stopped = false;     // Guarded by lifecycle_mu

  void Accept();
};

namespace {

// One client connection. Every member is touched on the I/O thread only, except `request` and
// `route`, which a handler job reads while the I/O thread waits for that job's answer.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& server, tcp::socket socket, std::string client)
      : server_(server),
        stream_(std::move(socket)),
        buffer_(BufferLimit(server.options)),
        client_(std::move(client)),
        timer_(server.io),
        deadline_(server.io) {}

  const std::string& client() const { return client_; }

  void Start() { WaitForRequest(); }

  // Answers 503 (over a connection cap) and closes.
  void Reject(const std::string& why) {
    rejected_ = true;
    Response res = ErrorResponse(503, why);
    res.SetHeader("Retry-After", "1");
    res.close = true;
    Answer(std::move(res));
  }

  // Closes at once (server stopping, client gone). Safe to call more than once.
  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().close(ec);
    timer_.cancel();
    Disarm();
    if (source_) {
      source_->Close();
      source_.reset();
      server_.streams.fetch_sub(1);
    }
    if (!rejected_) {
      server_.live.erase(this);
      server_.open.fetch_sub(1);
      auto it = server_.per_client.find(client_);
      if (it != server_.per_client.end() && --it->second <= 0) server_.per_client.erase(it);
    }
  }

 private:
  void WaitForRequest() {
    if (closed_) return;
    if (server_.stopping.load()) return Close();
    if (buffer_.size() > 0) return ReadHead();
    stream_.expires_after(server_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();  // idle timeout or client gone
                              self->buffer_.commit(n);
                              self->ReadHead();
                            });
  }

  void ReadHead() {
    parser_.emplace();
    parser_->header_limit(server_.options.max_header_bytes);
    // No body limit while the head is read: an announced length is judged after routing (404 and
    // 405 first, then 413 against the route's limit, after its admission when it has one, so the
    // answer names the limit that applies), and every path sets a limit before it parses a body
    // byte (ReadBody; TakeBodyFromBuffer only parses a Content-Length already checked).
    parser_->body_limit(boost::none);
    head_bytes_ = 0;
    lf_checked_ = 0;
    started_ = Clock::now();
    Arm(server_.options.header_timeout);
    Parse();
  }

  // Feeds the parser what the buffer holds, reading more as needed, until the head is parsed
  // (then OnHead) or, once it is, the whole request (then OnBody). The server's own loop, not
  // Beast's async_read_header and async_read, because between reads it checks what the parser
  // does not. The head's size over all its reads: the parser's header_limit bounds only what one
  // call leaves unparsed, and it takes each header line as it completes, so a head sent in small
  // pieces passed any limit. And a chunk line or trailer of a chunked body that ends in a bare
  // LF: the parser waits for a CRLF that never comes.
  void Parse() {
    if (closed_) return;
    const bool head = !parser_->is_header_done();
    const uint32_t max_head = server_.options.max_header_bytes;
    while (buffer_.size() > 0) {
      if (head) parser_->header_limit(max_head - head_bytes_);
      beast::error_code ec;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (used > 0) lf_checked_ = 0;
      if (head) {
        head_bytes_ += static_cast<uint32_t>(used);
        // One call may take a start line and then a limit's worth of header lines.
        if (head_bytes_ > max_head) return Parsed(head, bhttp::error::header_limit);
      }
      if (ec == bhttp::error::need_more) {
        // What the parser left of a chunked body is a chunk line or the trailer. (A head's lines
        // it refuses itself, at the bare LF.)
        if (!head && parser_->chunked()) {
          const std::string_view left(static_cast<const char*>(buffer_.data().data()),
                                      buffer_.size());
          if (FindBareLf(left, lf_checked_)) return Parsed(head, bhttp::error::bad_line_ending);
          lf_checked_ = left.size();
        }
        break;
      }
      if (ec) return Parsed(head, ec);
      if (head ? parser_->is_header_done() : parser_->is_done()) return Parsed(head, {});
      if (used == 0) break;
    }
    const size_t room = beast::read_size(buffer_, 64 * 1024);
    if (room == 0) return Parsed(head, bhttp::error::buffer_overflow);
    stream_.async_read_some(buffer_.prepare(room),
                            [self = shared_from_this(), head](beast::error_code ec, size_t n) {
                              self->OnRead(head, ec, n);
                            });
  }

  void OnRead(bool head, beast::error_code ec, size_t n) {
    if (ec == asio::error::eof) {
      // The client stopped sending, perhaps only half-closed: the parser says whether the request
      // is whole (partial_message when not).
      ec = {};
      if (parser_->got_some()) {
        parser_->put_eof(ec);
      } else {
        ec = bhttp::error::end_of_stream;
      }
      return Parsed(head, ec);
    }
    if (ec) return Parsed(head, ec);
    buffer_.commit(n);
    Parse();
  }

  void Parsed(bool head, beast::error_code ec) { head ? OnHead(ec) : OnBody(ec); }

  // Request deadlines: unlike tcp_stream's own expiry (which closes the socket), this one only
  // cancels the read, so the client still gets its 408.
  void Arm(std::chrono::milliseconds timeout) {
    stream_.expires_never();
    timed_out_ = false;
    const uint64_t generation = ++deadline_generation_;
    deadline_.expires_after(timeout);
    deadline_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (ec || generation != self->deadline_generation_ || self->closed_) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }

  // Returns whether the deadline had passed.
  bool Disarm() {
    ++deadline_generation_;
    deadline_.cancel();
    return timed_out_;
  }

  void OnHead(beast::error_code ec) {
    if (closed_) return;
    if (Disarm()) {
      return Fail(408,
                  "request head not received within " + Seconds(server_.options.header_timeout));
    }
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
      return Fail(431, "request head over the limit of " +
                           std::to_string(server_.options.max_header_bytes) + " bytes");
    }
    if (ec == bhttp::error::partial_message) {
      return Fail(400, "request head ended after " + std::to_string(head_bytes_ + buffer_.size()) +
                           " bytes, before the blank line that ends it");
    }
    if (ec && IsDisconnect(ec)) return Close();
    if (ec) return Fail(400, "malformed request: " + ec.message());

    const auto& head = parser_->get();
    request_ = Request{};
    request_.method = std::string(head.method_string());
    request_.target = std::string(head.target());
    request_.remote_address = client_;
    request_.headers.reserve(16);
    for (const auto& field : head) {
      request_.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    if (auto refusal = MalformedHead(request_.headers, head.version())) {
      refusal->close = true;  // its body is not read
      return Answer(std::move(*refusal));
    }
    if (auto st = ParseTarget(request_.target, request_.path, request_.query); !st) {
      return Fail(400, st.error().message);
    }
    auto match = server_.router.Find(request_.method, request_.path);
    if (match.route == nullptr) {
      if (match.allowed.empty()) return Fail(404, "no route " + request_.path);
      std::string allow;
      for (const auto& m : match.allowed) allow += (allow.empty() ? "" : ", ") + m;
      Response res = JsonResponse(
          405, ErrorBody("method_not_allowed", request_.method + " is not allowed on " +
                                                   request_.path + " (allowed: " + allow + ")"));
      res.SetHeader("Allow", allow);
      return Answer(std::move(res));
    }
    route_ = match.route;
    request_.params = std::move(match.params);
    if (auto refusal = UnsupportedBodyCoding(request_.headers)) {
      refusal->close = true;  // its body is not read
      return Answer(std::move(*refusal));
    }
    if (!route_->admit) return ReadBody(server_.options.default_body_limit);
    // A small request's body usually arrives with its head: then the admission check and the
    // handler run in one handler job, one hand-off to the pool and back instead of two.
    if (auto whole = TakeBodyFromBuffer(); !whole) {
      return;  // malformed body: answered
    } else if (*whole) {
      return Dispatch(/*admit_first=*/true);
    }
    const bool posted = server_.pool->Post([self = shared_from_this()] {
      int64_t limit = self->server_.options.default_body_limit;
      std::optional<Response> early;
      try {
        early = self->route_->admit(self->request_, limit);
      } catch (const std::exception& e) {
        spdlog::error("http: {} {}: {}", self->request_.method, self->request_.path, e.what());
        early = ErrorResponse(500, std::string("unexpected error: ") + e.what());
      }
      asio::post(self->server_.io, [self, early = std::move(early), limit]() mutable {
        if (self->closed_) return;
        if (early) return self->Answer(std::move(*early));
        self->ReadBody(std::min(limit, self->server_.options.max_body_limit));
      });
    });
    if (!posted) Busy();
  }

  // Parses the body from what has already been received when all of it has (its length is
  // known and the buffer holds that much), without another read. Returns whether the request is
  // now whole, or nothing when the body is malformed (answered with 400).
  std::optional<bool> TakeBodyFromBuffer() {
    if (!parser_->is_done()) {
      auto len = parser_->content_length();
      if (!len || buffer_.size() < *len) return false;
      while (!parser_->is_done()) {
        beast::error_code ec;
        const size_t n = parser_->put(buffer_.data(), ec);
        buffer_.consume(n);
        if (ec) {
          Fail(400, "malformed request body: " + ec.message());
          return std::nullopt;
        }
        if (n == 0) return false;  // the rest is read the usual way
      }
    }
    request_.body = std::move(parser_->get().body());
    return true;
  }

  void ReadBody(int64_t limit) {
    body_limit_ = limit;
    if (auto len = parser_->content_length(); len && *len > static_cast<uint64_t>(limit)) {
      return TooLarge(limit);
    }
    if (auto whole = TakeBodyFromBuffer(); !whole) {
      return;  // malformed body: answered
    } else if (*whole) {
      return Dispatch();
    }
    parser_->body_limit(static_cast<uint64_t>(limit));
    auto expect = request_.Header("Expect");
    if (expect && beast::iequals(*expect, "100-continue") && buffer_.size() == 0) {
      continue_.emplace(bhttp::status::continue_, parser_->get().version());
      stream_.expires_after(server_.options.write_timeout);
      bhttp::async_write(stream_, *continue_,
                         [self = shared_from_this()](beast::error_code ec, size_t) {
                           if (ec) return self->Close();
                           self->ReadBodyNow();
                         });
      return;
    }
    ReadBodyNow();
  }

  void ReadBodyNow() {
    Arm(server_.options.body_timeout);
    parser_->eager(true);  // each call parses all it can, not one chunk
    lf_checked_ = 0;
    Parse();
  }

  void OnBody(beast::error_code ec) {
    if (closed_) return;
    if (Disarm()) {
      return Fail(408, "request body not received within " + Seconds(server_.options.body_timeout));
    }
    if (ec == bhttp::error::body_limit) return TooLarge(body_limit_);
    if (ec == bhttp::error::buffer_overflow) {
      // A chunk's size line or the trailer, which the parser holds whole, outgrew the buffer.
      return Fail(431, "a chunk line or the trailer of the body is over the limit of " +
                           std::to_string(BufferLimit(server_.options)) + " bytes");
    }
    if (ec == bhttp::error::partial_message) {
      const std::string got = std::to_string(parser_->get().body().size());
      if (auto len = parser_->content_length()) {
        return Fail(400, "request body ended after " + got + " of " + std::to_string(*len) +
                             " bytes (Content-Length)");
      }
      return Fail(400, "request body ended after " + got + " bytes, before its last chunk");
    }
    if (ec == bhttp::error::bad_line_ending) {
      return Fail(400, "malformed request body: a chunk line or the trailer does not end in CRLF");
    }
    if (ec && IsDisconnect(ec)) return Close();
    if (ec) return Fail(400, "malformed request body: " + ec.message());
    request_.body = std::move(parser_->get().body());
    Dispatch();
  }

  // Runs the route's handler on a handler thread with the request read whole; `admit_first`: its
  // admission check first, and the body's size against the limit that check sets.
  void Dispatch(bool admit_first = false) {
    if (route_->on_io_thread) {
      Response res;
      try {
        res = route_->handler(request_);
        if (res.after || res.stream) {
          throw std::logic_error(
              "a route answered on the I/O thread may not stream or have work "
              "after its answer");
        }
      } catch (const std::exception& e) {
        spdlog::error("http: {} {}: {}", request_.method, request_.path, e.what());
        res = ErrorResponse(500, std::string("unexpected error: ") + e.what());
      }
      return Answer(std::move(res));
    }
    const bool posted = server_.pool->Post([self = shared_from_this(), admit_first] {
      Response res;
      try {
        std::optional<Response> early;
        if (admit_first) {
          const auto& o = self->server_.options;
          int64_t limit = o.default_body_limit;
          early = self->route_->admit(self->request_, limit);
          limit = std::min(limit, o.max_body_limit);
          if (!early && self->request_.body.size() > static_cast<size_t>(limit)) {
            early = TooLargeResponse(self->request_.body.size(), limit);
          }
        }
        res = early ? std::move(*early) : self->route_->handler(self->request_);
      } catch (const std::exception& e) {
        spdlog::error("http: {} {}: {}", self->request_.method, self->request_.path, e.what());
        res = ErrorResponse(500, std::string("unexpected error: ") + e.what());
      }
      std::function<void()> after = std::move(res.after);
      // Once the answer is posted, the connection may read its next request into request_.
      const std::string what = after ? self->request_.method + " " + self->request_.path : "";
      asio::post(self->server_.io, [self, res = std::move(res)]() mutable {
        if (self->closed_) return;
        self->Answer(std::move(res));
      });
      if (!after) return;
      auto run_after = [after = std::move(after), what]() {
        try {
          after();
        } catch (const std::exception& e) {
          spdlog::error("http: {}, after its answer: {}", what, e.what());
        } catch (...) {
          spdlog::error("http: {}, after its answer: an exception of unknown type", what);
        }
      };
      // Here only when its pool is full (or stopping): the handler thread is then the limit.
      if (!self->server_.after_pool->Post(run_after)) run_after();
    });
    if (!posted) Busy();
  }

  void Busy() {
    Response res = ErrorResponse(503, "server busy: too many requests waiting; retry later");
    res.SetHeader("Retry-After", "1");
    res.close = true;
    Answer(std::move(res));
  }

  void TooLarge(int64_t limit) {
    std::optional<uint64_t> length;
    if (auto len = parser_ ? parser_->content_length() : boost::none; len) length = *len;
    Answer(TooLargeResponse(length, limit));
  }

  // An error answer after which the connection closes (the request was not read whole).
  void Fail(int status, const std::string& message) {
    Response res = ErrorResponse(status, message);
    res.close = true;
    Answer(std::move(res));
  }

  void Answer(Response res) {
    if (closed_) return;
    const unsigned version = parser_ ? parser_->get().version() : 11;
    const bool head_done = parser_ && parser_->is_header_done();
    const bool body_read = parser_ && parser_->is_done();
    // RFC 9110 8.6: a HEAD answer's or a 304's Content-Length, when sent, is the length a GET's
    // 200 would have had. A stream has none (it is chunked, or ended by the close), and a 304
    // does not know it: both are sent without one, never with a false 0.
    bool length_unknown = res.status == 304;
    if (res.stream && head_done && request_.method == "HEAD") {
      // HEAD: the stream's head only (no content, RFC 9110), and the connection ends, as a
      // stream's would: nothing is streamed and no stream slot is held.
      res.stream = nullptr;
      res.close = true;
      length_unknown = true;
    }
    if (res.stream && !rejected_) {
      if (server_.streams.fetch_add(1) >= server_.options.max_streams) {
        server_.streams.fetch_sub(1);
        res =
            ErrorResponse(503, "too many event streams open (max " +
                                   std::to_string(server_.options.max_streams) + "); retry later");
        res.SetHeader("Retry-After", "5");
      } else {
        Observe(res.status);
        return StartStream(std::move(res), version);
      }
    }
    const bool keep = !res.close && body_read && parser_->get().keep_alive() &&
                      !server_.stopping.load() && !rejected_;
    auto msg = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(res.status), version);
    msg->set(bhttp::field::server, "ferry");
    msg->set(bhttp::field::content_type, res.content_type);
    for (auto& [k, v] : res.headers) msg->insert(k, v);
    SetDefaultHeaders(msg->base());
    msg->body() = std::move(res.body);
    msg->prepare_payload();
    if (length_unknown) msg->erase(bhttp::field::content_length);
    if (head_done && request_.method == "HEAD") msg->body().clear();
    msg->keep_alive(keep);
    Observe(res.status);
    stream_.expires_after(server_.options.write_timeout);
    bhttp::async_write(stream_, *msg,
                       [self = shared_from_this(), msg, keep](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         if (!keep) return self->LingerClose();
                         self->parser_.reset();
                         self->WaitForRequest();
                       });
  }

  void Observe(int status) {
    if (!server_.options.on_response || rejected_ || !parser_ || !parser_->is_header_done()) {
      return;
    }
    const std::chrono::duration<double> took = Clock::now() - started_;
    server_.options.on_response(request_, status, took.count());
  }

  // Stops sending, then reads and discards what the client still sends for a short while before
  // closing: closing a socket with unread input sends a reset, which can destroy the answer in
  // flight (a 413 sent before the body was read would never reach the client).
  void LingerClose() {
    if (closed_) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    linger_budget_ = 1 << 20;
    stream_.expires_after(std::chrono::seconds(2));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec || n >= self->linger_budget_) return self->Close();
                              self->linger_budget_ -= n;
                              self->Drain();
                            });
  }

  // --- streams ---

  void StartStream(Response res, unsigned version) {
    source_ = std::move(res.stream);
    head_.emplace(static_cast<bhttp::status>(res.status), version);
    head_->set(bhttp::field::server, "ferry");
    head_->set(bhttp::field::content_type, res.content_type);
    for (auto& [k, v] : res.headers) head_->insert(k, v);
    SetDefaultHeaders(head_->base());
    // HTTP/1.0 has no chunked coding (RFC 9112 6.1: not for a request below 1.1): there the
    // stream's end is the connection's.
    chunked_ = version >= 11;
    head_->chunked(chunked_);
    head_->keep_alive(false);
    serializer_.emplace(*head_);
    stream_.expires_after(server_.options.write_timeout);
    bhttp::async_write_header(stream_, *serializer_,
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                if (ec) return self->Close();
                                self->WatchForHangUp();
                                self->StreamStep();
                              });
  }

  // The last chunk is out: stop sending and give the client a moment to close first (the hang-up
  // watcher then closes at once), so the end of the stream is not cut by a reset.
  void EndStream() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    timer_.expires_after(std::chrono::seconds(2));
    timer_.async_wait([self = shared_from_this()](beast::error_code) { self->Close(); });
  }

  // A stream's client sends nothing more; any read completion means it hung up (or misbehaves).
  void WatchForHangUp() {
    stream_.socket().async_read_some(
        asio::buffer(drain_),
        [self = shared_from_this()](beast::error_code, size_t) { self->Close(); });
  }

  void StreamStep() {
    if (closed_) return;
    const bool posted = server_.pool->Post(
        [self = shared_from_this(), source = source_] {
          std::string out;
          Stream::Step step;
          if (source) {
            try {
              step = source->Next(out, self->server_.stopping.load());
            } catch (const std::exception& e) {
              spdlog::error("http: stream {}: {}", self->request_.path, e.what());
              step.done = true;
            }
          } else {
            step.done = true;
          }
          asio::post(self->server_.io, [self, out = std::move(out), step]() mutable {
            self->OnStreamStep(std::move(out), step);
          });
        },
        /*force=*/true);
    if (!posted) Close();
  }

  void OnStreamStep(std::string out, Stream::Step step) {
    if (closed_) return;
    if (out.empty()) return AfterChunk(step);
    chunk_ = std::move(out);
    stream_.expires_after(server_.options.write_timeout);
    auto then = [self = shared_from_this(), step](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      self->AfterChunk(step);
    };
    if (chunked_) {
      asio::async_write(stream_, bhttp::make_chunk(asio::buffer(chunk_)), std::move(then));
    } else {
      asio::async_write(stream_, asio::buffer(chunk_), std::move(then));
    }
  }

  void AfterChunk(Stream::Step step) {
    if (closed_) return;
    if (step.done) {
      if (!chunked_) return EndStream();
      stream_.expires_after(server_.options.write_timeout);
      asio::async_write(stream_, bhttp::make_chunk_last(),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->Close();
                          self->EndStream();
                        });
      return;
    }
    if (step.wait.count() <= 0) return StreamStep();
    timer_.expires_after(step.wait);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->StreamStep();
    });
  }

  Server::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  const std::string client_;
  asio::steady_timer timer_;
  asio::steady_timer deadline_;
  uint64_t deadline_generation_ = 0;
  bool timed_out_ = false;
  bool closed_ = false;
  bool rejected_ = false;

  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  uint32_t head_bytes_ = 0;  // of the request head, taken by the parser so far
  size_t lf_checked_ = 0;    // leading bytes of the buffer found free of a bare LF
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  Request request_;
  const Route* route_ = nullptr;
  int64_t body_limit_ = 0;
  Clock::time_point started_ = Clock::now();

  std::shared_ptr<Stream> source_;
  std::optional<bhttp::response<bhttp::empty_body>> head_;
  bool chunked_ = true;  // the stream's body: chunks (HTTP/1.1), or bytes until the close (1.0)
  std::optional<bhttp::response_serializer<bhttp::empty_body>> serializer_;
  std::string chunk_;

  std::array<char, 4096> drain_{};
  size_t linger_budget_ = 0;
};

}  // namespace

void Server::Impl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopping.load() || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: try again shortly instead of spinning.
      spdlog::warn("http: accept failed: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](beast::error_code e) {
        if (!e) Accept();
      });
      return;
    }
    beast::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    std::string client = ClientAddress(socket);
    auto conn = std::make_shared<Connection>(*this, std::move(socket), client);
    int& from_client = per_client[client];
    if (open.load() >= options.max_connections) {
      if (from_client == 0) per_client.erase(client);
      conn->Reject("too many connections (max " + std::to_string(options.max_connections) +
                   "); retry later");
    } else if (from_client >= options.max_connections_per_client) {
      conn->Reject("too many connections from " + client + " (max " +
                   std::to_string(options.max_connections_per_client) + "); retry later");
    } else {
      ++from_client;
      open.fetch_add(1);
      live.emplace(conn.get(), conn);
      conn->Start();
    }
    Accept();
  });
}

Server::Server(ServerOptions options, Router router)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(router))) {}

Server::~Server() { Stop(); }

int Server::port() const { return impl_->port.load(); }
int Server::connections() const { return impl_->open.load(); }

std::chrono::milliseconds Server::OldestQueuedWait() const {
  const auto& pool = impl_->pool;
  if (!pool) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(pool->OldestWait());
}

Result<int> Server::Start() {
  Impl& s = *impl_;
  const ServerOptions& o = s.options;
  std::lock_guard lock(s.lifecycle_mu);
  if (s.running || s.stopped) return Fail(ErrorCode::kInvalidArgument, "Start() called twice");
  if (o.port < 0 || o.port > 65535) return Fail(ErrorCode::kInvalidArgument, "bad port");
  if (o.threads < 1 || o.max_queued < 1 || o.after_threads < 1 || o.max_after_queued < 0 ||
      o.max_connections < 1 || o.max_connections_per_client < 1 || o.max_streams < 0) {
    return Fail(ErrorCode::kInvalidArgument,
                "threads, max_queued and connection caps must be positive");
  }
  if (o.header_timeout.count() < 1 || o.body_timeout.count() < 1 || o.idle_timeout.count() < 1 ||
      o.write_timeout.count() < 1) {
    return Fail(ErrorCode::kInvalidArgument, "timeouts must be positive");
  }
  if (o.default_body_limit < 0 || o.max_body_limit < o.default_body_limit) {
    return Fail(ErrorCode::kInvalidArgument, "body limits must satisfy 0 <= default <= max");
  }

  // Neither failure below is a dependency being down (kUnavailable, which callers report as
  // Redis or the store unreachable, exit 3): the host names no address (kNotFound), or the
  // address is taken or not this machine's (kConflict). Both exit 1.
  beast::error_code ec;
  tcp::resolver resolver(s.io);
  auto endpoints = resolver.resolve(o.host, std::to_string(o.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return Fail(ErrorCode::kNotFound,
                "cannot resolve listen host " + o.host + ": " + (ec ? ec.message() : "no address"));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    s.acceptor.close(ignored);
    return Fail(ErrorCode::kConflict,
                "cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + ec.message());
  }
  s.port = s.acceptor.local_endpoint(ec).port();
  s.pool = std::make_unique<HandlerPool>(o.threads, o.max_queued);
  s.after_pool = std::make_unique<HandlerPool>(o.after_threads, o.max_after_queued);
  s.work.emplace(s.io.get_executor());
  s.Accept();
  s.io_thread = std::thread([&s] {
    while (true) {
      try {
        s.io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http: I/O thread: {}", e.what());
      }
    }
  });
  s.running = true;
  return s.port.load();
}

void Server::Stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mu);
  if (s.stopped) return;
  s.stopped = true;
  if (!s.running) return;
  s.stopping = true;
  // Close the listener and every connection on the I/O thread, which owns them.
  std::promise<void> closed;
  asio::post(s.io, [&s, &closed] {
    beast::error_code ec;
    s.acceptor.close(ec);
    s.accept_retry.cancel();
    std::vector<std::shared_ptr<Connection>> conns;
    for (auto& [ptr, weak] : s.live) {
      if (auto c = weak.lock()) conns.push_back(std::move(c));
    }
    for (auto& c : conns) c->Close();
    closed.set_value();
  });
  closed.get_future().wait();
  s.pool->Stop();
  s.after_pool->Stop();
  s.work.reset();
  s.io.stop();
  if (s.io_thread.joinable()) s.io_thread.join();
}

}  // namespace ferry::http
