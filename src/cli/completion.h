// `ferry completion bash|zsh`: shell completion scripts generated from the CLI's own command
// table (the CLI11 App tree that cli.cc builds), so every command and flag completes without a
// second list to keep in step.
//
// Thread-safety: pure; reads the App tree only.
#pragma once

#include <string>
#include <string_view>

namespace CLI {
class App;
}  // namespace CLI

namespace ferry::cli {

// The script for `shell` ("bash" or "zsh"); "" for any other shell.
std::string CompletionScript(const CLI::App& app, std::string_view shell);

}  // namespace ferry::cli
