#include "remediation/settings.h"

#include <gtest/gtest.h>

#include <map>

#include "remediation/attempt.h"

namespace ferry::remediation {
namespace {

EnvLookup Env(std::map<std::string, std::string> m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

TEST(SettingsTest, Defaults) {
  auto s = ResolveSettings({}, Env({}));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_FALSE(s->enabled);
  EXPECT_TRUE(s->dry_run);
  EXPECT_EQ(s->scan_interval, std::chrono::seconds(60));
  EXPECT_EQ(s->max_concurrent, 1);
  EXPECT_EQ(s->unknown_load, UnknownLoad::kSkip);
  EXPECT_FALSE(s->retry_after_fix);
  EXPECT_TRUE(s->agent_argv.empty());
  EXPECT_EQ(s->sandbox, SandboxMode::kAuto);
  EXPECT_EQ(s->attempt_cap, 3);
  EXPECT_FALSE(s->agent_network);
}

TEST(SettingsTest, FlagBeatsEnvAndEnvBeatsDefault) {
  auto s = ResolveSettings({{"remediation-max-concurrent", "3"}},
                           Env({{"FERRY_REMEDIATION_MAX_CONCURRENT", "2"},
                                {"FERRY_REMEDIATION_ENABLED", "yes"},
                                {"FERRY_REMEDIATION_DRY_RUN", "false"},
                                {"FERRY_REMEDIATION_UNKNOWN_LOAD", "allow"},
                                {"FERRY_REMEDIATION_AGENT", "agent --dir '{workspace}' \"a b\""},
                                {"FERRY_REMEDIATION_AGENT_ENV", "OPENAI_API_KEY, HTTPS_PROXY"},
                                {"FERRY_REMEDIATION_AGENT_TIMEOUT", "90s"}}));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->max_concurrent, 3);
  EXPECT_TRUE(s->enabled);
  EXPECT_FALSE(s->dry_run);
  EXPECT_EQ(s->unknown_load, UnknownLoad::kAllow);
  EXPECT_EQ(s->agent_argv, (std::vector<std::string>{"agent", "--dir", "{workspace}", "a b"}));
  EXPECT_EQ(s->agent_env, (std::vector<std::string>{"OPENAI_API_KEY", "HTTPS_PROXY"}));
  EXPECT_EQ(s->agent_timeout, std::chrono::seconds(90));
}

TEST(SettingsTest, BadValuesNameTheirSource) {
  auto bad = [](std::map<std::string, std::string> flags, std::map<std::string, std::string> env,
                const std::string& needle) {
    auto s = ResolveSettings(flags, Env(env));
    ASSERT_FALSE(s) << needle;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(s.error().message.find(needle), std::string::npos) << s.error().message;
  };
  bad({}, {{"FERRY_REMEDIATION_ENABLED", "maybe"}}, "FERRY_REMEDIATION_ENABLED");
  bad({{"remediation-max-concurrent", "65"}}, {}, "--remediation-max-concurrent");
  bad({{"remediation-max-concurrent", "0"}}, {}, "1..64");
  bad({{"remediation-attempt-cap", "101"}}, {}, "--remediation-attempt-cap");
  bad({{"remediation-idle-load", "-0.1"}}, {}, "--remediation-idle-load");
  bad({{"remediation-idle-load", "nan"}}, {}, "--remediation-idle-load");
  bad({{"remediation-agent-timeout", "500ms"}}, {}, "at least");
  bad({{"remediation-unknown-load", "sometimes"}}, {}, "skip or allow");
  bad({{"remediation-sandbox", "docker"}}, {}, "auto, bwrap or none");
  bad({{"remediation-agent-env", "FERRY_SECRET_X"}}, {}, "never handed");
  bad({{"remediation-agent-env", "FERRY_STORE"}}, {}, "never handed");
  bad({{"remediation-agent-env", "1BAD"}}, {}, "not a variable name");
  bad({{"remediation-agent-read-paths", "relative/path"}}, {}, "absolute");
  bad({{"remediation-agent", "agent 'unterminated"}}, {}, "unterminated quote");
  bad({{"remediation-agent", "[1, 2]"}}, {}, "string");
  bad({{"remediation-workspace-dir", "tmp"}}, {}, "absolute");
  // Limits themselves are accepted.
  EXPECT_TRUE(ResolveSettings({{"remediation-max-concurrent", "64"}}, Env({})));
  EXPECT_TRUE(ResolveSettings({{"remediation-attempt-cap", "1"}}, Env({})));
}

// A setting that would fail every attempt is refused where the scheduler (or ferry dev) starts,
// naming it: an agent program not on the agents' PATH, a workspace directory that is none. With
// remediation off, or without an agent (candidates are only recorded), nothing is checked.
TEST(SettingsTest, AttemptsThatCannotStartAreRefusedAtStart) {
  Settings s;
  s.enabled = true;
  s.agent_argv = {"/nonexistent/agent", "{workspace}"};
  auto missing = CheckAttemptSettings(s);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.error().message.find(
                "remediation-agent: the agent program '/nonexistent/agent' is not found"),
            std::string::npos)
      << missing.error().message;
  s.agent_argv = {"no-such-agent-program-here"};
  EXPECT_FALSE(CheckAttemptSettings(s));
  s.agent_argv = {"/etc/passwd"};  // there, but not a program
  EXPECT_FALSE(CheckAttemptSettings(s));
  s.agent_argv = {"sh", "-c", "true"};  // found on the agents' PATH
  EXPECT_TRUE(CheckAttemptSettings(s));
  s.agent_argv = {"/bin/sh"};
  EXPECT_TRUE(CheckAttemptSettings(s));

  s.workspace_dir = "/etc/passwd";
  auto not_dir = CheckAttemptSettings(s);
  ASSERT_FALSE(not_dir);
  EXPECT_EQ(not_dir.error().message, "remediation-workspace-dir: /etc/passwd is not a directory");
  s.workspace_dir = "/nonexistent/ws";  // made by the first attempt
  EXPECT_TRUE(CheckAttemptSettings(s));
  s.workspace_dir = "/tmp";
  EXPECT_TRUE(CheckAttemptSettings(s));

  s.agent_argv = {"/nonexistent/agent"};
  s.enabled = false;
  EXPECT_TRUE(CheckAttemptSettings(s));
  s.enabled = true;
  s.agent_argv.clear();
  EXPECT_TRUE(CheckAttemptSettings(s));
}

TEST(SettingsTest, AgentCommandForms) {
  EXPECT_EQ(*ParseAgentCommand(R"(["/usr/bin/agent", "--x", "a b"])"),
            (std::vector<std::string>{"/usr/bin/agent", "--x", "a b"}));
  EXPECT_EQ(*ParseAgentCommand(R"(a\ b "c\"d" '')"), (std::vector<std::string>{"a b", "c\"d", ""}));
  EXPECT_FALSE(ParseAgentCommand("   "));
  EXPECT_FALSE(ParseAgentCommand("[]"));
  EXPECT_FALSE(ParseAgentCommand("trailing\\"));
}

}  // namespace
}  // namespace ferry::remediation
