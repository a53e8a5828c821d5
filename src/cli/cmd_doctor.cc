// `ferry doctor`: deployment checks (src/ops/doctor.h), one OK/WARN/FAIL line each with the fix;
// exit 1 when any check FAILs. With --server the server runs them against its own Redis, store
// and clock (GET /api/v1/doctor), and this side adds whether the server answered.
#include <algorithm>

#include "cli/commands.h"
#include "cli/json_text.h"
#include "cli/terminal_text.h"
#include "ops/doctor.h"
#include "service/local_service.h"
#include "store/store.h"

namespace ferry::cli {
namespace {

// The checks of this machine: Redis through the client's settings, and the store when one is
// configured (never migrated by doctor).
Result<Json> LocalChecks(Context& ctx, const StoreFlags& sf) {
  auto brokers = MakeRedisBrokerFactory(ctx.config().broker);
  std::unique_ptr<StoreFactory> stores;
  auto location = PickStore(ctx, sf);
  if (!location) return Fail(location.error());
  if (*location) {
    StoreOptions so;
    so.migrate = false;
    so.create = false;  // a mistyped path is a finding, not a new empty store
    auto f = MakeStoreFactory((*location)->text, so);
    if (!f) return Fail(f.error());
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
  return ops::DoctorJson(results);
}

// A server that does not answer is a finding like any other, not a crash of doctor.
Json ServerUnreachable(const Error& e) {
  return Json{
      {"status", "FAIL"},
      {"checks", Json::array({Json{{"name", "server.reachable"},
                                   {"level", "FAIL"},
                                   {"message", e.message},
                                   {"fix", "check --server / FERRY_SERVER and the token"}}})}};
}

}  // namespace

int RunDoctor(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf, [&](service::LocalServiceOptions& o) {
    o.doctor = [&ctx, &sf] { return LocalChecks(ctx, sf); };
  });
  if (!svc) return out.Fail(svc.error());
  auto answered = (*svc)->Doctor();
  Json report;
  if (answered) {
    report = std::move(*answered);
  } else if (ctx.remote() && (answered.error().code == ErrorCode::kUnavailable ||
                              answered.error().code == ErrorCode::kTimeout)) {
    report = ServerUnreachable(answered.error());
  } else {
    return out.Fail(answered.error());
  }
  if (ctx.remote() && answered) {
    report["checks"].insert(report["checks"].begin(),
                            Json{{"name", "server.reachable"},
                                 {"level", "OK"},
                                 {"message", "answered; the checks below are the server's"}});
  }
  const bool failed = Field(report, "status") == "FAIL";
  if (out.json()) {
    out.PrintJson(report);
    return failed ? kExitFailure : kExitOk;
  }
  std::string text;
  for (const auto& c : report["checks"]) {
    const std::string level = Field(c, "level");
    const char* ansi = level == "OK" ? "\033[32m" : (level == "WARN" ? "\033[33m" : "\033[31m");
    // The level is Ferry's own word and colour; the rest may quote what others wrote.
    text += (out.style().color ? ansi + level + "\033[0m" : TerminalSafe(level)) +
            std::string(level.size() < 5 ? 5 - level.size() : 1, ' ') +
            TerminalSafe(Field(c, "name") + ": " + Field(c, "message")) + "\n";
    if (c.contains("fix")) text += "     fix: " + TerminalSafe(Field(c, "fix")) + "\n";
  }
  const auto& checks = report["checks"];
  if (std::none_of(checks.begin(), checks.end(),
                   [](const Json& c) { return c["name"] == "store"; })) {
    text += "(store not checked: no --store / FERRY_STORE)\n";
  }
  out.PrintComposed(text);
  return failed ? kExitFailure : kExitOk;
}

}  // namespace ferry::cli
