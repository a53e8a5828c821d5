// Ingest's entry points, the document's top level and the workflow sections (inputs, secrets,
// defaults, triggers). Nodes are read in ingest_nodes.cc, the graph and templates checked in
// ingest_checks.cc; the Ingester is declared in ingest_internal.h.
#include "engine/ingest.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "core/crypto.h"
#include "core/utf8.h"
#include "engine/ingest_internal.h"
#include "engine/secrets.h"

namespace ferry::engine {
namespace ingest_internal {
namespace {

const std::regex& WorkflowNameRe() {
  static const std::regex re("[a-z0-9][a-z0-9_-]{0,63}");
  return re;
}
const std::regex& InputNameRe() {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_]{0,63}");
  return re;
}

// A workflow file holds one YAML document; YAML::Load reads the first and drops the rest unsaid.
// The rest is found with yaml-cpp's Parser, asked for one document and then whether a token is
// left, and never looped over: YAML::LoadAll's loop never ended where no node can start (a stray
// ',' at the top level is left unread, so the next "document" starts at it again, forever; see
// fuzz/corpus/workflow_fuzz/loadall-hang.yaml). The first HandleNextDocument call is the pass
// YAML::Load makes, and the second stops at its first event, so this is linear in the text.
class IgnoreEvents : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Where the text after the first document starts, if there is any (comments and `...` end
// markers are not text). Throws what YAML::Load would throw on the first document.
std::optional<YAML::Mark> AfterFirstDocument(const std::string& text) {
  struct Started {
    YAML::Mark mark;
  };
  // Stops at the next document's start: its place is all that is wanted.
  class StopAtStart : public IgnoreEvents {
   public:
    void OnDocumentStart(const YAML::Mark& mark) override { throw Started{mark}; }
  };
  std::istringstream in(text);
  YAML::Parser parser(in);
  IgnoreEvents ignore;
  if (!parser.HandleNextDocument(ignore) || !parser) return std::nullopt;
  StopAtStart stop;
  try {
    parser.HandleNextDocument(stop);
  } catch (const Started& started) {
    return started.mark;
  }
  return std::nullopt;  // not reached: a token is left, and a document starts at it
}

// True when the 0-based line `line` of `text` begins with the document start marker: `---` at
// column 0, then a blank or the line's end (`----` or `---x` is text).
bool StartsWithDocumentMarker(std::string_view text, int line) {
  size_t at = 0;
  for (int i = 0; i < line; ++i) {
    at = text.find('\n', at);
    if (at == std::string_view::npos) return false;
    ++at;
  }
  const std::string_view rest = text.substr(at);
  return rest.starts_with("---") && (rest.size() == 3 || rest[3] == ' ' || rest[3] == '\t' ||
                                     rest[3] == '\r' || rest[3] == '\n');
}

}  // namespace

tl::expected<Ingested, std::vector<Diagnostic>> Ingester::Run() {
  try {
    RunUnchecked();
  } catch (const TooManyDiagnostics&) {
    diags_.push_back(Diagnostic{0, 0, "", "too many problems; stopped here"});
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp says only "bad file" here: name the limit that was passed.
    diags_.push_back(MakeDiagnostic(e.mark, "",
                                    "YAML nested deeper than the parser's limit of " +
                                        std::to_string(e.depth() - 1) + " levels"));
  } catch (const YAML::Exception& e) {
    // Recorded without Add(): at the cap, Add would throw again from inside this handler.
    diags_.push_back(MakeDiagnostic(e.mark, "", "YAML: " + e.msg));
  } catch (const std::exception& e) {
    diags_.push_back(Diagnostic{0, 0, "", std::string("cannot read definition: ") + e.what()});
  }
  if (!diags_.empty()) {
    std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return tl::unexpected(std::move(diags_));
  }
  Ingested out;
  out.canonical = ToCanonicalJson(wf_);
  out.checksum = Sha256Hex(DumpJson(out.canonical));
  out.workflow = std::move(wf_);
  return out;
}

// ---- sections --------------------------------------------------------------------------------

void Ingester::RunUnchecked() {
  if (src_.size() > opts_.max_source_bytes) {
    diags_.push_back(Diagnostic{0, 0, "", SourceTooLarge(opts_.max_source_bytes)});
    return;
  }
  // The YAML parser would turn bytes that are not UTF-8 into U+FFFD, and a run would get text
  // the definition never held: refuse them, saying where. A NUL is UTF-8 but ends the parser's
  // reading of a line somewhere else than where it is, so it gets its own words.
  auto refuse_byte = [&](size_t at, const std::string& what) {
    const std::string_view before = src_.substr(0, at);
    const size_t newline = before.rfind('\n');
    const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
    diags_.push_back(Diagnostic{
        static_cast<int>(std::count(before.begin(), before.end(), '\n') + 1),
        static_cast<int>(at - line_start + 1), "",
        what + " at byte offset " + std::to_string(at) + "; a definition is UTF-8 text"});
  };
  if (auto bad = Utf8FirstInvalid(src_)) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(src_[*bad]));
    refuse_byte(*bad, "not UTF-8: byte " + std::string(hex));
    return;
  }
  if (const size_t nul = src_.find('\0'); nul != std::string_view::npos) {
    refuse_byte(nul, "a NUL byte");
    return;
  }
  const std::string text(src_);
  if (const std::optional<YAML::Mark> after = AfterFirstDocument(text)) {
    diags_.push_back(MakeDiagnostic(
        *after, "",
        after->column == 0 && StartsWithDocumentMarker(src_, after->line)
            ? "a workflow file holds one YAML document; a second one starts here"
            : "YAML: the document ends before this; a workflow file holds one YAML document "
              "and nothing after it"));
    return;
  }
  YAML::Node root = YAML::Load(text);
  if (!root.IsDefined() || root.IsNull()) {
    diags_.push_back(Diagnostic{0, 0, "",
                                "the document is empty; expected a mapping with "
                                "name and nodes"});
    return;
  }
  if (!ExpectMap(root, "")) return;
  auto f = Fields(root, "",
                  {"name", "description", "inputs", "secrets", "triggers", "defaults", "nodes"});

