// SqlStore: runs and their transitions, steps (checkpoints), events, and retention.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <map>
#include <set>
#include <utility>

#include "core/control_chars.h"
#include "core/ids.h"
#include "core/json.h"
#include "store/sql_store_impl.h"

namespace ferry::store_internal {
namespace {

using P = SqlParam;

constexpr std::string_view kRunSelect =
    "SELECT r.id, r.workflow_id, w.name, r.version, r.status, r.attempt, r.epoch, r.inputs, "
    "r.output, r.error, r.failed_node, r.triggered_by, r.trigger_id, r.retry_of, r.worker, "
    "r.created_ms, r.started_ms, r.finished_ms, r.updated_ms, r.seq "
    "FROM runs r JOIN workflows w ON w.id = r.workflow_id ";
constexpr size_t kRunSeqCol = 19;
// The same columns from an INSERT/UPDATE on runs, so a transition is one round trip.
constexpr std::string_view kRunReturning =
    " RETURNING id, workflow_id, (SELECT name FROM workflows WHERE workflows.id = "
    "runs.workflow_id), version, status, attempt, epoch, inputs, output, error, failed_node, "
    "triggered_by, trigger_id, retry_of, worker, created_ms, started_ms, finished_ms, updated_ms, "
    "seq";
constexpr int kEventAppendTries = 32;
constexpr std::string_view kStepCols =
    "run_id, node_id, status, output, error, attempt, epoch, started_ms, finished_ms";

// kInvalidArgument for an event without a type, before anything is written.
Status RequireTypes(const std::vector<NewRunEvent>& events) {
  for (const auto& e : events) {
    if (e.type.empty()) return Fail(ErrorCode::kInvalidArgument, "event type is required");
  }
  return {};
}

// kInvalidArgument for a step without its run, node or status, before anything is written.
Status RequireStepFields(const RunStep& step) {
  if (step.run_id.empty() || step.node_id.empty() || step.status.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "a step needs run_id, node_id and status");
  }
  return {};
}

Run RunFromRow(const SqlRow& r) {
  Run run;
  run.id = r.Text(0);
  run.workflow_id = r.Text(1);
  run.workflow_name = r.Text(2);
  run.version = ToInt(r.Int(3));
  run.status = ParseRunStatus(r.Text(4)).value_or(RunStatus::kPending);
  run.attempt = ToInt(r.Int(5));
  run.epoch = r.Int(6);
  run.inputs = r.Text(7);
  run.output = r.Text(8);
  run.error = r.Text(9);
  run.failed_node = r.Text(10);
  run.triggered_by = ParseTriggeredBy(r.Text(11)).value_or(TriggeredBy::kApi);
  run.trigger_id = r.Text(12);
  run.retry_of = r.Text(13);
  run.worker = r.Text(14);
  run.created_ms = r.Int(15);
  run.started_ms = r.Int(16);
  run.finished_ms = r.Int(17);
  run.updated_ms = r.Int(18);
  return run;
}

RunStep StepFromRow(const SqlRow& r) {
  RunStep s;
  s.run_id = r.Text(0);
  s.node_id = r.Text(1);
  s.status = r.Text(2);
  s.output = r.Text(3);
  s.error = r.Text(4);
  s.attempt = ToInt(r.Int(5));
  s.epoch = r.Int(6);
  s.started_ms = r.Int(7);
  s.finished_ms = r.Int(8);
  return s;
}

std::string RunState(const Run& r) {
  return std::string(RunStatusName(r.status)) + " at epoch " + std::to_string(r.epoch);
}

}  // namespace

// ---------------------------------------------------------------- runs

Result<Run> SqlStore::CreateRun(const CreateRunRequest& req) {
  if (auto st = ValidateCreate(req); !st) return Fail(st.error());
  // Alone it is one statement. With its first event or a nonce, one commit either way: inside
  // a user's transaction under a savepoint, outside it one round trip with its COMMIT.
  if (req.first_event.type.empty() && req.nonce.value.empty()) {
    return Single([&]() { return InsertRun(req, ""); });
  }
  if (user_tx_) return InTx([&]() { return InsertRun(req, ""); });
  return InsertRunInOneCommit(req);
}

Result<std::optional<Run>> SqlStore::GetRun(const std::string& id) {
  return One<Run>(Cat(kRunSelect, "WHERE r.id = $1"), {P::Text(id)}, RunFromRow);
}

Result<RunPage> SqlStore::ListRuns(const RunFilter& filter) {
  if (filter.limit < 1 || filter.limit > 1000) return Invalid("run list limit must be 1..1000");
  std::string sql(kRunSelect);
  std::vector<SqlParam> params;
  std::string where;
  auto add = [&](std::string_view cond, SqlParam p) {
    params.push_back(std::move(p));
    where += where.empty() ? "WHERE " : " AND ";
    where += cond;
    where += "$" + std::to_string(params.size());
  };
  if (filter.workflow_id) add("r.workflow_id = ", P::Text(*filter.workflow_id));
  if (filter.status) add("r.status = ", P::Text(std::string(RunStatusName(*filter.status))));
  if (filter.triggered_by) {
    add("r.triggered_by = ", P::Text(std::string(TriggeredByName(*filter.triggered_by))));
  }
  if (!filter.cursor.empty()) {
    int64_t seq = 0;
    auto [ptr, ec] =
        std::from_chars(filter.cursor.data(), filter.cursor.data() + filter.cursor.size(), seq);
    if (ec != std::errc() || ptr != filter.cursor.data() + filter.cursor.size() || seq <= 0) {
      return Invalid("malformed run list cursor \"" + filter.cursor + "\"");
    }
    add("r.seq < ", P::Int(seq));
  }
  params.push_back(P::Int(filter.limit + 1));
  sql += where + " ORDER BY r.seq DESC LIMIT $" + std::to_string(params.size());
  auto r = Exec(sql, params);
  if (!r) return Fail(r.error());
  RunPage page;
  auto n = std::min(r->rows.size(), static_cast<size_t>(filter.limit));
  for (size_t i = 0; i < n; ++i) page.runs.push_back(RunFromRow(r->rows[i]));
  if (r->rows.size() > n) page.next_cursor = r->rows[n - 1].Text(kRunSeqCol);
  return page;
}

