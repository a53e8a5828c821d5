#include "cli/output.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "cli/terminal_text.h"
#include "core/json_fields.h"
#include "core/time_util.h"

namespace ferry::cli {

bool LocaleIsUtf8() {
  for (const char* var : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* v = std::getenv(var);
    if (v == nullptr || *v == '\0') continue;
    std::string s(v);
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s.find("utf-8") != std::string::npos || s.find("utf8") != std::string::npos;
  }
  return false;
}

TableStyle TerminalStyle(bool ascii, bool no_color) {
  TableStyle style;
  style.unicode = !ascii && LocaleIsUtf8();
  const char* nc = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  style.color = !no_color && ::isatty(STDOUT_FILENO) == 1 && (nc == nullptr || *nc == '\0') &&
                (term == nullptr || std::string(term) != "dumb");
  return style;
}

namespace {

void Write(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void Output::Print(const std::string& text) const { Write(TerminalSafe(text)); }

void Output::PrintComposed(const std::string& text) const { Write(text); }

// JSON is for programs, and escapes what a terminal would act on: written as it is.
void Output::PrintJson(const Json& j) const { Write(DumpJson(j, 2) + "\n"); }

void Output::PrintJsonLine(const Json& j) const { Write(DumpJson(j) + "\n"); }

void Output::Message(const std::string& text) const {
  std::fflush(stdout);
  std::string line = "ferry: " + TerminalSafe(text) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

int ExitCodeOf(const Error& error) {
  return OutcomeIsUnknown(error) ? kExitOutcomeUnknown : ErrorExitCode(error.code);
}

int Output::Fail(const Error& error) const {
  Message(error.message);
  if (json_) {
    PrintJson(ErrorJson(error));
  }
  return ExitCodeOf(error);
}

int Output::FailAfter(const Error& error, const Json& done,
                      const std::function<void()>& print_done) const {
  if (!json_) {
    print_done();
    return Fail(error);
  }
  Message(error.message);
  Json j = ErrorJson(error);
  for (const auto& [key, value] : done.items()) j[key] = value;
  PrintJson(j);
  return ExitCodeOf(error);
}

std::string AgeSince(int64_t then_ms, int64_t now_ms) {
  if (then_ms == 0) return "-";
  return FormatDuration(std::chrono::milliseconds(std::max<int64_t>(0, now_ms - then_ms)));
}

std::string HumanTime(int64_t ms) { return ms == 0 ? "-" : FormatHumanUtc(ms); }

Color StatusColor(std::string_view status) {
  if (status == "succeeded" || status == "running") return Color::kGreen;
  if (status == "failed" || status == "dead") return Color::kRed;
  if (status == "retrying" || status == "draining" || status == "cancelled") return Color::kYellow;
  if (status == "scheduled" || status == "pending") return Color::kBlue;
  return Color::kNone;
}

}  // namespace ferry::cli
