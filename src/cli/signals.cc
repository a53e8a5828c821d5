#include "cli/signals.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace ferry::cli {
namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

const char* SignalName(int signo) {
  switch (signo) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "signal";
  }
}

SignalWatcher::SignalWatcher(std::function<void(int, int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::jthread([this](std::stop_token stop) {
    sigset_t waitset = ShutdownSignals();
    int n = 0;
    // A short timeout so the destructor's stop request is seen without sending a signal.
    timespec tick{0, 200'000'000};
    while (!stop.stop_requested()) {
      int signo = sigtimedwait(&waitset, nullptr, &tick);
      if (signo < 0) continue;  // EAGAIN (tick) or EINTR
      on_signal_(signo, ++n);
    }
  });
}

SignalWatcher::~SignalWatcher() {
  thread_.request_stop();
  thread_.join();
  // Signals stay blocked for the rest of the process: unblocking now would let a late SIGTERM
  // kill it during cleanup, which is the caller's to decide.
}

}  // namespace ferry::cli
