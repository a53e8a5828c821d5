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

// Declares a list command's `--limit` (`names`: "--limit", or "--limit,-n"), an integer from 1 to
// service::kMaxPageLimit into `dest`, whose value on the call is the default. Any other value is
// a usage error in the words of every numeric setting (ParseIntSetting: "--limit: expected an
// integer from 1 to 1000, not '0'"), also one too large for an int, which CLI11 would report in
// its own words.
CLI::Option* AddLimitFlag(CLI::App* cmd, const std::string& names, int& dest);

}  // namespace ferry::cli
