// DynamicLibrary: a library loaded on first use, its functions bound by name, and errors that say
// which library or function is missing and which package provides it.
#include "core/dynamic_library.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace ferry {
namespace {

constexpr OnDemandLibrary kLibc{"libc.so.6", "libc6", "this test"};

TEST(DynamicLibrary, BindsAFunctionThatThenWorks) {
  auto lib = DynamicLibrary::Open(kLibc);
  ASSERT_TRUE(lib) << lib.error().message;
  decltype(&::strlen) fn = nullptr;
  ASSERT_TRUE((*lib)->Bind(fn, "strlen"));
  ASSERT_NE(fn, nullptr);
  EXPECT_EQ(fn("ferry"), 5u);
}

TEST(DynamicLibrary, AMissingFunctionIsNamedAndLeavesThePointerAlone) {
  auto lib = DynamicLibrary::Open(kLibc);
  ASSERT_TRUE(lib) << lib.error().message;
  decltype(&::strlen) fn = nullptr;
  auto st = (*lib)->Bind(fn, "strlenn");  // one letter past a real name
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(st.error().message.find("libc.so.6 has no strlenn"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(fn, nullptr);
}

// Every library loaded on demand is on this machine (scripts/setup.sh installs its package) and
// has what its loader binds; the loaders' own tests use them (PostgreSQL store, http nodes).
TEST(DynamicLibrary, EveryOnDemandLibraryOpens) {
  for (const auto& l : kOnDemandLibraries) {
    auto lib = DynamicLibrary::Open(l);
    EXPECT_TRUE(lib) << l.file << ": " << lib.error().message;
  }
}

#define FERRY_TEST_LIBC_FUNCTIONS(X) X(strlen) X(strnlen)
struct LibcTable {
  FERRY_TEST_LIBC_FUNCTIONS(FERRY_DL_FIELD)
};

TEST(DynamicLibrary, LoadTableBindsEveryFunctionOrNamesTheFirstMissing) {
  auto libc = DynamicLibrary::LoadTable<LibcTable>(
      kLibc, [](auto&& bind, LibcTable& table) { FERRY_TEST_LIBC_FUNCTIONS(FERRY_DL_BIND) });
  ASSERT_TRUE(libc) << libc.error().message;
  EXPECT_EQ(libc->strlen("ferry"), 5u);
  EXPECT_EQ(libc->strnlen("ferry", 3), 3u);
  auto missing = DynamicLibrary::LoadTable<LibcTable>(kLibc, [](auto&& bind, LibcTable& table) {
    bind(table.strlen, "strlen");
    bind(table.strnlen, "strnlenn");  // one letter past a real name
  });
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("libc.so.6 has no strnlenn"), std::string::npos)
      << missing.error().message;
}

// One load per call site: the second call returns the very same table (or error) as the first.
const Result<LibcTable>& LibcOnce() {
  return DynamicLibrary::LoadTableOnce<LibcTable>(
      kLibc, [](auto&& bind, LibcTable& table) { FERRY_TEST_LIBC_FUNCTIONS(FERRY_DL_BIND) });
}
const Result<LibcTable>& MissingOnce() {
  return DynamicLibrary::LoadTableOnce<LibcTable>(kLibc, [](auto&& bind, LibcTable& table) {
    bind(table.strlen, "strlenn");  // one letter past a real name
  });
}

TEST(DynamicLibrary, LoadTableOnceLoadsOncePerCallSite) {
  const auto& first = LibcOnce();
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(&first, &LibcOnce());
  EXPECT_EQ(first->strlen("ferry"), 5u);
  const auto& missing = MissingOnce();
  ASSERT_FALSE(missing);
  EXPECT_EQ(&missing, &MissingOnce());
  EXPECT_NE(missing.error().message.find("has no strlenn"), std::string::npos);
}

// The loaders bind a library's functions and let the object go: the functions must stay callable
// (RTLD_NODELETE), or a pool closing connections at exit would call into unmapped code. libcurl
// is not otherwise loaded by this test binary, so without it this would crash.
TEST(DynamicLibrary, FunctionsOutliveTheObject) {
  using Version = char* (*)();
  Version version = nullptr;
  {
    auto lib = DynamicLibrary::Open(kLibCurl);
    ASSERT_TRUE(lib) << lib.error().message;
    ASSERT_TRUE((*lib)->Bind(version, "curl_version"));
  }
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(std::string(version()).rfind("libcurl/", 0), 0u);
}

TEST(DynamicLibrary, AMissingLibraryNamesItsPackageAndPurpose) {
  auto lib = DynamicLibrary::Open({"libferry-no-such.so.9", "libpq5", "a PostgreSQL store"});
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(lib.error().message.find(
                "a PostgreSQL store needs libferry-no-such.so.9 (Debian package libpq5)"),
            std::string::npos)
      << lib.error().message;
}

}  // namespace
}  // namespace ferry