namespace {

// pending -> running, or a takeover by a newer epoch; the row comes back when it applies.
SqlStatement MarkRunningUpdate(const std::string& run_id, int64_t epoch, const std::string& worker,
                               int64_t now) {
  // A released run (worker '': ReleaseRun) is taken again without counting an attempt.
  return {Cat("UPDATE runs SET status = 'running', epoch = $2, worker = $3, attempt = attempt + "
              "CASE WHEN status = 'running' AND worker = '' THEN 0 ELSE 1 END, "
              "started_ms = CASE WHEN started_ms = 0 THEN $4 ELSE started_ms END, updated_ms = $4 "
              "WHERE id = $1 AND (status = 'pending' OR (status = 'running' AND epoch < $2))",
              kRunReturning),
          {P::Text(run_id), P::Int(epoch), P::Text(worker), P::Int(now)}};
}

// The started event's data without its closing brace, ready for the statement to append the
// run's attempt, which it knows (the update before it counted it).
std::string StartedEventHead(const NewRunEvent& started) {
  // REQUIRES: the data is a JSON object (MarkRunStarted checked).
  std::string head = started.data.empty() ? "{}" : started.data;
  head.erase(head.find_last_not_of(" \t\r\n") + 1);
  head.pop_back();  // the closing brace: the attempt goes last
  // Only the opening brace left: an empty object.
  const bool empty = head[head.find_last_not_of(" \t\r\n")] == '{';
  head += empty ? "\"attempt\":" : ",\"attempt\":";
  return head;
}

// Inserts the started event after the run's ($1) last event for the run `r` (id, attempt): ts,
// type and head (StartedEventHead) are the parameters named.
std::string StartedEventFrom(std::string_view r, std::string_view ts, std::string_view type,
                             std::string_view head) {
  return Cat(Cat("INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT r.id, (SELECT "
                 "COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = $1), ",
                 ts),
             ", ") +
         std::string(type) + ", CAST(" + std::string(head) +
         " AS TEXT) || CAST(r.attempt AS TEXT) || '}' FROM " + std::string(r) + " r";
}

// The run as it is when running under this very claim ($1 id, $2 epoch, $3 worker).
constexpr std::string_view kRunningUnderClaim =
    "(SELECT id, attempt FROM runs WHERE id = $1 AND status = 'running' AND epoch = $2 AND "
    "worker = $3)";

// The "started" event, after the run's last one, only while the run is running under this very
// claim (marked just now, or by the call it repeats).
SqlStatement StartedEventInsert(const std::string& run_id, int64_t epoch, const std::string& worker,
                                const NewRunEvent& started, int64_t now) {
  return {StartedEventFrom(kRunningUnderClaim, "$4", "$5", "$6"),
          {P::Text(run_id), P::Int(epoch), P::Text(worker),
           P::Int(started.ts_ms > 0 ? started.ts_ms : now), P::Text(started.type),
           P::Text(StartedEventHead(started))}};
}

// PostgreSQL: MarkRunningUpdate and StartedEventInsert as one statement (a data-modifying WITH),
// the event inserted for the row the update returns: one statement less for the server when the
// run is marked now. When it is not (a repeat of this claim's call, or a refusal), the statement
// wrote nothing, and MarkRunStarted sends the two apart (a part of the statement sees the run as
// it was when the statement began, not a first mark that committed while it waited for the row).
// A takeover that waited for another start's commit numbers its event as if that start's were
// not there, so it clashes and is tried again (kStartTries), as a clash with any writer is.
SqlStatement MarkStartedStatement(const std::string& run_id, int64_t epoch,
                                  const std::string& worker, const NewRunEvent& started,
                                  int64_t now) {
  SqlStatement out = MarkRunningUpdate(run_id, epoch, worker, now);
  out.params.push_back(P::Int(started.ts_ms > 0 ? started.ts_ms : now));
  out.params.push_back(P::Text(started.type));
  out.params.push_back(P::Text(StartedEventHead(started)));
  out.sql = "WITH u AS (" + out.sql + "), e AS (" + StartedEventFrom("u", "$5", "$6", "$7") +
            ") SELECT * FROM u";
  return out;
}

SqlStatement StepsSelect(const std::string& run_id) {
  return {// Finished steps in the order they finished, then waiting ones (finished_ms 0).
          Cat("SELECT ", kStepCols) +
              " FROM run_steps WHERE run_id = $1 ORDER BY finished_ms = 0, finished_ms, node_id",
          {P::Text(run_id)}};
}

// Whether the database runs INSERT and UPDATE inside WITH (PostgreSQL; SQLite does not), so a
// transition and what goes with it are one statement. SQLite has no round trips to save, and its
// statements cost no server executor start each.
bool WritesInWith(const SqlConn& conn) { return conn.Backend() == "postgres"; }

// How a checkpoint meets the node's row: it replaces only a "waiting" one (a delay's deadline),
// by the node's end or a later attempt's.
constexpr std::string_view kStepOnConflict =
    " ON CONFLICT (run_id, node_id) DO UPDATE SET status = excluded.status, "
    "output = excluded.output, error = excluded.error, "
    "attempt = excluded.attempt, epoch = excluded.epoch, "
    "started_ms = excluded.started_ms, finished_ms = excluded.finished_ms "
    "WHERE run_steps.status = 'waiting'";

// A checkpoint's finished_ms as stored: `now` unless given, and none for a delay's deadline
// (the node has not finished).
int64_t StepFinishedMs(const RunStep& step, int64_t now) {
  if (step.status == kStepWaiting) return 0;
  return step.finished_ms != 0 ? step.finished_ms : now;
}

// A step's checkpoint, insert-once, fenced as SaveStep fences it (the run running under the
// step's epoch). Affects one row when written.
SqlStatement StepUpsert(const RunStep& step, int64_t now) {
  return {Cat("INSERT INTO run_steps (", kStepCols) +
              ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM runs WHERE "
              "id = $1 AND status = 'running' AND epoch = $7)" +
              std::string(kStepOnConflict),
          {P::Text(step.run_id), P::Text(step.node_id), P::Text(step.status), P::Text(step.output),
           P::Text(step.error), P::Int(step.attempt), P::Int(step.epoch), P::Int(step.started_ms),
           P::Int(StepFinishedMs(step, now))}};
}

// Up to this many rows per statement: one statement text per count up to it, each prepared once.
constexpr size_t kEventsPerStatement = 16;

// The statements that append `events` to a run: each numbers its rows after the run's last
// event, in order, in the statement itself (so one that waits for a later round trip still
// numbers right). An appender that took one of those numbers first makes it fail with kConflict.
std::vector<SqlStatement> EventInserts(const std::string& run_id,
                                       const std::vector<NewRunEvent>& events, int64_t now) {
  std::vector<SqlStatement> out;
  for (size_t begin = 0; begin < events.size(); begin += kEventsPerStatement) {
    const size_t n = std::min(kEventsPerStatement, events.size() - begin);
    std::string rows;
    std::vector<SqlParam> params{P::Text(run_id)};
    for (size_t i = 0; i < n; ++i) {
      const NewRunEvent& e = events[begin + i];
      const std::string ts = "$" + std::to_string(params.size() + 1);
      const std::string type = "$" + std::to_string(params.size() + 2);
      const std::string data = "$" + std::to_string(params.size() + 3);
      rows += i == 0 ? "SELECT 1 AS k, " + ts + " AS ts, " + type + " AS type, " + data + " AS data"
                     : " UNION ALL SELECT " + std::to_string(i + 1) + ", " + ts + ", " + type +
                           ", " + data;
      params.push_back(P::Int(e.ts_ms > 0 ? e.ts_ms : now));
      params.push_back(P::Text(e.type));
      params.push_back(P::Text(e.data.empty() ? "{}" : e.data));
    }
    out.push_back(SqlStatement{
        "INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT $1, b.m + v.k, v.ts, "
        "v.type, v.data FROM (SELECT COALESCE(MAX(seq), 0) AS m FROM run_events WHERE run_id = "
        "$1) b, (" +
            rows + ") v RETURNING seq",
        std::move(params)});
  }
  return out;
}

std::string ToText(std::string s) { return s; }
std::string ToText(int64_t v) { return std::to_string(v); }

// A PostgreSQL array literal of `items` (each quoted, its quotes and backslashes escaped), for a
// parameter cast to TEXT[] or BIGINT[]: one statement text for any number of rows.
template <class T, class Field>
std::string PgArray(const std::vector<T>& items, Field field) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (const char c : ToText(field(item))) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// running -> `status`, only under `epoch`; the row comes back when it applies ($1 run, $2 epoch,
// $3 status, $4 output, $5 error, $6 failed node, $7 now). `also`: more conditions.
SqlStatement FinishUpdate(const std::string& run_id, int64_t epoch, RunStatus status,
                          const std::string& output, const std::string& error,
                          const std::string& failed_node, int64_t now, std::string_view also = {}) {
  return {Cat(Cat("UPDATE runs SET status = $3, output = $4, error = $5, failed_node = $6, "
                  "finished_ms = $7, updated_ms = $7 WHERE id = $1 AND status = 'running' AND "
                  "epoch = $2",
                  also),
              kRunReturning),
          {P::Text(run_id), P::Int(epoch), P::Text(std::string(RunStatusName(status))),
           P::Text(output), P::Text(error), P::Text(failed_node), P::Int(now)}};
}

// PostgreSQL: the finish, its steps and its events as one statement, the same text for any
// number of each (arrays, $8-$18). The steps and events are inserted from the finish's own
// RETURNING (a data-modifying WITH), so they are written only when the finish applied, and the
// finish applies only where no step already has a different checkpoint (one SaveStep would
// refuse). Steps as StepUpsert writes them (replacing only a "waiting" row), distinct nodes.
SqlStatement FinishStatement(const std::string& run_id, int64_t epoch, RunStatus status,
                             const std::string& output, const std::string& error,
                             const std::string& failed_node, int64_t now,
                             const std::vector<RunStep>& steps,
                             const std::vector<NewRunEvent>& events) {
  constexpr std::string_view kStepsArrays =
      "unnest(CAST($8 AS TEXT[]), CAST($9 AS TEXT[]), CAST($10 AS TEXT[]), CAST($11 AS TEXT[]), "
      "CAST($12 AS BIGINT[]), CAST($13 AS BIGINT[]), CAST($14 AS BIGINT[]), "
      "CAST($15 AS BIGINT[])) AS v(node, status, output, error, attempt, epoch, started, "
      "finished)";
  SqlStatement out = FinishUpdate(
      run_id, epoch, status, output, error, failed_node, now,
      Cat(Cat(" AND NOT EXISTS (SELECT 1 FROM run_steps s, ", kStepsArrays),
          " WHERE s.run_id = $1 AND s.node_id = v.node AND s.status <> 'waiting' AND NOT "
          "(s.epoch = $2 AND s.status = v.status AND s.output = v.output AND s.error = "
          "v.error))"));
  for (auto array :
       {PgArray(steps, [](const RunStep& s) { return s.node_id; }),
        PgArray(steps, [](const RunStep& s) { return s.status; }),
        PgArray(steps, [](const RunStep& s) { return s.output; }),
        PgArray(steps, [](const RunStep& s) { return s.error; }),
        PgArray(steps, [](const RunStep& s) { return static_cast<int64_t>(s.attempt); }),
        PgArray(steps, [](const RunStep& s) { return s.epoch; }),
        PgArray(steps, [](const RunStep& s) { return s.started_ms; }),
        PgArray(steps, [now](const RunStep& s) { return StepFinishedMs(s, now); }),
        PgArray(events, [now](const NewRunEvent& e) { return e.ts_ms > 0 ? e.ts_ms : now; }),
        PgArray(events, [](const NewRunEvent& e) { return e.type; }),
        PgArray(events, [](const NewRunEvent& e) { return e.data.empty() ? "{}" : e.data; })}) {
    out.params.push_back(P::Text(std::move(array)));
  }
  out.sql =
      "WITH f AS (" + out.sql + Cat(Cat("), s AS (INSERT INTO run_steps (", kStepCols), ") ") +
      Cat(Cat("SELECT f.id, v.node, v.status, v.output, v.error, v.attempt, v.epoch, v.started, "
              "v.finished FROM f, ",
              kStepsArrays),
          kStepOnConflict) +
      "), e AS (INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT f.id, b.m + v.k, "
      "v.ts, v.type, v.data FROM f, (SELECT COALESCE(MAX(seq), 0) AS m FROM run_events WHERE "
      "run_id = $1) b, unnest(CAST($16 AS BIGINT[]), CAST($17 AS TEXT[]), CAST($18 AS TEXT[])) "
      "WITH ORDINALITY AS v(ts, type, data, k)) SELECT * FROM f";
  return out;
}

// SQLite (no writes inside WITH): the finish, its steps and its events as a closed list of
// statements for one commit (SqlConn::ExecInOwnCommit, so it can share a commit group), with
// what FinishStatement does in one statement: each step as StepUpsert writes it (fenced while the
// run is still running), then the finish, which applies only where no given node has a different
// checkpoint and which the call needs to apply (`needs_row`: otherwise nothing of it is
// committed), then the events. The finish's result is at index steps.size().
std::vector<SqlStatement> FinishStatements(const std::string& run_id, int64_t epoch,
                                           RunStatus status, const std::string& output,
                                           const std::string& error, const std::string& failed_node,
                                           int64_t now, const std::vector<RunStep>& steps,
                                           const std::vector<NewRunEvent>& events) {
  std::vector<SqlStatement> out;
  std::string differs;  // a given node whose stored checkpoint is not this finish's
  std::vector<SqlParam> differs_params;
  for (const auto& step : steps) {
    out.push_back(StepUpsert(step, now));
    const auto n = [&] { return "$" + std::to_string(8 + differs_params.size()); };
    differs += differs.empty() ? "" : " OR ";
    differs += "(s.node_id = " + n();
    differs_params.push_back(P::Text(step.node_id));
    differs += " AND NOT (s.epoch = $2 AND s.status = " + n();
    differs_params.push_back(P::Text(step.status));
    differs += " AND s.output = " + n();
    differs_params.push_back(P::Text(step.output));
    differs += " AND s.error = " + n() + "))";
    differs_params.push_back(P::Text(step.error));
  }
  SqlStatement finish = FinishUpdate(
      run_id, epoch, status, output, error, failed_node, now,
      differs.empty() ? std::string()
                      : " AND NOT EXISTS (SELECT 1 FROM run_steps s WHERE s.run_id = $1 AND "
                        "s.status <> 'waiting' AND (" +
                            differs + "))");
  std::move(differs_params.begin(), differs_params.end(), std::back_inserter(finish.params));
  finish.needs_row = true;
  out.push_back(std::move(finish));
  for (auto& insert : EventInserts(run_id, events, now)) out.push_back(std::move(insert));
  return out;
}

// kConflict at a finish's COMMIT (or its events' statement): the finish applied, only its events
// met another appender's numbers. Nothing was committed: the caller tries again.
constexpr std::string_view kEventsClashed =
    "store: the run's events met another writer's; nothing committed, retry: ";
tl::unexpected<Error> EventsClashed(const Error& e) {
  return Fail(ErrorCode::kUnavailable, std::string(kEventsClashed) + e.message);
}
bool IsEventsClash(const Error& e) {
  return e.code == ErrorCode::kUnavailable && e.message.rfind(kEventsClashed, 0) == 0;
}

// How many times a finish is committed when its events keep meeting another writer's numbers.
constexpr int kFinishTries = 5;

// Whether a finish's steps can go with it in one closed list of statements (one round trip on
// PostgreSQL, one statement list on SQLite): each under the finish's epoch (a step SaveStep would
// refuse for its epoch is refused by the transaction path, with its reason), and each node once
// (two checkpoints of one node in one call: the transaction path decides between them as
// SaveStep does).
bool FitsOneCommit(const std::vector<RunStep>& steps, int64_t epoch) {
  std::set<std::string_view> nodes;
  for (const auto& s : steps) {
    if (s.epoch != epoch || !nodes.insert(s.node_id).second) return false;
  }
  return true;
}

// An event number another writer takes at the same moment fails the start's commit; it is
// tried again at once, this many times at most.
constexpr int kStartTries = 3;

}  // namespace

