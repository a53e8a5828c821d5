#include "engine/definition.h"

#include <re2/re2.h>

#include "engine/node_kinds.h"

namespace ferry::engine {

std::string_view InputTypeName(InputType t) {
  switch (t) {
    case InputType::kString:
      return "string";
    case InputType::kNumber:
      return "number";
    case InputType::kBoolean:
      return "boolean";
    case InputType::kObject:
      return "object";
    case InputType::kArray:
      return "array";
  }
  return "string";
}

std::string_view WebhookAuthName(WebhookAuth a) {
  switch (a) {
    case WebhookAuth::kNone:
      return "none";
    case WebhookAuth::kHmac:
      return "hmac";
    case WebhookAuth::kSecret:
      return "secret";
    case WebhookAuth::kGitHub:
      return "github";
    case WebhookAuth::kStripe:
      return "stripe";
    case WebhookAuth::kSlack:
      return "slack";
    case WebhookAuth::kStandardWebhooks:
      return "standard-webhooks";
  }
  return "none";
}

bool WebhookAuthHasTimestamp(WebhookAuth a) {
  return a == WebhookAuth::kHmac || a == WebhookAuth::kStripe || a == WebhookAuth::kSlack ||
         a == WebhookAuth::kStandardWebhooks;
}

std::string_view MisfirePolicyName(MisfirePolicy p) {
  switch (p) {
    case MisfirePolicy::kSkip:
      return "skip";
    case MisfirePolicy::kRunOnce:
      return "run_once";
    case MisfirePolicy::kCatchUp:
      return "catch_up";
  }
  return "skip";
}

std::string_view OverlapPolicyName(OverlapPolicy p) {
  switch (p) {
    case OverlapPolicy::kAllow:
      return "allow";
    case OverlapPolicy::kSkip:
      return "skip";
    case OverlapPolicy::kQueue:
      return "queue";
  }
  return "allow";
}

std::string_view NodeKindName(NodeKind k) {
  switch (k) {
    case NodeKind::kShell:
      return "shell";
    case NodeKind::kHttp:
      return "http";
    case NodeKind::kLua:
      return "lua";
    case NodeKind::kDelay:
      return "delay";
    case NodeKind::kFail:
      return "fail";
    case NodeKind::kTask:
      return "task";
  }
  return "shell";
}

const NodeDef* Workflow::FindNode(std::string_view id) const {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

namespace {

Json RetryJson(const RetryPolicy& r) {
  return Json{{"max_attempts", r.max_attempts},
              {"backoff",
               Json{{"base", DurationText(r.backoff.base)}, {"max", DurationText(r.backoff.cap)}}}};
}

}  // namespace

bool TypeMatches(InputType t, const Json& v) {
  switch (t) {
    case InputType::kString:
      return v.is_string();
    case InputType::kNumber:
      return v.is_number();
    case InputType::kBoolean:
      return v.is_boolean();
    case InputType::kObject:
      return v.is_object();
    case InputType::kArray:
      return v.is_array();
  }
  return false;
}

Json ToCanonicalJson(const Workflow& wf) {
  Json j = Json::object();
  j["name"] = wf.name;
  j["description"] = wf.description;
  Json inputs = Json::object();
  for (const auto& in : wf.inputs) {
    Json i{{"type", InputTypeName(in.type)}, {"required", in.required}};
    if (in.default_value) i["default"] = *in.default_value;
    if (!in.description.empty()) i["description"] = in.description;
    if (!in.allowed.empty()) i["enum"] = in.allowed;
    if (in.pattern) i["pattern"] = PatternText(*in.pattern);
    if (in.max_length) i["max_length"] = *in.max_length;
    if (in.allow_leading_dash) i["allow_leading_dash"] = true;
    inputs[in.name] = std::move(i);
  }
  j["inputs"] = std::move(inputs);
  j["secrets"] = wf.declared_secrets;
  Json triggers = Json::object();
  if (wf.webhook) {
    const auto& w = *wf.webhook;
    Json h{{"methods", w.methods},
           {"auth", WebhookAuthName(w.auth)},
           {"max_body_bytes", w.max_body_bytes},
           {"slack_url_verification", w.slack_url_verification}};
    if (w.auth != WebhookAuth::kNone) h["secrets"] = w.secrets;
    if (w.auth == WebhookAuth::kHmac || w.auth == WebhookAuth::kSecret) {
      h["signature_header"] = w.signature_header;
    }
    if (w.auth == WebhookAuth::kHmac) h["timestamp_header"] = w.timestamp_header;
    if (WebhookAuthHasTimestamp(w.auth)) h["tolerance"] = DurationText(w.tolerance);
    if (w.auth == WebhookAuth::kGitHub) h["replay_window"] = DurationText(w.replay_window);
    triggers["webhook"] = std::move(h);
  }
  if (!wf.cron.empty()) {
    Json list = Json::array();
    for (const auto& c : wf.cron) {
      Json cj{{"schedule", c.schedule},
              {"timezone", c.timezone},
              {"misfire", MisfirePolicyName(c.misfire)},
              {"overlap", OverlapPolicyName(c.overlap)}};
      // Ingestion accepts catch_up_max only with misfire: catch_up; the canonical form must
      // ingest again.
      if (c.misfire == MisfirePolicy::kCatchUp) cj["catch_up_max"] = c.catch_up_max;
      if (!c.start.empty()) cj["start"] = c.start;
      if (!c.end.empty()) cj["end"] = c.end;
      list.push_back(std::move(cj));
    }
    triggers["cron"] = std::move(list);
  }
  j["triggers"] = std::move(triggers);
  j["defaults"] =
      Json{{"retry", RetryJson(wf.default_retry)}, {"timeout", DurationText(wf.default_timeout)}};
  Json nodes = Json::array();
  for (const auto& n : wf.nodes) {
    Json nj{{"id", n.id}, {"kind", NodeKindName(n.kind)}, {"needs", n.needs}};
    if (!n.when.empty()) nj["when"] = n.when;
    nj["retry"] = RetryJson(n.retry);
    nj["timeout"] = DurationText(n.timeout);
    Json spec = NodeKindOf(n.kind).canonical(n.spec);
    for (auto it = spec.begin(); it != spec.end(); ++it) nj[it.key()] = it.value();
    nodes.push_back(std::move(nj));
  }
  j["nodes"] = std::move(nodes);
  return j;
}

class InputPattern {
 public:
  explicit InputPattern(const std::string& text) : re(text, RE2::Quiet) {}
  RE2 re;
};

Result<std::shared_ptr<const InputPattern>> CompileInputPattern(const std::string& pattern) {
  if (pattern.empty() || pattern.size() > 1024) {
    return Fail(ErrorCode::kInvalidArgument, "pattern must be 1 to 1024 characters");
  }
  auto compiled = std::make_shared<const InputPattern>(pattern);
  if (!compiled->re.ok()) {
    return Fail(ErrorCode::kInvalidArgument, "bad pattern: " + compiled->re.error());
  }
  return compiled;
}

const std::string& PatternText(const InputPattern& p) { return p.re.pattern(); }

Status CheckInputValue(const InputDef& in, const Json& value) {
  auto refuse = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalidArgument, "input '" + in.name + "' " + why);
  };
  if (!in.allowed.empty() &&
      std::find(in.allowed.begin(), in.allowed.end(), value) == in.allowed.end()) {
    std::string list;
    for (const auto& a : in.allowed) list += (list.empty() ? "" : ", ") + DumpJson(a);
    return refuse("must be one of " + list);
  }
  if (!value.is_string()) return {};
  const std::string& text = value.get_ref<const std::string&>();
  // Refused at the front door: a run would take it and fail later, at the first node that
  // passes it to a program, a header or a URL (none of them can carry one).
  if (text.find('\0') != std::string::npos) {
    return refuse("holds a NUL byte (\\u0000), which no program argument, header or URL can carry");
  }
  if (in.max_length && static_cast<int64_t>(text.size()) > *in.max_length) {
    return refuse("is longer than " + std::to_string(*in.max_length) + " bytes");
  }
  if (!in.allow_leading_dash && !text.empty() && text.front() == '-') {
    return refuse(
        "starts with '-', which a program may read as an option; declare allow_leading_dash: "
        "true if it is data");
  }
  if (in.pattern && !RE2::FullMatch(text, in.pattern->re)) {
    return refuse("does not match the pattern " + PatternText(*in.pattern));
  }
  return {};
}

