// The configuration-file layer and the catalogue of Ferry's settings.
//
// Every setting has one name used three ways: a flag (`--lease`), an environment variable
// (`FERRY_LEASE`) and a config-file key (`lease`). Precedence: flag > environment > config file >
// default. The CLI resolves flags against an EnvLookup; LayeredEnv() returns one that answers from
// the process environment first and from the config file second, so every existing
// `FERRY_*` fallback gains the file layer without a line of per-setting code.
//
// File format (docs/operations.md): one `key = value` per line (`key: value`, YAML style, is also
// accepted), `#` comments, blank lines, optional single or double quotes around the value. Keys
// are flag names without the dashes (`redis-url`; `redis_url` is accepted too).
//
// Thread-safety: pure functions and immutable objects; safe from any thread after construction.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/result.h"

namespace ferry::ops {

struct ConfigValue {
  std::string value;
  int line = 0;
};

// A parsed config file: key (normalized, dashes) -> value.
struct ConfigFile {
  std::string path;
  std::map<std::string, ConfigValue> values;
  // Keys that are not in Settings(): reported by `ferry config show` and logged as a warning.
  std::vector<std::string> unknown_keys;
};

// Parses config-file text. Errors name the line: "ferry.conf:3: expected key = value".
Result<ConfigFile> ParseConfigText(std::string_view text, const std::string& path);
// Largest config file read.
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;
// Reads and parses a file. kNotFound when it does not exist, kInvalidArgument when it cannot be
// read (a directory, larger than kMaxConfigFileBytes) or is malformed.
Result<ConfigFile> LoadConfigFile(const std::string& path);

// "redis-url" / "redis_url" -> "FERRY_REDIS_URL".
std::string EnvNameForKey(std::string_view key);

// Where a setting's value came from.
enum class Source { kFlag, kEnv, kFile, kDefault };
std::string_view SourceName(Source s);

// The environment lookup with the config file behind it. `file` may be null (no config file).
EnvLookup LayeredEnv(EnvLookup env, std::shared_ptr<const ConfigFile> file);

// The config file named by `flag` (--config) or else env("FERRY_CONFIG"); null when neither is
// set. A named file that does not exist is an error.
Result<std::shared_ptr<const ConfigFile>> LoadConfigFrom(const std::optional<std::string>& flag,
                                                         const EnvLookup& env);

// One known setting: the one place that declares its config key, flag, environment variable,
// default and help. The CLI declares a command's flag from it (cli/flags.h: the flag's help says
// the variable and the default) and resolves its value by the key (cli/options.h); `ferry config
// show` lists it.
struct SettingInfo {
  std::string key;           // "redis-url" (the config-file key)
  std::string default_text;  // "" = none
  std::string used_by;       // "all", "worker", "server", "scheduler", "alerts", ...
  bool secret = false;       // masked by `ferry config show`
  std::string help;
  std::string env;   // the environment variable when it is not EnvNameForKey(key)
  std::string flag;  // the flag when it is not --key; "-" for none (a secret a flag would show
                     // in `ps`)
};
// A variable other tools set too, read for setting `key` last: after the config file, which
// names Ferry's setting itself ("REDIS_URL" for redis-url); "" for none.
std::string_view EnvFallbackOf(std::string_view key);
// The environment variable of a setting (known keys may have their own; others derive it).
std::string EnvNameOf(std::string_view key);
// Every setting Ferry's commands read, in display order.
const std::vector<SettingInfo>& Settings();
// The setting of `key`; null when there is none.
const SettingInfo* FindSetting(std::string_view key);
// Its flag ("--lease", "--tick"); "" when it has none.
std::string FlagOf(const SettingInfo& setting);
// The help of its flag: the text, then "(env FERRY_X; default D)".
std::string FlagHelp(const SettingInfo& setting);

// The known setting a mistyped name was probably meant as: the config key nearest `key`
// (normalized: `redis_ulr` -> "redis-url") by core/suggest.h's ClosestMatch; "" when none is
// near.
std::string NearestKey(std::string_view key);

// Warnings for environment variables (names, as in environ) that look like a mistyped setting's:
// "FERRY_REDIS_ULR is not a Ferry setting and is ignored; did you mean FERRY_REDIS_URL?". A
// FERRY_ name near no setting's is left alone: scripts and tools have their own.
std::vector<std::string> MistypedVariables(const std::vector<std::string>& names);

// Masks a secret for display: URLs keep scheme/host and lose the password; other secrets
// become "********" (or "" when empty).
std::string MaskSecret(std::string_view key, std::string_view value);

// The effective value of one setting and where it came from.
struct EffectiveSetting {
  SettingInfo info;
  std::string value;  // masked when info.secret
  Source source = Source::kDefault;
  std::string origin;  // "--redis-url", "FERRY_REDIS_URL", "/etc/ferry/ferry.conf:3", "default"
};

// Resolves every setting: flags (key -> value, those given on the command line) > env > file >
// default.
std::vector<EffectiveSetting> EffectiveSettings(const std::map<std::string, std::string>& flags,
                                                const EnvLookup& env, const ConfigFile* file);

}  // namespace ferry::ops