  if (const Field* n = Get(f, "name")) {
    if (auto s = String(*n, "name")) {
      if (!std::regex_match(*s, WorkflowNameRe())) {
        Add(n->value, "name", "'" + *s + "' is not a valid name: use [a-z0-9][a-z0-9_-]{0,63}");
      }
      wf_.name = *s;
    }
  } else {
    Add(root, "", "missing required field 'name'");
  }
  if (const Field* d = Get(f, "description")) {
    if (auto s = String(*d, "description")) wf_.description = *s;
  }
  if (const Field* i = Get(f, "inputs")) ReadInputs(*i);
  if (const Field* sec = Get(f, "secrets")) ReadSecrets(*sec);
  if (const Field* d = Get(f, "defaults")) ReadDefaults(*d);
  if (const Field* t = Get(f, "triggers")) ReadTriggers(*t);
  if (const Field* n = Get(f, "nodes")) {
    ReadNodes(*n);
  } else {
    Add(root, "", "missing required field 'nodes'");
  }
  if (opts_.check_cron_inputs) CheckCronInputs(root);
  CheckGraph();
  CheckTemplates();
  std::set<std::string> used(wf_.declared_secrets.begin(), wf_.declared_secrets.end());
  if (wf_.webhook) used.insert(wf_.webhook->secrets.begin(), wf_.webhook->secrets.end());
  for (const auto& [name, site] : read_secrets_) {
    if (std::binary_search(wf_.declared_secrets.begin(), wf_.declared_secrets.end(), name)) {
      continue;
    }
    if (!declared_ && opts_.allow_undeclared_secrets) {
      used.insert(name);  // a graph stored before declarations existed
      continue;
    }
    Add(site.mark, site.path,
        "secrets." + name +
            " is not declared: list it under the workflow's `secrets:` (a workflow names "
            "every secret it reads)");
  }
  wf_.secret_names.assign(used.begin(), used.end());
}

void Ingester::ReadSecrets(const Field& f) {
  declared_ = true;
  auto list = StringList(f, "secrets", false);
  if (!list) return;
  std::set<std::string> names;
  for (auto& [name, node] : *list) {
    if (!IsValidSecretName(name)) {
      Add(node, "secrets", "'" + name + "' is not a secret name (use A-Z, 0-9 and _)");
    } else if (!names.insert(name).second) {
      Add(node, "secrets", "secret " + name + " is listed twice");
    }
  }
  wf_.declared_secrets.assign(names.begin(), names.end());
}

