#include "core/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/utf8.h"

namespace ferry {
namespace {

// LogLineText's work, appended to `dest` (a std::string, or spdlog's buffer as a line is
// formatted, so no line makes a copy of its message).
template <class Out>
void AppendLogText(std::string_view text, bool json, Out& dest) {
  const auto put = [&](std::string_view part) {
    dest.append(part.data(), part.data() + part.size());
  };
  static constexpr char kHex[] = "0123456789abcdef";
  auto hex_escape = [&](unsigned char c, std::string_view prefix) {
    put(prefix);
    dest.push_back(kHex[c >> 4]);
    dest.push_back(kHex[c & 0xF]);
  };
  while (!text.empty()) {
    const size_t valid = Utf8FirstInvalid(text).value_or(text.size());
    for (char ch : text.substr(0, valid)) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '\n') {
        put("\\n");
      } else if (c == '\r') {
        put("\\r");
      } else if (c == '\t') {
        put(json ? "\\t" : "\t");
      } else if (json && (c == '"' || c == '\\')) {
        dest.push_back('\\');
        dest.push_back(ch);
      } else if (c < 0x20 || (!json && c == 0x7f)) {
        hex_escape(c, json ? "\\u00" : "\\x");
      } else {
        dest.push_back(ch);
      }
    }
    if (valid == text.size()) break;
    if (json) {
      put("\\ufffd");
    } else {
      hex_escape(static_cast<unsigned char>(text[valid]), "\\x");
    }
    text.remove_prefix(valid + 1);
  }
}

// %j: the message for a JSON log line; %q: for a text one (AppendLogText).
template <bool kJson>
class LogLineMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendLogText(std::string_view(msg.payload.data(), msg.payload.size()), kJson, dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LogLineMessage>();
  }
};

}  // namespace

std::string LogLineText(std::string_view message, LogFormat format) {
  std::string out;
  out.reserve(message.size());
  AppendLogText(message, format == LogFormat::kJson, out);
  return out;
}

Result<LogFormat> ParseLogFormat(const std::string& text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return Fail(ErrorCode::kInvalidArgument, "log format must be text or json, not '" + text + "'");
}

Status InitLogging(const LogOptions& options) {
  auto level = spdlog::level::from_str(options.level);
  if (level == spdlog::level::off && options.level != "off") {
    return Fail(
        ErrorCode::kInvalidArgument,
        "log level must be trace, debug, info, warn, error or off, not '" + options.level + "'");
  }
  // Logs go to stderr so that command output on stdout stays machine-readable.
  auto logger = spdlog::stderr_color_mt("ferry");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (options.format == LogFormat::kJson) {
    formatter->add_flag<LogLineMessage<true>>('j').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","pid":%P,"thread":%t,"msg":"%j"})");
  } else {
    formatter->add_flag<LogLineMessage<false>>('q').set_pattern(
        "%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %q");
  }
  spdlog::set_formatter(std::move(formatter));
  return {};
}

}  // namespace ferry
