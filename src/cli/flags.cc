#include "cli/flags.h"

#include <CLI/CLI.hpp>
#include <stdexcept>

#include "ops/config.h"
#include "service/query.h"

namespace ferry::cli {
namespace {

const ops::SettingInfo& FlagSetting(std::string_view key) {
  const ops::SettingInfo* setting = ops::FindSetting(key);
  if (setting == nullptr || ops::FlagOf(*setting).empty()) {
    throw std::logic_error("no setting with a flag named " + std::string(key));
  }
  return *setting;
}

}  // namespace

CLI::Option* AddSettingFlag(CLI::App* cmd, std::string_view key, std::optional<std::string>& dest,
                            SettingsGiven& given) {
  const ops::SettingInfo& s = FlagSetting(key);
  return cmd->add_option_function<std::string>(
      ops::FlagOf(s),
      [&dest, &given, k = s.key](const std::string& v) {
        dest = v;
        given[k] = v;
      },
      ops::FlagHelp(s));
}

CLI::Option* AddSettingFlag(CLI::App* cmd, std::string_view key,
                            std::map<std::string, std::string>& dest, SettingsGiven& given) {
  const ops::SettingInfo& s = FlagSetting(key);
  return cmd->add_option_function<std::string>(
      ops::FlagOf(s),
      [&dest, &given, k = s.key](const std::string& v) {
        dest[k] = v;
        given[k] = v;
      },
      ops::FlagHelp(s));
}

CLI::Option* AddLimitFlag(CLI::App* cmd, const std::string& names, int& dest) {
  const std::string flag = names.substr(0, names.find(','));
  return cmd->add_option_function<std::string>(
      names,
      [&dest, flag](const std::string& v) {
        auto n = ParseIntSetting(SettingText{v, flag}, 1, service::kMaxPageLimit);
        if (!n) throw CLI::ValidationError(n.error().message);
        dest = *n;
      },
      "At most this many (1 to " + std::to_string(service::kMaxPageLimit) + "; default " +
          std::to_string(dest) + ")");
}

}  // namespace ferry::cli
