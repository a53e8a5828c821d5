// Declaring a setting's flag on a command. ops::Settings() is the one place that names each
// setting's flag, environment variable, config key, default and help: a command declares the
// flag by the setting's key, and its help names the variable and the default from there, so the
// two cannot drift apart (options.h resolves the value by the same key).
//
// Thread-safety: call while building the command line, on one thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "cli/options.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace ferry::cli {

// Declares the flag of setting `key` on `cmd`. A value given goes to `dest` and to `given[key]`.
// Throws std::logic_error for a key not in the catalogue, or one without a flag.
CLI::Option* AddSettingFlag(CLI::App* cmd, std::string_view key, std::optional<std::string>& dest,
                            SettingsGiven& given);
// The same for settings kept by key (`dest[key]`): alert thresholds, remediation settings.
CLI::Option* AddSettingFlag(CLI::App* cmd, std::string_view key,
                            std::map<std::string, std::string>& dest, SettingsGiven& given);

}  // namespace ferry::cli
