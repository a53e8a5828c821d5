// The Store conformance suite on SQLite and on a real PostgreSQL server, plus what only a server
// can show: unreachable hosts, rejected passwords, reconnects after a restart.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/json_fields.h"
#include "harness.h"
#include "postgres.h"
#include "run_age_queries.h"
#include "store/postgres/pg_conn.h"
#include "store/sql_counters.h"
#include "store/store.h"
#include "store_conformance.h"

namespace ferry::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

class PostgresStore : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresServer::Available()) GTEST_SKIP() << "PostgreSQL binaries not installed";
  }

  // A fresh database of the shared server holding one workflow, and a request for a run of it.
  struct WithWorkflow {
    std::string url;
    std::string db;  // the database's name (for Psql)
    std::unique_ptr<Store> store;
    CreateRunRequest run;
  };
  static void OpenWithWorkflow(WithWorkflow& out) {
    out.url = SharedPostgres().CreateDatabase();
    out.db = out.url.substr(out.url.rfind('/') + 1);
    auto s = OpenStore(out.url);
    ASSERT_TRUE(s) << s.error().ToString();
    out.store = std::move(*s);
    ApplyWorkflowRequest req{"wf", "", "src", "yaml", "{}", "c", "", ""};
    auto wf = out.store->ApplyWorkflow(req);
    ASSERT_TRUE(wf);
    out.run.workflow_id = wf->workflow.id;
  }

  // OpenWithWorkflow, run_events made to clash when `when` (MakeEventsClashWhen), and a run
  // marked running at epoch 1: where a finish starts from.
  static void OpenWithRunningRun(WithWorkflow& w, const std::string& when, ferry::Run& run) {
    ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
    MakeEventsClashWhen(w, when);
    auto created = w.store->CreateRun(w.run);
    ASSERT_TRUE(created) << created.error().ToString();
    ASSERT_TRUE(w.store->MarkRunRunning(created->id, 1, "w"));
    run = *created;
  }

  // Makes an insert into run_events for which `when` (a PL/pgSQL condition on NEW; the sequence
  // `clashes` is there to count with) fail as another writer taking the same number at the same
  // moment makes it fail: with a unique violation.
  static void MakeEventsClashWhen(const WithWorkflow& w, const std::string& when) {
    SharedPostgres().Psql(
        "CREATE SEQUENCE clashes; CREATE FUNCTION clash() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF " +
            when +
            " THEN RAISE EXCEPTION USING ERRCODE = 'unique_violation', MESSAGE = 'number taken "
            "(the test)'; END IF; RETURN NEW; END $$; CREATE TRIGGER clash BEFORE INSERT ON "
            "run_events FOR EACH ROW EXECUTE FUNCTION clash();",
        w.db);
  }
};

// Recording a token's last use is bookkeeping: a transaction holding the token's row (a revoke
// under way, an operator's UPDATE) must not hold the request the token came with, which would
// otherwise wait for the row up to the statement timeout (30 s).
TEST_F(PostgresStore, ATokensLastUseSkipsARowAnotherTransactionHolds) {
  WithWorkflow w;
  OpenWithWorkflow(w);
  auto token = w.store->CreateApiToken("ci", "hash-1", {"read"});
  ASSERT_TRUE(token) << token.error().ToString();
  auto holder = store_internal::OpenPgConn(w.url, std::chrono::seconds(5), std::chrono::seconds(5));
  ASSERT_TRUE(holder) << holder.error().ToString();
  ASSERT_TRUE((*holder)->ExecScript("BEGIN; UPDATE api_tokens SET name = name WHERE id = '" +
                                    token->id + "';"));
  std::atomic<bool> done{false};
  Result<std::optional<ApiToken>> verified = Fail(ErrorCode::kInternal, "not run");
  std::thread verifier([&] {
    verified = w.store->VerifyApiToken("hash-1");
    done = true;
  });
  const bool answered = Eventually([&] { return done.load(); }, std::chrono::seconds(10));
  EXPECT_TRUE((*holder)->ExecScript("COMMIT;"));
  verifier.join();
  ASSERT_TRUE(answered) << "the token's check waited for the held row";
  ASSERT_TRUE(verified) << verified.error().ToString();
  ASSERT_TRUE(verified->has_value());
  EXPECT_EQ((*verified)->last_used_ms, 0);  // skipped, not written
  // The row free again, the next use is recorded.
  auto again = w.store->VerifyApiToken("hash-1");
  ASSERT_TRUE(again && again->has_value());
  EXPECT_GT((*again)->last_used_ms, 0);
}

// libpq sends text parameters as C strings: a NUL would cut the value short without a word.
// The connection refuses it instead, naming where it is; the value before it is no near miss.
TEST_F(PostgresStore, ATextValueHoldingANulIsRefusedNotCut) {
  WithWorkflow w;
  OpenWithWorkflow(w);
  auto conn = store_internal::OpenPgConn(w.url, std::chrono::seconds(5), std::chrono::seconds(5));
  ASSERT_TRUE(conn) << conn.error().ToString();
  auto cut =
      (*conn)->Exec("SELECT $1::text", {store_internal::SqlParam::Text(std::string("ab\0c", 4))});
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(cut.error().message.find("NUL byte at offset 2"), std::string::npos)
      << cut.error().message;
  auto whole = (*conn)->Exec("SELECT $1::text", {store_internal::SqlParam::Text("ab")});
  ASSERT_TRUE(whole) << whole.error().ToString();
  EXPECT_EQ(whole->rows.at(0).Text(0), "ab");
}