Result<Run> SqlStore::MarkRunRunning(const std::string& run_id, int64_t epoch,
                                     const std::string& worker) {
  if (epoch < 0) return Invalid("epoch must be >= 0");
  // No worker is a released run's mark (ReleaseRun), whose next start counts no attempt.
  if (worker.empty()) return Invalid("worker must not be empty");
  return Single([&]() -> Result<Run> {
    const SqlStatement update = MarkRunningUpdate(run_id, epoch, worker, NowMs());
    auto r = Exec(update.sql, update.params);
    if (!r) return Fail(r.error());
    if (!r->rows.empty()) return RunFromRow(r->rows[0]);
    return WhyNotMarkedRunning(run_id, epoch, worker);
  });
}

Result<Run> SqlStore::WhyNotMarkedRunning(const std::string& run_id, int64_t epoch,
                                          const std::string& worker) {
  // Lost the condition: read the row only to say why (or to accept a repeat).
  auto run = MustGetRun(run_id);
  if (!run) return run;
  if (run->status == RunStatus::kRunning && run->epoch == epoch && run->worker == worker) {
    return run;  // the same claim marking again (a retried call): already done
  }
  return Conflict("run " + run_id + " is " + RunState(*run) + "; cannot mark it running at " +
                  "epoch " + std::to_string(epoch));
}

