#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "console/assets.h"
#include "console/routes.h"

namespace ferry::console {
namespace {

http::Request Get(std::string path, http::HeaderList headers = {}) {
  http::Request r;
  r.method = "GET";
  r.target = path;
  r.path = std::move(path);
  r.headers = std::move(headers);
  return r;
}

http::Response Route(const std::string& path, http::HeaderList headers = {}) {
  http::Router router;
  AddRoutes(router);
  auto req = Get(path, std::move(headers));
  auto match = router.Find("GET", req.path);
  if (match.route == nullptr) return http::ErrorResponse(404, "no route");
  req.params = match.params;
  return match.route->handler(req);
}

TEST(ConsoleAssetsTest, EveryFileIsEmbeddedWithATypeAndAnETag) {
  ASSERT_FALSE(Assets().empty());
  for (const Asset& a : Assets()) {
    SCOPED_TRACE(std::string(a.name));
    EXPECT_FALSE(a.bytes.empty());
    EXPECT_FALSE(a.content_type.empty());
    EXPECT_TRUE(std::regex_match(std::string(a.etag), std::regex("\"[0-9a-f]{32}\"")));
  }
  ASSERT_NE(FindAsset("index.html"), nullptr);
  ASSERT_NE(FindAsset("app.js"), nullptr);
  EXPECT_EQ(FindAsset("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindAsset("app.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(FindAsset("app.j"), nullptr);
  EXPECT_EQ(FindAsset("app.jsx"), nullptr);
  EXPECT_EQ(FindAsset(""), nullptr);
}

TEST(ConsoleAssetsTest, TheEmbeddedBytesAreTheFilesBytes) {
  const Asset* index = FindAsset("index.html");
  ASSERT_NE(index, nullptr);
  const std::string page(index->bytes);
  EXPECT_EQ(page.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(page.find("</html>\n"), std::string::npos);
  EXPECT_EQ(page.back(), '\n');
  EXPECT_EQ(page.find('\0'), std::string::npos);
}

// The page may load scripts only from its origin: no inline <script> body and no handler
// attributes, or the Content-Security-Policy would block them (and they would be a hole if not).
TEST(ConsoleAssetsTest, ThePageHasNoInlineScript) {
  const std::string page(FindAsset("index.html")->bytes);
  EXPECT_TRUE(std::regex_search(
      page, std::regex(R"(<script type="module" src="/assets/app\.js"></script>)")));
  EXPECT_FALSE(std::regex_search(page, std::regex(R"(<script(?![^>]*\bsrc=)[^>]*>)")));
  EXPECT_FALSE(std::regex_search(page, std::regex(R"(\son[a-z]+\s*=)", std::regex::icase)));
  EXPECT_FALSE(std::regex_search(page, std::regex(R"(\sstyle\s*=)", std::regex::icase)));
  for (const Asset& a : Assets()) {
    if (!std::string(a.name).ends_with(".js")) continue;
    SCOPED_TRACE(std::string(a.name));
    const std::string js(a.bytes);
    // Data goes in as text; nothing parses HTML or evaluates code.
    for (const char* banned : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                               "eval(", "new Function", "setAttribute('style'"}) {
      EXPECT_EQ(js.find(banned), std::string::npos) << banned;
    }
  }
}

TEST(ConsoleRoutesTest, RootServesThePageWithAStrictPolicy) {
  auto res = Route("/");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(res.body, std::string(FindAsset("index.html")->bytes));
  auto csp = http::FindHeader(res.headers, "Content-Security-Policy");
  ASSERT_TRUE(csp);
  EXPECT_EQ(*csp, kContentSecurityPolicy);
  EXPECT_NE(csp->find("script-src 'self';"), std::string::npos);
  EXPECT_EQ(csp->find("unsafe"), std::string::npos);
  EXPECT_NE(csp->find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(http::FindHeader(res.headers, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(http::FindHeader(res.headers, "Cache-Control"), "no-cache");
}

TEST(ConsoleRoutesTest, AssetsAnswerWithTheirTypeAndUnknownNamesAre404) {
  auto js = Route("/assets/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js.body, std::string(FindAsset("app.js")->bytes));

  for (const char* path : {"/assets/nope.js", "/assets/app.js.map", "/assets/index.html",
                           "/assets/..", "/assets/%2e%2e%2fserver.cc", "/assets/APP.JS"}) {
    SCOPED_TRACE(path);
    auto res = Route(path);
    EXPECT_EQ(res.status, 404);
    EXPECT_EQ(res.content_type, "application/json");
  }
  // Only one segment under /assets.
  EXPECT_EQ(Route("/assets/a/app.js").status, 404);
  EXPECT_EQ(Route("/assets/").status, 404);
}

TEST(ConsoleRoutesTest, AMatchingETagIs304AndANearMissIsNot) {
  const std::string etag(FindAsset("app.js")->etag);
  auto same = Route("/assets/app.js", {{"If-None-Match", etag}});
  EXPECT_EQ(same.status, 304);
  EXPECT_TRUE(same.body.empty());
  EXPECT_EQ(http::FindHeader(same.headers, "ETag"), etag);

  EXPECT_EQ(Route("/assets/app.js", {{"if-none-match", "\"x\", W/" + etag}}).status, 304);
  EXPECT_EQ(Route("/assets/app.js", {{"If-None-Match", "*"}}).status, 304);

  std::string off = etag;
  off[5] = off[5] == '0' ? '1' : '0';  // one nibble flipped
  EXPECT_EQ(Route("/assets/app.js", {{"If-None-Match", off}}).status, 200);
  EXPECT_EQ(Route("/assets/app.js", {{"If-None-Match", etag.substr(1, etag.size() - 2)}}).status,
            200);  // unquoted
  EXPECT_EQ(Route("/assets/app.js", {{"If-None-Match", ""}}).status, 200);
  // Another file's tag does not match.
  EXPECT_EQ(Route("/assets/app.css", {{"If-None-Match", etag}}).status, 200);
}

}  // namespace
}  // namespace ferry::console