TEST_F(PostgresStore, UnreachableServerIsUnavailableQuickly) {
  auto start = std::chrono::steady_clock::now();
  auto s = OpenStore("postgresql://ferry:pw@127.0.0.1:" + std::to_string(FreePort()) + "/db");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().ToString();
  EXPECT_NE(s.error().message.find("cannot connect"), std::string::npos) << s.error().message;
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST_F(PostgresStore, WrongPasswordIsUnauthenticated) {
  auto& pg = SharedPostgres();
  std::string url = "postgresql://" + pg.options().user +
                    ":wrong@127.0.0.1:" + std::to_string(pg.port()) + "/postgres";
  auto s = OpenStore(url);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnauthenticated) << s.error().ToString();
  auto f = MakeStoreFactory(url);
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)->Describe().find("wrong"), std::string::npos) << (*f)->Describe();
}

TEST_F(PostgresStore, ReconnectsAfterServerRestart) {
  auto& pg = SharedPostgres();
  auto s = OpenStore(pg.CreateDatabase());
  ASSERT_TRUE(s) << s.error().ToString();
  ASSERT_TRUE((*s)->Ping());
  pg.Restart();
  // The idle connection the restart closed is found closed before the next statement is sent
  // on it, and reconnected: that statement works at once (it failed, "connection lost ...
  // (reconnected; retry)", so every pooled connection failed one request after a restart).
  auto r = (*s)->Ping();
  EXPECT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE((*s)->ListWorkflows());
  // A write transaction on a connection the server ended meanwhile (an administrator, an idle
  // timeout) works too: its BEGIN had not been sent.
  pg.Psql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
      "pg_backend_pid() AND backend_type = 'client backend'");
  ApplyWorkflowRequest req{"after-terminate", "", "src", "yaml", "{}", "c", "", ""};
  auto applied = (*s)->ApplyWorkflow(req);
  EXPECT_TRUE(applied) << applied.error().ToString();
}

// A COMMIT whose answer is lost with the connection may have committed (here it has: the
// server wrote it, then waited for a standby that never answers, and its backend was ended): the
// caller hears the outcome is unknown, not "connection lost ... retry", which made a webhook's
// sender and `ferry workflow run` (exit 3) start the same run twice.
TEST_F(PostgresStore, ACommitWhoseAnswerIsLostHasAnUnknownOutcome) {
  auto& pg = SharedPostgres();
  WithWorkflow w;
  ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
  // The test server commits without waiting (synchronous_commit=off); this database waits.
  pg.Psql("ALTER DATABASE " + w.db + " SET synchronous_commit = on");
  auto waits = OpenStore(w.url);
  ASSERT_TRUE(waits) << waits.error().ToString();
  ASSERT_TRUE((*waits)->Ping());
  pg.Psql("ALTER SYSTEM SET synchronous_standby_names = 'nosuchstandby'");
  pg.Psql("SELECT pg_reload_conf()");
  struct Restore {
    PostgresServer& pg;
    ~Restore() {
      pg.Psql("ALTER SYSTEM RESET synchronous_standby_names");
      pg.Psql("SELECT pg_reload_conf()");
    }
  } restore{pg};
  Result<ferry::Run> created = Fail(ErrorCode::kInternal, "not run");
  std::thread writer([&] { created = (*waits)->CreateRun(w.run); });
  const auto waiting = [&] {
    return pg.Psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") == "1";
  };
  const bool waited = Eventually(waiting, std::chrono::seconds(20));
  pg.Psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
  writer.join();
  ASSERT_TRUE(waited);
  ASSERT_FALSE(created);
  EXPECT_TRUE(OutcomeIsUnknown(created.error())) << created.error().ToString();
  EXPECT_NE(created.error().message.find("whether the transaction was committed is unknown"),
            std::string::npos)
      << created.error().ToString();
  // It was committed: the caller was right not to take the failure for "nothing happened".
  auto runs = w.store->ListRuns({});
  ASSERT_TRUE(runs) << runs.error().ToString();
  EXPECT_EQ(runs->runs.size(), 1u);
}

TEST_F(PostgresStore, TransactionCutByRestartIsNeverReportedCommitted) {
  WithWorkflow w;
  ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
  Store* s = w.store.get();
  {
    auto tx = s->Begin();
    ASSERT_TRUE(tx);
    const CreateRunRequest& run = w.run;
    ASSERT_TRUE(s->CreateRun(run));
    SharedPostgres().Restart();
    auto lost = s->CreateRun(run);
    ASSERT_FALSE(lost);
    EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable) << lost.error().ToString();
    auto commit = (*tx)->Commit();
    ASSERT_FALSE(commit);
    EXPECT_EQ(commit.error().code, ErrorCode::kUnavailable) << commit.error().ToString();
  }
  auto runs = s->ListRuns({});
  ASSERT_TRUE(runs) << runs.error().ToString();
  EXPECT_EQ(runs->runs.size(), 0u);
}

