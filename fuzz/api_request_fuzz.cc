// API request decoding: ParseJson (src/core/json.h) under its limits, the API's ParseJsonObject,
// and FieldReader (src/core/json_fields.h) reading the shapes of the API's request bodies
// (POST /api/v1/tasks, /runs, /workflows). Also the Authorization header and ?limit= parsers.
#include <chrono>

#include "api/http_util.h"
#include "core/json.h"
#include "core/json_fields.h"
#include "fuzz_check.h"

namespace {

using ferry::FieldReader;
using ferry::Json;
using ferry::kRequired;
using ferry::fuzz::Check;
using namespace std::chrono_literals;

void ReadSubmitTask(const Json& body) {
  FieldReader f(body);
  (void)f.String("kind", kRequired);
  (void)f.Any("payload");
  (void)f.String("queue");
  (void)f.Int("max_attempts", 1, 1000);
  (void)f.String("unique_key");
  (void)f.Duration("timeout", 1ms, std::chrono::hours(24 * 7));
  (void)f.Duration("delay", 0ms, std::chrono::hours(24 * 365));
  (void)f.Int("eta_ms", 0, int64_t{1} << 50);
  const auto st = f.Finish();
  Check(st.has_value() == f.ok() || !st.has_value(), "Finish reports the first problem");
}

void ReadCreateRun(const Json& body) {
  FieldReader f(body, "run.");
  (void)f.String("workflow", kRequired);
  if (auto inputs = f.Object("inputs")) Check(inputs->is_object(), "Object() is an object");
  (void)f.Bool("dry_run");
  (void)f.Finish();
}

void ReadApplyWorkflow(const Json& body) {
  FieldReader f(body);
  (void)f.String("source", kRequired);
  (void)f.String("format");
  (void)f.String("author");
  (void)f.String("notes");
  (void)f.Finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = ferry::fuzz::Text(data, size);
  if (auto j = ferry::ParseJson(text)) {
    Check(ferry::JsonDepth(*j) <= ferry::kMaxJsonDepth, "accepted JSON is within the depth limit");
    const std::string dumped = ferry::DumpJson(*j);
    auto again = ferry::ParseJson(dumped);
    Check(again.has_value(), "a dump of accepted JSON parses");
    Check(*again == *j, "a dump of accepted JSON reads back equal");
    (void)ferry::JsonKindName(*j);
  }
  if (auto body = ferry::ParseJsonObject(text)) {
    Check(body->is_object(), "ParseJsonObject yields an object");
    ReadSubmitTask(*body);
    ReadCreateRun(*body);
    ReadApplyWorkflow(*body);
    (void)ferry::api::UrlVerificationChallenge(*body);
  }
  (void)ferry::api::BearerToken(text);
  if (auto limit = ferry::ParseLimit(text, 50, 1000)) {
    Check(*limit >= 1 && *limit <= 1000, "limits are within bounds");
  }
  return 0;
}
