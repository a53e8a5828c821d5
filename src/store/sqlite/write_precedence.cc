#include "store/sqlite/write_precedence.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "store/sqlite/per_file.h"

namespace ferry::store_internal {
namespace {

// How often a waiter looks again: as often as the busy handler retries the file's lock.
constexpr std::chrono::microseconds kStep{50};

}  // namespace

std::unique_ptr<WritePrecedence> WritePrecedence::Open(const std::string& db_path) {
  const std::string db = CanonicalFileKey(db_path);
  const std::string path = db + "-precedence";
  struct stat st {};
  const mode_t mode = ::stat(db.c_str(), &st) == 0 ? (st.st_mode & 0666) : 0644;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode);
  if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  // The umask may have taken write permission from the group: give the file the database's.
  if (::fstat(fd, &st) == 0 && (st.st_mode & 0666) != mode) (void)::fchmod(fd, mode);
  return std::unique_ptr<WritePrecedence>(new WritePrecedence(fd));
}

WritePrecedence::~WritePrecedence() { ::close(fd_); }

bool WritePrecedence::Announce(std::chrono::steady_clock::time_point until) {
  for (;;) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
      held_ = true;
      return true;
    }
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(kStep);
  }
}

void WritePrecedence::Withdraw() {
  if (!held_) return;
  held_ = false;
  (void)::flock(fd_, LOCK_UN);
}

bool WritePrecedence::Claimed() const {
  // On the descriptor that holds the exclusive lock a shared one would replace it: never ask.
  if (held_) return false;
  // A shared lock is refused only while someone holds the exclusive one; it is given back at once.
  if (::flock(fd_, LOCK_SH | LOCK_NB) == 0) {
    (void)::flock(fd_, LOCK_UN);
    return false;
  }
  return errno == EWOULDBLOCK;
}

bool WritePrecedence::YieldTo(std::chrono::steady_clock::time_point until) {
  if (ignoring_) {
    if (Claimed()) return false;
    ignoring_ = false;  // released since: the next wish is a new one
    return false;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto limit = std::min(until, start + kMaxYield);
  bool waited = false;
  while (Claimed()) {
    if (std::chrono::steady_clock::now() >= limit) {
      ignoring_ = limit < until;  // it outlasted kMaxYield, not the caller's own deadline
      break;
    }
    waited = true;
    std::this_thread::sleep_for(kStep);
  }
  return waited;
}

}  // namespace ferry::store_internal