// BEGIN, SAVEPOINT and RELEASE wait for the statement after them and go in its round trip
// (one libpq pipeline): a user's transaction of two writes, each under its savepoint, is three
// exchanges with the server instead of eight. A run with its first event is one exchange.
TEST_F(PostgresStore, TransactionControlTravelsWithTheNextStatement) {
  WithWorkflow w;
  ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
  auto* s = &w.store;
  const CreateRunRequest run = w.run;
  const auto two_writes = [&] {
    auto tx = (*s)->Begin();
    ASSERT_TRUE(tx);
    auto created = (*s)->CreateRun(run);
    ASSERT_TRUE(created) << created.error().ToString();
    ASSERT_TRUE((*s)->AppendRunEvent(created->id, "created", "{}"));
    ASSERT_TRUE((*tx)->Commit());
  };
  two_writes();  // prepares the statements (an exchange each, once per connection)
  auto before = store_internal::ReadSqlCounters();
  two_writes();
  auto after = store_internal::ReadSqlCounters();
  // [BEGIN, SAVEPOINT, INSERT run] [RELEASE, SAVEPOINT, INSERT event] [RELEASE, COMMIT]
  EXPECT_EQ(after.round_trips - before.round_trips, 3);
  EXPECT_EQ(after.commits - before.commits, 1);
  EXPECT_EQ((*s)->ListRuns({})->runs.size(), 2u);
  // A run with its first event, on its own: [BEGIN, INSERT run with its event, COMMIT].
  CreateRunRequest with_event = run;
  with_event.first_event.type = "run.created";
  ASSERT_TRUE((*s)->CreateRun(with_event));  // prepares the event's statement
  before = store_internal::ReadSqlCounters();
  auto created = (*s)->CreateRun(with_event);
  ASSERT_TRUE(created) << created.error().ToString();
  after = store_internal::ReadSqlCounters();
  EXPECT_EQ(after.round_trips - before.round_trips, 1);
  EXPECT_EQ(after.commits - before.commits, 1);
  auto events = (*s)->ListRunEvents(created->id, 0, 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "run.created");
  // A webhook's run, with its nonce too: [BEGIN, nonce, the run with its event (one statement),
  // the nonce's undo, COMMIT].
  CreateRunRequest hooked = with_event;
  hooked.nonce = {"webhook:wf", "n-0", 4'102'444'800'000};
  ASSERT_TRUE((*s)->CreateRun(hooked));  // prepares its statements
  hooked.nonce.value = "n-1";
  before = store_internal::ReadSqlCounters();
  ASSERT_TRUE((*s)->CreateRun(hooked));
  after = store_internal::ReadSqlCounters();
  EXPECT_EQ(after.round_trips - before.round_trips, 1);
  EXPECT_EQ(after.statements - before.statements, 3);
  EXPECT_EQ(after.commits - before.commits, 1);
  // Rolled back before its first statement: the server never hears of it.
  before = store_internal::ReadSqlCounters();
  {
    auto tx = (*s)->Begin();
    ASSERT_TRUE(tx);
  }
  EXPECT_EQ(store_internal::ReadSqlCounters().round_trips - before.round_trips, 0);
}

// What was deferred runs in order ahead of the next statement; the first of them that fails is
// that statement's failure (the server skips the rest), and ROLLBACK still ends the transaction.
TEST_F(PostgresStore, ADeferredStatementsFailureIsTheNextStatements) {
  auto& pg = SharedPostgres();
  auto conn = store_internal::OpenPgConn(pg.CreateDatabase(), std::chrono::seconds(5),
                                         std::chrono::seconds(5));
  ASSERT_TRUE(conn) << conn.error().ToString();
  auto& c = **conn;
  // Outside a transaction there is nothing to defer to.
  auto outside = c.Defer("SAVEPOINT a", {});
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(c.BeginWrite());
  EXPECT_TRUE(c.InTransaction());
  ASSERT_TRUE(c.Defer("SAVEPOINT a", {}));
  ASSERT_TRUE(c.Defer("RELEASE SAVEPOINT a", {}));
  auto ok = c.Exec("SELECT 41 + 1", {});
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->rows.at(0).Int(0), 42);
  ASSERT_TRUE(c.Defer("RELEASE SAVEPOINT never_made", {}));
  auto failed = c.Exec("SELECT 1", {});
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("RELEASE SAVEPOINT never_made"), std::string::npos)
      << failed.error().message;
  EXPECT_TRUE(c.TransactionAborted());
  ASSERT_TRUE(c.Exec("ROLLBACK", {}));
  EXPECT_FALSE(c.InTransaction());
  auto again = c.Exec("SELECT 7", {});
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->rows.at(0).Int(0), 7);
  // One with parameters that fails at the server fails the COMMIT it travels with: nothing of
  // the transaction is committed.
  ASSERT_TRUE(c.Exec("CREATE TABLE t (n BIGINT)", {}));
  ASSERT_TRUE(c.BeginWrite());
  ASSERT_TRUE(c.Exec("INSERT INTO t VALUES ($1)", {store_internal::SqlParam::Int(1)}));
  ASSERT_TRUE(c.Defer("INSERT INTO t SELECT 1 / $1", {store_internal::SqlParam::Int(0)}));
  auto commit = c.Exec("COMMIT", {});
  ASSERT_FALSE(commit);
  EXPECT_NE(commit.error().message.find("division by zero"), std::string::npos)
      << commit.error().message;
  ASSERT_TRUE(c.Exec("ROLLBACK", {}));
  auto rows = c.Exec("SELECT COUNT(*) FROM t", {});
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_EQ(rows->rows.at(0).Int(0), 0);
  // The same with a divisor that works commits both rows.
  ASSERT_TRUE(c.BeginWrite());
  ASSERT_TRUE(c.Exec("INSERT INTO t VALUES ($1)", {store_internal::SqlParam::Int(1)}));
  ASSERT_TRUE(c.Defer("INSERT INTO t SELECT 1 / $1", {store_internal::SqlParam::Int(1)}));
  ASSERT_TRUE(c.Exec("COMMIT", {}));
  EXPECT_EQ(c.Exec("SELECT COUNT(*) FROM t", {})->rows.at(0).Int(0), 2);
}

