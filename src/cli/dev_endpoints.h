// How client commands find a running `ferry dev`: it records its endpoints in its data directory
// (`<data dir>/dev.json`, owner-only) and removes the file when it stops. Client commands run in
// that folder (data directory ./.ferry) or with FERRY_DATA_DIR pointing to it use those endpoints
// for every setting the user did not give (flags, FERRY_* variables and the config file win).
//
// A file left by a `ferry dev` that was killed is recognised (its process is gone, or the pid now
// belongs to another process) and ignored with a hint.
//
// Thread-safety: functions only; DevEndpointsFile is owned by `ferry dev`'s main thread.
#pragma once

#include <optional>
#include <string>

#include "cli/options.h"
#include "core/result.h"

namespace ferry::cli {

struct DevEndpoints {
  std::string api;        // "http://127.0.0.1:8080/api/v1", empty without the API
  std::string redis_url;  // may carry a password: the file is owner-only
  std::string prefix;
  std::string store;  // store location as FERRY_STORE takes it
};

// Writes `<data_dir>/dev.json` (mode 0600, atomically) on construction and removes it on
// destruction, unless another process has replaced it meanwhile.
class DevEndpointsFile {
 public:
  static Result<DevEndpointsFile> Write(const std::string& data_dir, const DevEndpoints& endpoints);
  DevEndpointsFile(DevEndpointsFile&& other) noexcept;
  DevEndpointsFile& operator=(DevEndpointsFile&&) = delete;
  DevEndpointsFile(const DevEndpointsFile&) = delete;
  DevEndpointsFile& operator=(const DevEndpointsFile&) = delete;
  ~DevEndpointsFile();

  const std::string& path() const { return path_; }

 private:
  explicit DevEndpointsFile(std::string path) : path_(std::move(path)) {}
  std::string path_;  // empty once moved from
};

// `ferry dev`'s hold on its data directory (an flock on `<data_dir>/dev.lock`, which ends with the
// process however it ends): a second `ferry dev` on the same directory would share its store but
// not its Redis, and each would take the other's runs for lost.
class DataDirLock {
 public:
  // kConflict when another process holds it (its pid named when its dev.json says it).
  static Result<DataDirLock> Acquire(const std::string& data_dir);
  DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&&) = delete;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

// The data directory: `flag` (ferry dev's --data-dir), else the data-dir setting
// (FERRY_DATA_DIR), else ./.ferry. ferry dev keeps its store, endpoints and lock there, and
// commands given no store read its ferry.db.
std::string DataDirectory(const std::optional<std::string>& flag, const EnvLookup& env);

// The endpoints file a client command would read: $FERRY_DATA_DIR/dev.json, else
// ./.ferry/dev.json.
std::string DevEndpointsPath(const EnvLookup& env);

// Reads the endpoints of a live `ferry dev`. nullopt when there is no file; when the file is stale
// or unreadable, nullopt and `*hint` says why (for a warning on stderr).
std::optional<DevEndpoints> FindDevEndpoints(const EnvLookup& env, std::string* hint);

// `env` with the dev endpoints behind it: FERRY_REDIS_URL, FERRY_PREFIX and FERRY_STORE answer
// from the file when `env` has no value for them. Callers use it only when the user named no Redis
// at all (UsesDefaultRedis): a Redis given by hand does not go with the dev stack's store.
bool UsesDefaultRedis(const GlobalFlags& flags, const EnvLookup& env);
EnvLookup WithDevEndpoints(EnvLookup env, const DevEndpoints& endpoints);

}  // namespace ferry::cli