void Ingester::ReadInputs(const Field& f) {
  if (f.value.IsNull()) return;
  if (!ExpectMap(f.value, "inputs")) return;
  std::set<std::string> seen;
  for (const auto& kv : f.value) {
    if (!kv.first.IsScalar()) {
      Add(kv.first, "inputs", "keys must be strings");
      continue;
    }
    InputDef in;
    in.name = kv.first.Scalar();
    std::string path = "inputs." + in.name;
    if (!std::regex_match(in.name, InputNameRe())) {
      Add(kv.first, path, "bad input name: use [A-Za-z_][A-Za-z0-9_]*");
    }
    if (!seen.insert(in.name).second) Add(kv.first, path, "duplicate input");
    static const std::vector<std::pair<std::string, InputType>> kTypes = {
        {"string", InputType::kString},
        {"number", InputType::kNumber},
        {"boolean", InputType::kBoolean},
        {"object", InputType::kObject},
        {"array", InputType::kArray}};
    if (kv.second.IsScalar()) {  // shorthand: `who: string`
      if (auto t = Enum(Field{kv.first, kv.second}, path, kTypes)) in.type = *t;
      wf_.inputs.push_back(std::move(in));
      continue;
    }
    if (kv.second.IsNull()) {
      wf_.inputs.push_back(std::move(in));
      continue;
    }
    if (!ExpectMap(kv.second, path)) continue;
    auto fs = Fields(kv.second, path,
                     {"type", "required", "default", "description", "enum", "pattern", "max_length",
                      "allow_leading_dash"});
    if (const Field* t = Get(fs, "type")) {
      if (auto v = Enum(*t, path + ".type", kTypes)) in.type = *v;
    }
    if (const Field* r = Get(fs, "required"))
      in.required = Bool(*r, path + ".required").value_or(false);
    if (const Field* d = Get(fs, "description")) {
      in.description = String(*d, path + ".description").value_or("");
    }
    ReadInputConstraints(fs, path, in);
    if (const Field* d = Get(fs, "default")) {
      if (auto v = ToJson(d->value, path + ".default", 0)) {
        if (!v->is_null() && !TypeMatches(in.type, *v)) {
          Add(d->value, path + ".default",
              "default does not match type " + std::string(InputTypeName(in.type)));
        } else if (!v->is_null()) {
          if (auto st = CheckInputValue(in, *v); !st) {
            Add(d->value, path + ".default", "default: " + st.error().message);
          }
        }
        if (!v->is_null()) in.default_value = std::move(*v);
      }
    }
    wf_.inputs.push_back(std::move(in));
  }
}

void Ingester::ReadInputConstraints(const std::unordered_map<std::string, Field>& fs,
                                    const std::string& path, InputDef& in) {
  const bool is_string = in.type == InputType::kString;
  auto strings_only = [&](const Field* f, const char* key) {
    if (f != nullptr && !is_string) {
      Add(f->key, path + "." + key, "applies to string inputs only");
      return false;
    }
    return f != nullptr;
  };
  if (const Field* e = Get(fs, "enum")) {
    if (!e->value.IsSequence() || e->value.size() == 0) {
      Add(e->value, path + ".enum", "expected a non-empty list of allowed values");
    } else if (in.type != InputType::kString && in.type != InputType::kNumber &&
               in.type != InputType::kBoolean) {
      Add(e->key, path + ".enum", "applies to string, number and boolean inputs");
    } else {
      for (size_t i = 0; i < e->value.size(); ++i) {
        auto v = ToJson(e->value[i], path + ".enum[" + std::to_string(i) + "]", 0);
        if (!v) continue;
        if (!TypeMatches(in.type, *v)) {
          Add(e->value[i], path + ".enum",
              "value does not match type " + std::string(InputTypeName(in.type)));
        } else {
          in.allowed.push_back(std::move(*v));
        }
      }
    }
  }
  if (const Field* p = Get(fs, "pattern"); strings_only(p, "pattern")) {
    if (auto text = String(*p, path + ".pattern")) {
      auto compiled = CompileInputPattern(*text);
      if (!compiled) {
        Add(p->value, path + ".pattern", compiled.error().message);
      } else {
        in.pattern = std::move(*compiled);
      }
    }
  }
  if (const Field* m = Get(fs, "max_length"); strings_only(m, "max_length")) {
    if (auto n = Int(*m, path + ".max_length", 1, 1 << 20)) in.max_length = *n;
  }
  if (const Field* a = Get(fs, "allow_leading_dash"); strings_only(a, "allow_leading_dash")) {
    in.allow_leading_dash = Bool(*a, path + ".allow_leading_dash").value_or(false);
  }
}

