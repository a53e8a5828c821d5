// The Store conformance suite, remediation tables: fingerprint deduplication, the transitions
// and their conditions, claims under the caps, expiry and takeover, statistics; races between
// connections and between processes. Runs on SQLite (tests/unit/store) and on SQLite and
// PostgreSQL (tests/integration/store).
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <latch>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "store_conformance.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

#define ASSERT_OK(expr)                                        \
  do {                                                         \
    const auto& _r = (expr);                                   \
    ASSERT_TRUE(_r) << #expr << ": " << _r.error().ToString(); \
  } while (0)

#define EXPECT_CODE(expr, want)                                                  \
  do {                                                                           \
    const auto& _r = (expr);                                                     \
    ASSERT_FALSE(_r) << #expr << " succeeded, expected " << ErrorCodeName(want); \
    EXPECT_EQ(_r.error().code, want) << _r.error().ToString();                   \
  } while (0)

class RemediationStore : public StoreConformance {
 protected:
  void SetUp() override {
    StoreConformance::SetUp();
    if (IsSkipped()) return;
    wf_ = Apply("wf", "c1");
    run_ = NewRun(wf_);
  }
  RecordRemediationResult Record(const std::string& fingerprint,
                                 const std::string& workflow_id = "") {
    RecordRemediationRequest req;
    req.fingerprint = fingerprint;
    req.workflow_id = workflow_id.empty() ? wf_.id : workflow_id;
    req.version = 1;
    req.run_id = run_.id;
    req.failed_node = "n";
    req.error = "boom";
    req.context = R"({"inputs":{}})";
    auto r = store_->RecordRemediation(req);
    EXPECT_TRUE(r) << r.error().ToString();
    clock_.Advance(milliseconds(1));
    return r ? *r : RecordRemediationResult{};
  }
  ClaimRemediationsResult Claim(const std::string& owner, int max_active = 1, int cap = 3,
                                int daily = 10) {
    ClaimRemediationsRequest req;
    req.owner = owner;
    req.lease = seconds(30);
    req.max_active = max_active;
    req.attempt_cap = cap;
    req.daily_cap = daily;
    auto r = store_->ClaimRemediations(req);
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? *r : ClaimRemediationsResult{};
  }
  Result<Remediation> Finish(const Remediation& m, const std::string& owner, RemediationStatus s,
                             int64_t next = 0) {
    FinishRemediationRequest f;
    f.id = m.id;
    f.owner = owner;
    f.attempt = m.attempts;
    f.status = s;
    f.next_attempt_ms = next;
    f.classification = "unknown";
    f.summary = "sum";
    f.note = "note";
    f.reason = s == RemediationStatus::kFailed ? "why" : "";
    f.agent_ms = 1500;
    return store_->FinishRemediation(f);
  }

  Workflow wf_;
  ferry::Run run_;
};

TEST_P(RemediationStore, SchemaHasTheRemediationMigration) {
  auto v = store_->SchemaVersion();
  ASSERT_OK(v);
  EXPECT_GE(*v, 2);  // 002_remediation
}

TEST_P(RemediationStore, OpenFingerprintDeduplicates) {
  auto a = Record("fp1");
  EXPECT_TRUE(a.created);
  EXPECT_EQ(a.remediation.status, RemediationStatus::kPending);
  EXPECT_EQ(a.remediation.workflow_name, "wf");
  EXPECT_EQ(a.remediation.occurrences, 1);
  ferry::Run second = NewRun(wf_);
  RecordRemediationRequest req;
  req.fingerprint = "fp1";
  req.workflow_id = wf_.id;
  req.version = 1;
  req.run_id = second.id;
  auto b = store_->RecordRemediation(req);
  ASSERT_OK(b);
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->remediation.id, a.remediation.id);
  EXPECT_EQ(b->remediation.occurrences, 2);
  EXPECT_EQ(b->remediation.run_id, run_.id);
  EXPECT_EQ(b->remediation.last_run_id, second.id);
  EXPECT_GT(b->remediation.last_seen_ms, b->remediation.first_seen_ms);
  // Another fingerprint: another row.
  EXPECT_TRUE(Record("fp2").created);
  // A closed candidate no longer absorbs failures: dismissed -> a new one opens.
  ASSERT_OK(store_->DismissRemediation(a.remediation.id, "noise"));
  auto c = Record("fp1");
  EXPECT_TRUE(c.created);
  EXPECT_NE(c.remediation.id, a.remediation.id);
  // Reopening the dismissed one while c is open would make two open rows: refused.
  EXPECT_CODE(store_->ReopenRemediation(a.remediation.id), ErrorCode::kConflict);
  // Unknown workflow.
  req.workflow_id = "nope";
  req.fingerprint = "fp3";
  EXPECT_CODE(store_->RecordRemediation(req), ErrorCode::kNotFound);
  req.fingerprint = "";
  EXPECT_CODE(store_->RecordRemediation(req), ErrorCode::kInvalidArgument);
}