Result<StartedRun> SqlStore::MarkRunStarted(const std::string& run_id, int64_t epoch,
                                            const std::string& worker, const NewRunEvent& started) {
  if (epoch < 0) return Invalid("epoch must be >= 0");
  if (worker.empty()) return Invalid("worker must not be empty");  // as MarkRunRunning
  if (auto st = RequireTypes({started}); !st) return Fail(st.error());
  {
    // The statement appends the attempt to the object's text: an object, without one of its own.
    auto data = ParseStoredJson(started.data.empty() ? "{}" : started.data);
    if (!data || !data->is_object() || data->contains("attempt")) {
      return Invalid("the started event's data must be a JSON object without \"attempt\"");
    }
  }
  // On PostgreSQL outside a caller's transaction, the update and the event are one statement.
  bool one_statement = !user_tx_ && WritesInWith(*conn_);
  for (int clashes = 0;;) {
    const int64_t now = NowMs();
    std::vector<SqlStatement> stmts;
    if (one_statement) {
      stmts.push_back(MarkStartedStatement(run_id, epoch, worker, started, now));
    } else {
      stmts.push_back(MarkRunningUpdate(run_id, epoch, worker, now));
      stmts.push_back(StartedEventInsert(run_id, epoch, worker, started, now));
    }
    stmts.push_back(StepsSelect(run_id));
    Result<std::vector<SqlResult>> r;
    if (user_tx_) {
      // Inside a caller's transaction: the same statements, in it (under a savepoint).
      r = InTx([&]() -> Result<std::vector<SqlResult>> {
        std::vector<SqlResult> out;
        for (const auto& st : stmts) {
          auto one = Exec(st.sql, st.params);
          if (!one) return Fail(one.error());
          out.push_back(std::move(*one));
        }
        return out;
      });
    } else {
      r = ExecAndCommit(stmts);
    }
    if (!r && r.error().code == ErrorCode::kConflict) {
      // Only the event's number can clash (the update and the read raise none); nothing was
      // committed. Past the last try the caller may try again later: not a lost claim.
      if (++clashes < kStartTries) continue;
      return Fail(ErrorCode::kUnavailable,
                  "store: the run's started event met another writer's number " +
                      std::to_string(kStartTries) +
                      " times; nothing committed, retry: " + r.error().message);
    }
    if (!r) return Fail(r.error());
    StartedRun out;
    if (!(*r)[0].rows.empty()) {
      out.run = RunFromRow((*r)[0].rows[0]);
    } else if (one_statement) {
      // Not marked now, and nothing written: once more with the statements apart, which writes
      // a repeat's event (MarkStartedStatement). A refusal costs one more round trip.
      one_statement = false;
      continue;
    } else {
      // Not marked now: a repeat (the event went in under the same claim) or refused (nothing
      // was written: the event needed the claim).
      auto run = WhyNotMarkedRunning(run_id, epoch, worker);
      if (!run) return Fail(run.error());
      out.run = std::move(*run);
    }
    for (const auto& row : r->back().rows) out.steps.push_back(StepFromRow(row));
    return out;
  }
}

Result<Run> SqlStore::FinishRun(const std::string& run_id, int64_t epoch, RunStatus status,
                                const std::string& output, const std::string& error,
                                const std::string& failed_node,
                                const std::vector<NewRunEvent>& events,
                                const std::vector<RunStep>& steps) {
  // An event number another writer took at the same moment (a scheduler's or a sweep's
  // run.enqueued landing as a fast run ends) fails the commit with nothing written: tried again at
  // once. Handed to the caller, it would fail the attempt, and the next one would run the last
  // node again, whose checkpoint this commit carries.
  // Errors are text a node's program or template made: a NUL in one is shown, not stored (the
  // steps are copied only when one holds a NUL).
  std::vector<RunStep> shown;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].error.find('\0') == std::string::npos) continue;
    if (shown.empty()) shown = steps;
    shown[i].error = ShowNulBytes(std::move(shown[i].error));
  }
  const std::vector<RunStep>& kept = shown.empty() ? steps : shown;
  const std::string shown_error = ShowNulBytes(error);
  for (int clashes = 1;; ++clashes) {
    auto r = FinishRunOnce(run_id, epoch, status, output, shown_error, failed_node, events, kept);
    if (r || clashes >= kFinishTries || !IsEventsClash(r.error())) return r;
    spdlog::debug("run {}: the finish's events met another writer's numbers; again", run_id);
  }
}