// A run's first event is written with the next round trip; if the server refuses it (here a
// trigger the test installs), the call that was told "created" cannot be undone by a later
// call's savepoint: the transaction fails as a whole and nothing of it is committed. Outside a
// transaction the refusal fails CreateRun itself.
TEST_F(PostgresStore, ARefusedDeferredWriteFailsItsWholeTransaction) {
  WithWorkflow w;
  ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
  auto* s = &w.store;
  auto admin = store_internal::OpenPgConn(w.url, std::chrono::seconds(5), std::chrono::seconds(5));
  ASSERT_TRUE(admin) << admin.error().ToString();
  ASSERT_TRUE((*admin)->ExecScript(
      "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF NEW.data LIKE '%refuse-me%' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
      "RETURN NEW; END $$; CREATE TRIGGER refuse_marked BEFORE INSERT ON run_events FOR EACH "
      "ROW EXECUTE FUNCTION refuse_marked();"));
  const CreateRunRequest plain = w.run;
  CreateRunRequest marked = plain;
  marked.first_event.type = "run.created";
  marked.first_event.data = R"({"note":"refuse-me"})";
  CreateRunRequest fine = plain;
  fine.first_event.type = "run.created";
  {
    auto tx = (*s)->Begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE((*s)->CreateRun(fine));    // warms the statements: no prepare flushes below
    ASSERT_TRUE((*s)->CreateRun(marked));  // its event waits for the next round trip
    auto next = (*s)->CreateRun(plain);
    ASSERT_FALSE(next);
    EXPECT_NE(next.error().message.find("refused by the test"), std::string::npos)
        << next.error().message;
    auto commit = (*tx)->Commit();
    ASSERT_FALSE(commit) << "a transaction whose deferred write failed committed";
  }
  auto runs = (*s)->ListRuns({});
  ASSERT_TRUE(runs) << runs.error().ToString();
  EXPECT_EQ(runs->runs.size(), 0u);
  // On its own: the event is in the run's own statement (PostgreSQL), and fails it.
  auto alone = (*s)->CreateRun(marked);
  ASSERT_FALSE(alone);
  EXPECT_NE(alone.error().message.find("refused by the test"), std::string::npos)
      << alone.error().message;
  EXPECT_EQ((*s)->ListRuns({})->runs.size(), 0u);
  // The store goes on: an unmarked run with its event is committed.
  auto ok = (*s)->CreateRun(fine);
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ((*s)->ListRunEvents(ok->id, 0, 10)->size(), 1u);
}

// A finish that applied but whose events met another writer's numbers at the COMMIT (here a
// trigger raises the unique violation such a clash raises) committed nothing and says retry
// (kUnavailable), not "superseded" (kConflict); a stale epoch is still kConflict.
TEST_F(PostgresStore, AFinishWhoseEventsClashAtTheCommitIsRetryable) {
  WithWorkflow w;
  ferry::Run run;
  ASSERT_NO_FATAL_FAILURE(OpenWithRunningRun(w, "NEW.data LIKE '%clash-me%'", run));
  auto* s = &w.store;
  auto clashed = (*s)->FinishRun(run.id, 1, RunStatus::kSucceeded, "{}", "", "",
                                 {{"run.finished", R"({"note":"clash-me"})", 0}}, {});
  ASSERT_FALSE(clashed);
  EXPECT_EQ(clashed.error().code, ErrorCode::kUnavailable) << clashed.error().ToString();
  EXPECT_NE(clashed.error().message.find("number taken"), std::string::npos);
  EXPECT_EQ((**(*s)->GetRun(run.id)).status, RunStatus::kRunning);
  auto stale = (*s)->FinishRun(run.id, 0, RunStatus::kSucceeded, "{}", "", "",
                               {{"run.finished", "{}", 0}}, {});
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict) << stale.error().ToString();
  auto done = (*s)->FinishRun(run.id, 1, RunStatus::kSucceeded, "{}", "", "",
                              {{"run.finished", "{}", 0}}, {});
  ASSERT_TRUE(done) << done.error().ToString();
  EXPECT_EQ((*s)->ListRunEvents(run.id, 0, 10)->size(), 1u);
}

// A finish whose events meet another writer's number once (a scheduler's run.enqueued landing as
// a fast run ends; here a trigger raises the unique violation such a clash raises) is committed
// on the next try, with its last node's checkpoint: the attempt does not fail, so the node is not
// run again.
TEST_F(PostgresStore, AFinishWhoseEventsClashOnceIsCommittedOnTheNextTry) {
  WithWorkflow w;
  ferry::Run run;
  ASSERT_NO_FATAL_FAILURE(
      OpenWithRunningRun(w, "NEW.data LIKE '%once%' AND nextval('clashes') = 1", run));
  auto* s = &w.store;
  RunStep step;
  step.run_id = run.id;
  step.node_id = "last";
  step.status = "succeeded";
  step.output = R"({"n":1})";
  step.epoch = 1;
  auto done = (*s)->FinishRun(run.id, 1, RunStatus::kSucceeded, "{}", "", "",
                              {{"run.finished", R"({"n":"once"})", 0}}, {step});
  ASSERT_TRUE(done) << done.error().ToString();
  EXPECT_EQ(done->status, RunStatus::kSucceeded);
  EXPECT_EQ(SharedPostgres().Psql("SELECT last_value FROM clashes", w.db), "2")
      << "the clash never happened";
  auto events = (*s)->ListRunEvents(run.id, 0, 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  auto steps = (*s)->ListSteps(run.id);
  ASSERT_TRUE(steps) << steps.error().ToString();
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].output, R"({"n":1})");
}

