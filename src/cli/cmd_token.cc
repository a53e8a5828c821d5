// `ferry token create|list|revoke`: API bearer tokens, straight in the store. The secret is
// printed once at creation; the store keeps only its SHA-256.
#include "api/http_util.h"
#include "api/scopes.h"
#include "cli/commands.h"
#include "cli/runs_common.h"
#include "core/crypto.h"
#include "engine/ingest.h"
#include "views/views.h"

namespace ferry::cli {

int RunTokenCreate(Context& ctx, const StoreFlags& sf, const std::string& name,
                   const std::string& scopes_text) {
  const Output& out = ctx.out();
  if (name.empty() || name.size() > 200) {
    return out.Fail(ErrorCode::kInvalidArgument, "NAME must be 1 to 200 characters");
  }
  auto scopes = api::ParseScopes(scopes_text);
  if (!scopes) return out.Fail(ErrorCode::kInvalidArgument, "--scopes: " + scopes.error().message);
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  const std::string secret = api::NewApiTokenSecret();
  auto token = (*store)->CreateApiToken(name, Sha256Hex(secret), *scopes);
  if (!token) return out.Fail(token.error());
  if (out.json()) {
    Json j = views::Token(*token);
    j["token"] = secret;
    out.PrintJson(j);
  } else {
    out.Print(secret + "\n");
    std::string granted;
    for (const auto& scope : token->scopes) granted += (granted.empty() ? "" : " ") + scope;
    out.Message("token " + token->id + " (" + name + ", scopes: " + granted +
                ") created; this is the only time its secret is shown. Send it as "
                "'Authorization: Bearer <token>'.");
  }
  return kExitOk;
}

int RunTokenList(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  auto tokens = (*store)->ListApiTokens();
  if (!tokens) return out.Fail(tokens.error());
  if (out.json()) {
    Json list = Json::array();
    for (const auto& t : *tokens) list.push_back(views::Token(t));
    out.PrintJson(views::Page("tokens", std::move(list), ""));
    return kExitOk;
  }
  Table table({"ID", "Name", "Scopes", "Created", "Last Used", "Status"});
  for (const auto& t : *tokens) {
    std::string status = t.revoked_ms != 0 ? "revoked" : "active";
    std::string scopes;
    for (const auto& scope : t.scopes) scopes += (scopes.empty() ? "" : " ") + scope;
    table.AddRow({t.id, t.name, scopes, HumanTime(t.created_ms), HumanTime(t.last_used_ms),
                  Cell(status, t.revoked_ms != 0 ? Color::kRed : Color::kGreen)});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunTokenRevoke(Context& ctx, const StoreFlags& sf, const std::string& id) {
  const Output& out = ctx.out();
  auto store = OpenCliStore(ctx, sf);
  if (!store) return out.Fail(store.error());
  if (auto st = (*store)->RevokeApiToken(id); !st) return out.Fail(st.error());
  if (out.json()) {
    out.PrintJson(Json{{"id", id}, {"revoked", true}});
  } else {
    out.Message("token " + id + " revoked");
  }
  return kExitOk;
}

}  // namespace ferry::cli
