#include "cli/dev_endpoints.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "core/json.h"
#include "store/store.h"

namespace ferry::cli {
namespace {

constexpr const char* kFileName = "dev.json";

// The start time in clock ticks since boot (/proc/<pid>/stat field 22) of a running process:
// with the pid it names one process, so a pid reused after `ferry dev` was killed is not
// mistaken for it. nullopt for a zombie (state Z or X): a killed dev whose parent has not reaped
// it still answers kill(pid, 0).
std::optional<long long> ProcessStartTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return std::nullopt;
    if (i == 3 && (field == "Z" || field == "X")) return std::nullopt;
  }
  try {
    return std::stoll(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The record is a few hundred bytes; a bigger file is not one `ferry dev` wrote.
constexpr size_t kMaxRecordBytes = 64 * 1024;

}  // namespace

Result<DevEndpointsFile> DevEndpointsFile::Write(const std::string& data_dir,
                                                 const DevEndpoints& endpoints) {
  const pid_t pid = getpid();
  auto started = ProcessStartTicks(pid);
  Json j = {{"pid", pid},
            {"started", started ? Json(*started) : Json(nullptr)},
            {"api", endpoints.api.empty() ? Json(nullptr) : Json(endpoints.api)},
            {"redis_url", endpoints.redis_url},
            {"prefix", endpoints.prefix},
            // Read by commands in other folders (FERRY_DATA_DIR): a relative path would name
            // another file there.
            {"store", StoreLocationFromAnywhere(endpoints.store)}};
  const std::string path = (std::filesystem::path(data_dir) / kFileName).string();
  const std::string tmp = path + ".tmp." + std::to_string(pid);
  const std::string text = j.dump(2) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Fail(ErrorCode::kUnavailable, "cannot write " + tmp + ": " + std::strerror(errno));
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Fail(ErrorCode::kUnavailable, "cannot write " + tmp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Fail(ErrorCode::kUnavailable, "cannot write " + path + ": " + std::strerror(err));
  }
  return DevEndpointsFile(path);
}

DevEndpointsFile::DevEndpointsFile(DevEndpointsFile&& other) noexcept
    : path_(std::move(other.path_)) {
  other.path_.clear();
}

DevEndpointsFile::~DevEndpointsFile() {
  if (path_.empty()) return;
  // Remove only our own record: a second `ferry dev` in the same folder may have replaced it.
  auto text = ReadSmallFile(path_, kMaxRecordBytes);
  auto j = text ? ParseJson(*text) : Result<Json>(Fail(text.error()));
  if (j && j->is_object() && j->value("pid", Json(0)) == Json(getpid())) {
    ::unlink(path_.c_str());
  }
}

Result<DataDirLock> DataDirLock::Acquire(const std::string& data_dir) {
  const std::string path = (std::filesystem::path(data_dir) / "dev.lock").string();
  // Close-on-exec: the embedded redis-server must not keep the hold after `ferry dev` is gone.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const std::error_code ec(errno, std::generic_category());
    return Fail(LocalPathErrorCode(ec), "cannot open " + path + ": " + ec.message());
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return Fail(ErrorCode::kConflict, "cannot lock " + path + ": " + std::strerror(err));
    }
    std::string who = "another `ferry dev`";
    auto text =
        ReadSmallFile((std::filesystem::path(data_dir) / kFileName).string(), kMaxRecordBytes);
    auto j = text ? ParseJson(*text) : Result<Json>(Fail(text.error()));
    if (j && j->is_object() && (*j)["pid"].is_number_integer()) {
      who += " (pid " + std::to_string((*j)["pid"].get<long long>()) + ")";
    }
    return Fail(ErrorCode::kConflict,
                "data directory " + data_dir + " is in use by " + who +
                    ": two stacks on one store would each take the other's runs for lost; stop "
                    "it, or give this one another --data-dir");
  }
  return DataDirLock(fd);
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

std::string DataDirectory(const std::optional<std::string>& flag, const EnvLookup& env) {
  return PickSettingText(flag, "data-dir", env).value_or(".ferry");
}

std::string DevEndpointsPath(const EnvLookup& env) {
  return (std::filesystem::path(DataDirectory(std::nullopt, env)) / kFileName).string();
}

std::optional<DevEndpoints> FindDevEndpoints(const EnvLookup& env, std::string* hint) {
  const std::string path = DevEndpointsPath(env);
  auto text = ReadSmallFile(path, kMaxRecordBytes);
  if (!text) {
    if (text.error().code != ErrorCode::kNotFound) {
      *hint = "ignoring " + path + ": " + text.error().message + " (remove it)";
    }
    return std::nullopt;
  }
  auto j = ParseJson(*text);
  if (!j || !j->is_object() || !(*j)["pid"].is_number_integer() || !(*j)["redis_url"].is_string() ||
      !(*j)["prefix"].is_string() || !(*j)["store"].is_string()) {
    *hint = "ignoring " + path + ": not a record written by `ferry dev` (remove it)";
    return std::nullopt;
  }
  const auto pid = (*j)["pid"].get<long long>();
  bool alive =
      pid > 0 && pid <= INT32_MAX && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
  if (alive) {
    auto started = ProcessStartTicks(static_cast<pid_t>(pid));
    alive = started &&
            (!(*j)["started"].is_number_integer() || *started == (*j)["started"].get<long long>());
  }
  if (!alive) {
    *hint = "ignoring " + path + ": the `ferry dev` that wrote it (pid " + std::to_string(pid) +
            ") is no longer running; start `ferry dev` again, or remove the file";
    return std::nullopt;
  }
  DevEndpoints e;
  e.api = (*j)["api"].is_string() ? (*j)["api"].get<std::string>() : "";
  e.redis_url = (*j)["redis_url"].get<std::string>();
  e.prefix = (*j)["prefix"].get<std::string>();
  e.store = (*j)["store"].get<std::string>();
  return e;
}

bool UsesDefaultRedis(const GlobalFlags& flags, const EnvLookup& env) {
  return !flags.redis_url && !env("FERRY_REDIS_URL") && !env("REDIS_URL");
}

EnvLookup WithDevEndpoints(EnvLookup env, const DevEndpoints& endpoints) {
  return [env = std::move(env), endpoints](const std::string& name) -> std::optional<std::string> {
    if (auto v = env(name)) return v;
    if (name == "FERRY_REDIS_URL") return endpoints.redis_url;
    if (name == "FERRY_PREFIX") return endpoints.prefix;
    if (name == "FERRY_STORE") return endpoints.store;
    return std::nullopt;
  };
}

}  // namespace ferry::cli