std::optional<RetryPolicy> Ingester::ReadRetry(const Field& f, const std::string& path,
                                               RetryPolicy base) {
  if (f.value.IsScalar()) {  // shorthand: `retry: 3`
    auto n = Int(f, path, 1, 100);
    if (!n) return std::nullopt;
    base.max_attempts = static_cast<int>(*n);
    return base;
  }
  if (!ExpectMap(f.value, path)) return std::nullopt;
  auto fs = Fields(f.value, path, {"max_attempts", "backoff"});
  if (const Field* m = Get(fs, "max_attempts")) {
    if (auto n = Int(*m, path + ".max_attempts", 1, 100)) base.max_attempts = static_cast<int>(*n);
  }
  if (const Field* b = Get(fs, "backoff")) {
    std::string bp = path + ".backoff";
    if (b->value.IsScalar()) {
      if (auto d = Duration(*b, bp)) base.backoff.base = *d;
    } else if (ExpectMap(b->value, bp)) {
      auto bs = Fields(b->value, bp, {"base", "max"});
      if (const Field* x = Get(bs, "base")) {
        if (auto d = Duration(*x, bp + ".base")) base.backoff.base = *d;
      }
      if (const Field* x = Get(bs, "max")) {
        if (auto d = Duration(*x, bp + ".max")) base.backoff.cap = *d;
      }
    }
    if (base.backoff.cap < base.backoff.base) base.backoff.cap = base.backoff.base;
  }
  return base;
}

void Ingester::ReadDefaults(const Field& f) {
  if (f.value.IsNull()) return;
  if (!ExpectMap(f.value, "defaults")) return;
  auto fs = Fields(f.value, "defaults", {"retry", "timeout"});
  if (const Field* r = Get(fs, "retry")) {
    if (auto p = ReadRetry(*r, "defaults.retry", wf_.default_retry)) wf_.default_retry = *p;
  }
  if (const Field* t = Get(fs, "timeout")) {
    if (auto d = Duration(*t, "defaults.timeout")) wf_.default_timeout = *d;
  }
}

void Ingester::ReadTriggers(const Field& f) {
  if (f.value.IsNull()) return;
  if (!ExpectMap(f.value, "triggers")) return;
  auto fs = Fields(f.value, "triggers", {"webhook", "cron"});
  if (const Field* w = Get(fs, "webhook")) ReadWebhook(*w);
  if (const Field* c = Get(fs, "cron")) {
    if (c->value.IsSequence()) {
      size_t i = 0;
      for (const auto& e : c->value) {
        ReadCron(e, "triggers.cron[" + std::to_string(i++) + "]");
      }
    } else {
      ReadCron(c->value, "triggers.cron");
    }
  }
}

