#include "store/store.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/mask.h"
#include "store/postgres/pg_conn.h"
#include "store/sql_store.h"
#include "store/sqlite/sqlite_conn.h"

namespace ferry {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A path naming a file, not one of SQLite's own names (":memory:", "file:..." URIs).
bool IsFilePath(const std::string& path) {
  return !path.empty() && path.front() != ':' && !StartsWith(path, "file:");
}

class SqliteFactory final : public StoreFactory {
 public:
  SqliteFactory(std::string path, StoreOptions options)
      : path_(std::move(path)), options_(options) {}
  Result<std::unique_ptr<Store>> Open() override {
    if (!options_.create && IsFilePath(path_)) {
      std::error_code ec;
      if (!std::filesystem::exists(path_, ec) && !ec) {
        return Fail(ErrorCode::kNotFound, "there is no SQLite database at " + path_);
      }
    }
    auto conn =
        store_internal::OpenSqliteConn(path_, options_.busy_timeout, options_.write_precedence);
    if (!conn) return Fail(conn.error());
    return store_internal::MakeSqlStore(std::move(*conn), options_);
  }
  std::string_view Backend() const override { return "sqlite"; }
  std::string Describe() const override { return "sqlite:" + path_; }

 private:
  // Constant after construction.
  const std::string path_;
  const StoreOptions options_;
};

class PgFactory final : public StoreFactory {
 public:
  PgFactory(std::string url, StoreOptions options) : url_(std::move(url)), options_(options) {}
  Result<std::unique_ptr<Store>> Open() override {
    auto conn =
        store_internal::OpenPgConn(url_, options_.connect_timeout, options_.statement_timeout);
    if (!conn) return Fail(conn.error());
    return store_internal::MakeSqlStore(std::move(*conn), options_);
  }
  std::string_view Backend() const override { return "postgres"; }
  std::string Describe() const override { return MaskStoreUrl(url_); }

 private:
  // Constant after construction.
  const std::string url_;
  const StoreOptions options_;
};

}  // namespace

std::string_view RemediationStatusName(RemediationStatus s) {
  switch (s) {
    case RemediationStatus::kPending:
      return "pending";
    case RemediationStatus::kClaimed:
      return "claimed";
    case RemediationStatus::kFixed:
      return "fixed";
    case RemediationStatus::kNoteOnly:
      return "note_only";
    case RemediationStatus::kFailed:
      return "failed";
    case RemediationStatus::kDismissed:
      return "dismissed";
  }
  return "pending";
}

std::optional<RemediationStatus> ParseRemediationStatus(std::string_view text) {
  std::string t = Lower(text);
  for (auto s :
       {RemediationStatus::kPending, RemediationStatus::kClaimed, RemediationStatus::kFixed,
        RemediationStatus::kNoteOnly, RemediationStatus::kFailed, RemediationStatus::kDismissed}) {
    if (t == RemediationStatusName(s)) return s;
  }
  return std::nullopt;
}

bool IsOpen(RemediationStatus s) {
  return s == RemediationStatus::kPending || s == RemediationStatus::kClaimed ||
         s == RemediationStatus::kFailed;
}

std::string_view RunStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::kPending:
      return "pending";
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kSucceeded:
      return "succeeded";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kCancelled:
      return "cancelled";
  }
  return "pending";
}

std::optional<RunStatus> ParseRunStatus(std::string_view text) {
  std::string t = Lower(text);
  for (auto s : {RunStatus::kPending, RunStatus::kRunning, RunStatus::kSucceeded,
                 RunStatus::kFailed, RunStatus::kCancelled}) {
    if (t == RunStatusName(s)) return s;
  }
  if (t == "canceled") return RunStatus::kCancelled;
  return std::nullopt;
}

bool IsTerminal(RunStatus s) {
  return s == RunStatus::kSucceeded || s == RunStatus::kFailed || s == RunStatus::kCancelled;
}

std::string_view TriggeredByName(TriggeredBy t) {
  switch (t) {
    case TriggeredBy::kApi:
      return "api";
    case TriggeredBy::kCli:
      return "cli";
    case TriggeredBy::kWebhook:
      return "webhook";
    case TriggeredBy::kCron:
      return "cron";
    case TriggeredBy::kRetry:
      return "retry";
    case TriggeredBy::kRemediation:
      return "remediation";
  }
  return "api";
}