Result<Run> SqlStore::FinishRunOnce(const std::string& run_id, int64_t epoch, RunStatus status,
                                    const std::string& output, const std::string& error,
                                    const std::string& failed_node,
                                    const std::vector<NewRunEvent>& events,
                                    const std::vector<RunStep>& steps) {
  if (!IsTerminal(status)) {
    return Invalid("FinishRun needs a terminal status, not " + std::string(RunStatusName(status)));
  }
  if (auto st = RequireTypes(events); !st) return Fail(st.error());
  for (const auto& s : steps) {
    if (s.run_id != run_id) return Invalid("a step of run " + s.run_id + " given to " + run_id);
    if (auto st = RequireStepFields(s); !st) return Fail(st.error());
  }
  if (events.empty() && steps.empty()) {
    return Single([&]() -> Result<Run> {
      const SqlStatement update =
          FinishUpdate(run_id, epoch, status, output, error, failed_node, NowMs());
      auto r = Exec(update.sql, update.params);
      if (!r) return Fail(r.error());
      if (!r->rows.empty()) return RunFromRow(r->rows[0]);
      return WhyNotFinished(run_id, epoch, status, output, error, failed_node);
    });
  }
  if (!user_tx_ && FitsOneCommit(steps, epoch)) {
    // The finish with its steps and events in one commit without logic between its statements:
    // on PostgreSQL one statement (FinishStatement, one round trip), on SQLite a closed list
    // (FinishStatements, which can share a commit group).
    const bool one_statement = WritesInWith(*conn_);
    const std::vector<SqlStatement> stmts =
        one_statement
            ? std::vector<SqlStatement>{FinishStatement(run_id, epoch, status, output, error,
                                                        failed_node, NowMs(), steps, events)}
            : FinishStatements(run_id, epoch, status, output, error, failed_node, NowMs(), steps,
                               events);
    auto r = ExecAndCommit(stmts);
    if (!r && r.error().code == ErrorCode::kConflict) return EventsClashed(r.error());
    if (!r) return Fail(r.error());
    const size_t finish_at = one_statement ? 0 : steps.size();
    if (!StoppedAtNeededRow(stmts, *r) && !(*r)[finish_at].rows.empty()) {
      return RunFromRow((*r)[finish_at].rows[0]);
    }
    // Not applied, and nothing written: the transaction below says why, or accepts a repeat of
    // a finish that applied (writing its events again, as it always has).
  }
  // The steps, the finish and its events are one commit; a finish that does not apply writes
  // none of them. Each step is fenced as SaveStep fences it, while the run is still running.
  // On its own, the events go with the COMMIT (one round trip on PostgreSQL).
  bool finished = false;
  auto out = InTx([&]() -> Result<Run> {
    for (const auto& s : steps) {
      if (auto saved = SaveStep(s); !saved) return Fail(saved.error());
    }
    auto run = FinishRun(run_id, epoch, status, output, error, failed_node, {}, {});
    if (!run) return run;
    if (user_tx_) {
      // Inside a caller's transaction: written now, so a failure is this call's.
      if (auto appended = AppendRunEvents(run_id, events); !appended) {
        return Fail(appended.error());
      }
      return run;
    }
    if (auto st = WriteEventsWithNext(run_id, events); !st) return Fail(st.error());
    finished = true;
    return run;
  });
  if (!out && finished && out.error().code == ErrorCode::kConflict) {
    return EventsClashed(out.error());
  }
  return out;
}

Result<Run> SqlStore::WhyNotFinished(const std::string& run_id, int64_t epoch, RunStatus status,
                                     const std::string& output, const std::string& error,
                                     const std::string& failed_node) {
  auto run = MustGetRun(run_id);
  if (!run) return run;
  if (run->status == status && run->epoch == epoch && run->output == output &&
      run->error == error && run->failed_node == failed_node) {
    return run;  // this exact finish was already applied
  }
  return Conflict("run " + run_id + " is " + RunState(*run) + "; cannot finish it as " +
                  std::string(RunStatusName(status)) + " at epoch " + std::to_string(epoch));
}

Result<Run> SqlStore::CancelRun(const std::string& run_id) {
  return Single([&]() -> Result<Run> {
    int64_t now = NowMs();
    auto r = Exec(Cat("UPDATE runs SET status = 'cancelled', finished_ms = $2, updated_ms = $2 "
                      "WHERE id = $1 AND status IN ('pending', 'running')",
                      kRunReturning),
                  {P::Text(run_id), P::Int(now)});
    if (!r) return Fail(r.error());
    if (!r->rows.empty()) return RunFromRow(r->rows[0]);
    auto run = MustGetRun(run_id);
    if (!run) return run;
    return Conflict("run " + run_id + " already ended: " + std::string(RunStatusName(run->status)));
  });
}

Result<Run> SqlStore::ReleaseRun(const std::string& run_id, int64_t epoch,
                                 const std::vector<NewRunEvent>& events,
                                 const std::vector<RunStep>& steps) {
  if (auto st = RequireTypes(events); !st) return Fail(st.error());
  // Events that meet another writer's numbers (a cancel's, a scheduler's) roll the release back
  // with them: it is made again at once, as a finish is, rather than read as a lost run.
  for (int clashes = 1;; ++clashes) {
    bool released = false;
    auto out = InTx([&]() -> Result<Run> {
      auto r = Exec(Cat("UPDATE runs SET worker = '', updated_ms = $3 WHERE id = $1 AND "
                        "status = 'running' AND epoch = $2",
                        kRunReturning),
                    {P::Text(run_id), P::Int(epoch), P::Int(NowMs())});
      if (!r) return Fail(r.error());
      if (r->rows.empty()) {
        auto run = MustGetRun(run_id);
        if (!run) return run;
        return Conflict("run " + run_id + " is " + RunState(*run) +
                        "; cannot release it at epoch " + std::to_string(epoch));
      }
      released = true;
      for (const auto& s : steps) {
        if (auto saved = SaveStep(s); !saved) return Fail(saved.error());
      }
      if (auto appended = InsertRunEvents(run_id, events); !appended) {
        return Fail(appended.error());
      }
      return RunFromRow(r->rows[0]);
    });
    if (out || !released || out.error().code != ErrorCode::kConflict) return out;
    if (clashes >= kFinishTries) return EventsClashed(out.error());
    spdlog::debug("run {}: the release's events met another writer's numbers; again", run_id);
  }
}

Result<Run> SqlStore::RetryRun(const std::string& run_id, const RetryRunOptions& options) {
  return InTx([&]() -> Result<Run> {
    auto orig = MustGetRun(run_id);
    if (!orig) return orig;
    if (orig->status != RunStatus::kFailed && orig->status != RunStatus::kCancelled) {
      return Conflict("run " + run_id + " is " + std::string(RunStatusName(orig->status)) +
                      "; only failed or cancelled runs can be retried");
    }
    auto prior = Exec("SELECT id FROM runs WHERE retry_of = $1", {P::Text(run_id)});
    if (!prior) return Fail(prior.error());
    if (!prior->rows.empty()) {
      return Conflict("run " + run_id + " was already retried as " + prior->rows[0].Text(0));
    }
    CreateRunRequest req;
    req.workflow_id = orig->workflow_id;
    req.version = options.latest_version ? 0 : orig->version;
    req.inputs = orig->inputs;
    req.triggered_by = options.triggered_by;
    req.trigger_id = orig->trigger_id;
    auto run = InsertRun(req, run_id);
    if (!run && run.error().code == ErrorCode::kConflict) {
      return Conflict("run " + run_id + " was already retried (concurrently)");
    }
    return run;
  });
}

Result<std::vector<Run>> SqlStore::ListPendingRunsOlderThan(std::chrono::milliseconds age,
                                                            int limit) {
  if (limit < 1) return Invalid("limit must be >= 1");
  return Many<Run>(Cat(kRunSelect,
                       "WHERE r.status = 'pending' AND r.created_ms <= $1 "
                       "ORDER BY r.created_ms, r.seq LIMIT $2"),
                   {P::Int(NowMs() - age.count()), P::Int(limit)}, RunFromRow);
}

