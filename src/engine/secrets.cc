#include "engine/secrets.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/files.h"

namespace ferry::engine {

bool IsValidSecretName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  auto c0 = static_cast<unsigned char>(name[0]);
  if (!std::isalpha(c0) && c0 != '_') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string SecretKey(std::string_view name) {
  std::string key(name);
  for (char& c : key) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return key;
}

std::optional<std::string> EnvSecretResolver::Resolve(const std::string& name) const {
  if (!IsValidSecretName(name)) return std::nullopt;
  const std::string key = prefix_ + SecretKey(name);
  // getenv is safe here: Ferry never calls setenv after start-up.
  const char* v = std::getenv(key.c_str());  // NOLINT(concurrency-mt-unsafe)
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

MapSecretResolver::MapSecretResolver(const std::map<std::string, std::string>& values)
    : values_([&] {
        std::map<std::string, std::string> keyed;
        for (const auto& [name, value] : values) keyed.emplace(SecretKey(name), value);
        return keyed;
      }()) {}

std::optional<std::string> MapSecretResolver::Resolve(const std::string& name) const {
  auto it = values_.find(SecretKey(name));
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> ChainSecretResolver::Resolve(const std::string& name) const {
  for (const auto* r : chain_) {
    if (r == nullptr) continue;
    if (auto v = r->Resolve(name)) return v;
  }
  return std::nullopt;
}

Result<std::map<std::string, std::string>> ParseSecretsText(std::string_view text) {
  std::map<std::string, std::string> out;
  std::map<std::string, std::string> keys;  // SecretKey -> the name as first given
  // A second value for one secret would silently replace the first.
  auto once = [&](const std::string& name, const std::string& where) -> Status {
    auto [it, fresh] = keys.emplace(SecretKey(name), name);
    if (fresh) return {};
    const std::string seen_as =
        it->second == name
            ? ""
            : " (as " + it->second + " before: names are matched without regard to case)";
    return Fail(ErrorCode::kInvalidArgument, where + name + " is given twice" + seen_as);
  };
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    auto j = ParseJson(text);
    if (!j) return Fail(ErrorCode::kInvalidArgument, "secrets file: " + j.error().message);
    if (!j->is_object()) return Fail(ErrorCode::kInvalidArgument, "secrets file: not an object");
    for (auto it = j->begin(); it != j->end(); ++it) {
      if (!it.value().is_string()) {
        return Fail(ErrorCode::kInvalidArgument,
                    "secrets file: value of " + it.key() + " is not a string");
      }
      if (!IsValidSecretName(it.key())) {
        return Fail(ErrorCode::kInvalidArgument,
                    "secrets file: " + it.key() + " is not a secret name (use A-Z, 0-9 and _)");
      }
      if (auto st = once(it.key(), "secrets file: "); !st) return Fail(st.error());
      out[it.key()] = it.value().get<std::string>();
    }
    return out;
  }
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t s = line.find_first_not_of(" \t");
    if (s == std::string_view::npos || line[s] == '#') {
      if (end == text.size()) break;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Fail(ErrorCode::kInvalidArgument,
                  "secrets file line " + std::to_string(line_no) + ": expected NAME=value");
    }
    std::string name(line.substr(s, eq - s));
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    if (!IsValidSecretName(name)) {
      return Fail(ErrorCode::kInvalidArgument,
                  "secrets file line " + std::to_string(line_no) + ": bad secret name");
    }
    if (auto st = once(name, "secrets file line " + std::to_string(line_no) + ": "); !st) {
      return Fail(st.error());
    }
    out[name] = std::string(line.substr(eq + 1));
    if (end == text.size()) break;
  }
  return out;
}

Result<std::unique_ptr<MapSecretResolver>> LoadSecretsFile(const std::string& path) {
  // A named file that cannot be read is a bad setting (exit 2), whatever the reason; the cap
  // keeps a wrong path (/dev/zero) from taking memory.
  auto text = ReadSmallFile(path, kMaxSecretsFileBytes);
  if (!text) return Fail(ErrorCode::kInvalidArgument, text.error().message);
  auto values = ParseSecretsText(*text);
  if (!values) return Fail(values.error());
  return std::make_unique<MapSecretResolver>(std::move(*values));
}

void Redactor::Add(const std::string& secret_value) {
  if (secret_value.empty()) return;
  std::lock_guard lock(mu_);
  if (std::find(values_.begin(), values_.end(), secret_value) != values_.end()) return;
  values_.push_back(secret_value);
  std::stable_sort(values_.begin(), values_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

bool Redactor::Empty() const {
  std::lock_guard lock(mu_);
  return values_.empty();
}

std::string Redactor::RedactLocked(std::string_view text) const {
  std::string out(text);
  for (const auto& v : values_) {
    size_t pos = 0;
    while ((pos = out.find(v, pos)) != std::string::npos) {
      out.replace(pos, v.size(), kMask);
      pos += kMask.size();
    }
  }
  return out;
}

Json Redactor::RedactJsonLocked(const Json& value) const {
  if (value.is_string()) return RedactLocked(value.get_ref<const std::string&>());
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& e : value) out.push_back(RedactJsonLocked(e));
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      out[RedactLocked(it.key())] = RedactJsonLocked(it.value());
    }
    return out;
  }
  // A numeric secret (a PIN) printed as a number: mask it too.
  if (value.is_number()) {
    std::string text = value.dump();
    for (const auto& v : values_) {
      if (v == text) return Json(std::string(kMask));
    }
  }
  return value;
}

std::string Redactor::RedactText(std::string_view text) const {
  std::lock_guard lock(mu_);
  return RedactLocked(text);
}

Json Redactor::RedactJson(const Json& value) const {
  std::lock_guard lock(mu_);
  return RedactJsonLocked(value);
}

}  // namespace ferry::engine
