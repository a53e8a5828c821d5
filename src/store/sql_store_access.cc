// SqlStore: API tokens and webhook nonces.
#include <spdlog/spdlog.h>

#include <sstream>
#include <utility>

#include "core/ids.h"
#include "store/sql_store_impl.h"

namespace ferry::store_internal {
namespace {

using P = SqlParam;

constexpr int64_t kTokenTouchIntervalMs = 60'000;
constexpr std::string_view kTokenCols =
    "id, name, token_hash, created_ms, last_used_ms, revoked_ms, scopes";

ApiToken TokenFromRow(const SqlRow& r) {
  ApiToken t;
  t.id = r.Text(0);
  t.name = r.Text(1);
  t.token_hash = r.Text(2);
  t.created_ms = r.Int(3);
  t.last_used_ms = r.Int(4);
  t.revoked_ms = r.Int(5);
  std::istringstream scopes(r.Text(6));
  for (std::string scope; scopes >> scope;) t.scopes.push_back(scope);
  return t;
}

}  // namespace

// ---------------------------------------------------------------- tokens

Result<ApiToken> SqlStore::CreateApiToken(const std::string& name, const std::string& token_hash,
                                          const std::vector<std::string>& scopes) {
  if (name.empty() || name.size() > kMaxNameBytes)
    return Invalid("token name must be 1..200 bytes");
  if (token_hash.empty()) return Invalid("token hash is required");
  if (scopes.empty()) return Invalid("a token needs at least one scope");
  std::string joined;
  for (const auto& scope : scopes) {
    if (scope.empty() || scope.find_first_of(" \t\n") != std::string::npos) {
      return Invalid("bad scope '" + scope + "'");
    }
    joined += (joined.empty() ? "" : " ") + scope;
  }
  return InTx([&]() -> Result<ApiToken> {
    int64_t now = NowMs();
    std::string id = NewId(now);
    auto r =
        Exec(Cat("INSERT INTO api_tokens (", kTokenCols) + ") VALUES ($1, $2, $3, $4, 0, 0, $5)",
             {P::Text(id), P::Text(name), P::Text(token_hash), P::Int(now), P::Text(joined)});
    if (!r) {
      if (r.error().code == ErrorCode::kConflict) return Conflict("a token with this hash exists");
      return Fail(r.error());
    }
    ApiToken t;
    t.id = id;
    t.name = name;
    t.token_hash = token_hash;
    t.created_ms = now;
    t.scopes = scopes;
    return t;
  });
}

Result<std::vector<ApiToken>> SqlStore::ListApiTokens() {
  return Many<ApiToken>(Cat("SELECT ", kTokenCols) + " FROM api_tokens ORDER BY created_ms, id", {},
                        TokenFromRow);
}

Status SqlStore::RevokeApiToken(const std::string& id) {
  auto r = Exec("UPDATE api_tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms = 0",
                {P::Text(id), P::Int(NowMs())});
  if (!r) return Fail(r.error());
  if (r->affected == 1) return {};
  auto e = Exec("SELECT 1 FROM api_tokens WHERE id = $1", {P::Text(id)});
  if (!e) return Fail(e.error());
  if (e->rows.empty()) return NotFound("no token " + id);
  return {};
}

Result<std::optional<ApiToken>> SqlStore::VerifyApiToken(const std::string& token_hash) {
  auto t = One<ApiToken>(
      Cat("SELECT ", kTokenCols) + " FROM api_tokens WHERE token_hash = $1 AND revoked_ms = 0",
      {P::Text(token_hash)}, TokenFromRow);
  if (!t || !*t) return t;
  int64_t now = NowMs();
  if (now - (*t)->last_used_ms >= kTokenTouchIntervalMs) {
    // Bookkeeping only: a database busy with another writer must not fail the request the token
    // came with (it is written again on a later one). PostgreSQL would wait for a transaction
    // that holds the row, up to the statement timeout: a held row is skipped instead.
    const char* sql = conn_->Backend() == "postgres"
                          ? "UPDATE api_tokens SET last_used_ms = $2 WHERE id = (SELECT id FROM "
                            "api_tokens WHERE id = $1 FOR UPDATE SKIP LOCKED)"
                          : "UPDATE api_tokens SET last_used_ms = $2 WHERE id = $1";
    auto r = Exec(sql, {P::Text((*t)->id), P::Int(now)});
    if (r) {
      if (r->affected == 1) (*t)->last_used_ms = now;
    } else {
      spdlog::warn("token {}: last use not recorded: {}", (*t)->id, r.error().message);
    }
  }
  return t;
}

// ---------------------------------------------------------------- nonces

Result<bool> SqlStore::RememberNonce(const std::string& scope, const std::string& nonce,
                                     int64_t expires_ms) {
  if (nonce.empty()) return Invalid("nonce is required");
  // Insert-or-nothing decides the race; an expired record is taken over in the same statement.
  auto r = Exec(
      "INSERT INTO webhook_nonces (scope, nonce, expires_ms) VALUES ($1, $2, $3) "
      "ON CONFLICT (scope, nonce) DO UPDATE SET expires_ms = excluded.expires_ms "
      "WHERE webhook_nonces.expires_ms <= $4",
      {P::Text(scope), P::Text(nonce), P::Int(expires_ms), P::Int(NowMs())});
  if (!r) return Fail(r.error());
  return r->affected == 1;
}

Result<int64_t> SqlStore::DeleteExpiredNonces(int limit) {
  if (limit < 1) return Invalid("limit must be >= 1");
  return Affected(
      "DELETE FROM webhook_nonces WHERE (scope, nonce) IN (SELECT scope, nonce FROM "
      "webhook_nonces WHERE expires_ms <= $1 LIMIT $2)",
      {P::Int(NowMs()), P::Int(limit)});
}

}  // namespace ferry::store_internal