std::optional<TriggeredBy> ParseTriggeredBy(std::string_view text) {
  std::string t = Lower(text);
  for (auto v : {TriggeredBy::kApi, TriggeredBy::kCli, TriggeredBy::kWebhook, TriggeredBy::kCron,
                 TriggeredBy::kRetry, TriggeredBy::kRemediation}) {
    if (t == TriggeredByName(v)) return v;
  }
  return std::nullopt;
}

std::string_view TriggerKindName(TriggerKind k) {
  return k == TriggerKind::kCron ? "cron" : "webhook";
}

std::optional<TriggerKind> ParseTriggerKind(std::string_view text) {
  std::string t = Lower(text);
  if (t == "cron") return TriggerKind::kCron;
  if (t == "webhook") return TriggerKind::kWebhook;
  return std::nullopt;
}

std::string MaskStoreUrl(const std::string& url_or_path) { return MaskCredentials(url_or_path); }

namespace {

// What a store location names: a PostgreSQL server, an SQLite file (`path`, with "sqlite://"
// taken off: "sqlite:///abs" -> "/abs", "sqlite://rel" -> "rel"), or an unknown scheme.
struct StoreLocation {
  enum class Kind { kPostgres, kSqlite, kUnknown } kind;
  std::string path;
  bool sqlite_scheme = false;  // given as sqlite://
};

StoreLocation ParseStoreLocation(const std::string& url_or_path) {
  const std::string lower = Lower(url_or_path.substr(0, std::min<size_t>(16, url_or_path.size())));
  if (StartsWith(lower, "postgresql://") || StartsWith(lower, "postgres://")) {
    return {StoreLocation::Kind::kPostgres, "", false};
  }
  if (StartsWith(lower, "sqlite://")) {
    return {StoreLocation::Kind::kSqlite, url_or_path.substr(9), true};
  }
  if (url_or_path.find("://") != std::string::npos)
    return {StoreLocation::Kind::kUnknown, "", false};
  return {StoreLocation::Kind::kSqlite, url_or_path, false};
}

}  // namespace

Result<std::unique_ptr<StoreFactory>> MakeStoreFactory(const std::string& url_or_path,
                                                       StoreOptions options) {
  if (url_or_path.empty()) return Fail(ErrorCode::kInvalidArgument, "store: empty location");
  if (options.clock == nullptr) return Fail(ErrorCode::kInvalidArgument, "store: null clock");
  const StoreLocation where = ParseStoreLocation(url_or_path);
  switch (where.kind) {
    case StoreLocation::Kind::kPostgres:
      return std::unique_ptr<StoreFactory>(std::make_unique<PgFactory>(url_or_path, options));
    case StoreLocation::Kind::kUnknown:
      return Fail(ErrorCode::kInvalidArgument,
                  "store: unknown scheme in \"" + MaskStoreUrl(url_or_path) +
                      "\" (use postgresql://..., sqlite:///path or a file path)");
    case StoreLocation::Kind::kSqlite:
      break;
  }
  if (where.path.empty()) return Fail(ErrorCode::kInvalidArgument, "store: empty SQLite path");
  return std::unique_ptr<StoreFactory>(std::make_unique<SqliteFactory>(where.path, options));
}

std::string StoreLocationFromAnywhere(const std::string& url_or_path) {
  const StoreLocation where = ParseStoreLocation(url_or_path);
  const std::string& path = where.path;
  if (where.kind != StoreLocation::Kind::kSqlite || !IsFilePath(path) || path.front() == '/') {
    return url_or_path;  // a server, an absolute path, or SQLite's own names (":memory:", ...)
  }
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(path, ec);
  if (ec) return url_or_path;
  return (where.sqlite_scheme ? "sqlite://" : "") + absolute.lexically_normal().string();
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& url_or_path, StoreOptions options) {
  auto factory = MakeStoreFactory(url_or_path, options);
  if (!factory) return Fail(factory.error());
  return (*factory)->Open();
}

}  // namespace ferry
