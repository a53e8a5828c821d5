// A listener on 127.0.0.1 that answers nothing, for clients whose answer is lost: it reads
// each request's head, then closes the connection without a word or holds it open unanswered.
// Header-only, so unit tests can use it without the integration harness's servers.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ferry::testing {

// `hold` false: each connection is closed once its request's head arrived; true: kept open,
// unanswered, until destruction.
class SilentServer {
 public:
  explicit SilentServer(bool hold) : hold_(hold) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || done_) {
          if (c >= 0) ::close(c);
          return;
        }
        std::string head;
        char buf[4096];
        while (head.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          head.append(buf, static_cast<size_t>(n));
        }
        ++requests_;
        if (hold_) {
          held_.push_back(c);
        } else {
          ::close(c);
        }
      }
    });
  }
  ~SilentServer() {
    done_ = true;
    ::shutdown(fd_, SHUT_RDWR);  // ends the accept
    thread_.join();
    ::close(fd_);
    for (int c : held_) ::close(c);
  }
  int port() const { return port_; }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/x"; }
  int requests() const { return requests_; }

 private:
  bool hold_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> done_{false};
  std::atomic<int> requests_{0};
  std::vector<int> held_;  // touched by the thread, then by the destructor after the join
  std::thread thread_;
};

}  // namespace ferry::testing