Result<Json> ResolveInputs(const Workflow& wf, const Json& given, bool allow_unknown) {
  if (!given.is_null() && !given.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "inputs must be a JSON object");
  }
  Json out = Json::object();
  std::string problems;
  auto add = [&](const std::string& p) {
    if (!problems.empty()) problems += "; ";
    problems += p;
  };
  for (const auto& in : wf.inputs) {
    auto it = given.is_object() ? given.find(in.name) : given.end();
    if (given.is_object() && it != given.end() && !it->is_null()) {
      if (!TypeMatches(in.type, *it)) {
        const std::string type(InputTypeName(in.type));
        const bool vowel = type.find_first_of("aeiou") == 0;
        add("input '" + in.name + "' must be " + (vowel ? "an " : "a ") + type);
        continue;
      }
      if (auto st = CheckInputValue(in, *it); !st) {
        add(st.error().message);
        continue;
      }
      out[in.name] = *it;
    } else if (in.default_value) {
      out[in.name] = *in.default_value;
    } else if (in.required) {
      add("input '" + in.name + "' is required");
    } else {
      out[in.name] = nullptr;
    }
  }
  if (given.is_object()) {
    for (auto it = given.begin(); it != given.end(); ++it) {
      bool declared = false;
      for (const auto& in : wf.inputs) declared = declared || in.name == it.key();
      if (declared) continue;
      if (allow_unknown)
        out[it.key()] = it.value();
      else
        add("unknown input '" + it.key() + "'");
    }
  }
  if (!problems.empty()) return Fail(ErrorCode::kInvalidArgument, problems);
  return out;
}

}  // namespace ferry::engine