void Ingester::ReadWebhook(const Field& f) {
  const std::string path = "triggers.webhook";
  WebhookTrigger w;
  if (f.value.IsNull()) {
    wf_.webhook = w;
    return;
  }
  if (!ExpectMap(f.value, path)) return;
  auto fs = Fields(f.value, path,
                   {"methods", "auth", "secret", "secrets", "signature_header", "timestamp_header",
                    "tolerance", "replay_window", "max_body_bytes", "slack_url_verification"},
                   {{"secret_env",
                     "name the secret with 'secret: NAME'; its value comes from "
                     "FERRY_SECRET_NAME or the secrets file"}});
  if (const Field* m = Get(fs, "methods")) {
    if (auto list = StringList(*m, path + ".methods", true)) {
      w.methods.clear();
      static const std::vector<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
      for (auto& [name, node] : *list) {
        std::string up = name;
        for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (std::find(kMethods.begin(), kMethods.end(), up) == kMethods.end()) {
          Add(node, path + ".methods", "unsupported method '" + name + "'");
        } else if (std::find(w.methods.begin(), w.methods.end(), up) == w.methods.end()) {
          w.methods.push_back(up);
        }
      }
      if (w.methods.empty()) Add(m->value, path + ".methods", "needs at least one method");
    }
  }
  const Field* auth = Get(fs, "auth");
  const Field* secret = Get(fs, "secret");
  const Field* secrets = Get(fs, "secrets");
  if (auth) {
    static const std::vector<std::pair<std::string, WebhookAuth>> kSchemes = {
        {"none", WebhookAuth::kNone},
        {"hmac", WebhookAuth::kHmac},
        {"secret", WebhookAuth::kSecret},
        {"github", WebhookAuth::kGitHub},
        {"stripe", WebhookAuth::kStripe},
        {"slack", WebhookAuth::kSlack},
        {"standard-webhooks", WebhookAuth::kStandardWebhooks}};
    if (auto a = Enum(*auth, path + ".auth", kSchemes)) w.auth = *a;
  } else if (secret || secrets) {
    w.auth = WebhookAuth::kHmac;  // a secret without an auth mode means signed requests
  }
  // The names of the secrets: `secret: NAME`, or `secrets: [NEW, OLD]` while rotating.
  std::vector<std::pair<std::string, YAML::Node>> names;
  if (secret && secrets) {
    Add(secrets->key, path, "give 'secret' or 'secrets', not both");
  } else if (secret) {
    if (auto one = String(*secret, path + ".secret")) names.emplace_back(*one, secret->value);
  } else if (secrets) {
    if (auto list = StringList(*secrets, path + ".secrets", false)) {
      names = std::move(*list);
      if (names.empty() || names.size() > kMaxWebhookSecrets) {
        Add(secrets->value, path + ".secrets",
            "name 1 to " + std::to_string(kMaxWebhookSecrets) + " secrets");
      }
    }
  }
  for (auto& [raw, node] : names) {
    std::string name = raw.rfind("secrets.", 0) == 0 ? raw.substr(8) : raw;
    if (!IsValidSecretName(name)) {
      Add(node, path + (secret ? ".secret" : ".secrets"),
          "expected a secret name such as GITHUB_HOOK (its value comes from "
          "FERRY_SECRET_GITHUB_HOOK or the secrets file), never the secret itself");
    } else if (std::find(w.secrets.begin(), w.secrets.end(), name) != w.secrets.end()) {
      Add(node, path + ".secrets", "secret " + name + " is named twice");
    } else {
      w.secrets.push_back(name);
    }
  }
  if (w.auth != WebhookAuth::kNone && names.empty() && !secret && !secrets) {
    Add(auth ? auth->value : f.value, path,
        "auth '" + std::string(WebhookAuthName(w.auth)) + "' needs 'secret: NAME'");
  }
  if (w.auth == WebhookAuth::kNone && (secret || secrets)) {
    Add((secret ? secret : secrets)->key, path, "auth none takes no secret");
  }
  // Header names: settable for Ferry's own schemes; the senders' schemes fix theirs.
  const bool own = w.auth == WebhookAuth::kHmac || w.auth == WebhookAuth::kSecret;
  w.signature_header = w.auth == WebhookAuth::kSecret ? "X-Ferry-Secret" : "X-Ferry-Signature";
  for (const char* key : {"signature_header", "timestamp_header"}) {
    const Field* h = Get(fs, key);
    if (h == nullptr) continue;
    const bool applies =
        std::string_view(key) == "signature_header" ? own : w.auth == WebhookAuth::kHmac;
    if (!applies) {
      Add(h->key, path + "." + key,
          "does not apply to auth " + std::string(WebhookAuthName(w.auth)) +
              (own ? "" : " (its sender fixes the header names)"));
      continue;
    }
    if (auto v = String(*h, path + "." + key)) {
      static const std::regex re("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}");
      if (!std::regex_match(*v, re))
        Add(h->value, path + "." + key, "bad header name '" + *v + "'");
      (std::string_view(key) == "signature_header" ? w.signature_header : w.timestamp_header) = *v;
    }
  }
  if (const Field* t = Get(fs, "tolerance")) {
    if (!WebhookAuthHasTimestamp(w.auth)) {
      Add(t->key, path + ".tolerance",
          "does not apply to auth " + std::string(WebhookAuthName(w.auth)) +
              " (it signs no timestamp)");
    } else if (auto d = Duration(*t, path + ".tolerance")) {
      // 0 would refuse every delivery (no clock is exact); over a day makes replays cheap.
      if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(24)) {
        Add(t->value, path + ".tolerance", "must be from 1s to 24h");
      } else {
        w.tolerance = *d;
      }
    }
  }
  if (const Field* r = Get(fs, "replay_window")) {
    if (w.auth != WebhookAuth::kGitHub) {
      Add(r->key, path + ".replay_window", "applies to auth github only");
    } else if (auto d = Duration(*r, path + ".replay_window")) {
      if (*d < std::chrono::minutes(1) || *d > std::chrono::hours(24 * 90)) {
        Add(r->value, path + ".replay_window", "must be from 1m to 90d");
      } else {
        w.replay_window = *d;
      }
    }
  }
  if (const Field* m = Get(fs, "max_body_bytes")) {
    if (auto n = Int(*m, path + ".max_body_bytes", 1, 64LL << 20)) w.max_body_bytes = *n;
  }
  if (const Field* s = Get(fs, "slack_url_verification")) {
    w.slack_url_verification = Bool(*s, path + ".slack_url_verification").value_or(false);
  }
  wf_.webhook = w;
}

