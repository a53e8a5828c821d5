#include "handlers/spec.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/mask.h"
#include "core/task_kinds.h"

namespace ferry::handlers {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool ValidKind(std::string_view kind) {
  return !kind.empty() && kind.size() <= 128 &&
         std::all_of(kind.begin(), kind.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == ':';
         });
}

// Words separated by white space (no quoting).
std::vector<std::string_view> SplitWords(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

bool ValidEnvName(std::string_view name) {
  return !name.empty() && !std::isdigit(static_cast<unsigned char>(name.front())) &&
         std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

// The declaration is quoted with its URL's credentials masked: the error reaches the terminal
// and the logs.
tl::unexpected<Error> Bad(std::string_view decl, const std::string& why) {
  return Fail(
      ErrorCode::kInvalidArgument,
      "handler '" + MaskUrlsInText(decl) + "': " + why +
          " (expected KIND=exec:PROGRAM [ARGS...] or KIND=http(s)://URL [secret-env=NAME])");
}

Result<HandlerSpec> ParseOne(std::string_view decl) {
  if (decl.find('\0') != std::string_view::npos) return Bad("...", "holds a NUL byte");
  size_t eq = decl.find('=');
  if (eq == std::string_view::npos) return Bad(decl, "no '='");
  HandlerSpec spec;
  spec.kind = std::string(Trim(decl.substr(0, eq)));
  if (!ValidKind(spec.kind)) {
    return Bad(decl, "kind must be 1-128 characters from A-Z a-z 0-9 _ - . :");
  }
  if (IsReservedKind(spec.kind)) {
    return Bad(decl, IsFerrysOwnKind(spec.kind)
                         ? "kinds starting with 'ferry.' are reserved for Ferry's own"
                         : "kind '" + spec.kind + "' is built in");
  }
  std::string_view target = Trim(decl.substr(eq + 1));
  if (target.rfind("exec:", 0) == 0) {
    spec.type = HandlerSpec::Type::kExec;
    for (std::string_view word : SplitWords(target.substr(5))) spec.argv.emplace_back(word);
    if (spec.argv.empty()) return Bad(decl, "exec: names no program");
    return spec;
  }
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
    spec.type = HandlerSpec::Type::kHttp;
    std::vector<std::string_view> words = SplitWords(target);
    spec.url = std::string(words.front());
    size_t host_start = spec.url.find("://") + 3;
    if (host_start >= spec.url.size() || spec.url[host_start] == '/') {
      return Bad(decl, "the URL names no host");
    }
    for (size_t w = 1; w < words.size(); ++w) {
      constexpr std::string_view kSecretEnv = "secret-env=";
      if (words[w].rfind(kSecretEnv, 0) != 0) {
        return Bad(decl, "unknown option '" + std::string(words[w]) +
                             "' after the URL (the only one is secret-env=NAME; a space in "
                             "the URL must be written %20)");
      }
      if (!spec.secret_env.empty()) return Bad(decl, "secret-env= is given twice");
      spec.secret_env = std::string(words[w].substr(kSecretEnv.size()));
      if (!ValidEnvName(spec.secret_env)) {
        return Bad(decl, "secret-env= wants an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
      }
    }
    return spec;
  }
  return Bad(decl, "the target must start with exec:, http:// or https://");
}

}  // namespace

bool IsReservedKind(std::string_view kind) {
  static const std::set<std::string_view> kBuiltIn = {"noop", "echo", "sleep", "fail", "shell"};
  return kBuiltIn.count(kind) != 0 || IsFerrysOwnKind(kind);
}

Result<std::vector<HandlerSpec>> ParseHandlerSpecs(std::string_view text) {
  std::vector<HandlerSpec> out;
  std::set<std::string> seen;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(";\n", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view decl = Trim(text.substr(start, end - start));
    start = end + 1;
    if (decl.empty()) continue;
    auto spec = ParseOne(decl);
    if (!spec) return Fail(spec.error());
    if (!seen.insert(spec->kind).second) {
      return Bad(decl, "kind '" + spec->kind + "' is declared twice");
    }
    out.push_back(std::move(*spec));
  }
  return out;
}

}  // namespace ferry::handlers
