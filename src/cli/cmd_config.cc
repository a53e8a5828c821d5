// `ferry config show`: every setting's effective value and its source (flag, env, config file
// with line, default), secrets masked. Flags other than the global ones and --store belong to
// other commands and show as env/file/default here.
#include "cli/commands.h"
#include "ops/config.h"

namespace ferry::cli {

int RunConfigShow(Context& ctx, const StoreFlags& sf) {
  const Output& out = ctx.out();
  const GlobalFlags& g = ctx.global();
  std::map<std::string, std::string> flags;
  auto put = [&](const char* key, const std::optional<std::string>& v) {
    if (v) flags[key] = *v;
  };
  put("config", g.config);
  put("redis-url", g.redis_url);
  put("prefix", g.prefix);
  put("log-level", g.log_level);
  put("log-format", g.log_format);
  put("io-timeout", g.io_timeout);
  put("redis-username", g.redis_username);
  put("redis-tls-ca", g.redis_tls_ca);
  put("redis-tls-cert", g.redis_tls_cert);
  put("redis-tls-key", g.redis_tls_key);
  put("redis-tls-server-name", g.redis_tls_server_name);
  put("redis-tls-verify", g.redis_tls_verify);
  put("redis-sentinel-username", g.redis_sentinel_username);
  put("redis-sentinel-password", g.redis_sentinel_password);
  put("redis-wait-replicas", g.redis_wait_replicas);
  put("redis-wait-timeout", g.redis_wait_timeout);
  put("store", sf.store);

  // ctx.env() already has the file behind it; the file itself is re-read to name lines.
  auto env_only = ProcessEnv();
  auto file = ops::LoadConfigFrom(g.config, env_only);
  if (!file) return out.Fail(file.error());
  auto settings = ops::EffectiveSettings(flags, env_only, file->get());

  if (out.json()) {
    Json arr = Json::array();
    for (const auto& s : settings) {
      arr.push_back(Json{{"key", s.info.key},
                         {"env", ops::EnvNameOf(s.info.key)},
                         {"value", s.value},
                         {"source", std::string(ops::SourceName(s.source))},
                         {"origin", s.origin},
                         {"secret", s.info.secret},
                         {"used_by", s.info.used_by}});
    }
    Json doc = Json{{"settings", std::move(arr)}};
    if (*file) {
      doc["config_file"] = (*file)->path;
      doc["unknown_keys"] = (*file)->unknown_keys;
    }
    out.PrintJson(doc);
    return kExitOk;
  }
  Table table({"Key", "Value", "Source", "Used by"});
  for (const auto& s : settings) {
    Color c = s.source == ops::Source::kDefault ? Color::kDim : Color::kNone;
    table.AddRow({s.info.key, Cell(s.value.empty() ? "-" : s.value, c), s.origin, s.info.used_by});
  }
  out.PrintTable(table);
  return kExitOk;  // unknown keys were logged as warnings at start-up
}

}  // namespace ferry::cli