void Ingester::ReadCron(const YAML::Node& n, const std::string& path) {
  if (!ExpectMap(n, path)) return;
  CronTrigger c;
  auto fs = Fields(n, path,
                   {"schedule", "timezone", "start", "end", "misfire", "catch_up_max", "overlap"});
  if (const Field* s = Get(fs, "schedule")) {
    if (auto text = String(*s, path + ".schedule")) {
      c.schedule = *text;
      // The cron parser, when given, is the one judge (its words are the ones docs/cron.md
      // lists); the shape check stands in only without it.
      if (opts_.validate_cron) {
        if (auto err = opts_.validate_cron(*text)) Add(s->value, path + ".schedule", *err);
      } else if (auto problem = CronShape(*text)) {
        Add(s->value, path + ".schedule", *problem);
      }
    }
  } else {
    Add(n, path, "missing required field 'schedule'");
  }
  if (const Field* t = Get(fs, "timezone")) {
    if (auto s = String(*t, path + ".timezone")) {
      static const std::regex re("[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}");
      if (!std::regex_match(*s, re) || s->size() > 64) {
        Add(t->value, path + ".timezone",
            "'" + *s +
                "' is not an IANA time zone name "
                "(e.g. UTC, Europe/Paris)");
      } else if (opts_.validate_zone) {
        if (auto err = opts_.validate_zone(*s)) Add(t->value, path + ".timezone", *err);
      }
      c.timezone = *s;
    }
  }
  for (const char* key : {"start", "end"}) {
    if (const Field* t = Get(fs, key)) {
      if (auto s = String(*t, path + "." + key)) {
        static const std::regex re(
            "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?"
            "(Z|[+-][0-9]{2}:?[0-9]{2})?)?");
        if (!std::regex_match(*s, re)) {
          Add(t->value, path + "." + key,
              "expected an ISO 8601 date or time such as 2026-01-31 or 2026-01-31T09:00:00Z");
        } else if (opts_.validate_time) {
          // Shaped right, yet maybe no time at all (2026-02-30): the scheduler would refuse it on
          // every tick and the trigger never fire.
          if (auto err = opts_.validate_time(*s)) Add(t->value, path + "." + key, *err);
        }
        (std::string(key) == "start" ? c.start : c.end) = *s;
      }
    }
  }
  if (!c.start.empty() && !c.end.empty() && c.start.size() == c.end.size() && c.end < c.start) {
    Add(n, path, "end is before start");
  }
  if (const Field* m = Get(fs, "misfire")) {
    if (auto v = Enum(*m, path + ".misfire",
                      std::vector<std::pair<std::string, MisfirePolicy>>{
                          {"skip", MisfirePolicy::kSkip},
                          {"run_once", MisfirePolicy::kRunOnce},
                          {"catch_up", MisfirePolicy::kCatchUp}})) {
      c.misfire = *v;
    }
  }
  if (const Field* m = Get(fs, "catch_up_max")) {
    if (auto v = Int(*m, path + ".catch_up_max", 1, 1000)) c.catch_up_max = static_cast<int>(*v);
    if (c.misfire != MisfirePolicy::kCatchUp) {
      Add(m->key, path + ".catch_up_max", "only applies with misfire: catch_up");
    }
  }
  if (const Field* o = Get(fs, "overlap")) {
    if (auto v = Enum(
            *o, path + ".overlap",
            std::vector<std::pair<std::string, OverlapPolicy>>{{"allow", OverlapPolicy::kAllow},
                                                               {"skip", OverlapPolicy::kSkip},
                                                               {"queue", OverlapPolicy::kQueue}})) {
      c.overlap = *v;
    }
  }
  wf_.cron.push_back(std::move(c));
}

