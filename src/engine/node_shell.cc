// The shell node: runs a program (argv, no shell involved) with a clean environment, captures
// its output, and fails when it exits non-zero. See node_kinds.h for what a kind file holds.
#include <string_view>
#include <utility>

#include "core/utf8.h"
#include "engine/node_kinds.h"
#include "process/process.h"

namespace ferry::engine {
namespace {

// The kernel takes argv, env and cwd as C strings: every run would fail (RunProcess refuses a
// NUL rather than cut the value short), so a literal one is refused at apply.
constexpr const char* kNulProblem =
    "holds a NUL byte (\\u0000), which a program's arguments, environment and working "
    "directory cannot carry";
bool HoldsNul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

NodeSpec Read(NodeFields& in) {
  auto& r = in.reader;
  const std::string& path = in.path;
  ShellSpec s;
  if (const auto* a = r.Get(in.fields, "argv")) {
    if (auto list = r.StringList(*a, path + ".argv", false)) {
      size_t i = 0;
      for (auto& [text, node] : *list) {
        const std::string at = path + ".argv[" + std::to_string(i++) + "]";
        if (HoldsNul(text)) r.Add(node, at, kNulProblem);
        r.Site(text, node.Mark(), at, in.index);
        s.argv.push_back(text);
      }
      if (s.argv.empty())
        r.Add(a->value, path + ".argv", "argv needs at least the program");
      else if (s.argv[0].empty())
        r.Add(a->value, path + ".argv", "argv[0] is empty");
    }
  } else {
    r.Add(in.node, path,
          "missing required field 'argv' (a list: program, then arguments; no shell "
          "is involved)");
  }
  if (const auto* e = r.Get(in.fields, "env")) {
    if (auto m = r.StringMap(*e, path + ".env", in.index)) s.env = std::move(*m);
    for (const auto& [name, value] : s.env) {
      if (auto problem = EnvNameProblem(name)) {
        r.Add(e->value, path + ".env",
              "'" + name + "' cannot name an environment variable: it " + *problem);
      }
      if (HoldsNul(value)) r.Add(e->value, path + ".env." + name, kNulProblem);
    }
  }
  if (const auto* c = r.Get(in.fields, "cwd")) {
    if (auto v = r.String(*c, path + ".cwd")) {
      if (HoldsNul(*v)) r.Add(c->value, path + ".cwd", kNulProblem);
      s.cwd = *v;
      r.Site(*v, c->value.Mark(), path + ".cwd", in.index);
    }
  }
  if (const auto* c = r.Get(in.fields, "stdin")) {
    if (auto v = r.String(*c, path + ".stdin")) {
      s.stdin_data = *v;
      r.Site(*v, c->value.Mark(), path + ".stdin", in.index);
    }
  }
  return s;
}

Json Canonical(const NodeSpec& spec) {
  const auto& s = std::get<ShellSpec>(spec);
  Json j{{"argv", s.argv}, {"env", StringMapJson(s.env)}};
  if (!s.cwd.empty()) j["cwd"] = s.cwd;
  if (!s.stdin_data.empty()) j["stdin"] = s.stdin_data;
  return j;
}

NodeResult Run(const NodeSpec& spec, NodeAttempt& a) {
  const auto& s = std::get<ShellSpec>(spec);
  ProcessSpec ps;
  for (const auto& arg : s.argv) {
    auto r = a.Render(arg);
    if (!r) return TemplateFail(r.error());
    ps.argv.push_back(std::move(*r));
  }
  // Ingestion refuses an empty literal program; one a template makes is known only now.
  if (!ps.argv.empty() && ps.argv[0].empty()) {
    return NodeFail(ErrorCode::kInvalidArgument,
                    "argv[0] ('" + s.argv[0] + "') rendered empty: no program to run", false);
  }
  auto env = a.Render(s.env);
  if (!env) return TemplateFail(env.error());
  ps.env = std::move(*env);
  // The worker's environment holds FERRY_SECRET_* values: never hand it to user programs.
  ps.clear_env = true;
  auto cwd = a.Render(s.cwd);
  if (!cwd) return TemplateFail(cwd.error());
  ps.cwd = std::move(*cwd);
  auto in = a.Render(s.stdin_data);
  if (!in) return TemplateFail(in.error());
  ps.stdin_data = std::move(*in);
  ps.max_output_bytes = a.options.max_output_bytes;
  ps.on_line = [&a](bool is_stderr, const std::string& line, size_t cut) {
    a.log(line, is_stderr ? "stderr" : "stdout", cut);
  };
  auto r = RunProcess(ps, a.stop);
  if (!r) {
    bool retry = r.error().code == ErrorCode::kInternal;
    return NodeFail(r.error(), retry);
  }
  if (r->stopped) return NodeFail(ErrorCode::kCancelled, "stopped", false);
  Json out{{"exit_code", r->exit_code}, {"stdout", r->stdout_text}, {"stderr", r->stderr_text}};
  if (r->signal != 0) out["signal"] = r->signal;
  if (r->stdout_truncated) out["stdout_truncated"] = true;
  if (r->stderr_truncated) out["stderr_truncated"] = true;
  if (auto j = ParseJson(r->stdout_text)) out["json"] = std::move(*j);
  if (r->exit_code != 0) {
    const std::string tail(Utf8Tail(r->stderr_text, 500));
    std::string why = r->signal != 0 ? "killed by signal " + std::to_string(r->signal)
                                     : "exit code " + std::to_string(r->exit_code);
    return NodeFail(ErrorCode::kInternal,
                    ps.argv[0] + ": " + why + (tail.empty() ? "" : ": " + tail), true,
                    std::move(out));
  }
  return out;
}

}  // namespace

const NodeKindDef& ShellNode() {
  static const NodeKindDef def{
      NodeKind::kShell, {"argv", "env", "cwd", "stdin"}, Read, Canonical, Run};
  return def;
}

}  // namespace ferry::engine
