// What the agent can reach: a real bubblewrap sandbox around a real agent process. The store
// file is masked even under a readable path, nothing outside the workspace is writable, no other
// process's environment is visible; the workspace, the agent's environment and the stored
// candidate hold no secret value.
#include "remediation/sandbox.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/ids.h"
#include "engine/secrets.h"
#include "files.h"
#include "fixture.h"
#include "remediation/view.h"

namespace ferry::testing {
namespace {

namespace fs = std::filesystem;

bool Has(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

// Skips when bubblewrap is not installed (scripts/setup.sh installs it); fails when it is
// installed but cannot make a sandbox, since then remediation would silently run unsandboxed.
#define REQUIRE_SANDBOX()                                                     \
  do {                                                                        \
    const auto& probe = remediation::ProbeSandbox();                          \
    if (probe.program.empty()) GTEST_SKIP() << "bubblewrap is not installed"; \
    ASSERT_TRUE(probe.works) << probe.detail;                                 \
  } while (0)

using SandboxTest = RemediationTest;
using SandboxMountTest = RemediationTest;

TEST_P(SandboxMountTest, TheAgentCannotReadTheStoreOrWriteOutsideItsWorkspace) {
  REQUIRE_SANDBOX();
  Workflow wf = Apply("name: wf\nnodes:\n  a:\n    kind: fail\n    message: x\n");
  Capture(FailRun(wf, "a", "boom"));
  Remediation claimed = ClaimOne();
  const std::string dir = dir_.path().string();
  std::ofstream(dir_.path() / "marker.txt") << "visible";
  const std::string token = RandomHex(6);
  const std::string probe = Script("probe.sh", R"sh(
dir="$2"
{
  printf 'marker=%s\n' "$(cat "$dir/marker.txt" 2>&1)"
  printf 'store_bytes=%s\n' "$(cat "$dir/ferry.db" 2>/dev/null | wc -c)"
  if echo escaped >"$dir/escape.txt" 2>/dev/null; then echo outside=written; else echo outside=refused; fi
  echo escaped >"/tmp/ferry-escape-$3" 2>/dev/null || true
  printf 'environ_hits=%s\n' "$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | grep -c "$3" || true)"
  printf 'home=%s\n' "$HOME"
} >developer_note.md
printf '{"classification": "unknown", "summary": "probe", "confidence": 0}' >classification.json
)sh");
  ::setenv("FERRY_SANDBOX_TEST_TOKEN", token.c_str(), 1);  // in this process's environment
  auto s = Settings({probe, "{workspace}", dir, token});
  s.sandbox = remediation::SandboxMode::kBwrap;
  s.agent_read_paths = {dir};  // the store's directory is readable on purpose
  auto out = Attempt(claimed, s);
  ::unsetenv("FERRY_SANDBOX_TEST_TOKEN");
  const Remediation& m = out.remediation;
  ASSERT_EQ(m.status, RemediationStatus::kNoteOnly) << m.reason;
  EXPECT_TRUE(Has(m.note, "marker=visible")) << m.note;  // the directory really is readable
  EXPECT_TRUE(fs::file_size(location_) > 0);
  EXPECT_TRUE(Has(m.note, "store_bytes=0")) << m.note;  // ... and the store file is masked
  EXPECT_TRUE(Has(m.note, "outside=refused")) << m.note;
  EXPECT_FALSE(fs::exists(dir_.path() / "escape.txt"));
  EXPECT_FALSE(fs::exists("/tmp/ferry-escape-" + token));
  EXPECT_TRUE(Has(m.note, "environ_hits=0")) << m.note;
  EXPECT_TRUE(Has(m.note, "home=" + (dir_.path() / "workspaces").string())) << m.note;
}

TEST_P(SandboxTest, NoSecretValueReachesTheWorkspaceTheAgentOrTheStore) {
  const std::string token = "tok-" + RandomHex(12);
  const std::string input_password = "inpw-" + RandomHex(8);
  const std::string bearer = "bearer" + RandomHex(8);
  const std::string pem_body = "MIIB" + RandomHex(16);
  const std::string api_key = RandomHex(20);
  ::setenv("FERRY_SECRET_API_TOKEN", token.c_str(), 1);
  ::setenv("AGENT_VISIBLE", "yes-visible", 1);
  Workflow wf = Apply(R"(name: leaky
secrets: [API_TOKEN]
nodes:
  call:
    kind: shell
    argv: [sh, -c, 'echo "$T" >&2; exit 3']
    env:
      T: "{{ secrets.API_TOKEN }}"
)");
  const std::string error = "call: exit code 3: " + token + " api_key=" + api_key;
  const std::string inputs = DumpJson(Json{
      {"password", input_password}, {"note", "Authorization: Bearer " + bearer}, {"who", "Ada"}});
  ferry::Run run = FailRun(wf, "call", error, inputs);
  ASSERT_TRUE(store_->AppendRunEvent(
      run.id, "node.finished",
      DumpJson(Json{{"node", "call"},
                    {"output",
                     {{"stderr", token + "\n-----BEGIN PRIVATE KEY-----\n" + pem_body +
                                     "\n-----END PRIVATE KEY-----\n"}}}})));
  engine::EnvSecretResolver resolver;
  Capture(run, &resolver);
  Remediation claimed = ClaimOne();
  const std::string dump = Script("dump.sh", R"(
env >env.txt
tr '\0' '\n' </proc/self/environ >environ.txt
printf '{"classification": "unknown", "summary": "dump", "confidence": 0}' >classification.json
printf 'dumped\n' >developer_note.md
)");
  auto s = Settings({dump, "{workspace}"});
  s.keep_workspaces = true;
  s.agent_env = {"AGENT_VISIBLE", "NOT_SET_ANYWHERE"};
  remediation::AttemptOptions o;
  o.settings = s;
  o.owner = claimed.claim_owner;
  o.secrets = &resolver;
  auto r = remediation::RunAttempt(*store_, *broker_, claimed, o, {});
  ::unsetenv("FERRY_SECRET_API_TOKEN");
  ::unsetenv("AGENT_VISIBLE");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_FALSE(r->workspace.empty());
  EXPECT_EQ(r->remediation.status, RemediationStatus::kFailed);  // env.txt is not an artifact
  EXPECT_TRUE(Has(r->remediation.reason, "unexpected file")) << r->remediation.reason;

  std::vector<std::string> secrets = {token, input_password, bearer, pem_body, api_key};
  if (GetParam() == "postgres") secrets.push_back("ferry-test-pw");  // the store's password
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(r->workspace)) {
    files[e.path().filename().string()] = ReadAll(e.path());
  }
  ASSERT_TRUE(files.count("env.txt") && files.count("environ.txt") && files.count("failure.json"));
  EXPECT_TRUE(Has(files["env.txt"], "AGENT_VISIBLE=yes-visible"));  // the dump works
  EXPECT_FALSE(Has(files["env.txt"], "FERRY_SECRET_"));
  EXPECT_FALSE(Has(files["env.txt"], "FERRY_STORE"));
  EXPECT_TRUE(Has(files["workflow.yaml"], "{{ secrets.API_TOKEN }}"));  // references stay
  EXPECT_TRUE(Has(files["failure.json"], "[REDACTED"));
  for (const auto& [name, text] : files) {
    for (const auto& secret : secrets) {
      EXPECT_FALSE(Has(text, secret)) << name << " holds " << secret;
    }
  }
  auto stored = store_->GetRemediation(claimed.id);
  ASSERT_TRUE(stored && *stored);
  const std::string record = DumpJson(remediation::CandidateDetailJson(**stored, {}));
  for (const auto& secret : secrets) EXPECT_FALSE(Has(record, secret)) << secret;
  fs::remove_all(r->workspace);
}

INSTANTIATE_TEST_SUITE_P(Backends, SandboxTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& param_info) { return param_info.param; });
// The store file's mask is checked on SQLite (a PostgreSQL store has no file).
INSTANTIATE_TEST_SUITE_P(Backends, SandboxMountTest, ::testing::Values("sqlite"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace ferry::testing
