#include "remediation/fingerprint.h"

#include <gtest/gtest.h>

namespace ferry::remediation {
namespace {

TEST(FingerprintTest, NormalizeReplacesVariableParts) {
  EXPECT_EQ(NormalizeError("Failed to connect to 127.0.0.1 port 54321: Connection refused"),
            "Failed to connect to <ip> port <n>: Connection refused");
  EXPECT_EQ(NormalizeError("run 01M8W98SX4MXWSQ3XXCMTR19WJ took 1.5s"), "run <id> took <n>s");
  EXPECT_EQ(NormalizeError("id 550e8400-e29b-41d4-a716-446655440000 sha deadbeef01"),
            "id <uuid> sha <hex>");
  EXPECT_EQ(NormalizeError("  many   spaces\n\tand lines  "), "many spaces and lines");
  // Words without digits stay, even when they are hex letters.
  EXPECT_EQ(NormalizeError("facade decade"), "facade decade");
  // Three parts are a number (a version), not an address.
  EXPECT_EQ(NormalizeError("v 1.2.3 and 10.0.0.1"), "v <n> and <ip>");
  EXPECT_LE(NormalizeError(std::string(2000, 'x')).size(), 512u);
}

TEST(FingerprintTest, SameFailureSameFingerprint) {
  const auto a = Fingerprint("c1", "call", NormalizeError("connect 10.0.0.1:5000 refused"));
  const auto b = Fingerprint("c1", "call", NormalizeError("connect 10.0.0.2:6001 refused"));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, Fingerprint("c2", "call", NormalizeError("connect 10.0.0.1:5000 refused")));
  EXPECT_NE(a, Fingerprint("c1", "other", NormalizeError("connect 10.0.0.1:5000 refused")));
  EXPECT_NE(a, Fingerprint("c1", "call", NormalizeError("connect 10.0.0.1:5000 reset")));
}

}  // namespace
}  // namespace ferry::remediation