// A release whose event meets another writer's number once is made again at once: the run is
// released with its event, not refused as if another attempt owned it (which would fail its task
// as superseded). One that keeps clashing released nothing and says retry (kUnavailable).
TEST_F(PostgresStore, AReleaseWhoseEventClashesIsMadeAgainAtOnce) {
  WithWorkflow w;
  ferry::Run run;
  ASSERT_NO_FATAL_FAILURE(OpenWithRunningRun(
      w, "(NEW.data LIKE '%once%' AND nextval('clashes') = 1) OR NEW.data LIKE '%always%'", run));
  auto released = w.store->ReleaseRun(run.id, 1, {{"run.waiting", R"({"n":"once"})", 0}});
  ASSERT_TRUE(released) << released.error().ToString();
  EXPECT_EQ(released->worker, "");
  EXPECT_EQ(SharedPostgres().Psql("SELECT last_value FROM clashes", w.db), "2")
      << "the clash never happened";
  auto events = w.store->ListRunEvents(run.id, 0, 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);

  auto again = w.store->MarkRunRunning(run.id, 2, "w2");
  ASSERT_TRUE(again) << again.error().ToString();
  auto clashing = w.store->ReleaseRun(run.id, 2, {{"run.waiting", R"({"n":"always"})", 0}});
  ASSERT_FALSE(clashing);
  EXPECT_EQ(clashing.error().code, ErrorCode::kUnavailable) << clashing.error().ToString();
  EXPECT_EQ((**w.store->GetRun(run.id)).worker, "w2");
  EXPECT_EQ(w.store->ListRunEvents(run.id, 0, 10)->size(), 1u);
}

// A start whose "started" event meets another writer's number (a trigger raises the unique
// violation such a clash raises) is tried again at once; one that keeps clashing committed
// nothing and says retry (kUnavailable), not "superseded" (kConflict).
TEST_F(PostgresStore, AStartWhoseEventClashesIsTriedAgainAndThenRetryable) {
  WithWorkflow w;
  ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
  auto* s = &w.store;
  MakeEventsClashWhen(
      w, "NEW.data LIKE '%always%' OR (NEW.data LIKE '%once%' AND nextval('clashes') = 1)");
  auto run = (*s)->CreateRun(w.run);
  ASSERT_TRUE(run);
  auto clashed =
      (*s)->MarkRunStarted(run->id, 1, "w", NewRunEvent{"run.started", R"({"n":"always"})", 0});
  ASSERT_FALSE(clashed);
  EXPECT_EQ(clashed.error().code, ErrorCode::kUnavailable) << clashed.error().ToString();
  EXPECT_NE(clashed.error().message.find("number taken"), std::string::npos);
  EXPECT_EQ((**(*s)->GetRun(run->id)).status, RunStatus::kPending);
  EXPECT_TRUE((*s)->ListRunEvents(run->id, 0, 10)->empty());

  auto started =
      (*s)->MarkRunStarted(run->id, 1, "w", NewRunEvent{"run.started", R"({"n":"once"})", 0});
  ASSERT_TRUE(started) << started.error().ToString();
  EXPECT_EQ(started->run.attempt, 1);
  EXPECT_EQ(SharedPostgres().Psql("SELECT last_value FROM clashes", w.db), "2")
      << "the clash never happened";
  auto events = (*s)->ListRunEvents(run->id, 0, 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].data, R"({"n":"once","attempt":1})");
}

// A repeat of a start whose first mark commits while the repeat waits for the run's row: the
// repeat's one statement sees the run as it was (pending) and marks nothing; sent again apart,
// it finds the run running under its claim and writes its event. Here the first mark is an
// open transaction of the test's that marks the run as MarkRunRunning does, without an event.
// The same whatever the database's default isolation: Ferry's sessions are READ COMMITTED (under
// REPEATABLE READ or SERIALIZABLE the waiting update would fail with a serialization error).
TEST_F(PostgresStore, ARepeatedStartThatWaitedForTheFirstMarkStillWritesItsEvent) {
  for (const std::string isolation : {"", "repeatable read", "serializable"}) {
    SCOPED_TRACE("database default: " + isolation);
    WithWorkflow w;
    ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
    if (!isolation.empty()) {
      SharedPostgres().Psql(
          "ALTER DATABASE " + w.db + " SET default_transaction_isolation = '" + isolation + "'",
          w.db);
      EXPECT_EQ(SharedPostgres().Psql("SHOW default_transaction_isolation", w.db), isolation);
      auto reopened = OpenStore(w.url);
      ASSERT_TRUE(reopened) << reopened.error().ToString();
      w.store = std::move(*reopened);
    }
    auto* s = &w.store;
    auto run = (*s)->CreateRun(w.run);
    ASSERT_TRUE(run);
    auto first =
        store_internal::OpenPgConn(w.url, std::chrono::seconds(5), std::chrono::seconds(5));
    ASSERT_TRUE(first) << first.error().ToString();
    ASSERT_TRUE((*first)->ExecScript(
        "BEGIN; UPDATE runs SET status = 'running', epoch = 1, worker = 'w', attempt = 1 WHERE "
        "id = '" +
        run->id + "';"));
    Result<StartedRun> repeat = Fail(ErrorCode::kInternal, "not run");
    std::thread repeater([&] {
      repeat = (*s)->MarkRunStarted(run->id, 1, "w", NewRunEvent{"run.started", "{}", 0});
    });
    // The repeat waits for the first mark's row lock before the first commits.
    const bool waiting = Eventually(
        [&] {
          return SharedPostgres().Psql(
                     "SELECT count(*) FROM pg_stat_activity WHERE "
                     "wait_event_type = 'Lock'",
                     w.db) == "1";
        },
        std::chrono::seconds(10));
    EXPECT_TRUE((*first)->ExecScript("COMMIT;"));
    repeater.join();
    ASSERT_TRUE(waiting) << "the repeat never waited for the first mark";
    ASSERT_TRUE(repeat) << repeat.error().ToString();
    EXPECT_EQ(repeat->run.status, RunStatus::kRunning);
    auto events = (*s)->ListRunEvents(run->id, 0, 10);
    ASSERT_TRUE(events);
    ASSERT_EQ(events->size(), 1u);
    EXPECT_EQ((*events)[0].type, "run.started");
    EXPECT_EQ((*events)[0].data, R"({"attempt":1})");
  }
}

