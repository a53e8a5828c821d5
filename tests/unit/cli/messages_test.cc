#include <gtest/gtest.h>

#include "cli/commands.h"

namespace ferry::cli {
namespace {

TEST(MessagesTest, ConnectErrorsNameTheMaskedUrlOnce) {
  Error e{ErrorCode::kUnavailable, "cannot connect to Redis at 127.0.0.1:1: Connection refused"};
  Error d = DescribeConnectError(e, "redis://:hunter2@127.0.0.1:1");
  EXPECT_EQ(d.code, ErrorCode::kUnavailable);
  EXPECT_EQ(d.message, "cannot connect to Redis at redis://:****@127.0.0.1:1: Connection refused");
  EXPECT_EQ(ErrorExitCode(d.code), 3);
}

TEST(MessagesTest, AuthErrorsKeepTheBrokersWordsWithoutThePassword) {
  Error e{ErrorCode::kUnauthenticated, "Redis rejected the password for user 'default'"};
  Error d = DescribeConnectError(e, "redis://:hunter2@h:1");
  EXPECT_EQ(d.message, e.message);
  Error bare{ErrorCode::kUnauthenticated, "WRONGPASS"};
  Error d2 = DescribeConnectError(bare, "redis://:hunter2@h:1");
  EXPECT_EQ(d2.message.find("hunter2"), std::string::npos);
  EXPECT_NE(d2.message.find("password"), std::string::npos);
  EXPECT_EQ(ErrorExitCode(d2.code), 3);
}

}  // namespace
}  // namespace ferry::cli
