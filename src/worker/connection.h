// Internal to ferry_worker: one loop's Broker connection, reopened through the factory after it
// breaks, with exponential backoff (100 ms doubling to 5 s). It logs once when an outage starts
// and once when it ends, so a Redis restart gives two log lines per loop, not one per retry.
//
// Thread-safety: owned and used by one loop thread (a Broker is not thread-safe).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "broker/broker.h"

namespace ferry {

class Connection {
 public:
  Connection(BrokerFactory& factory, std::string loop_name,
             std::unique_ptr<Broker> initial = nullptr);

  // The open connection, opening one if needed; nullptr when that failed (then Backoff()).
  Broker* Get();
  // Records a failed call; drops the connection when the error means it is broken.
  void Failed(const Error& error);
  // Records a successful call: ends an outage (logged) and resets the backoff.
  void Ok();
  // Sleeps the current backoff delay, then doubles it. False when `stop` was requested.
  bool Backoff(std::stop_token stop);
  bool in_outage() const { return outage_start_.has_value(); }

 private:
  void NoteFailure(const Error& error);

  BrokerFactory& factory_;
  std::string name_;
  std::unique_ptr<Broker> broker_;
  std::chrono::milliseconds delay_{100};
  std::optional<std::chrono::steady_clock::time_point> outage_start_;
};

}  // namespace ferry