// Many events go with the finish in its one round trip (once the connection has prepared its
// statements: the second run), in order, numbered 1..20.
TEST_F(PostgresStore, AFinishWithManyEventsNumbersThemInOrder) {
  WithWorkflow w;
  ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
  auto* s = &w.store;
  std::vector<NewRunEvent> events;
  for (int i = 0; i < 20; ++i) events.push_back(NewRunEvent{"log" + std::to_string(i), "{}", 0});
  for (int round = 0; round < 2; ++round) {
    auto run = (*s)->CreateRun(w.run);
    ASSERT_TRUE(run);
    ASSERT_TRUE((*s)->MarkRunRunning(run->id, 2, "w"));
    const RunStep step{run->id, "a", "succeeded", "{}", "", 1, 2, 0, 0};
    const auto trips = store_internal::ReadSqlCounters().round_trips;
    ASSERT_TRUE((*s)->FinishRun(run->id, 2, RunStatus::kSucceeded, "{}", "", "", events, {step}));
    if (round == 1) {
      EXPECT_EQ(store_internal::ReadSqlCounters().round_trips - trips, 1);
    }
    auto got = (*s)->ListRunEvents(run->id, 0, 100);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), 20u);
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ((*got)[static_cast<size_t>(i)].type, "log" + std::to_string(i));
      EXPECT_EQ((*got)[static_cast<size_t>(i)].seq, i + 1);
    }
    EXPECT_EQ((*s)->ListSteps(run->id)->size(), 1u);
  }
}

// The finish with its checkpoints and events is one statement whatever their number (arrays as
// parameters): a refused finish (an epoch one behind) writes none of them, an applied one all,
// in order, with their text exactly as given (quotes, backslashes, braces, commas, "NULL",
// empty strings and non-ASCII are what array literals must escape or keep).
TEST_F(PostgresStore, AFinishIsOneStatementForAnyNumberOfEventsAndKeepsTheirText) {
  WithWorkflow w;
  ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
  auto* s = &w.store;
  const std::vector<std::string> texts{
      R"({"q":"a\"b","b":"c\\d"})", "{}", "NULL", "", "{a,b}", R"(x"y)", "\\", "é €"};
  for (const size_t n : {size_t{1}, size_t{16}, size_t{17}, size_t{40}}) {
    std::vector<NewRunEvent> events;
    for (size_t i = 0; i < n; ++i) {
      events.push_back(NewRunEvent{i % 3 == 2 ? "NULL" : "log" + std::to_string(i),
                                   texts[i % texts.size()], static_cast<int64_t>(1000 + i)});
    }
    auto run = (*s)->CreateRun(w.run);
    ASSERT_TRUE(run);
    ASSERT_TRUE((*s)->MarkRunRunning(run->id, 2, "w"));
    const RunStep step{run->id, "a,\"b\"", "succeeded", texts[0], "NULL", 1, 2, 0, 0};
    RunStep stale_step = step;  // under the refused finish's epoch: its one statement, refused
    stale_step.epoch = 1;
    auto refused =
        (*s)->FinishRun(run->id, 1, RunStatus::kSucceeded, "{}", "", "", events, {stale_step});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
    EXPECT_TRUE((*s)->ListRunEvents(run->id, 0, 100)->empty()) << n << " events";
    EXPECT_TRUE((*s)->ListSteps(run->id)->empty()) << n << " events";
    const auto before = store_internal::ReadSqlCounters();
    ASSERT_TRUE((*s)->FinishRun(run->id, 2, RunStatus::kSucceeded, "{}", "", "", events, {step}));
    const auto after = store_internal::ReadSqlCounters();
    EXPECT_EQ(after.round_trips - before.round_trips, 1) << n << " events";
    EXPECT_EQ(after.statements - before.statements, 1) << n << " events";
    auto got = (*s)->ListRunEvents(run->id, 0, 100);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), n);
    for (size_t i = 0; i < n; ++i) {
      const auto& e = (*got)[i];
      EXPECT_EQ(e.seq, static_cast<int64_t>(i + 1));
      EXPECT_EQ(e.type, events[i].type);
      EXPECT_EQ(e.data, events[i].data.empty() ? "{}" : events[i].data);
      EXPECT_EQ(e.ts_ms, events[i].ts_ms);
    }
    auto steps = (*s)->ListSteps(run->id);
    ASSERT_TRUE(steps);
    ASSERT_EQ(steps->size(), 1u);
    EXPECT_EQ((*steps)[0].node_id, step.node_id);
    EXPECT_EQ((*steps)[0].output, step.output);
    EXPECT_EQ((*steps)[0].error, step.error);
  }
}

