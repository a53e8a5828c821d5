#include "worker/connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/sleep.h"
#include "core/time_util.h"

namespace ferry {

using std::chrono::milliseconds;

Connection::Connection(BrokerFactory& factory, std::string loop_name,
                       std::unique_ptr<Broker> initial)
    : factory_(factory), name_(std::move(loop_name)), broker_(std::move(initial)) {}

Broker* Connection::Get() {
  if (!broker_) {
    auto opened = factory_.Open();
    if (!opened) {
      NoteFailure(opened.error());
      return nullptr;
    }
    broker_ = std::move(*opened);
  }
  return broker_.get();
}

void Connection::Failed(const Error& error) {
  // Errors about the request itself leave the connection usable; anything that may mean a
  // broken or desynchronised connection drops it, and the next Get() reconnects.
  bool request_error = error.code == ErrorCode::kInvalidArgument ||
                       error.code == ErrorCode::kNotFound || error.code == ErrorCode::kConflict ||
                       error.code == ErrorCode::kTooLarge;
  if (!request_error) broker_.reset();
  NoteFailure(error);
}

void Connection::NoteFailure(const Error& error) {
  if (!outage_start_) {
    outage_start_ = std::chrono::steady_clock::now();
    spdlog::warn("{} loop: Redis call failed ({}); retrying with backoff", name_, error.ToString());
  } else {
    spdlog::debug("{} loop: still failing: {}", name_, error.ToString());
  }
}

void Connection::Ok() {
  if (outage_start_) {
    auto lasted =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - *outage_start_);
    spdlog::info("{} loop: Redis reachable again after {}", name_, FormatDuration(lasted));
    outage_start_.reset();
  }
  delay_ = milliseconds(100);
}

bool Connection::Backoff(std::stop_token stop) {
  milliseconds d = delay_;
  delay_ = std::min(delay_ * 2, milliseconds(5000));
  return SleepFor(stop, d);
}

}  // namespace ferry
