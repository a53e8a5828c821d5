#include "handlers/spec.h"

#include <algorithm>
#include <cctype>
#include <set>

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

tl::unexpected<Error> Bad(std::string_view decl, const std::string& why) {
  return Fail(ErrorCode::kInvalidArgument,
              "handler '" + std::string(decl) + "': " + why +
                  " (expected KIND=exec:PROGRAM [ARGS...] or KIND=http(s)://URL)");
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
  if (IsReservedKind(spec.kind)) return Bad(decl, "kind '" + spec.kind + "' is built in");
  std::string_view target = Trim(decl.substr(eq + 1));
  if (target.rfind("exec:", 0) == 0) {
    spec.type = HandlerSpec::Type::kExec;
    std::string_view rest = target.substr(5);
    size_t i = 0;
    while (i < rest.size()) {
      while (i < rest.size() && std::isspace(static_cast<unsigned char>(rest[i]))) ++i;
      size_t start = i;
      while (i < rest.size() && !std::isspace(static_cast<unsigned char>(rest[i]))) ++i;
      if (i > start) spec.argv.emplace_back(rest.substr(start, i - start));
    }
    if (spec.argv.empty()) return Bad(decl, "exec: names no program");
    return spec;
  }
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
    spec.type = HandlerSpec::Type::kHttp;
    spec.url = std::string(target);
    size_t host_start = spec.url.find("://") + 3;
    if (host_start >= spec.url.size() || spec.url[host_start] == '/') {
      return Bad(decl, "the URL names no host");
    }
    if (spec.url.find_first_of(" \t\r\n") != std::string::npos) {
      return Bad(decl, "the URL holds white space");
    }
    return spec;
  }
  return Bad(decl, "the target must start with exec:, http:// or https://");
}

}  // namespace

bool IsReservedKind(std::string_view kind) {
  static const std::set<std::string_view> kBuiltIn = {"noop", "echo", "sleep", "fail", "shell"};
  return kBuiltIn.count(kind) != 0 || kind.rfind("ferry.", 0) == 0;
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
