#include "core/ids.h"

#include <chrono>
#include <random>

namespace ferry {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  return rng;
}

}  // namespace

std::string NewId(int64_t now_ms) {
  std::string out(26, '0');
  auto t = static_cast<uint64_t>(now_ms);
  for (int i = 9; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kCrockford[t & 31U];
    t >>= 5;
  }
  uint64_t a = Rng()();
  uint64_t b = Rng()();
  for (size_t i = 10; i < 26; ++i) {
    uint64_t& src = i < 22 ? a : b;
    out[i] = kCrockford[src & 31U];
    src >>= 5;
  }
  return out;
}

std::string NewId() {
  using namespace std::chrono;
  return NewId(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::string RandomHex(size_t n_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n_bytes * 2);
  for (size_t i = 0; i < n_bytes; ++i) {
    auto byte = static_cast<unsigned>(Rng()() & 0xFFU);
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xFU]);
  }
  return out;
}

bool LooksLikeId(const std::string& s) {
  if (s.size() != 26) return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') ||
              (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U');
    if (!ok) return false;
  }
  return true;
}

Status RequireId(std::string_view what, const std::string& id, std::string_view shown_by) {
  const std::string name = std::string(what) + " id";
  if (id.empty()) return Fail(ErrorCode::kInvalidArgument, "a " + name + " is required");
  if (LooksLikeId(id)) return {};
  // A long one is not echoed: it is not an id, and the answer need not carry it back.
  const std::string shown = id.size() <= 64 ? " '" + id + "'" : "";
  return Fail(ErrorCode::kInvalidArgument, "malformed " + name + shown + " (26 characters, as `" +
                                               std::string(shown_by) + "` shows)");
}

}  // namespace ferry
