#include "store/sqlite/write_precedence.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

namespace ferry::store_internal {
namespace {

// How often a waiter looks again: as often as the busy handler retries the file's lock.
constexpr std::chrono::microseconds kStep{50};

}  // namespace

std::unique_ptr<WritePrecedence> WritePrecedence::Open(const std::string& db_path) {
  const std::string path = db_path + "-precedence";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  return std::unique_ptr<WritePrecedence>(new WritePrecedence(fd));
}

WritePrecedence::~WritePrecedence() { ::close(fd_); }

bool WritePrecedence::Announce(std::chrono::steady_clock::time_point until) {
  for (;;) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(kStep);
  }
}

void WritePrecedence::Withdraw() { (void)::flock(fd_, LOCK_UN); }

bool WritePrecedence::Claimed() const {
  // A shared lock is refused only while someone holds the exclusive one; it is given back at once.
  if (::flock(fd_, LOCK_SH | LOCK_NB) == 0) {
    (void)::flock(fd_, LOCK_UN);
    return false;
  }
  return errno == EWOULDBLOCK;
}

bool WritePrecedence::YieldTo(std::chrono::steady_clock::time_point until) {
  const auto limit = std::min(until, std::chrono::steady_clock::now() + kMaxYield);
  bool waited = false;
  while (Claimed() && std::chrono::steady_clock::now() < limit) {
    waited = true;
    std::this_thread::sleep_for(kStep);
  }
  return waited;
}

}  // namespace ferry::store_internal