Result<std::vector<Run>> SqlStore::ListRunningRuns(std::chrono::milliseconds age, int limit,
                                                   const std::string& after_id) {
  if (limit < 1) return Invalid("limit must be >= 1");
  return Many<Run>(Cat(kRunSelect,
                       "WHERE r.status = 'running' AND r.updated_ms <= $1 AND r.id > $3 "
                       "ORDER BY r.id LIMIT $2"),
                   {P::Int(NowMs() - age.count()), P::Int(limit), P::Text(after_id)}, RunFromRow);
}

Result<std::vector<Run>> SqlStore::ListCancelledRunsWithout(const std::string& event_type,
                                                            std::chrono::milliseconds within,
                                                            int limit) {
  if (limit < 1) return Invalid("limit must be >= 1");
  // The ended runs' partial index's own condition is named as well as the status: SQLite uses a
  // partial index only for a query that says its condition. Each run's events are looked at by
  // their key (run_id first).
  return Many<Run>(
      Cat(kRunSelect,
          "WHERE r.status IN ('succeeded', 'failed', 'cancelled') AND r.status = 'cancelled' "
          "AND r.finished_ms >= $1 AND NOT EXISTS (SELECT 1 FROM run_events e "
          "WHERE e.run_id = r.id AND e.type = $3) "
          "ORDER BY r.finished_ms, r.seq LIMIT $2"),
      {P::Int(NowMs() - within.count()), P::Int(limit), P::Text(event_type)}, RunFromRow);
}

Result<std::map<RunStatus, int64_t>> SqlStore::CountRunsByStatus() {
  auto r = Exec("SELECT status, COUNT(*) FROM runs GROUP BY status", {});
  if (!r) return Fail(r.error());
  std::map<RunStatus, int64_t> out;
  for (auto s : {RunStatus::kPending, RunStatus::kRunning, RunStatus::kSucceeded,
                 RunStatus::kFailed, RunStatus::kCancelled}) {
    out[s] = 0;
  }
  for (const auto& row : r->rows) {
    if (auto s = ParseRunStatus(row.Text(0))) out[*s] = row.Int(1);
  }
  return out;
}

Result<std::map<RunStatus, int64_t>> SqlStore::CountActiveRuns() {
  // Each status named literally, so each count reads that status's partial index alone.
  auto r = Exec(
      "SELECT (SELECT COUNT(*) FROM runs WHERE status = 'pending'), "
      "(SELECT COUNT(*) FROM runs WHERE status = 'running')",
      {});
  if (!r) return Fail(r.error());
  if (r->rows.empty()) return Fail(ErrorCode::kInternal, "the active run count returned no row");
  return std::map<RunStatus, int64_t>{{RunStatus::kPending, r->rows[0].Int(0)},
                                      {RunStatus::kRunning, r->rows[0].Int(1)}};
}

Result<int64_t> SqlStore::CountPendingOlderThan(std::chrono::milliseconds age) {
  auto r = Exec("SELECT COUNT(*) FROM runs WHERE status = 'pending' AND created_ms <= $1",
                {P::Int(NowMs() - age.count())});
  if (!r) return Fail(r.error());
  return r->rows.empty() ? 0 : r->rows[0].Int(0);
}

Status SqlStore::ValidateCreate(const CreateRunRequest& req) {
  if (req.workflow_id.empty()) return Invalid("a run needs a workflow_id");
  if (req.version < 0) return Invalid("version must be >= 0");
  if (!req.id.empty() && !LooksLikeId(req.id)) return Invalid("malformed run id " + req.id);
  if (!req.nonce.value.empty() && req.nonce.scope.empty()) return Invalid("a nonce needs a scope");
  return {};
}

namespace {

// The statements that create a run (RunWriteFor) and where the run's own insert is among them.
struct RunWrite {
  std::vector<SqlStatement> stmts;
  size_t run_at = 0;
};

// Inserts the run when its workflow has the version asked for (0: its current one) and, with
// only_if_current, that version is still the current one, and, with a nonce, when the nonce's
// record names this run (NonceInsert wrote it just before); returns the row (none otherwise).
SqlStatement RunInsert(const CreateRunRequest& req, const std::string& id,
                       const std::string& retry_of, int64_t now) {
  const std::string_view nonce_check =
      req.nonce.value.empty() ? ""
                              : " AND EXISTS (SELECT 1 FROM webhook_nonces WHERE scope = $10 AND "
                                "nonce = $11 AND run_id = $1)";
  SqlStatement out{
      Cat(Cat("INSERT INTO runs (id, workflow_id, version, status, inputs, triggered_by, "
              "trigger_id, retry_of, created_ms, updated_ms) SELECT $1, w.id, v.version, "
              "'pending', $4, $5, $6, $7, $8, $8 FROM workflows w JOIN workflow_versions v ON "
              "v.workflow_id = w.id WHERE w.id = $2 AND v.version = CASE WHEN $3 = 0 THEN "
              "w.current_version ELSE $3 END AND ($9 = 0 OR v.version = w.current_version)",
              nonce_check),
          kRunReturning),
      {P::Text(id), P::Text(req.workflow_id), P::Int(req.version),
       P::Text(req.inputs.empty() ? "{}" : req.inputs),
       P::Text(std::string(TriggeredByName(req.triggered_by))), P::Text(req.trigger_id),
       P::TextOrNull(retry_of), P::Int(now), P::Int(req.only_if_current ? 1 : 0)}};
  if (!req.nonce.value.empty()) {
    out.params.push_back(P::Text(req.nonce.scope));
    out.params.push_back(P::Text(req.nonce.value));
  }
  return out;
}

// Remembers the delivery's nonce for the run `id`, or takes over an expired record of it; one
// remembered and unexpired is left as it is (affects no row), and the run insert then finds a
// record naming another run. First: the record's row lock makes a concurrent delivery of the same
// nonce wait for this one's outcome.
SqlStatement NonceInsert(const CreateRunRequest& req, const std::string& id, int64_t now) {
  return {
      "INSERT INTO webhook_nonces (scope, nonce, expires_ms, run_id) VALUES ($1, $2, $3, $5) "
      "ON CONFLICT (scope, nonce) DO UPDATE SET expires_ms = excluded.expires_ms, "
      "run_id = excluded.run_id WHERE webhook_nonces.expires_ms <= $4",
      {P::Text(req.nonce.scope), P::Text(req.nonce.value), P::Int(req.nonce.expires_ms),
       P::Int(now), P::Text(id)}};
}

// Last: a nonce remembered for a run that was then not inserted (its workflow or version gone)
// is forgotten again, so the delivery may be sent again.
SqlStatement NonceUndo(const CreateRunRequest& req, const std::string& id) {
  return {
      "DELETE FROM webhook_nonces WHERE scope = $1 AND nonce = $2 AND run_id = $3 AND NOT "
      "EXISTS (SELECT 1 FROM runs WHERE id = $3)",
      {P::Text(req.nonce.scope), P::Text(req.nonce.value), P::Text(id)}};
}

// The new run's first event, number 1 (nobody else can see the run yet, so it is free). Inserts
// nothing when the run insert before it inserted nothing.
SqlStatement FirstEventInsert(const std::string& id, const CreateRunRequest& req, int64_t now) {
  const auto& event = req.first_event;
  return {
      "INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT $1, 1, $2, $3, $4 "
      "WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1)",
      {P::Text(id), P::Int(now), P::Text(event.type),
       P::Text(event.data.empty() ? "{}" : event.data)}};
}

// PostgreSQL: RunInsert and FirstEventInsert as one statement (a data-modifying WITH): the event
// is inserted for the row the run insert returns.
SqlStatement RunWithFirstEventInsert(const CreateRunRequest& req, const std::string& id,
                                     const std::string& retry_of, int64_t now) {
  SqlStatement out = RunInsert(req, id, retry_of, now);
  const auto& event = req.first_event;
  const auto next = [&out](SqlParam p) {
    out.params.push_back(std::move(p));
    return "$" + std::to_string(out.params.size());
  };
  const std::string ts = next(P::Int(now));
  const std::string type = next(P::Text(event.type));
  const std::string data = next(P::Text(event.data.empty() ? "{}" : event.data));
  out.sql = "WITH r AS (" + out.sql +
            "), e AS (INSERT INTO run_events (run_id, seq, ts_ms, type, data) SELECT r.id, 1, " +
            ts + ", " + type + ", " + data + " FROM r) SELECT * FROM r";
  return out;
}

// What creating a run writes, in this order: its nonce (a webhook's), the run, its first event,
// and the nonce's undo. Each depends on what came before it, so that whatever is refused leaves
// nothing behind even when all of them are sent and committed together. `in_with`: the run and
// its event are one statement (WritesInWith; the nonce's statements must stay apart, as a
// statement does not see what its own WITH wrote).
RunWrite RunWriteFor(const CreateRunRequest& req, const std::string& retry_of, int64_t now,
                     bool in_with) {
  const std::string id = req.id.empty() ? NewId(now) : req.id;
  const bool nonce = !req.nonce.value.empty();
  const bool event = !req.first_event.type.empty();
  RunWrite out;
  if (nonce) out.stmts.push_back(NonceInsert(req, id, now));
  out.run_at = out.stmts.size();
  if (event && in_with) {
    out.stmts.push_back(RunWithFirstEventInsert(req, id, retry_of, now));
  } else {
    out.stmts.push_back(RunInsert(req, id, retry_of, now));
    if (event) out.stmts.push_back(FirstEventInsert(id, req, now));
  }
  if (nonce) out.stmts.push_back(NonceUndo(req, id));
  return out;
}

}  // namespace

