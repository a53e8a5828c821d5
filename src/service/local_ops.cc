// LocalService: operations (the alert rules and the deployment checks, run by the functions
// the owner gave: they sit in src/ops, above the service; readiness).
#include <spdlog/spdlog.h>

#include "service/local_service.h"

namespace ferry::service {

Result<Json> LocalService::Alerts() {
  if (!options_.alerts) {
    return Fail(ErrorCode::kUnavailable, "alert rules are not evaluated here");
  }
  return With(brokers_, [&](Broker& broker) -> Result<Json> {
    if (!options_.alerts_read_store) return options_.alerts(broker, nullptr);
    // An error from either connection closes both: the evaluation does not say whose it was.
    return With(stores_, [&](Store& store) { return options_.alerts(broker, &store); });
  });
}

Result<Json> LocalService::Doctor() {
  if (!options_.doctor) {
    return Fail(ErrorCode::kUnavailable, "deployment checks are not run here");
  }
  return options_.doctor();
}

Json LocalService::Readiness() {
  // Each part answers a ping on its own connection; a failed one is closed, not reused. Returns
  // why it failed, empty when it answered.
  auto ping = [](auto& pool) -> std::string {
    auto lease = pool.Acquire();
    if (!lease) return lease.error().message;
    if (auto st = (*lease)->Ping(); !st) {
      lease->MarkBad();
      return st.error().message;
    }
    return "";
  };
  const std::string why[2] = {ping(stores_), ping(brokers_)};
  const char* const parts[2] = {"store", "redis"};
  Json body = Json::object();
  std::string failed;
  std::lock_guard lock(readiness_mu_);
  for (int i = 0; i < 2; ++i) {
    body[parts[i]] = why[i].empty() ? "ok" : "unreachable";
    if (!why[i].empty()) {
      failed += (failed.empty() ? "" : ", ") + std::string(parts[i]);
      // A probe every few seconds during an outage logs its reason once, not every time.
      if (why[i] != readiness_logged_[i]) {
        spdlog::warn("readyz: {} unreachable: {}", parts[i], why[i]);
      }
    }
    readiness_logged_[i] = why[i];
  }
  body["status"] = failed.empty() ? "ok" : "unavailable";
  if (!failed.empty())
    body["error"] = {{"code", "unavailable"}, {"message", failed + " unreachable"}};
  return body;
}

}  // namespace ferry::service
