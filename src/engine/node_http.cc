// The http node: one HTTP request (method, url, headers, body, all templated); a status outside
// expect_status (default: any 2xx) fails the attempt. See node_kinds.h for what a kind file holds.
#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "engine/http_client.h"
#include "engine/node_kinds.h"

namespace ferry::engine {
namespace {

NodeSpec Read(NodeFields& in) {
  auto& r = in.reader;
  const std::string& path = in.path;
  HttpSpec h;
  if (const auto* m = r.Get(in.fields, "method")) {
    if (auto v = r.String(*m, path + ".method")) {
      std::string up = *v;
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      static const std::vector<std::string> kMethods = {"GET",    "POST", "PUT",    "PATCH",
                                                        "DELETE", "HEAD", "OPTIONS"};
      if (std::find(kMethods.begin(), kMethods.end(), up) == kMethods.end()) {
        r.Add(m->value, path + ".method", "unsupported method '" + *v + "'");
      }
      h.method = up;
    }
  }
  if (const auto* u = r.Get(in.fields, "url")) {
    if (auto v = r.String(*u, path + ".url")) {
      h.url = *v;
      r.Site(*v, u->value.Mark(), path + ".url", in.index);
      if (v->find("{{") == std::string::npos && v->rfind("http://", 0) != 0 &&
          v->rfind("https://", 0) != 0) {
        r.Add(u->value, path + ".url", "url must start with http:// or https://");
      }
    }
  } else {
    r.Add(in.node, path, "missing required field 'url'");
  }
  if (const auto* hd = r.Get(in.fields, "headers")) {
    if (auto m = r.StringMap(*hd, path + ".headers", in.index)) h.headers = std::move(*m);
  }
  if (const auto* b = r.Get(in.fields, "body")) {
    if (auto v = r.ToJson(b->value, path + ".body", 0)) {
      r.JsonSites(*v, b->value, path + ".body", in.index);
      h.body = std::move(*v);
    }
  }
  if (const auto* e = r.Get(in.fields, "expect_status")) {
    std::vector<YAML::Node> items;
    if (e->value.IsSequence()) {
      for (const auto& x : e->value) items.push_back(x);
    } else {
      items.push_back(e->value);
    }
    size_t i = 0;
    for (const auto& x : items) {
      if (auto code = r.Int(ingest_internal::Field{x, x},
                            path + ".expect_status[" + std::to_string(i++) + "]", 100, 599)) {
        h.expect_status.push_back(static_cast<int>(*code));
      }
    }
  }
  return h;
}

Json Canonical(const NodeSpec& spec) {
  const auto& s = std::get<HttpSpec>(spec);
  Json j{{"method", s.method},
         {"url", s.url},
         {"headers", StringMapJson(s.headers)},
         {"expect_status", s.expect_status}};
  if (s.body) j["body"] = *s.body;
  return j;
}

NodeResult Run(const NodeSpec& spec, NodeAttempt& a) {
  const auto& h = std::get<HttpSpec>(spec);
  auto url = a.Render(h.url);
  if (!url) return TemplateFail(url.error());
  auto headers = a.Render(h.headers);
  if (!headers) return TemplateFail(headers.error());
  std::optional<Json> body;
  if (h.body) {
    auto b = RenderJsonTemplates(*h.body, a.scope);
    if (!b) return TemplateFail(b.error());
    body = std::move(*b);
  }
  std::vector<std::pair<std::string, std::string>> hv(headers->begin(), headers->end());
  HttpRequest req = BuildHttpRequest(h.method, *url, hv, body ? &*body : nullptr);
  req.timeout = a.node.timeout;
  auto resp = PerformHttp(req, a.stop);
  if (!resp) {
    if (resp.error().code == ErrorCode::kCancelled) return NodeFail(resp.error(), false);
    return NodeFail(resp.error(), resp.error().code != ErrorCode::kInvalidArgument);
  }
  Json out = HttpResponseToJson(*resp);
  bool ok = h.expect_status.empty()
                ? (resp->status >= 200 && resp->status < 300)
                : std::find(h.expect_status.begin(), h.expect_status.end(),
                            static_cast<int>(resp->status)) != h.expect_status.end();
  if (!ok) {
    return NodeFail(ErrorCode::kInternal, "unexpected HTTP status " + std::to_string(resp->status),
                    true, std::move(out));
  }
  return out;
}

}  // namespace

const NodeKindDef& HttpNode() {
  static const NodeKindDef def{
      NodeKind::kHttp, {"method", "url", "headers", "body", "expect_status"}, Read, Canonical, Run};
  return def;
}

}  // namespace ferry::engine
