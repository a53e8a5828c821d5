// LocalService: API bearer tokens (in the store, which keeps only each secret's SHA-256).
#include <string>
#include <vector>

#include "core/crypto.h"
#include "service/local_service.h"
#include "service/scopes.h"
#include "views/views.h"

namespace ferry::service {
namespace {

Error Invalid(const std::string& message) { return Error{ErrorCode::kInvalidArgument, message}; }

// "scopes" as text ("run,apply") or as an array of names; absent = run.
Result<std::vector<std::string>> ReadScopes(const Json& body) {
  auto it = body.find("scopes");
  if (it == body.end() || it->is_null()) return ParseScopes("run");
  std::string text;
  if (it->is_string()) {
    text = it->get<std::string>();
  } else if (it->is_array()) {
    for (const auto& s : *it) {
      if (!s.is_string()) return Fail(Invalid("scopes: each scope must be a string"));
      text += s.get<std::string>() + ",";
    }
  } else {
    return Fail(Invalid("scopes must be a string (\"run,apply\") or an array of strings"));
  }
  auto scopes = ParseScopes(text);
  if (!scopes) return Fail(Invalid("scopes: " + scopes.error().message));
  return scopes;
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
  if (!body.is_object()) return Fail(Invalid("the body must be a JSON object"));
  for (const auto& [key, _] : body.items()) {
    if (key != "name" && key != "scopes") {
      return Fail(Invalid("unknown field \"" + key + "\" (expected name, scopes)"));
    }
  }
  auto name = body.find("name");
  if (name == body.end() || !name->is_string()) {
    return Fail(Invalid("name is required: a string of 1 to 200 characters"));
  }
  const std::string n = name->get<std::string>();
  if (n.empty() || n.size() > 200 || n.find('\0') != std::string::npos) {
    return Fail(Invalid("name must be 1 to 200 characters (no NUL)"));
  }
  auto scopes = ReadScopes(body);
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
  return With(stores_, [&](Store& store) -> Result<Json> {
    if (auto st = store.RevokeApiToken(id); !st) return Fail(st.error());
    return Json{{"id", id}, {"revoked", true}};
  });
}

}  // namespace ferry::service
