// LocalService: API bearer tokens (in the store, which keeps only each secret's SHA-256).
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/control_chars.h"
#include "core/crypto.h"
#include "core/json_fields.h"
#include "service/arguments.h"
#include "service/local_service.h"
#include "service/scopes.h"
#include "views/views.h"

namespace ferry::service {
namespace {

Error Invalid(const std::string& message) { return Error{ErrorCode::kInvalidArgument, message}; }

// "scopes" as text ("run,apply") or as an array of scope names, one per element; absent = run.
Result<std::vector<std::string>> ReadScopes(const std::optional<Json>& given) {
  if (!given) return ParseScopes("run");
  if (given->is_string()) {
    auto scopes = ParseScopes(given->get<std::string>());
    if (!scopes) return Fail(Invalid("scopes: " + scopes.error().message));
    return scopes;
  }
  if (!given->is_array()) {
    return Fail(Invalid("scopes must be a string (\"run,apply\") or an array of strings"));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < given->size(); ++i) {
    const Json& s = (*given)[i];
    const std::string where = "scopes[" + std::to_string(i) + "]";
    if (!s.is_string()) return Fail(Invalid(where + " must be a string"));
    const std::string name = s.get<std::string>();
    if (name.empty()) return Fail(Invalid(where + " is empty: name a scope or drop it"));
    // One element is one scope: "read,run" or "secret:a b" in one element is refused, not split
    // (and then refused for a part, as "unknown scope 'b'").
    if (name.find_first_of(", ") != std::string::npos) {
      return Fail(Invalid(where + " '" + name + "' is not one scope name: give each its own"));
    }
    auto one = ParseScopes(name);
    if (!one) return Fail(Invalid(where + ": " + one.error().message));
    if (std::find(out.begin(), out.end(), one->front()) == out.end()) out.push_back(one->front());
  }
  if (out.empty()) return Fail(Invalid("scopes: give at least one scope"));
  return out;
}

}  // namespace

Result<Json> LocalService::ListTokens() {
  return With(stores_, [&](Store& store) -> Result<Json> {
    auto tokens = store.ListApiTokens();
    if (!tokens) return Fail(tokens.error());
    Json list = Json::array();
    for (const auto& t : *tokens) list.push_back(views::Token(t));
    return views::Page("tokens", std::move(list), "");
  });
}

Result<Json> LocalService::CreateToken(const Json& body) {
  FieldReader f(body);
  const std::string n = f.String("name", kRequired).value_or("");
  const std::optional<Json> given_scopes = f.Any("scopes");
  if (auto st = f.Finish(); !st) return Fail(st.error());
  if (n.empty() || n.size() > 200) return Fail(Invalid("name must be 1 to 200 characters"));
  if (auto st = NoControlCharacters(n, "the token's name"); !st) return Fail(st.error());
  auto scopes = ReadScopes(given_scopes);
  if (!scopes) return Fail(scopes.error());
  return With(stores_, [&](Store& store) -> Result<Json> {
    const std::string secret = NewApiTokenSecret();
    auto token = store.CreateApiToken(n, Sha256Hex(secret), *scopes);
    if (!token) return Fail(token.error());
    Json j = views::Token(*token);
    j["token"] = secret;
    return j;
  });
}

Result<Json> LocalService::RevokeToken(const std::string& id) {
  if (auto st = CheckTokenId(id); !st) return Fail(st.error());
  return With(stores_, [&](Store& store) -> Result<Json> {
    if (auto st = store.RevokeApiToken(id); !st) return Fail(st.error());
    return Json{{"id", id}, {"revoked", true}};
  });
}

Result<std::optional<std::vector<std::string>>> LocalService::TokenScopes(
    const std::string& token_hash) {
  return With(stores_, [&](Store& store) -> Result<std::optional<std::vector<std::string>>> {
    auto found = store.VerifyApiToken(token_hash);
    if (!found) return Fail(found.error());
    if (!*found) return std::optional<std::vector<std::string>>();
    return std::optional<std::vector<std::string>>((*found)->scopes);
  });
}

}  // namespace ferry::service
