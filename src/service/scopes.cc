#include "service/scopes.h"

#include <algorithm>

#include "core/ids.h"
#include "engine/secrets.h"

namespace ferry::service {
namespace {

constexpr std::string_view kSecretPrefix = "secret:";

std::optional<Scope> LevelOf(std::string_view name) {
  for (Scope s : {Scope::kRead, Scope::kRun, Scope::kApply, Scope::kAdmin}) {
    if (ScopeName(s) == name) return s;
  }
  return std::nullopt;
}

}  // namespace

std::string_view ScopeName(Scope s) {
  switch (s) {
    case Scope::kRead:
      return "read";
    case Scope::kRun:
      return "run";
    case Scope::kApply:
      return "apply";
    case Scope::kAdmin:
      return "admin";
  }
  return "admin";
}

Result<std::vector<std::string>> ParseScopes(std::string_view text) {
  std::vector<std::string> out;
  if (text.find_first_not_of(", ") == std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument, "give at least one scope");
  }
  // Commas separate items, spaces the words of an item. An item with no word ("read,,run",
  // "read,") is refused: the scope meant there is missing, and granting the rest would hide it.
  std::vector<std::string_view> words;
  size_t item_start = 0;
  for (int item = 1;; ++item) {
    const size_t comma = text.find(',', item_start);
    std::string_view rest =
        text.substr(item_start, comma == std::string_view::npos ? comma : comma - item_start);
    const size_t before = words.size();
    for (size_t i = 0; i < rest.size();) {
      const size_t end = std::min(rest.find(' ', i), rest.size());
      if (end > i) words.push_back(rest.substr(i, end - i));
      i = end + 1;
    }
    if (words.size() == before) {
      return Fail(ErrorCode::kInvalidArgument, "scope " + std::to_string(item) + " of '" +
                                                   std::string(text) +
                                                   "' is empty: drop the extra comma");
    }
    if (comma == std::string_view::npos) break;
    item_start = comma + 1;
  }
  for (std::string_view word : words) {
    if (word.rfind(kSecretPrefix, 0) == 0) {
      std::string_view name = word.substr(kSecretPrefix.size());
      if (name != "*" && !engine::IsValidSecretName(std::string(name))) {
        return Fail(ErrorCode::kInvalidArgument,
                    "bad secret scope '" + std::string(word) + "': use secret:NAME or secret:*");
      }
    } else if (!LevelOf(word)) {
      return Fail(ErrorCode::kInvalidArgument, "unknown scope '" + std::string(word) +
                                                   "': use read, run, apply, admin or secret:NAME");
    }
    if (std::find(out.begin(), out.end(), word) == out.end()) out.emplace_back(word);
  }
  return out;
}

bool Allows(const std::vector<std::string>& granted, Scope needed) {
  return std::any_of(granted.begin(), granted.end(), [&](const std::string& g) {
    auto level = LevelOf(g);
    return level && static_cast<int>(*level) >= static_cast<int>(needed);
  });
}

bool AllowsSecret(const std::vector<std::string>& granted, std::string_view name) {
  if (Allows(granted, Scope::kAdmin)) return true;
  // Matched as the worker resolves the name (engine::SecretKey): without regard to case.
  const std::string key = engine::SecretKey(name);
  return std::any_of(granted.begin(), granted.end(), [&](const std::string& g) {
    if (g.rfind(kSecretPrefix, 0) != 0) return false;
    const std::string_view scoped = std::string_view(g).substr(kSecretPrefix.size());
    return scoped == "*" || engine::SecretKey(scoped) == key;
  });
}

std::optional<std::string> FirstDeniedSecret(const std::vector<std::string>& granted,
                                             const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (!AllowsSecret(granted, s)) return s;
  }
  return std::nullopt;
}

std::string NewApiTokenSecret() { return "fy_" + RandomHex(32); }

}  // namespace ferry::service