Result<Run> SqlStore::InsertRun(const CreateRunRequest& req, const std::string& retry_of) {
  // Inside a caller's transaction, the statements stay apart, as MarkRunStarted's and FinishRun's
  // do there.
  const RunWrite write = RunWriteFor(req, retry_of, NowMs(), !user_tx_ && WritesInWith(*conn_));
  std::vector<SqlResult> results;
  for (size_t i = 0; i < write.stmts.size(); ++i) {
    const SqlStatement& st = write.stmts[i];
    if (i > write.run_at) {
      // The event and the nonce's undo: nothing but the connection can fail them, and no result
      // is read; they travel with the COMMIT (or the next statement).
      if (auto sent = ExecWithNext(st.sql, st.params); !sent) return Fail(sent.error());
      continue;
    }
    auto r = Exec(st.sql, st.params);
    if (!r) return Fail(r.error());
    results.push_back(std::move(*r));
  }
  // (Refused, the caller's transaction rolls back whatever was written.)
  return CreatedRun(req, write.run_at, results);
}

Result<Run> SqlStore::InsertRunInOneCommit(const CreateRunRequest& req) {
  const RunWrite write = RunWriteFor(req, "", NowMs(), WritesInWith(*conn_));
  auto r = ExecAndCommit(write.stmts);
  if (!r) return Fail(r.error());
  return CreatedRun(req, write.run_at, *r);
}

Result<Run> SqlStore::CreatedRun(const CreateRunRequest& req, size_t run_at,
                                 const std::vector<SqlResult>& results) {
  // Refused, nothing else was written (the run and its event each needed what came before).
  if (run_at > 0 && results[0].affected != 1) {
    return Conflict("nonce " + req.nonce.value + " of " + req.nonce.scope + " was already used");
  }
  if (results[run_at].rows.empty()) return WhyRunNotInserted(req);
  return RunFromRow(results[run_at].rows[0]);
}

tl::unexpected<Error> SqlStore::WhyRunNotInserted(const CreateRunRequest& req) {
  auto wf = GetWorkflowById(req.workflow_id);
  if (!wf) return Fail(wf.error());
  if (!*wf) return NotFound("no workflow " + req.workflow_id);
  if (req.only_if_current && req.version != 0 && req.version != (*wf)->current_version) {
    auto version = GetWorkflowVersion(req.workflow_id, req.version);
    if (!version) return Fail(version.error());
    if (!*version) {
      return NotFound("workflow " + (*wf)->name + " has no version " + std::to_string(req.version));
    }
    return Conflict("version " + std::to_string(req.version) + " of workflow " + (*wf)->name +
                    " is no longer its current one (" + std::to_string((*wf)->current_version) +
                    " is)");
  }
  return NotFound("workflow " + (*wf)->name + " has no version " + std::to_string(req.version));
}

Result<Run> SqlStore::MustGetRun(const std::string& id) {
  auto run = GetRun(id);
  if (!run) return Fail(run.error());
  if (!*run) return NotFound("no run " + id);
  return std::move(**run);
}

// ---------------------------------------------------------------- steps

Result<SaveStepOutcome> SqlStore::SaveStep(const RunStep& step) {
  if (auto st = RequireStepFields(step); !st) return Fail(st.error());
  if (step.error.find('\0') != std::string::npos) {  // shown, as FinishRun does
    RunStep shown = step;
    shown.error = ShowNulBytes(std::move(shown.error));
    return SaveStep(shown);
  }
  return Single([&]() -> Result<SaveStepOutcome> {
    // Insert-once, and only under the run's current epoch: the fence and the write are one
    // statement, so a worker that lost the run cannot slip a checkpoint in.
    const SqlStatement upsert = StepUpsert(step, NowMs());
    auto r = Exec(upsert.sql, upsert.params);
    if (!r) return Fail(r.error());
    if (r->affected == 1) return SaveStepOutcome::kSaved;
    auto existing = One<RunStep>(
        Cat("SELECT ", kStepCols) + " FROM run_steps WHERE run_id = $1 AND node_id = $2",
        {P::Text(step.run_id), P::Text(step.node_id)}, StepFromRow);
    if (!existing) return Fail(existing.error());
    // A waiting row would have been replaced had the fence held: the run moved on (below).
    if (*existing && (*existing)->status != kStepWaiting) {
      const RunStep& e = **existing;
      if (e.epoch == step.epoch && e.status == step.status && e.output == step.output &&
          e.error == step.error) {
        return SaveStepOutcome::kAlreadySaved;
      }
      return Conflict("node " + step.node_id + " of run " + step.run_id +
                      " is already checkpointed (" + e.status + " at epoch " +
                      std::to_string(e.epoch) + ")");
    }
    auto run = MustGetRun(step.run_id);
    if (!run) return Fail(run.error());
    return Conflict("run " + step.run_id + " is " + RunState(*run) + "; cannot checkpoint node " +
                    step.node_id + " at epoch " + std::to_string(step.epoch));
  });
}

