// One JSON view per record, used by every surface: API responses, SSE events and the CLI's
// `--json` output. docs/api.md "Records" describes them once.
//
// Conventions (the same for every record):
//   - times are ISO 8601 UTC with milliseconds in fields named `*_at` ("2026-12-03T05:30:00.123Z"),
//     null when the moment has not happened (a queued task's started_at);
//   - durations and ages are integers in fields named `*_ms`, null when unknown;
//   - text that is absent is null, never "";
//   - stored JSON text (payloads, inputs, outputs, results, event data) is embedded as JSON;
//   - lists are {"<plural>": [...], "next_cursor": "..." | null}.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "broker/broker.h"
#include "core/json.h"
#include "store/store.h"

namespace ferry::views {

// The building blocks, for records outside this module (remediation candidates, alerts).
Json Time(int64_t ms);                   // `*_at`: ISO 8601, null for 0
Json Text(const std::string& s);         // null for ""
Json Embedded(const std::string& text);  // stored JSON text as JSON; "" -> null; not JSON -> text
Json Page(const std::string& plural, Json items, const std::string& next_cursor);

Json Task(const TaskRecord& t);
Json TaskEvent(const ferry::TaskEvent& e);
// `now_ms` for the heartbeat age.
Json Worker(const WorkerInfo& w, int64_t now_ms);
Json Queue(const QueueStats& q, int64_t now_ms);

Json Workflow(const ferry::Workflow& w);
// `full` adds the source and the parsed graph.
Json Version(const WorkflowVersion& v, bool full);
Json Run(const ferry::Run& r);
Json Step(const RunStep& s, RunStatus run_status);
Json RunEvent(const ferry::RunEvent& e);
Json Token(const ApiToken& t);
// A workflow's trigger (webhook or cron) with its fire times.
Json Trigger(const ferry::Trigger& t);

}  // namespace ferry::views
