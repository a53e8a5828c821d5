// `ferry doctor`: deployment checks (src/ops/doctor.h), one OK/WARN/FAIL line each with the fix;
// exit 1 when any check FAILs.
#include "cli/commands.h"
#include "ops/doctor.h"
#include "store/store.h"

namespace ferry::cli {

int RunDoctor(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto brokers = MakeRedisBrokerFactory(ctx.config().broker);
  // The store is checked only when one is configured; doctor never migrates it.
  std::unique_ptr<StoreFactory> stores;
  std::optional<std::string> location = sf.store;
  if (!location) location = ctx.env()("FERRY_STORE");
  if (location) {
    StoreOptions so;
    so.migrate = false;
    auto f = MakeStoreFactory(*location, so);
    if (!f) return out.Fail(f.error());
    stores = std::move(*f);
  }
  auto results = ops::RunDoctor(*brokers, stores.get());
  for (auto& r : results) {
    if (r.name.rfind("redis.reachable", 0) == 0 && r.level == ops::CheckLevel::kFail) {
      r.message = DescribeConnectError(Error{ErrorCode::kUnavailable, r.message},
                                       ctx.config().broker.redis_url)
                      .message;
    }
  }
  const ops::CheckLevel worst = ops::WorstLevel(results);
  if (out.json()) {
    out.PrintJson(ops::DoctorJson(results));
  } else {
    std::string text;
    for (const auto& r : results) {
      const std::string level(ops::CheckLevelName(r.level));
      const char* ansi = r.level == ops::CheckLevel::kOk
                             ? "\033[32m"
                             : (r.level == ops::CheckLevel::kWarn ? "\033[33m" : "\033[31m");
      text += (out.style().color ? ansi + level + "\033[0m" : level) +
              std::string(5 - level.size(), ' ') + r.name + ": " + r.message + "\n";
      if (!r.fix.empty()) text += "     fix: " + r.fix + "\n";
    }
    if (!stores) text += "(store not checked: no --store / FERRY_STORE)\n";
    out.Print(text);
  }
  return worst == ops::CheckLevel::kFail ? kExitFailure : kExitOk;
}

}  // namespace ferry::cli