void Ingester::CheckCronInputs(const YAML::Node& root) {
  if (wf_.cron.empty()) return;
  for (const auto& in : wf_.inputs) {
    if (!in.required || in.default_value) continue;
    const bool given = in.type == InputType::kString &&
                       std::find(std::begin(kCronRunInputs), std::end(kCronRunInputs), in.name) !=
                           std::end(kCronRunInputs);
    if (given) continue;
    Add(root["inputs"][in.name], "inputs." + in.name,
        "required without a default, but the cron trigger cannot give it (a cron run gets "
        "scheduled_for and timezone only): give it a default or make it optional");
  }
}

std::optional<std::string> Ingester::CronShape(const std::string& s) {
  // It stands in for the cron parser (src/cron) where none is given: loading a stored graph,
  // which that parser judged when it was applied. So it takes at least what the parser takes:
  // fields split on any blanks, macros in any case ("@Daily", "@EVERY 90s").
  std::vector<std::string> fields;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) fields.emplace_back(s.substr(i, j - i));
    i = j;
  }
  if (fields.empty()) return "empty schedule";
  if (fields[0][0] == '@') {
    std::string macro = fields[0];
    for (char& c : macro) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const std::regex macro_re("@(yearly|annually|monthly|weekly|daily|midnight|hourly)");
    static const std::regex every_re("[0-9]+(ms|s|m|h|d)([0-9]+(ms|s|m|h|d))*");
    const bool ok = macro == "@every" ? fields.size() == 2 && std::regex_match(fields[1], every_re)
                                      : fields.size() == 1 && std::regex_match(macro, macro_re);
    if (!ok) {
      return "unknown macro '" + s +
             "' (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or "
             "@every <duration>)";
    }
    return std::nullopt;
  }
  static const std::regex field_re("[0-9A-Za-z*?/,#-]+");
  if (fields.size() != 5 && fields.size() != 6) {
    return "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with "
           "leading seconds, got " +
           std::to_string(fields.size());
  }
  for (size_t k = 0; k < fields.size(); ++k) {
    if (!std::regex_match(fields[k], field_re)) {
      return "field " + std::to_string(k + 1) + " ('" + fields[k] +
             "') has characters a "
             "cron field cannot hold";
    }
  }
  return std::nullopt;
}

}  // namespace ingest_internal

tl::expected<Ingested, std::vector<Diagnostic>> Ingest(std::string_view source,
                                                       const IngestOptions& options) {
  ingest_internal::Ingester ingester(source, options);
  return ingester.Run();
}

Result<Ingested> IngestWorkflow(std::string_view source, const IngestOptions& options) {
  auto r = Ingest(source, options);
  if (!r) return Fail(ErrorCode::kInvalidArgument, FormatDiagnostics(r.error()));
  return std::move(*r);
}

std::string SourceTooLarge(size_t max_bytes) {
  std::string out = "definition larger than " + std::to_string(max_bytes) + " bytes";
  if (max_bytes % (1 << 20) == 0) out += " (" + std::to_string(max_bytes >> 20) + " MiB)";
  return out;
}

Result<Ingested> IngestStoredGraph(std::string_view graph) {
  IngestOptions options;
  options.allow_undeclared_secrets = true;
  options.check_cron_inputs = false;
  return IngestWorkflow(graph, options);
}

}  // namespace ferry::engine
