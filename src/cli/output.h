// How commands print: human tables or JSON on stdout, messages and logs on stderr, and one
// mapping from Error to exit code (core/result.h ErrorExitCode).
//
// Thread-safety: an Output is used from the command's thread only.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "broker/broker.h"
#include "cli/table.h"
#include "core/json.h"
#include "core/result.h"

namespace ferry::cli {

// Exit codes (docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
// Redis, the store or the Ferry server cannot be reached or refused the credentials
// (kUnavailable, kUnauthenticated): retrying later may succeed.
inline constexpr int kExitUnavailable = 3;
// The request reached Redis and its answer was lost: it may have been done (OutcomeIsUnknown).
inline constexpr int kExitOutcomeUnknown = 4;

// The exit code of a failed command: ErrorExitCode of its code, or kExitOutcomeUnknown.
int ExitCodeOf(const Error& error);

// True when LC_ALL / LC_CTYPE / LANG (first one set) names a UTF-8 codeset.
bool LocaleIsUtf8();
// Box drawing unless --ascii or a non-UTF-8 locale; colour only for a terminal, never with
// NO_COLOR set, TERM=dumb or --no-color.
TableStyle TerminalStyle(bool ascii, bool no_color);

class Output {
 public:
  Output(bool json, TableStyle style) : json_(json), style_(style) {}
  bool json() const { return json_; }
  const TableStyle& style() const { return style_; }

  // stdout, with what a terminal would act on made visible (cli/terminal_text.h).
  void Print(const std::string& text) const;
  // stdout, pretty-printed JSON and a newline.
  void PrintJson(const Json& j) const;
  // stdout, one compact JSON document per line (streams such as `task events --follow`).
  void PrintJsonLine(const Json& j) const;
  // stdout as it is: text Ferry composed, with its own colours, whose parts from data already went
  // through TerminalSafe (a Table's cells do).
  void PrintComposed(const std::string& text) const;
  void PrintTable(const Table& t) const { PrintComposed(t.Render(style_)); }
  // stderr, "ferry: " + message, made visible as Print's text is.
  void Message(const std::string& text) const;

  // Reports `error` (stderr, and as {"error":{...}} on stdout with --json) and returns its exit
  // code.
  int Fail(const Error& error) const;
  int Fail(ErrorCode code, const std::string& message) const { return Fail(Error{code, message}); }
  // The same for a command that did part of its work: without --json `done` is printed first
  // as `print_done` shows it; with --json the one document is {"error":{...}} and done's fields.
  int FailAfter(const Error& error, const Json& done,
                const std::function<void()>& print_done) const;

 private:
  bool json_;
  TableStyle style_;
};

// Records as JSON: views/views.h (one shape for --json, the API and SSE).

// "12s", "3m04s"; "-" for 0 (not set).
std::string AgeSince(int64_t then_ms, int64_t now_ms);
// "2026-02-17 10:30:15 UTC", or "-" for 0.
std::string HumanTime(int64_t ms);
Color StatusColor(std::string_view status);

}  // namespace ferry::cli
