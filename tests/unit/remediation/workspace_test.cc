#include "remediation/workspace.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "files.h"
#include "harness.h"

namespace ferry::remediation {
namespace {

namespace fs = std::filesystem;
using ferry::testing::ReadAll;
using ferry::testing::TempDir;

const char* kSource = "name: wf\nnodes:\n  a:\n    kind: shell\n    argv: [ehco, hi]\n";

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WorkspaceFiles f;
    f.workflow_file = "workflow.yaml";
    f.source = kSource;
    f.failure = Json{{"error", "x"}};
    f.events = Json::array();
    auto ws = CreateWorkspace(root_.path().string(), "01ABC", f);
    ASSERT_TRUE(ws) << ws.error().message;
    ws_ = *ws;
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(fs::path(ws_) / name) << text;
  }
  void Valid(const std::string& cls = "external_dependency") {
    Write("classification.json",
          R"({"classification": ")" + cls + R"(", "summary": "s", "confidence": 0.5})");
    Write("developer_note.md", "# note\n");
  }
  std::string Why() {
    auto a = ReadArtifacts(ws_, "workflow.yaml", kSource);
    EXPECT_FALSE(a);
    if (a) return "";
    EXPECT_EQ(a.error().code, ErrorCode::kInvalidArgument);
    return a.error().message;
  }

  TempDir root_;
  std::string ws_;
};

TEST_F(WorkspaceTest, CreatesTheInputsPrivately) {
  struct stat st {};
  ASSERT_EQ(::stat(ws_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const char* f : {"workflow.yaml", "failure.json", "events.json", "instructions.md"}) {
    EXPECT_TRUE(fs::exists(fs::path(ws_) / f)) << f;
  }
  std::string text = ReadAll(fs::path(ws_) / "instructions.md");
  for (const char* must : {"classification.json", "developer_note.md", "workflow_fixable",
                           "node_workaround", "runtime_or_platform", "external_dependency",
                           "unknown", "confidence", "symbolic link", "workflow.yaml"}) {
    EXPECT_NE(text.find(must), std::string::npos) << must;
  }
  RemoveWorkspace(ws_);
  EXPECT_FALSE(fs::exists(ws_));
}

TEST_F(WorkspaceTest, NoteOnlyAndFixableArtifacts) {
  Valid();
  auto a = ReadArtifacts(ws_, "workflow.yaml", kSource);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->classification, "external_dependency");
  EXPECT_EQ(a->confidence, "0.5");
  EXPECT_FALSE(a->edited_source);
  EXPECT_EQ(a->hashes.size(), 2u);

  Valid("workflow_fixable");
  Write("workflow.yaml", "name: wf\nnodes:\n  a:\n    kind: shell\n    argv: [echo, hi]\n");
  a = ReadArtifacts(ws_, "workflow.yaml", kSource);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(a->edited_source);
  EXPECT_EQ(a->hashes.size(), 3u);
}

TEST_F(WorkspaceTest, ExtraFileDirectorySymlinkAndFifoFail) {
  Valid();
  Write("env.txt", "x");
  EXPECT_NE(Why().find("unexpected file env.txt"), std::string::npos);
  fs::remove(fs::path(ws_) / "env.txt");
  fs::create_directory(fs::path(ws_) / "sub");
  EXPECT_NE(Why().find("unexpected directory sub"), std::string::npos);
  fs::remove(fs::path(ws_) / "sub");
  // A symlink, even under an allowed name.
  fs::remove(fs::path(ws_) / "developer_note.md");
  fs::create_symlink("/etc/passwd", fs::path(ws_) / "developer_note.md");
  EXPECT_NE(Why().find("developer_note.md is a symbolic link"), std::string::npos);
  fs::remove(fs::path(ws_) / "developer_note.md");
  Write("developer_note.md", "n");
  ASSERT_EQ(::mkfifo((fs::path(ws_) / "pipe").c_str(), 0600), 0);
  EXPECT_NE(Why().find("pipe is not a regular file"), std::string::npos);
}

TEST_F(WorkspaceTest, MalformedClassification) {
  Write("developer_note.md", "n");
  EXPECT_NE(Why().find("classification.json is missing"), std::string::npos);
  Write("classification.json", "{not json");
  EXPECT_NE(Why().find("not JSON"), std::string::npos);
  Write("classification.json", "[]");
  EXPECT_NE(Why().find("JSON object"), std::string::npos);
  Write("classification.json", R"({"classification": "fixable", "summary": "s", "confidence": 1})");
  EXPECT_NE(Why().find("is not one of"), std::string::npos);
  Write("classification.json", R"({"classification": "unknown", "summary": " ", "confidence": 1})");
  EXPECT_NE(Why().find("summary"), std::string::npos);
  Write("classification.json",
        R"({"classification": "unknown", "summary": "s", "confidence": 1.0001})");
  EXPECT_NE(Why().find("from 0 to 1"), std::string::npos);
  Write("classification.json",
        R"({"classification": "unknown", "summary": "s", "confidence": "1"})");
  EXPECT_NE(Why().find("confidence"), std::string::npos);
  Write("classification.json", R"({"classification": "unknown", "summary": "s", "confidence": 1})");
  ASSERT_TRUE(ReadArtifacts(ws_, "workflow.yaml", kSource));
  Write("developer_note.md", " \n\t");
  EXPECT_NE(Why().find("developer_note.md is empty"), std::string::npos);
  Write("developer_note.md", std::string(256 * 1024 + 1, 'x'));
  EXPECT_NE(Why().find("limit"), std::string::npos);
  // Not text: refused, not stored raw (nor with the bytes replaced).
  Write("developer_note.md", "caf\xc3\xa9 ok\n\xff here");
  EXPECT_EQ(Why(), "developer_note.md is not UTF-8 text (byte 9)");
  Write("developer_note.md", std::string("a\0b", 3));
  EXPECT_EQ(Why(), "developer_note.md holds a NUL byte (byte 1)");
  Write("developer_note.md", "caf\xc3\xa9 \xe2\x9c\x93\n");  // UTF-8 throughout: read
  EXPECT_TRUE(ReadArtifacts(ws_, "workflow.yaml", kSource));
}

TEST_F(WorkspaceTest, ClassificationMustMatchTheAction) {
  Valid("node_workaround");
  EXPECT_NE(Why().find("was not changed"), std::string::npos);
  Valid("unknown");
  Write("workflow.yaml", "name: wf\n");
  EXPECT_NE(Why().find("not a fixable class"), std::string::npos);
  fs::remove(fs::path(ws_) / "workflow.yaml");
  EXPECT_NE(Why().find("workflow.yaml is missing"), std::string::npos);
}

}  // namespace
}  // namespace ferry::remediation
