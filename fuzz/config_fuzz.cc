// Config files (src/ops/config.h): ParseConfigText, then what the commands do with a parsed
// file: the layered environment lookup, the effective settings with masking.
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "fuzz_check.h"
#include "ops/config.h"

namespace {

using ferry::fuzz::Check;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = ferry::ops::ParseConfigText(ferry::fuzz::Text(data, size), "fuzz.conf");
  if (!file) {
    Check(file.error().message.rfind("fuzz.conf:", 0) == 0, "errors name the file");
    return 0;
  }
  auto shared = std::make_shared<const ferry::ops::ConfigFile>(std::move(*file));
  const ferry::EnvLookup no_env = [](const std::string&) -> std::optional<std::string> {
    return std::nullopt;
  };
  const ferry::EnvLookup layered = ferry::ops::LayeredEnv(no_env, shared);
  for (const auto& [key, value] : shared->values) {
    Check(value.line >= 1, "values have their line");
    (void)layered(ferry::ops::EnvNameForKey(key));
    (void)ferry::ops::MaskSecret(key, value.value);
  }
  for (const auto& setting :
       ferry::ops::EffectiveSettings({{"queue", "flag"}}, no_env, shared.get())) {
    // Locations (redis-url, store) keep everything but their credentials, so only the other
    // secrets must be hidden whole.
    const bool location = setting.info.key == "redis-url" || setting.info.key == "store";
    if (setting.info.secret && !location && setting.source == ferry::ops::Source::kFile) {
      auto raw = shared->values.find(setting.info.key);
      if (raw != shared->values.end() && raw->second.value.size() >= 12 &&
          raw->second.value.find("://") == std::string::npos) {
        Check(setting.value.find(raw->second.value) == std::string::npos,
              "a secret from the file is masked");
      }
    }
  }
  return 0;
}