TEST_P(RemediationStore, ClaimRenewFinishAreConditionalOnTheClaim) {
  auto m = Record("fp").remediation;
  auto c = Claim("s1");
  ASSERT_EQ(c.claimed.size(), 1u);
  const Remediation& claimed = c.claimed[0];
  EXPECT_EQ(claimed.status, RemediationStatus::kClaimed);
  EXPECT_EQ(claimed.attempts, 1);
  EXPECT_EQ(claimed.claim_owner, "s1");
  EXPECT_EQ(claimed.claim_deadline_ms, clock_.NowMs() + 30'000);
  ASSERT_OK(store_->RenewRemediationClaim(m.id, "s1", 1, seconds(60)));
  EXPECT_EQ((*store_->GetRemediation(m.id))->claim_deadline_ms, clock_.NowMs() + 60'000);
  // Another owner, or an old attempt number, holds nothing.
  EXPECT_CODE(store_->RenewRemediationClaim(m.id, "s2", 1, seconds(60)), ErrorCode::kConflict);
  EXPECT_CODE(store_->RenewRemediationClaim(m.id, "s1", 0, seconds(60)), ErrorCode::kConflict);
  EXPECT_CODE(Finish(claimed, "s2", RemediationStatus::kFixed), ErrorCode::kConflict);
  auto done = Finish(claimed, "s1", RemediationStatus::kNoteOnly);
  ASSERT_OK(done);
  EXPECT_EQ(done->status, RemediationStatus::kNoteOnly);
  EXPECT_EQ(done->classification, "unknown");
  EXPECT_EQ(done->note, "note");
  EXPECT_TRUE(done->claim_owner.empty());
  // Finishing twice: the claim is gone.
  EXPECT_CODE(Finish(claimed, "s1", RemediationStatus::kFixed), ErrorCode::kConflict);
  auto attempts = store_->ListRemediationAttempts(m.id);
  ASSERT_OK(attempts);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].outcome, "note_only");
  EXPECT_EQ((*attempts)[0].agent_ms, 1500);
  EXPECT_EQ((*attempts)[0].owner, "s1");
  // note_only is not claimable; reopen makes it pending with fresh attempts.
  EXPECT_TRUE(Claim("s1").claimed.empty());
  auto reopened = store_->ReopenRemediation(m.id);
  ASSERT_OK(reopened);
  EXPECT_EQ(reopened->status, RemediationStatus::kPending);
  auto again = Claim("s2");
  ASSERT_EQ(again.claimed.size(), 1u);
  EXPECT_EQ(again.claimed[0].attempts, 2);  // the attempt number keeps counting
  EXPECT_EQ(again.claimed[0].attempt_base, 1);
}