Result<std::vector<RunStep>> SqlStore::ListSteps(const std::string& run_id) {
  const SqlStatement select = StepsSelect(run_id);
  return Many<RunStep>(select.sql, select.params, StepFromRow);
}

// ---------------------------------------------------------------- events

Result<int64_t> SqlStore::AppendRunEvent(const std::string& run_id, const std::string& type,
                                         const std::string& data) {
  return AppendRunEvents(run_id, {NewRunEvent{type, data, 0}});
}

Result<int64_t> SqlStore::AppendRunEvents(const std::string& run_id,
                                          const std::vector<NewRunEvent>& events) {
  if (auto st = RequireTypes(events); !st) return Fail(st.error());
  if (events.empty()) return int64_t{0};
  // AppendRunEvent is the batch of one. A conflict (another appender took a number first)
  // undoes all of the batch, which is tried again.
  auto write = [&]() -> Result<int64_t> { return InsertRunEvents(run_id, events); };
  for (int attempt = 1;; ++attempt) {
    // One statement needs no transaction of its own; several are one commit.
    auto last = events.size() <= kEventsPerStatement ? Single(write) : InTx(write);
    if (last || last.error().code != ErrorCode::kConflict) return last;
    // A conflict is either the race above or a foreign-key miss: the run does not exist.
    auto run = GetRun(run_id);
    if (!run) return Fail(run.error());
    if (!*run) return NotFound("no run " + run_id);
    if (attempt >= kEventAppendTries) return last;
  }
}

Result<int64_t> SqlStore::InsertRunEvents(const std::string& run_id,
                                          const std::vector<NewRunEvent>& events) {
  int64_t last = 0;
  for (const auto& insert : EventInserts(run_id, events, NowMs())) {
    auto r = Exec(insert.sql, insert.params);
    if (!r) return Fail(r.error());
    for (const auto& row : r->rows) last = std::max(last, row.Int(0));
  }
  return last;
}

Status SqlStore::WriteEventsWithNext(const std::string& run_id,
                                     const std::vector<NewRunEvent>& events) {
  for (const auto& insert : EventInserts(run_id, events, NowMs())) {
    if (auto st = ExecWithNext(insert.sql, insert.params); !st) return st;
  }
  return {};
}

namespace {

// The columns RunEventOf reads, in its order: both event listings select them.
constexpr std::string_view kRunEventCols = "SELECT run_id, seq, ts_ms, type, data";

RunEvent RunEventOf(const SqlRow& r) {
  RunEvent e;
  e.run_id = r.Text(0);
  e.seq = r.Int(1);
  e.ts_ms = r.Int(2);
  e.type = r.Text(3);
  e.data = r.Text(4);
  return e;
}

}  // namespace

Result<std::vector<RunEvent>> SqlStore::ListRunEvents(const std::string& run_id, int64_t after_seq,
                                                      int limit) {
  if (limit < 1 || limit > 10000) return Invalid("event list limit must be 1..10000");
  return Many<RunEvent>(std::string(kRunEventCols) +
                            " FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                        {P::Text(run_id), P::Int(after_seq), P::Int(limit)}, RunEventOf);
}

Result<RunEventPage> SqlStore::ListRunEventPage(const std::string& run_id,
                                                const RunEventQuery& query) {
  if (query.limit < 1 || query.limit > 10000) return Invalid("event list limit must be 1..10000");
  if (query.max_bytes < 1) return Invalid("event page size must be at least 1 byte");
  // The sizes first (no data crosses to the process), then the data of the events that fit: two
  // bounded reads. Events are only ever appended, so the second read, between the first and
  // last seq the first counted, finds every event it counted (unless retention deleted the run
  // in between: then fewer).
  // PostgreSQL's octet_length reads a large value's stored size without decompressing it;
  // SQLite 3.40 has no octet_length, and its length() of text counts characters: of the text's
  // bytes, as a blob, it counts bytes.
  const std::string size =
      conn_->Backend() == "postgres" ? "octet_length(data)" : "length(CAST(data AS BLOB))";
  std::vector<SqlParam> params{P::Text(run_id), P::Int(query.after_seq)};
  std::string where = "WHERE run_id = $1 AND seq > $2";
  if (!query.types.empty()) {
    where += " AND type IN (";
    for (const auto& type : query.types) {
      params.push_back(P::Text(type));
      where += (params.size() > 3 ? ", $" : "$") + std::to_string(params.size());
    }
    where += ")";
  }
  std::vector<SqlParam> size_params = params;
  size_params.push_back(P::Int(int64_t{query.limit} + 1));
  auto sizes = Many<std::pair<int64_t, int64_t>>(
      "SELECT seq, " + size + " FROM run_events " + where + " ORDER BY seq" +
          (query.last ? " DESC" : "") + " LIMIT $" + std::to_string(size_params.size()),
      size_params, [](const SqlRow& r) { return std::make_pair(r.Int(0), r.Int(1)); });
  if (!sizes) return Fail(sizes.error());
  RunEventPage page;
  if (sizes->empty()) return page;
  size_t taken = 0;
  int64_t bytes = 0;
  while (taken < sizes->size() && taken < static_cast<size_t>(query.limit) &&
         bytes < query.max_bytes) {
    bytes += (*sizes)[taken].second;
    ++taken;
  }
  page.more = taken < sizes->size();
  const auto [lo, hi] = std::minmax((*sizes)[0].first, (*sizes)[taken - 1].first);
  params.push_back(P::Int(lo));
  params.push_back(P::Int(hi));
  auto events =
      Many<RunEvent>(std::string(kRunEventCols) + " FROM run_events " + where + " AND seq >= $" +
                         std::to_string(params.size() - 1) + " AND seq <= $" +
                         std::to_string(params.size()) + " ORDER BY seq",
                     params, RunEventOf);
  if (!events) return Fail(events.error());
  page.events = std::move(*events);
  if (page.events.empty()) page.more = false;  // the run went (retention) between the reads
  return page;
}

// ---------------------------------------------------------------- retention

Result<int64_t> SqlStore::DeleteFinishedRunsBefore(int64_t before_ms, int limit) {
  if (limit < 1) return Invalid("limit must be >= 1");
  // Steps and events go by ON DELETE CASCADE; cron fires and retries keep their rows with
  // the reference set to NULL.
  return InTx([&]() {
    return Affected(
        "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE status IN ('succeeded', "
        "'failed', 'cancelled') AND finished_ms < $1 ORDER BY finished_ms LIMIT $2)",
        {P::Int(before_ms), P::Int(limit)});
  });
}

Result<int64_t> SqlStore::DeleteCronFiresBefore(int64_t before_ms, int limit) {
  if (limit < 1) return Invalid("limit must be >= 1");
  return Affected(
      "DELETE FROM cron_fires WHERE (trigger_id, fire_ms) IN (SELECT trigger_id, fire_ms FROM "
      "cron_fires WHERE created_ms < $1 ORDER BY created_ms LIMIT $2)",
      {P::Int(before_ms), P::Int(limit)});
}

}  // namespace ferry::store_internal
