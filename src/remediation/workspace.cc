#include "remediation/workspace.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

#include "core/crypto.h"
#include "core/utf8.h"
#include "engine/ingest.h"

namespace ferry::remediation {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 5> kClasses = {
    "workflow_fixable", "node_workaround", "runtime_or_platform", "external_dependency", "unknown"};
constexpr size_t kMaxClassificationBytes = 64 * 1024;
constexpr size_t kMaxNoteBytes = 256 * 1024;
constexpr size_t kMaxSourceBytes = 1 << 20;
constexpr size_t kMaxSummaryBytes = 4000;
// Owns one file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct DirCloser {
  void operator()(DIR* d) const noexcept {
    if (d != nullptr) ::closedir(d);
  }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

tl::unexpected<Error> Broken(std::string why) {
  return Fail(ErrorCode::kInvalidArgument, std::move(why));
}

Status WriteFile(const std::string& path, std::string_view text) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    return Fail(ErrorCode::kInternal, "cannot create " + path + ": " + std::strerror(errno));
  }
  size_t off = 0;
  while (off < text.size()) {
    ssize_t w = ::write(fd.get(), text.data() + off, text.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorCode::kInternal, "cannot write " + path + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(w);
  }
  return {};
}

// Reads a regular file without following a symlink, up to max bytes.
Result<std::string> ReadFile(const std::string& path, const std::string& name, size_t max) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ELOOP) return Broken(name + " is a symbolic link");
    if (errno == ENOENT) return Broken(name + " is missing");
    return Broken("cannot read " + name + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return Broken(name + " is not a regular file");
  if (static_cast<size_t>(st.st_size) > max) {
    return Broken(name + " is " + std::to_string(st.st_size) + " bytes; the limit is " +
                  std::to_string(max));
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t off = 0;
  while (off < out.size()) {
    ssize_t r = ::read(fd.get(), out.data() + off, out.size() - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    off += static_cast<size_t>(r);
  }
  out.resize(off);
  return out;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

}  // namespace

bool IsClassification(std::string_view c) {
  for (auto k : kClasses) {
    if (c == k) return true;
  }
  return false;
}

bool IsFixable(std::string_view c) { return c == kClasses[0] || c == kClasses[1]; }

std::string WorkflowFileName(std::string_view format) {
  return format == "json" ? "workflow.json" : "workflow.yaml";
}

Result<std::string> CreateWorkspace(const std::string& root, const std::string& candidate_id,
                                    const WorkspaceFiles& files) {
  std::string base = root;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp";
  }
  std::error_code ec;
  fs::create_directories(base, ec);
  std::string tmpl = (fs::path(base) / ("ferry-remediation-" + candidate_id + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Fail(ErrorCode::kUnavailable,
                "cannot create a workspace under " + base + ": " + std::strerror(errno));
  }
  const std::string dir = fs::absolute(tmpl, ec).lexically_normal().string();
  const fs::path d(dir);
  auto write = [&](std::string_view name, std::string_view text) {
    return WriteFile((d / std::string(name)).string(), text);
  };
  Status st = write(files.workflow_file, files.source);
  if (st) st = write(kFailureFile, DumpJson(files.failure, 2) + "\n");
  if (st) st = write(kEventsFile, DumpJson(files.events, 2) + "\n");
  if (st) st = write(kInstructionsFile, InstructionsText(files.workflow_file));
  if (!st) {
    RemoveWorkspace(dir);
    return Fail(st.error());
  }
  return dir;
}

void RemoveWorkspace(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

std::string InstructionsText(std::string_view workflow_file) {
  const std::string wf(workflow_file);
  return "# A Ferry workflow run failed: classify it, and fix the workflow if it can be fixed\n"
         "\n"
         "This directory is your workspace and the only place you may write. It holds:\n"
         "\n"
         "- `" +
         wf +
         "`: the source of the workflow version whose run failed. Values that\n"
         "  looked secret are replaced by `[REDACTED...]`; `{{ secrets.NAME }}` references are\n"
         "  kept as they are.\n"
         "- `failure.json`: the failed run, the node that failed, the error (as written and\n"
         "  normalized), how often this failure was seen, and the run's inputs (redacted).\n"
         "- `events.json`: the run's most recent events (redacted).\n"
         "- `instructions.md`: this file.\n"
         "\n"
         "## What you must write\n"
         "\n"
         "1. `classification.json`, a JSON object:\n"
         "   - `classification`: one of `workflow_fixable` (the workflow definition is wrong),\n"
         "     `node_workaround` (a node can be changed to avoid the failure), "
         "`runtime_or_platform`\n"
         "     (the worker, the host or Ferry itself), `external_dependency` (a service or\n"
         "     network the workflow calls), `unknown`;\n"
         "   - `summary`: one or two sentences (at most 4000 bytes);\n"
         "   - `confidence`: a number from 0 to 1.\n"
         "2. `developer_note.md`: what failed, why, and what a person should do (Markdown, not\n"
         "   empty, at most 256 KiB).\n"
         "3. Only when the classification is `workflow_fixable` or `node_workaround`: edit `" +
         wf +
         "` in place with the fix. Keep the workflow's `name`. Keep secrets as\n"
         "   `{{ secrets.NAME }}` references and remove no `[REDACTED...]` placeholder by\n"
         "   guessing its value: a source that still holds a placeholder is rejected. For every\n"
         "   other classification, leave `" +
         wf +
         "` unchanged.\n"
         "\n"
         "## Rules\n"
         "\n"
         "- Create no other file and no directory, and no symbolic link. Any of those, a missing\n"
         "  or malformed artifact, a fixable classification with an unchanged workflow, or a\n"
         "  changed workflow with another classification makes the attempt fail.\n"
         "- An edited workflow must pass the same validation as `ferry workflow apply`.\n"
         "- Exit with status 0 when you are done. A non-zero status, or running past the time\n"
         "  limit, fails the attempt; the time limit kills every process you started.\n";
}

Result<Artifacts> ReadArtifacts(const std::string& dir, const std::string& workflow_file,
                                const std::string& original_source) {
  const std::set<std::string> allowed = {std::string(kClassificationFile), std::string(kNoteFile),
                                         std::string(kFailureFile),        std::string(kEventsFile),
                                         std::string(kInstructionsFile),   workflow_file};
  DirPtr d(::opendir(dir.c_str()));
  if (!d) return Broken("cannot list the workspace: " + std::string(std::strerror(errno)));
  std::set<std::string> present;
  while (dirent* e = ::readdir(d.get())) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(::dirfd(d.get()), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return Broken("cannot inspect " + name);
    }
    if (S_ISLNK(st.st_mode)) return Broken(name + " is a symbolic link");
    if (S_ISDIR(st.st_mode)) return Broken("unexpected directory " + name);
    if (!S_ISREG(st.st_mode)) return Broken(name + " is not a regular file");
    if (allowed.count(name) == 0) return Broken("unexpected file " + name);
    present.insert(name);
  }
  const fs::path base(dir);
  auto read = [&](std::string_view name, size_t max) {
    return ReadFile((base / std::string(name)).string(), std::string(name), max);
  };
  Artifacts out;
  auto cls_text = read(kClassificationFile, kMaxClassificationBytes);
  if (!cls_text) return Fail(cls_text.error());
  auto cls = ParseJson(*cls_text);
  if (!cls) return Broken("classification.json is not JSON: " + cls.error().message);
  if (!cls->is_object()) return Broken("classification.json must be a JSON object");
  const Json& c = *cls;
  if (!c.contains("classification") || !c["classification"].is_string()) {
    return Broken("classification.json: \"classification\" (a string) is missing");
  }
  out.classification = c["classification"].get<std::string>();
  if (!IsClassification(out.classification)) {
    return Broken("classification.json: \"" + out.classification +
                  "\" is not one of workflow_fixable, node_workaround, runtime_or_platform, "
                  "external_dependency, unknown");
  }
  if (!c.contains("summary") || !c["summary"].is_string() ||
      Trimmed(c["summary"].get<std::string>()).empty()) {
    return Broken("classification.json: \"summary\" (a non-empty string) is missing");
  }
  out.summary = Trimmed(c["summary"].get<std::string>());
  if (out.summary.size() > kMaxSummaryBytes) {
    return Broken("classification.json: \"summary\" is over 4000 bytes");
  }
  if (!c.contains("confidence") || !c["confidence"].is_number()) {
    return Broken("classification.json: \"confidence\" (a number from 0 to 1) is missing");
  }
  const double conf = c["confidence"].get<double>();
  if (!std::isfinite(conf) || conf < 0 || conf > 1) {
    return Broken("classification.json: \"confidence\" must be from 0 to 1");
  }
  out.confidence = DumpJson(c["confidence"]);
  out.hashes[std::string(kClassificationFile)] = Sha256Hex(*cls_text);

  auto note = read(kNoteFile, kMaxNoteBytes);
  if (!note) return Fail(note.error());
  if (Trimmed(*note).empty()) return Broken("developer_note.md is empty");
  // Kept as written and shown as text (console, API, CLI): bytes that are not text are refused
  // rather than stored raw or replaced.
  if (auto bad = Utf8FirstInvalid(*note)) {
    return Broken("developer_note.md is not UTF-8 text (byte " + std::to_string(*bad) + ")");
  }
  if (auto nul = note->find('\0'); nul != std::string::npos) {
    return Broken("developer_note.md holds a NUL byte (byte " + std::to_string(nul) + ")");
  }
  out.note = *note;
  out.hashes[std::string(kNoteFile)] = Sha256Hex(*note);

  auto source = read(workflow_file, kMaxSourceBytes);
  if (!source) return Fail(source.error());
  const bool changed = *source != original_source;
  if (changed) {
    out.edited_source = *source;
    out.hashes[workflow_file] = Sha256Hex(*source);
  }
  if (IsFixable(out.classification) && !changed) {
    return Broken("classified " + out.classification + " but " + workflow_file +
                  " was not changed");
  }
  if (!IsFixable(out.classification) && changed) {
    return Broken("classified " + out.classification + " (not a fixable class) but " +
                  workflow_file + " was changed");
  }
  return out;
}

}  // namespace ferry::remediation
