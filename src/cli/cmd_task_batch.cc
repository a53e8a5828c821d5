// `ferry task submit --batch FILE|-`: one task per line (JSON lines, the fields of
// POST /api/v1/tasks), validated as a whole before the first one is sent, then submitted in
// pipelined batches of service::kMaxBatchTasks.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "core/time_util.h"
#include "service/task_submission.h"

namespace ferry::cli {
namespace {

// Bounds on the input, so a wrong file (a disk image, /dev/zero) is refused instead of read
// into memory whole.
constexpr size_t kMaxBatchFileBytes = size_t{64} << 20;
constexpr size_t kMaxBatchFileTasks = 100'000;

// Reads all of `in` up to kMaxBatchFileBytes; more is an error.
Result<std::string> ReadBounded(std::istream& in, const std::string& name) {
  std::string text;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxBatchFileBytes) {
      return Fail(ErrorCode::kInvalidArgument, name + " is over the limit of " +
                                                   std::to_string(kMaxBatchFileBytes >> 20) +
                                                   " MiB; split it");
    }
  }
  if (in.bad()) return Fail(ErrorCode::kInvalidArgument, "cannot read " + name);
  return text;
}

struct Parsed {
  std::vector<SubmitRequest> requests;
  std::vector<size_t> lines;  // the 1-based line of each request
};

// Every non-blank line is one task. Any problem names its line and is kInvalidArgument (a usage
// error: exit 2), whatever the rule it broke.
Result<Parsed> ParseLines(const std::string& text, const BrokerOptions& options,
                          const std::string& name) {
  Parsed out;
  const int64_t now_ms = WallNowMs();
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto where = [&](const std::string& message) {
      return Error{ErrorCode::kInvalidArgument,
                   name + " line " + std::to_string(line_no) + ": " + message};
    };
    if (out.requests.size() == kMaxBatchFileTasks) {
      return Fail(where("more than " + std::to_string(kMaxBatchFileTasks) +
                        " tasks in one file; split it"));
    }
    auto json = ParseJson(line);
    if (!json) return Fail(where(json.error().message));
    auto req = service::ReadTaskSubmission(*json, now_ms, options, "");
    if (!req) return Fail(where(req.error().message));
    out.requests.push_back(std::move(*req));
    out.lines.push_back(line_no);
  }
  if (out.requests.empty()) {
    return Fail(ErrorCode::kInvalidArgument, name + " holds no tasks (one JSON object per line)");
  }
  auto line_name = [&](size_t i) { return name + " line " + std::to_string(out.lines[i]); };
  if (auto st = service::CheckBatchUniqueKeys(out.requests, line_name); !st) {
    return Fail(st.error());
  }
  return out;
}

}  // namespace

int RunTaskSubmitBatch(Context& ctx, const std::string& file) {
  const Output& out = ctx.out();
  const std::string name = file == "-" ? std::string("stdin") : file;
  Result<std::string> text = std::string();
  if (file == "-") {
    text = ReadBounded(std::cin, name);
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) return out.Fail(ErrorCode::kInvalidArgument, "cannot open " + file);
    text = ReadBounded(in, name);
  }
  if (!text) return out.Fail(text.error());
  auto parsed = ParseLines(*text, ctx.config().broker, name);
  if (!parsed) return out.Fail(parsed.error());

  auto broker = ctx.Connect();
  if (!broker) return out.Fail(broker.error());
  const auto& requests = parsed->requests;
  std::vector<SubmitResult> results;
  results.reserve(requests.size());
  for (size_t begin = 0; begin < requests.size(); begin += service::kMaxBatchTasks) {
    const size_t end = std::min(requests.size(), begin + service::kMaxBatchTasks);
    std::vector<SubmitRequest> chunk(requests.begin() + static_cast<std::ptrdiff_t>(begin),
                                     requests.begin() + static_cast<std::ptrdiff_t>(end));
    auto submitted = (*broker)->SubmitBatch(chunk);
    if (!submitted) {
      Error e = submitted.error();
      if (begin > 0) {
        e.message = "the tasks of lines 1-" + std::to_string(parsed->lines[begin - 1]) +
                    " were submitted, the rest not: " + e.message +
                    " (tasks with a unique_key can be sent again safely)";
      }
      return out.Fail(e);
    }
    results.insert(results.end(), submitted->begin(), submitted->end());
  }
  if (out.json()) {
    out.PrintJson(service::BatchAnswer(results));
    return kExitOk;
  }
  std::string lines;
  for (const auto& r : results) lines += r.id + (r.existing ? " (existing)" : "") + "\n";
  out.Print(lines);
  return kExitOk;
}

}  // namespace ferry::cli
