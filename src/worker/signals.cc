#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "worker/worker.h"

namespace ferry {

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int RunWorkerUntilSignal(Worker& worker, const std::function<void()>& on_stop) {
  BlockTerminationSignals();
  std::atomic<int> received{0};
  // The signal thread only turns a signal into Stop(); the drain runs on the worker's own
  // threads. sigtimedwait (not a handler) keeps real work out of signal context, and its timeout
  // lets the thread end when the worker stops for another reason.
  std::jthread signal_thread([&worker, &received, &on_stop](std::stop_token st) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    const timespec tick{0, 200'000'000};
    while (!st.stop_requested()) {
      int sig = ::sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) continue;
      if (received.exchange(sig) == 0) {
        spdlog::info("received {}: draining (send it again to be told the drain is under way)",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
        if (on_stop) on_stop();
      } else {
        spdlog::info("received {} again: the drain is already under way",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
      }
      worker.Stop();
    }
  });
  if (const int abandoned = worker.WaitUntilDrained(); abandoned > 0) {
    // Returning would let the caller destroy the worker (and what its handlers use) under a
    // thread still running, or wait for it without end.
    spdlog::error(
        "{} handler thread(s) ignored their stop and still run; their tasks were handed back. "
        "The process ends without them (exit {})",
        abandoned, kExitHandlersAbandoned);
    spdlog::shutdown();
    std::fflush(nullptr);
    std::_Exit(kExitHandlersAbandoned);
  }
  worker.Wait();
  signal_thread.request_stop();
  signal_thread.join();
  return received.load();
}

}  // namespace ferry