TEST_P(RemediationStore, DismissAndReopenFollowTheStatuses) {
  auto m = Record("fp").remediation;
  EXPECT_CODE(store_->ReopenRemediation(m.id), ErrorCode::kConflict);  // pending
  auto claimed = Claim("s1").claimed.at(0);
  auto d = store_->DismissRemediation(claimed.id, "not worth it");
  ASSERT_OK(d);
  EXPECT_EQ(d->status, RemediationStatus::kDismissed);
  EXPECT_EQ(d->reason, "not worth it");
  // The attempt in flight lost its claim.
  EXPECT_CODE(store_->RenewRemediationClaim(m.id, "s1", 1, seconds(5)), ErrorCode::kConflict);
  EXPECT_CODE(Finish(claimed, "s1", RemediationStatus::kFixed), ErrorCode::kConflict);
  EXPECT_EQ((*store_->ListRemediationAttempts(m.id))[0].outcome, "dismissed");
  EXPECT_CODE(store_->DismissRemediation(m.id, ""), ErrorCode::kConflict);
  ASSERT_OK(store_->ReopenRemediation(m.id));
  // fixed can be neither dismissed nor reopened.
  auto c2 = Claim("s1").claimed.at(0);
  ASSERT_OK(Finish(c2, "s1", RemediationStatus::kFixed));
  EXPECT_CODE(store_->DismissRemediation(m.id, ""), ErrorCode::kConflict);
  EXPECT_CODE(store_->ReopenRemediation(m.id), ErrorCode::kConflict);
  EXPECT_CODE(store_->DismissRemediation("01NOSUCHCANDIDATE000000000", ""), ErrorCode::kNotFound);
  EXPECT_CODE(store_->DismissRemediation(m.id, std::string(4097, 'x')),
              ErrorCode::kInvalidArgument);
}

TEST_P(RemediationStore, FailedAttemptsBackOffUpToTheCap) {
  auto m = Record("fp").remediation;
  auto c1 = Claim("s", 1, 2).claimed.at(0);
  auto f1 = Finish(c1, "s", RemediationStatus::kFailed, clock_.NowMs() + 60'000);
  ASSERT_OK(f1);
  EXPECT_EQ(f1->status, RemediationStatus::kFailed);
  EXPECT_EQ(f1->reason, "why");
  // Still open: a new failure attaches to it.
  EXPECT_FALSE(Record("fp").created);
  // Not before its backoff; one millisecond early is still early.
  clock_.Advance(milliseconds(60'000 - 2));
  EXPECT_TRUE(Claim("s", 1, 2).claimed.empty());
  clock_.Advance(milliseconds(2));
  auto c2 = Claim("s", 1, 2);
  ASSERT_EQ(c2.claimed.size(), 1u);
  EXPECT_EQ(c2.claimed[0].attempts, 2);
  ASSERT_OK(Finish(c2.claimed[0], "s", RemediationStatus::kFailed, clock_.NowMs()));
  // At the cap (2): never claimed again, whatever next_attempt_ms says.
  clock_.Advance(seconds(3600));
  EXPECT_TRUE(Claim("s", 1, 2).claimed.empty());
  // failed with next_attempt_ms 0 means "no more attempts" under any cap.
  ASSERT_OK(store_->ReopenRemediation(m.id));
  auto c3 = Claim("s", 1, 5).claimed.at(0);
  ASSERT_OK(Finish(c3, "s", RemediationStatus::kFailed, 0));
  clock_.Advance(seconds(3600));
  EXPECT_TRUE(Claim("s", 1, 5).claimed.empty());
}

TEST_P(RemediationStore, MaxActiveAndDailyCap) {
  Workflow other = Apply("other", "c9");
  auto a = Record("a").remediation;
  auto b = Record("b").remediation;
  auto c = Record("c", other.id).remediation;
  auto first = Claim("s", 2);
  EXPECT_EQ(first.claimed.size(), 2u);
  EXPECT_EQ(first.active_before, 0);
  auto none = Claim("s", 2);
  EXPECT_TRUE(none.claimed.empty());
  EXPECT_EQ(none.active_before, 2);
  // Releasing one frees a slot and forgets the attempt.
  const Remediation& r0 = first.claimed[0];
  ASSERT_OK(Finish(r0, "s", RemediationStatus::kPending));
  auto released = *store_->GetRemediation(r0.id);
  EXPECT_EQ(released->status, RemediationStatus::kPending);
  EXPECT_EQ(released->attempts, 0);
  EXPECT_TRUE(store_->ListRemediationAttempts(r0.id)->empty());
  for (const auto& m : first.claimed) (void)Finish(m, "s", RemediationStatus::kNoteOnly);
  EXPECT_EQ(*store_->CountActiveRemediationClaims(), 0);
  // Daily cap 1 per workflow: wf already has one attempt today (the one not released).
  auto capped = Claim("s", 3, 3, 1);
  ASSERT_EQ(capped.claimed.size(), 1u);
  EXPECT_EQ(capped.claimed[0].id, c.id);  // the other workflow
  EXPECT_GE(capped.capped, 1);
  // A day later wf may go again.
  clock_.Advance(std::chrono::hours(24));
  auto next_day = Claim("s", 3, 3, 1);
  EXPECT_EQ(next_day.claimed.size(), 1u);
  (void)a;
  (void)b;
}

TEST_P(RemediationStore, ExpiredClaimsReturnToPendingOrFailAtTheCap) {
  auto m = Record("fp").remediation;
  auto c1 = Claim("dead-scheduler", 1, 2).claimed.at(0);
  // Not yet: the deadline has not passed.
  clock_.Advance(seconds(30));
  EXPECT_TRUE(store_->ExpireRemediationClaims(2)->empty());
  clock_.Advance(milliseconds(1));
  auto expired = store_->ExpireRemediationClaims(2);
  ASSERT_OK(expired);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].status, RemediationStatus::kPending);
  EXPECT_EQ((*store_->ListRemediationAttempts(m.id))[0].outcome, "expired");
  // The dead owner's late finish is refused; another takes it over as attempt 2.
  EXPECT_CODE(Finish(c1, "dead-scheduler", RemediationStatus::kFixed), ErrorCode::kConflict);
  auto c2 = Claim("alive", 1, 2).claimed.at(0);
  EXPECT_EQ(c2.attempts, 2);
  clock_.Advance(seconds(31));
  expired = store_->ExpireRemediationClaims(2);
  ASSERT_OK(expired);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].status, RemediationStatus::kFailed);
  EXPECT_NE((*expired)[0].reason.find("attempt cap"), std::string::npos);
  EXPECT_TRUE(Claim("alive", 1, 2).claimed.empty());
}