TEST_F(PostgresStore, DownServerFailsCallsThenRecovers) {
  auto& pg = SharedPostgres();
  auto s = OpenStore(pg.CreateDatabase());
  ASSERT_TRUE(s) << s.error().ToString();
  pg.Stop();
  auto start = std::chrono::steady_clock::now();
  auto r = (*s)->ListWorkflows();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  pg.Start();
  EXPECT_TRUE(Eventually([&] { return (*s)->Ping().has_value(); }, std::chrono::seconds(5)));
}

// A run with its first event that cannot reach the server leaves no transaction open behind it:
// the store's next write, once the server is back, commits on its own as it says.
TEST_F(PostgresStore, AOneRoundTripCreateThatFailsLeavesNoTransactionOpen) {
  WithWorkflow w;
  ASSERT_NO_FATAL_FAILURE(OpenWithWorkflow(w));
  Store* s = w.store.get();
  CreateRunRequest run = w.run;
  run.first_event.type = "run.created";
  ASSERT_TRUE(s->CreateRun(run));
  auto& pg = SharedPostgres();
  pg.Stop();
  for (int i = 0; i < 2; ++i) {  // the first meets the dead connection, the second no server
    auto lost = s->CreateRun(run);
    ASSERT_FALSE(lost);
    EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable) << lost.error().ToString();
  }
  pg.Start();
  ASSERT_TRUE(Eventually([&] { return s->Ping().has_value(); }, std::chrono::seconds(5)));
  auto fresh = s->RememberNonce("hooks/wf", "after-the-outage", 4'102'444'800'000);
  ASSERT_TRUE(fresh) << fresh.error().ToString();
  EXPECT_TRUE(*fresh);
  // Committed, as another connection sees (an open transaction would hold it back: the other
  // connection would wait on the row, here for at most 2 s).
  StoreOptions impatient;
  impatient.statement_timeout = std::chrono::seconds(2);
  auto other = OpenStore(w.url, impatient);
  ASSERT_TRUE(other) << other.error().ToString();
  auto again = (*other)->RememberNonce("hooks/wf", "after-the-outage", 4'102'444'800'000);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_FALSE(*again);
}

TEST_F(PostgresStore, AStatementStuckBehindALockFailsAtTheStatementTimeout) {
  auto& pg = SharedPostgres();
  const std::string url = pg.CreateDatabase();
  auto holder = OpenStore(url);
  ASSERT_TRUE(holder) << holder.error().ToString();
  StoreOptions impatient;
  impatient.statement_timeout = std::chrono::milliseconds(300);
  auto waiter = OpenStore(url, impatient);
  ASSERT_TRUE(waiter) << waiter.error().ToString();
  ApplyWorkflowRequest v1{"wf", "", "src 1", "yaml", "{}", "c1", "", ""};
  ASSERT_TRUE((*holder)->ApplyWorkflow(v1));
  EXPECT_EQ(pg.Psql("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'",
                    url.substr(url.rfind('/') + 1)),
            "0")
      << "a session without Ferry's option has no timeout";

  ApplyWorkflowRequest v2{"wf", "", "src 2", "yaml", "{}", "c2", "", ""};
  ApplyWorkflowRequest v3{"wf", "", "src 3", "yaml", "{}", "c3", "", ""};
  {
    // The holder's open transaction writes version 2; the waiter's version needs the same row,
    // so it waits for the lock, and the server cancels it at the timeout instead of never.
    auto tx = (*holder)->Begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE((*holder)->ApplyWorkflow(v2));
    auto stuck = (*waiter)->ApplyWorkflow(v3);
    ASSERT_FALSE(stuck);
    EXPECT_EQ(stuck.error().code, ErrorCode::kUnavailable) << stuck.error().ToString();
    EXPECT_NE(stuck.error().message.find("statement timeout"), std::string::npos)
        << stuck.error().message;
    // docs/store.md: an `options` in the URL replaces Ferry's 30 s default.
    auto from_url = OpenStore(url + "?options=-c%20statement_timeout%3D300");
    ASSERT_TRUE(from_url) << from_url.error().ToString();
    auto stuck_too = (*from_url)->ApplyWorkflow(v3);
    ASSERT_FALSE(stuck_too);
    EXPECT_NE(stuck_too.error().message.find("statement timeout"), std::string::npos)
        << stuck_too.error().message;
    ASSERT_TRUE((*tx)->Commit());
  }
  // Once the lock is gone the same call goes through on the same store.
  auto applied = (*waiter)->ApplyWorkflow(v3);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(applied->version.version, 3);
}

