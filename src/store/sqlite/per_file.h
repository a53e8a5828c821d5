// One object per database file in this process, shared by every connection to it (the write
// turns and the commit groups of a file).
//
// Thread-safety: safe from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

namespace ferry::store_internal {

// `path` made canonical, so two spellings of one file name one key.
inline std::string CanonicalFileKey(const std::string& path) {
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  return ec ? path : key;
}

// The T of `key`, made with `make` when there is none alive. The map is one per T and Make
// (each lambda is a type of its own), so call it from one place per T.
template <class T, class Make>
std::shared_ptr<T> SharedPerFile(const std::string& key, Make make) {
  static std::mutex mu;
  // Never freed: one small entry per database file the process opened.
  static auto* files = new std::map<std::string, std::weak_ptr<T>>();
  std::lock_guard lock(mu);
  std::erase_if(*files, [](const auto& f) { return f.second.expired(); });
  auto& slot = (*files)[key];
  auto object = slot.lock();
  if (!object) {
    object = make();
    slot = object;
  }
  return object;
}

}  // namespace ferry::store_internal
