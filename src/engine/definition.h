// The workflow definition model: what ingestion (ingest.h) produces from a YAML or JSON document
// and what the executor (executor.h) runs. Field meanings are documented in docs/workflows.md.
//
// Templates are kept as their source strings (the canonical form stores them verbatim); ingestion
// has already parsed and checked every one, so rendering them later cannot hit a syntax error.
//
// Thread-safety: a Workflow is an immutable value once ingested; share it freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/backoff.h"
#include "core/json.h"
#include "core/result.h"

namespace ferry::engine {

enum class InputType { kString, kNumber, kBoolean, kObject, kArray };
std::string_view InputTypeName(InputType t);

// A compiled `pattern:` (RE2: linear time whatever the input, so a hostile value cannot stall
// the server). Opaque here so only definition.cc includes RE2.
class InputPattern;

struct InputDef {
  std::string name;
  InputType type = InputType::kString;
  bool required = false;
  std::optional<Json> default_value;
  std::string description;
  // Constraints on a given value (docs/workflows.md "Inputs"); ingestion checks that they fit
  // the type and that the default meets them.
  std::vector<Json> allowed;                    // `enum:`; empty = any
  std::shared_ptr<const InputPattern> pattern;  // strings: the whole value must match
  std::optional<int64_t> max_length;            // strings: in bytes
  // Strings: a value starting with '-' is refused unless this is true, because a program given
  // it as an argument may read it as an option (`--upload-pack=...`).
  bool allow_leading_dash = false;
};

// Compiles a `pattern:`; kInvalidArgument with RE2's message for a bad one.
Result<std::shared_ptr<const InputPattern>> CompileInputPattern(const std::string& pattern);
// The pattern's source text.
const std::string& PatternText(const InputPattern& p);
// Whether `v` has the JSON type an input of type `t` takes.
bool TypeMatches(InputType t, const Json& v);
// Whether `value` meets every constraint of `in`; the message names the input and the rule.
Status CheckInputValue(const InputDef& in, const Json& value);

// How /hooks/{workflow} authenticates a delivery (docs/api.md "Webhooks" gives each recipe).
enum class WebhookAuth {
  kNone,
  kHmac,              // Ferry's own: hex HMAC-SHA256 of "<timestamp>.<body>" + a timestamp header
  kSecret,            // the shared secret itself in a header (senders that cannot sign)
  kGitHub,            // X-Hub-Signature-256: sha256=<hex HMAC(body)>
  kStripe,            // Stripe-Signature: t=<ts>,v1=<hex HMAC("<ts>.<body>")>[,v1=...]
  kSlack,             // X-Slack-Signature: v0=<hex HMAC("v0:<ts>:<body>")>
  kStandardWebhooks,  // webhook-signature: v1,<base64 HMAC("<id>.<ts>.<body>")> ...
};
std::string_view WebhookAuthName(WebhookAuth a);
// Whether the scheme signs a timestamp (so `tolerance` applies).
bool WebhookAuthHasTimestamp(WebhookAuth a);

// Settings the API's /hooks/{workflow} endpoint enforces. Secret values are never here: `secrets`
// names them (resolved like `secrets.NAME`).
struct WebhookTrigger {
  std::vector<std::string> methods{"POST"};
  WebhookAuth auth = WebhookAuth::kNone;
  // Secret names; a delivery signed with any of them is accepted, so a secret can be rotated
  // (add the new one, switch the sender, drop the old one). At most kMaxWebhookSecrets; required
  // unless auth is none.
  std::vector<std::string> secrets;
  // hmac: carries the hex HMAC-SHA256; secret: carries the shared secret itself. Fixed by the
  // sender for the other schemes.
  std::string signature_header = "X-Ferry-Signature";  // X-Ferry-Secret by default for secret
  std::string timestamp_header = "X-Ferry-Timestamp";  // hmac only
  // Timestamped schemes: the largest accepted clock difference; a delivery's signature is
  // remembered that long (replays inside the window are refused, older ones are too old).
  std::chrono::milliseconds tolerance = std::chrono::minutes(5);
  // github (no timestamp): how long an accepted delivery's signature is remembered.
  std::chrono::milliseconds replay_window = std::chrono::hours(24 * 7);
  int64_t max_body_bytes = 1 << 20;
  bool slack_url_verification = false;
};

inline constexpr size_t kMaxWebhookSecrets = 4;

enum class MisfirePolicy { kSkip, kRunOnce, kCatchUp };
enum class OverlapPolicy { kAllow, kSkip, kQueue };
std::string_view MisfirePolicyName(MisfirePolicy p);
std::string_view OverlapPolicyName(OverlapPolicy p);

struct CronTrigger {
  std::string schedule;          // cron expression, checked by the scheduler's parser
  std::string timezone = "UTC";  // IANA name
  std::string start;             // ISO 8601, empty: no bound
  std::string end;               // ISO 8601, empty: no bound
  MisfirePolicy misfire = MisfirePolicy::kSkip;
  int catch_up_max = 10;  // catch_up: at most this many missed occurrences are run
  OverlapPolicy overlap = OverlapPolicy::kAllow;
};

// The inputs every cron run is given (scheduler/dispatch.cc), both strings; a run_once
// catch-up run also gets missed_count. A required input without a default that is not one of
// these cannot take a cron run, so ingestion refuses it in a workflow with a cron trigger.
inline constexpr std::string_view kCronRunInputs[] = {"scheduled_for", "timezone"};

// The fields of the `trigger` object a run's templates read: ingestion checks `trigger.NAME`
// against these. A webhook run's object is the request (api/http_util.cc); a cron run's is the
// occurrence, as stored in its run.created event (scheduler/dispatch.cc): missed_count only for
// a run_once catch-up, scheduler_token only from a leader. Other runs have an empty trigger.
inline constexpr std::string_view kWebhookTriggerFields[] = {"method", "headers", "query", "body"};
inline constexpr std::string_view kCronTriggerFields[] = {
    "kind",          "trigger_id", "key",  "schedule",     "timezone",
    "scheduled_for", "fire_ms",    "late", "missed_count", "scheduler_token"};

struct RetryPolicy {
  int max_attempts = 1;  // executions allowed, >= 1
  BackoffPolicy backoff{std::chrono::seconds(1), std::chrono::minutes(5)};
};

enum class NodeKind { kShell, kHttp, kLua, kDelay, kFail, kTask };
std::string_view NodeKindName(NodeKind k);

struct ShellSpec {
  std::vector<std::string> argv;           // each element a template
  std::map<std::string, std::string> env;  // values are templates
  std::string cwd;                         // template
  std::string stdin_data;                  // template
};

struct HttpSpec {
  std::string method = "GET";
  std::string url;                             // template
  std::map<std::string, std::string> headers;  // values are templates
  std::optional<Json> body;                    // a string or JSON; strings inside are templates
  std::vector<int> expect_status;              // empty: any 2xx
};

struct LuaSpec {
  std::string script;
  // Exposed to the script as `args`: an object whose strings are templates (a string that is one
  // whole `{{ expr }}` passes the value itself, a list stays a list), as a task's payload.
  Json args = Json::object();
  int script_line = 0;  // file line of the script's first line (0: unknown)
};

struct DelaySpec {
  std::chrono::milliseconds duration{0};
};

struct FailSpec {
  std::string message;  // template
};

struct TaskSpec {
  std::string queue = "default";
  std::string kind;
  Json payload = Json::object();  // strings inside are templates
  int max_attempts = 1;
  std::chrono::milliseconds timeout{0};  // per task attempt; 0: the worker's default
};

using NodeSpec = std::variant<ShellSpec, HttpSpec, LuaSpec, DelaySpec, FailSpec, TaskSpec>;

struct NodeDef {
  std::string id;
  NodeKind kind = NodeKind::kShell;
  std::vector<std::string> needs;
  std::string when;  // a template; empty: always
  RetryPolicy retry;
  std::chrono::milliseconds timeout{0};  // per attempt; 0: none
  NodeSpec spec;
  int line = 0;  // where the node starts in the source (1-based; 0 when unknown)
};

struct Workflow {
  std::string name;
  std::string description;
  std::vector<InputDef> inputs;
  std::optional<WebhookTrigger> webhook;
  std::vector<CronTrigger> cron;
  RetryPolicy default_retry;
  std::chrono::milliseconds default_timeout{0};
  std::vector<NodeDef> nodes;  // in definition order
  // `secrets:` — every secret the templates may read (secrets.NAME); sorted. Reading one not
  // listed is an ingestion error, so applying a workflow shows what it can read.
  std::vector<std::string> declared_secrets;

  // Derived by ingestion: every secret the workflow uses (declared ones and the webhook's),
  // sorted. Who applies it needs a grant for each (service/scopes.h); a worker resolves no other.
  std::vector<std::string> secret_names;

  const NodeDef* FindNode(std::string_view id) const;
};

// The canonical JSON form: the definition schema with every default filled in, durations as
// milliseconds strings ("1500ms"), nodes as a list in definition order. It is itself a valid
// definition document, so a stored graph is loaded back by ingesting it again.
Json ToCanonicalJson(const Workflow& wf);

// Checks run inputs against the declared inputs: fills defaults, rejects missing required
// inputs and wrong types, and (unless allow_unknown) names undeclared ones.
Result<Json> ResolveInputs(const Workflow& wf, const Json& given, bool allow_unknown = false);

}  // namespace ferry::engine
