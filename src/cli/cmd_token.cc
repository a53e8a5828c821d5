// `ferry token create|list|revoke`: API bearer tokens, through the service (the store, or a
// server's API with an admin token). The secret is printed once at creation; the store keeps
// only its SHA-256.
#include "cli/commands.h"
#include "cli/json_text.h"
#include "cli/runs_common.h"

namespace ferry::cli {

int RunTokenCreate(Context& ctx, const StoreFlags& sf, const std::string& name,
                   const std::string& scopes_text) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(Creating(sf));
  if (!svc) return out.Fail(svc.error());
  auto token = (*svc)->CreateToken(Json{{"name", name}, {"scopes", scopes_text}});
  // The service's words as they are (they name the fields `name` and `scopes`, as the API's do):
  // the same message whether the token was made here or by a server.
  if (!token) return out.Fail(token.error());
  if (out.json()) {
    out.PrintJson(*token);
    return kExitOk;
  }
  out.Print(Field(*token, "token") + "\n");
  std::string granted;
  for (const auto& scope : (*token)["scopes"]) {
    granted += (granted.empty() ? "" : " ") + scope.get<std::string>();
  }
  // Where it went: a server accepts only the tokens of its own store.
  std::string where = " by the server";
  if (!ctx.remote()) {
    auto location = ResolveStoreLocation(ctx, sf);
    where = location ? " in the store at " + MaskStoreUrl(*location) +
                           " (only a server using this store accepts it)"
                     : "";
  }
  out.Message("token " + Field(*token, "id") + " (" + name + ", scopes: " + granted + ") created" +
              where +
              "; this is the only time its secret is shown. Send it as "
              "'Authorization: Bearer <token>'.");
  return kExitOk;
}

int RunTokenList(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto page = (*svc)->ListTokens();
  if (!page) return out.Fail(page.error());
  if (out.json()) {
    out.PrintJson(*page);
    return kExitOk;
  }
  Table table({"ID", "Name", "Scopes", "Created", "Last Used", "Status"});
  for (const Json& t : (*page)["tokens"]) {
    const bool revoked = t.value("revoked", false);
    std::string scopes;
    for (const auto& scope : t["scopes"]) {
      scopes += (scopes.empty() ? "" : " ") + scope.get<std::string>();
    }
    table.AddRow({Field(t, "id"), Field(t, "name"), scopes, HumanTime(FieldMs(t, "created_at")),
                  HumanTime(FieldMs(t, "last_used_at")),
                  Cell(revoked ? "revoked" : "active", revoked ? Color::kRed : Color::kGreen)});
  }
  out.PrintTable(table);
  return kExitOk;
}

int RunTokenRevoke(Context& ctx, const StoreFlags& sf, const std::string& id) {
  const Output& out = ctx.out();
  auto svc = ctx.Service(sf);
  if (!svc) return out.Fail(svc.error());
  auto revoked = (*svc)->RevokeToken(id);
  if (!revoked) return out.Fail(revoked.error());
  if (out.json()) {
    out.PrintJson(*revoked);
  } else {
    out.Message("token " + id + " revoked");
  }
  return kExitOk;
}

}  // namespace ferry::cli