TEST_P(RemediationStore, ListFiltersPagesAndStats) {
  Workflow other = Apply("other", "c9");
  for (int i = 0; i < 5; ++i) Record("fp" + std::to_string(i));
  Record("x", other.id);
  RemediationFilter f;
  f.limit = 4;
  auto p1 = store_->ListRemediations(f);
  ASSERT_OK(p1);
  ASSERT_EQ(p1->remediations.size(), 4u);
  EXPECT_EQ(p1->remediations[0].workflow_name, "other");  // newest first
  f.cursor = p1->next_cursor;
  auto p2 = store_->ListRemediations(f);
  ASSERT_OK(p2);
  EXPECT_EQ(p2->remediations.size(), 2u);
  EXPECT_TRUE(p2->next_cursor.empty());
  f = {};
  f.workflow_id = other.id;
  EXPECT_EQ(store_->ListRemediations(f)->remediations.size(), 1u);
  f = {};
  f.status = RemediationStatus::kClaimed;
  EXPECT_TRUE(store_->ListRemediations(f)->remediations.empty());
  f.cursor = "x1";
  EXPECT_CODE(store_->ListRemediations(f), ErrorCode::kInvalidArgument);
  f = {};
  f.limit = 1001;
  EXPECT_CODE(store_->ListRemediations(f), ErrorCode::kInvalidArgument);

  auto c = Claim("s", 2).claimed;
  ASSERT_EQ(c.size(), 2u);
  ASSERT_OK(Finish(c[0], "s", RemediationStatus::kFixed));  // agent_ms 1500
  auto stats = store_->GetRemediationStats({1, 2, 5});
  ASSERT_OK(stats);
  EXPECT_EQ(stats->by_status[RemediationStatus::kPending], 4);
  EXPECT_EQ(stats->by_status[RemediationStatus::kClaimed], 1);
  EXPECT_EQ(stats->by_status[RemediationStatus::kFixed], 1);
  EXPECT_EQ(stats->by_status[RemediationStatus::kDismissed], 0);
  EXPECT_EQ(stats->attempts_by_outcome["fixed"], 1);
  EXPECT_EQ(stats->attempts_by_outcome["running"], 1);
  EXPECT_EQ(stats->agent_count, 1);
  EXPECT_EQ(stats->agent_buckets, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_DOUBLE_EQ(stats->agent_seconds_sum, 1.5);
}

// --- races between connections (threads) ---

TEST_P(RemediationStore, RaceRecordMakesOneRow) {
  constexpr int kThreads = 4, kEach = 10;
  std::latch go(kThreads);
  std::atomic<int> created{0}, errors{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      auto s = Open();
      go.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) {
        RecordRemediationRequest req;
        req.fingerprint = "same";
        req.workflow_id = wf_.id;
        req.version = 1;
        req.run_id = run_.id;
        auto r = s->RecordRemediation(req);
        if (!r) {
          ++errors;
          ADD_FAILURE() << r.error().ToString();
        } else if (r->created) {
          ++created;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(created.load(), 1);
  auto page = store_->ListRemediations({});
  ASSERT_OK(page);
  ASSERT_EQ(page->remediations.size(), 1u);
  EXPECT_EQ(page->remediations[0].occurrences, kThreads * kEach);
}

TEST_P(RemediationStore, RaceClaimHonoursMaxActive) {
  for (int i = 0; i < 6; ++i) Record("fp" + std::to_string(i));
  constexpr int kThreads = 4;
  std::latch go(kThreads);
  std::atomic<int> claimed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      auto s = Open();
      ClaimRemediationsRequest req;
      req.owner = "s" + std::to_string(t);
      req.max_active = 2;
      go.arrive_and_wait();
      auto r = s->ClaimRemediations(req);
      if (!r) {
        ADD_FAILURE() << r.error().ToString();
        return;
      }
      claimed += static_cast<int>(r->claimed.size());
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(claimed.load(), 2);
  EXPECT_EQ(*store_->CountActiveRemediationClaims(), 2);
}

// --- races between processes ---

// Starts `n` children with `args`, releases them at once, returns their stdout lines.
std::vector<std::string> RaceProcesses(int n, const std::string& location,
                                       std::vector<std::string> args, const TempDir& dir) {
  const std::string start = (dir.path() / "go").string();
  std::vector<std::unique_ptr<Process>> children;
  for (int i = 0; i < n; ++i) {
    Process::Options o;
    o.argv = {REMEDIATION_RACE_CHILD, location};
    for (auto a : args) {
      if (a == "{i}") a = std::to_string(i);
      o.argv.push_back(a);
    }
    o.argv.push_back(start);
    children.push_back(std::make_unique<Process>(o));
  }
  SleepMs(300);  // each has opened its store and waits for the start file
  std::ofstream(start) << "go";
  std::vector<std::string> lines;
  for (auto& c : children) {
    auto code = c->Wait(seconds(120));
    EXPECT_EQ(code, std::optional<int>(0)) << c->Stderr();
    std::istringstream in(c->Stdout());
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  std::filesystem::remove(start);
  return lines;
}

TEST_P(RemediationStore, RacingProcessesRecordOneCandidate) {
  TempDir dir;
  constexpr int kProcs = 6, kEach = 25;
  auto lines =
      RaceProcesses(kProcs, location_, {"record", wf_.id, run_.id, std::to_string(kEach)}, dir);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kProcs * kEach));
  int created = 0;
  std::set<std::string> ids;
  for (const auto& l : lines) {
    if (l.rfind("created ", 0) == 0) ++created;
    ids.insert(l.substr(l.find(' ') + 1));
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(ids.size(), 1u);
  auto page = store_->ListRemediations({});
  ASSERT_OK(page);
  ASSERT_EQ(page->remediations.size(), 1u);
  EXPECT_EQ(page->remediations[0].occurrences, kProcs * kEach);
}

TEST_P(RemediationStore, RacingProcessesClaimOnce) {
  TempDir dir;
  Record("fp0");
  Record("fp1");
  constexpr int kProcs = 6;
  auto lines = RaceProcesses(kProcs, location_, {"claim", "owner-{i}", "1", "1"}, dir);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kProcs));
  int claimed = 0;
  for (const auto& l : lines) claimed += l.rfind("claimed ", 0) == 0 ? 1 : 0;
  EXPECT_EQ(claimed, 1);
  EXPECT_EQ(*store_->CountActiveRemediationClaims(), 1);
}

}  // namespace

// Instantiated by the binaries that link this file, with the backends they run.
#ifdef REMEDIATION_STORE_POSTGRES
INSTANTIATE_TEST_SUITE_P(Backends, RemediationStore, ::testing::Values("sqlite", "postgres"),
                         [](const auto& param_info) { return param_info.param; });
#else
INSTANTIATE_TEST_SUITE_P(Backends, RemediationStore, ::testing::Values("sqlite"),
                         [](const auto& param_info) { return param_info.param; });
#endif

}  // namespace ferry::testing
