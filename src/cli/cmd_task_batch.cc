// `ferry task submit --batch FILE|-`: one task per line (JSON lines, the fields of
// POST /api/v1/tasks), validated as a whole before the first one is sent, then submitted through
// the service (Redis directly, or POST /api/v1/tasks/batch with --server) in batches of
// service::kMaxBatchTasks.
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
  std::vector<Json> tasks;    // each line's object, sent as it was written
  std::vector<size_t> lines;  // the 1-based line of each task
};

// Every non-blank line is one task. Any problem names its line and is kInvalidArgument (a usage
// error: exit 2), whatever the rule it broke.
Result<Parsed> ParseLines(const std::string& text, const BrokerOptions& options,
                          const std::string& name) {
  Parsed out;
  std::vector<SubmitRequest> requests;  // for the checks only
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
    if (out.tasks.size() == kMaxBatchFileTasks) {
      return Fail(where("more than " + std::to_string(kMaxBatchFileTasks) +
                        " tasks in one file; split it"));
    }
    auto json = ParseJson(line);
    if (!json) return Fail(where(json.error().message));
    auto req = service::ReadTaskSubmission(*json, now_ms, options, "");
    if (!req) return Fail(where(req.error().message));
    requests.push_back(std::move(*req));
    out.tasks.push_back(std::move(*json));
    out.lines.push_back(line_no);
  }
  if (out.tasks.empty()) {
    return Fail(ErrorCode::kInvalidArgument, name + " holds no tasks (one JSON object per line)");
  }
  auto line_name = [&](size_t i) { return name + " line " + std::to_string(out.lines[i]); };
  if (auto st = service::CheckBatchUniqueKeys(requests, line_name); !st) {
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

  auto svc = ctx.Service({});
  if (!svc) return out.Fail(svc.error());
  const auto& tasks = parsed->tasks;
  Json answer{{"tasks", Json::array()}, {"created", 0}, {"existing", 0}};
  // The ids on stdout (or the JSON answer), also for the lines sent before a later batch of lines
  // failed: without them tasks without a unique_key could not be told apart from a resend's.
  auto print_answer = [&]() {
    if (out.json()) return out.PrintJson(answer);
    std::string lines;
    for (const auto& t : answer["tasks"]) {
      lines += t["id"].get<std::string>() + (t["existing"].get<bool>() ? " (existing)" : "") + "\n";
    }
    out.Print(lines);
  };
  for (size_t begin = 0; begin < tasks.size(); begin += service::kMaxBatchTasks) {
    const size_t end = std::min(tasks.size(), begin + service::kMaxBatchTasks);
    Json body{{"tasks", Json::array()}};
    for (size_t i = begin; i < end; ++i) body["tasks"].push_back(tasks[i]);
    auto submitted = (*svc)->SubmitTasks(body);
    if (!submitted) {
      Error e = submitted.error();
      if (e.code == ErrorCode::kInvalidArgument) {
        // Checked here already, so a server with stricter limits refused it; tasks[i] in its
        // message is the i-th task of this batch of lines.
        e.message = "lines " + std::to_string(parsed->lines[begin]) + "-" +
                    std::to_string(parsed->lines[end - 1]) + ": " + e.message;
      }
      if (begin > 0) {
        e.message = "the tasks of lines 1-" + std::to_string(parsed->lines[begin - 1]) +
                    " were submitted (their ids are on stdout), the rest not: " + e.message +
                    " (tasks with a unique_key can be sent again safely)";
        return out.FailAfter(e, answer, print_answer);
      }
      return out.Fail(e);
    }
    for (auto& t : (*submitted)["tasks"]) answer["tasks"].push_back(std::move(t));
    answer["created"] = answer["created"].get<int64_t>() + (*submitted)["created"].get<int64_t>();
    answer["existing"] =
        answer["existing"].get<int64_t>() + (*submitted)["existing"].get<int64_t>();
  }
  print_answer();
  return kExitOk;
}

}  // namespace ferry::cli
