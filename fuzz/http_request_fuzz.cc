// The HTTP server's request reading (src/http/server.h), over a real loopback connection. The
// input is what a client sends, byte for byte: the target sends it, closes its sending side and
// reads until the server closes. One "~~pause~~" in the input splits it: the rest is sent once
// the server has answered something (an early refusal, 100 Continue) or 20 ms have passed, so
// bodies also arrive after their heads. Its routes take each path through the server: a GET with a
// captured segment and a query (and HEAD), a POST body, an admission check that lowers the body
// limit, one that refuses a request without a header before its body is read, a short event
// stream, and an answer with work after it.
// Properties: every answer is well-framed HTTP/1.0 or 1.1 with a status of 100..599 and never 500
// (no handler here throws), whole except an event stream's (which ends when its client stops
// sending, as this one does); the server closes the connection once the client has stopped sending
// (within 5 s: it sees the end of the input at once, and its own deadlines are 3 s); and it holds
// no connection afterwards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "fuzz_check.h"
#include "http/server.h"

namespace {

namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;
using ferry::fuzz::Check;
using ferry::http::JsonResponse;
using ferry::http::Request;
using ferry::http::Response;
using ferry::http::Router;

// A few steps of "data: n", then the end.
struct Countdown : ferry::http::Stream {
  explicit Countdown(int n) : left(n) {}
  Step Next(std::string& out, bool) override {
    out = "data: " + std::to_string(left) + "\n\n";
    return {--left <= 0, 1ms};
  }
  int left;
};

Router Routes() {
  Router r;
  r.Get("/items/{id}", [](Request& req) {
    return JsonResponse(200, ferry::Json{{"id", req.params[0]}, {"q", req.Query("q")}});
  });
  r.Post("/echo", [](Request& req) { return JsonResponse(200, ferry::Json{{"body", req.body}}); });
  r.Post(
      "/small",
      [](Request& req) {
        return JsonResponse(200, ferry::Json{{"n", req.body.size()}});
      },
      [](Request&, int64_t& limit) -> std::optional<Response> {
        limit = 16;
        return std::nullopt;
      });
  r.Post(
      "/guarded",
      [](Request& req) {
        return JsonResponse(202, ferry::Json{{"n", req.body.size()}});
      },
      [](Request& req, int64_t&) -> std::optional<Response> {
        if (req.Header("X-Key") != "k") return ferry::http::ErrorResponse(401, "no key");
        return std::nullopt;
      });
  r.Get("/stream", [](Request& req) {
    Response res;
    res.content_type = "text/event-stream";
    res.stream = std::make_shared<Countdown>(req.Query("n") == "2" ? 2 : 1);
    return res;
  });
  r.Post("/after", [](Request&) {
    Response res = JsonResponse(202, ferry::Json{{"accepted", true}});
    res.after = [] {};  // the server's path for work after the answer, not what it does
    return res;
  });
  return r;
}

ferry::http::Server& TheServer() {
  static ferry::http::Server* server = [] {
    ferry::http::ServerOptions o;
    o.threads = 2;
    o.max_header_bytes = 2048;
    o.default_body_limit = 1024;
    o.max_body_limit = 4096;
    o.header_timeout = 3s;
    o.body_timeout = 3s;
    o.idle_timeout = 3s;
    o.write_timeout = 3s;
    auto* s = new ferry::http::Server(o, Routes());  // lives as long as the fuzzer
    auto port = s->Start();
    Check(static_cast<bool>(port), "the server starts");
    // libFuzzer's -timeout arms a timer signal every second; blocked on this thread (after the
    // server's threads were made, so they still take it), it cannot interrupt a connect halfway.
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, nullptr);
    return s;
  }();
  return *server;
}

constexpr std::string_view kPause = "~~pause~~";

// Sends what the socket takes. The server may answer and close before reading everything (413,
// 431): a failed send is part of the exchange, not an error.
void SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// Sends `input`, half-closes, and returns everything the server sent until it closed; nothing
// when it did not close within the receive deadline.
std::optional<std::string> Exchange(int port, const uint8_t* data, size_t size) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  Check(fd >= 0, "a socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::fprintf(stderr, "connect: %s\n", std::strerror(errno));
    Check(false, "connects");
  }
  timeval tv{};
  tv.tv_sec = 5;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  // This side sends the first FIN, so a plain close would leave the port in TIME_WAIT for a
  // minute: at a thousand inputs a second the client runs out of ports. Closing with a reset
  // once the server has closed too loses nothing.
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t pause = input.find(kPause);
  SendAll(fd, input.substr(0, pause));
  if (pause != std::string_view::npos) {
    pollfd answered{fd, POLLIN, 0};
    ::poll(&answered, 1, 20);
    SendAll(fd, input.substr(pause + kPause.size()));
  }
  ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  std::optional<std::string> result;
  while (out.size() < (1u << 20)) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      result = std::move(out);
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;  // the deadline passed: the server did not close
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return result;
}

// What the client sends of `input`: all of it but its first "~~pause~~" (where it pauses).
std::string Sent(std::string_view input) {
  const size_t pause = input.find(kPause);
  if (pause == std::string_view::npos) return std::string(input);
  return std::string(input.substr(0, pause)).append(input.substr(pause + kPause.size()));
}

// Every answer in `out` parses whole. Answers to HEAD have no body after their Content-Length, so
// when the input may hold a HEAD request only the first answer's status line is read.
void CheckAnswers(const std::string& out, bool maybe_head) {
  if (out.empty()) return;
  boost::beast::flat_buffer buffer;
  auto chunk = buffer.prepare(out.size());
  std::memcpy(chunk.data(), out.data(), out.size());
  buffer.commit(out.size());
  while (buffer.size() > 0) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.eager(true);
    parser.body_limit(1u << 20);
    if (maybe_head) parser.skip(true);
    boost::beast::error_code ec;
    while (!parser.is_done() && buffer.size() > 0) {
      const size_t n = parser.put(buffer.data(), ec);
      buffer.consume(n);
      if (ec == bhttp::error::need_more) ec = {};
      if (ec || n == 0) break;
    }
    Check(!ec, "every answer is well-formed HTTP");
    Check(parser.is_header_done(), "no answer is cut short");
    const auto& res = parser.get();
    Check(res.version() == 10 || res.version() == 11, "answers are HTTP/1.0 or HTTP/1.1");
    const unsigned status = res.result_int();
    Check(status >= 100 && status <= 599, "the status is 100..599");
    Check(status != 500, "no handler threw");
    if (maybe_head) return;
    // A stream ends when its client hangs up, and a client that stops sending has (the server
    // cannot tell a half-close from a hang-up): its body may stop between chunks.
    if (res[bhttp::field::content_type] == "text/event-stream") return;
    Check(parser.is_done(), "no answer's body is cut short");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& server = TheServer();
  auto out = Exchange(server.port(), data, size);
  Check(out.has_value(), "the server closes a connection whose client stopped sending");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // A HEAD split by the pause ("H~~pause~~EAD") is a HEAD too.
  CheckAnswers(*out, Sent(text).find("HEAD") != std::string::npos);
  // The server's count drops on its I/O thread, just after it closed the socket.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (server.connections() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100us);
  }
  Check(server.connections() == 0, "the server holds no connection after it closed it");
  return 0;
}
