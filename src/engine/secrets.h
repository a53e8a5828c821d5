// Secrets: `{{ secrets.NAME }}` is resolved on the worker at execution time, never at ingestion,
// and a resolved value must never reach the store, the event stream or a log. The executor
// hands every value it resolves to a Redactor, and everything it passes to its RunSink
// (step outputs, errors, events) goes through Redactor::Redact first.
//
// Thread-safety: the resolvers here are immutable after construction and safe to share;
// Redactor is internally synchronised (Add and Redact may race).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace ferry::engine {

// Secret names: [A-Za-z_][A-Za-z0-9_]{0,127}.
bool IsValidSecretName(std::string_view name);
// The form every lookup matches a secret name by: upper-cased, as FERRY_SECRET_<NAME> has it, so
// `api_token` and `API_TOKEN` are one secret in the environment, a secrets file and token scopes
// alike.
std::string SecretKey(std::string_view name);

class SecretResolver {
 public:
  virtual ~SecretResolver() = default;
  // nullopt: no such secret.
  virtual std::optional<std::string> Resolve(const std::string& name) const = 0;
};

// FERRY_SECRET_<NAME> from the process environment (NAME upper-cased).
class EnvSecretResolver final : public SecretResolver {
 public:
  explicit EnvSecretResolver(std::string prefix = "FERRY_SECRET_") : prefix_(std::move(prefix)) {}
  std::optional<std::string> Resolve(const std::string& name) const override;

 private:
  const std::string prefix_;
};

// A fixed map: secrets files and tests.
class MapSecretResolver final : public SecretResolver {
 public:
  // Keys are matched by SecretKey; of two that differ only in case, one is kept.
  explicit MapSecretResolver(const std::map<std::string, std::string>& values);
  std::optional<std::string> Resolve(const std::string& name) const override;

 private:
  const std::map<std::string, std::string> values_;
};

// Largest secrets file read.
inline constexpr size_t kMaxSecretsFileBytes = 1 << 20;
// Loads a secrets file: either a JSON object {"NAME": "value"} or lines `NAME=value`
// (blank lines and lines starting with '#' ignored; the value is everything after the first '=').
// A name given twice (in any case) is refused. kInvalidArgument for a file that cannot be read
// (missing, a directory, larger than kMaxSecretsFileBytes) or is malformed; the message says which,
// without the path.
Result<std::unique_ptr<MapSecretResolver>> LoadSecretsFile(const std::string& path);
Result<std::map<std::string, std::string>> ParseSecretsText(std::string_view text);

// Asks each resolver in turn; the first that knows the name wins.
class ChainSecretResolver final : public SecretResolver {
 public:
  explicit ChainSecretResolver(std::vector<const SecretResolver*> chain)
      : chain_(std::move(chain)) {}
  std::optional<std::string> Resolve(const std::string& name) const override;

 private:
  const std::vector<const SecretResolver*> chain_;  // not owned
};

// Replaces every known secret value with "***" in text and in JSON (strings and object keys).
// Longer secrets are replaced first so a secret that contains another is fully masked.
class Redactor {
 public:
  static constexpr std::string_view kMask = "***";

  // Empty values are ignored (they would match everywhere).
  void Add(const std::string& secret_value);
  std::string RedactText(std::string_view text) const;
  Json RedactJson(const Json& value) const;
  bool Empty() const;

 private:
  std::string RedactLocked(std::string_view text) const;
  Json RedactJsonLocked(const Json& value) const;

  mutable std::mutex mu_;
  std::vector<std::string> values_;  // Guarded by mu_; sorted longest first
};

}  // namespace ferry::engine
