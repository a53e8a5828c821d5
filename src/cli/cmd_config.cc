// `ferry config show`: every setting's effective value and its source (flag, env, config file
// with line, default), secrets masked. The flags it can show as such are those this command takes
// (the global ones and --store); other commands' settings show as env/file/default here.
#include "cli/commands.h"
#include "ops/config.h"

namespace ferry::cli {

int RunConfigShow(Context& ctx) {
  const Output& out = ctx.out();
  const GlobalFlags& g = ctx.global();
  const std::map<std::string, std::string>& flags = g.given;

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