// Migration 004: the store's lookups of runs by age use indexes that hold only the runs in the
// status each looks for, and a run that retries no other has no retry_of entry (so a run's three
// row versions write 15 index entries instead of 24). The queries are the store's own
// (sql_store_runs.cc), planned as its prepared statements are (generic plans); seq scans are
// turned off so the tiny table's plan shows which index would serve each.
TEST_F(PostgresStore, RunLookupsByAgeUseIndexesOfTheirStatusOnly) {
  auto& pg = SharedPostgres();
  const std::string url = pg.CreateDatabase();
  const std::string db = url.substr(url.rfind('/') + 1);
  auto s = OpenStore(url);
  ASSERT_TRUE(s) << s.error().ToString();
  auto plan = [&](const std::string& params, const std::string& sql, const std::string& args) {
    return pg.Psql(
        "SET enable_seqscan = off; SET enable_bitmapscan = off; "
        "SET plan_cache_mode = force_generic_plan; PREPARE q(" +
            params + ") AS " + sql + "; EXPLAIN EXECUTE q(" + args + ")",
        db);
  };
  std::string ended;
  for (const auto& q : kRunAgeQueries) {
    const std::string shown =
        plan(std::string(q.pg_params), std::string(q.sql), std::string(q.pg_args));
    EXPECT_NE(shown.find(q.index), std::string::npos) << q.sql << "\n" << shown;
    if (q.index == "runs_ended_finished") ended = shown;
  }
  ASSERT_FALSE(ended.empty());
  EXPECT_EQ(ended.find("Sort"), std::string::npos) << "read in finished_ms order: " << ended;
  const std::string retried = plan("text", "SELECT id FROM runs WHERE retry_of = $1", "'x'");
  EXPECT_NE(retried.find("runs_retry_of"), std::string::npos) << retried;
  // The old whole-table indexes are gone, retry_of stays unique.
  EXPECT_EQ(pg.Psql("SELECT count(*) FROM pg_indexes WHERE tablename = 'runs' AND indexname IN "
                    "('runs_status_created', 'runs_status_updated', 'runs_status_finished', "
                    "'runs_retry_of_key')",
                    db),
            "0");
  EXPECT_EQ(
      pg.Psql("SELECT indisunique FROM pg_index WHERE indexrelid = 'runs_retry_of'::regclass", db),
      "t");
}

// Migration 004 applied to a database that already holds runs: a store at version 3's shape
// (the old indexes and constraint put back, its record removed) with a cancelled run, its retry
// and a pending run is opened again. Everything is still there, the new indexes exist, and a run
// still cannot be retried twice.
TEST_F(PostgresStore, MigrationFourUpgradesADatabaseWithRuns) {
  auto& pg = SharedPostgres();
  const std::string url = pg.CreateDatabase();
  const std::string db = url.substr(url.rfind('/') + 1);
  std::string cancelled_id;
  {
    auto s = OpenStore(url);
    ASSERT_TRUE(s) << s.error().ToString();
    ApplyWorkflowRequest req{"wf", "", "src", "yaml", "{}", "c", "", ""};
    auto wf = (*s)->ApplyWorkflow(req);
    ASSERT_TRUE(wf);
    CreateRunRequest run;
    run.workflow_id = wf->workflow.id;
    auto first = (*s)->CreateRun(run);
    ASSERT_TRUE(first);
    cancelled_id = first->id;
    ASSERT_TRUE((*s)->CancelRun(cancelled_id));
    ASSERT_TRUE((*s)->RetryRun(cancelled_id, {}));
    ASSERT_TRUE((*s)->CreateRun(run));
  }
  pg.Psql(
      "DROP INDEX runs_pending_created, runs_running_updated, runs_ended_finished, runs_retry_of;"
      "CREATE INDEX runs_status_created ON runs(status, created_ms);"
      "CREATE INDEX runs_status_updated ON runs(status, updated_ms);"
      "CREATE INDEX runs_status_finished ON runs(status, finished_ms);"
      "ALTER TABLE runs ADD CONSTRAINT runs_retry_of_key UNIQUE (retry_of);"
      "ALTER TABLE webhook_nonces DROP COLUMN run_id;"  // and back before migration 5
      "DELETE FROM schema_migrations WHERE version >= 4",
      db);
  auto s = OpenStore(url);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ((*s)->SchemaVersion().value_or(0), kStoreSchemaVersion);
  auto runs = (*s)->ListRuns({});
  ASSERT_TRUE(runs) << runs.error().ToString();
  EXPECT_EQ(runs->runs.size(), 3u);
  EXPECT_EQ(pg.Psql("SELECT count(*) FROM pg_indexes WHERE tablename = 'runs' AND indexname IN "
                    "('runs_pending_created', 'runs_running_updated', 'runs_ended_finished', "
                    "'runs_retry_of')",
                    db),
            "4");
  auto again = (*s)->RetryRun(cancelled_id, {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict) << again.error().ToString();
  // The unique index itself, not only the store's check, refuses a second retry row.
  EXPECT_THROW(pg.Psql("UPDATE runs SET retry_of = '" + cancelled_id +
                           "' WHERE retry_of IS NULL AND id <> '" + cancelled_id + "'",
                       db),
               std::runtime_error);
}

TEST_F(PostgresStore, PostgresSchemeAliasAndTwoStoresShareData) {
  auto& pg = SharedPostgres();
  std::string url = pg.CreateDatabase();
  std::string alias = "postgres://" + url.substr(std::string("postgresql://").size());
  auto a = OpenStore(url);
  auto b = OpenStore(alias);
  ASSERT_TRUE(a && b);
  EXPECT_EQ((*b)->Backend(), "postgres");
  ApplyWorkflowRequest req{"shared", "", "src", "yaml", "{}", "c", "", ""};
  ASSERT_TRUE((*a)->ApplyWorkflow(req));
  auto got = (*b)->GetWorkflow("shared");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->has_value());
}

}  // namespace
}  // namespace ferry::testing
