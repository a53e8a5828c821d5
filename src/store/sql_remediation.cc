#include "store/sql_remediation.h"

#include <charconv>
#include <map>

#include "core/ids.h"

namespace ferry::store_internal {
namespace {

using P = SqlParam;

constexpr int64_t kDayMs = 24LL * 3600 * 1000;
constexpr size_t kMaxText = 1 << 20;  // per stored text field (context, sources, note)
// Candidates examined per claim call (the caps may skip some).
constexpr int kClaimScan = 200;

constexpr std::string_view kSelect =
    "SELECT r.id, r.fingerprint, r.workflow_id, w.name, r.version, r.run_id, r.last_run_id, "
    "r.failed_node, r.error, r.error_normalized, r.context, r.status, r.occurrences, r.attempts, "
    "r.attempt_base, r.next_attempt_ms, r.claim_owner, r.claim_deadline_ms, r.classification, "
    "r.summary, r.confidence, r.note, r.reason, r.result, r.base_source, r.proposed_source, "
    "r.fixed_version, r.retry_run_id, r.retry_error, r.first_seen_ms, r.last_seen_ms, "
    "r.created_ms, r.updated_ms, r.seq FROM remediations r JOIN workflows w ON w.id = "
    "r.workflow_id ";
constexpr size_t kSeqCol = 33;

// The statuses a claim takes a candidate from, as SQL over the alias r (or the bare table).
constexpr std::string_view kClaimable =
    "(status = 'pending' OR (status = 'failed' AND next_attempt_ms > 0))";

Remediation FromRow(const SqlRow& r) {
  Remediation m;
  m.id = r.Text(0);
  m.fingerprint = r.Text(1);
  m.workflow_id = r.Text(2);
  m.workflow_name = r.Text(3);
  m.version = static_cast<int>(r.Int(4));
  m.run_id = r.Text(5);
  m.last_run_id = r.Text(6);
  m.failed_node = r.Text(7);
  m.error = r.Text(8);
  m.error_normalized = r.Text(9);
  m.context = r.Text(10);
  m.status = ParseRemediationStatus(r.Text(11)).value_or(RemediationStatus::kPending);
  m.occurrences = r.Int(12);
  m.attempts = static_cast<int>(r.Int(13));
  m.attempt_base = static_cast<int>(r.Int(14));
  m.next_attempt_ms = r.Int(15);
  m.claim_owner = r.Text(16);
  m.claim_deadline_ms = r.Int(17);
  m.classification = r.Text(18);
  m.summary = r.Text(19);
  m.confidence = r.Text(20);
  m.note = r.Text(21);
  m.reason = r.Text(22);
  m.result = r.Text(23);
  m.base_source = r.Text(24);
  m.proposed_source = r.Text(25);
  m.fixed_version = static_cast<int>(r.Int(26));
  m.retry_run_id = r.Text(27);
  m.retry_error = r.Text(28);
  m.first_seen_ms = r.Int(29);
  m.last_seen_ms = r.Int(30);
  m.created_ms = r.Int(31);
  m.updated_ms = r.Int(32);
  return m;
}

RemediationAttempt AttemptFromRow(const SqlRow& r) {
  RemediationAttempt a;
  a.remediation_id = r.Text(0);
  a.attempt = static_cast<int>(r.Int(1));
  a.workflow_id = r.Text(2);
  a.owner = r.Text(3);
  a.outcome = r.Text(4);
  a.detail = r.Text(5);
  a.agent_ms = r.Int(6);
  a.started_ms = r.Int(7);
  a.finished_ms = r.Int(8);
  return a;
}

tl::unexpected<Error> Invalid(std::string msg) {
  return Fail(ErrorCode::kInvalidArgument, std::move(msg));
}

std::string Cat(std::string_view a, std::string_view b) {
  std::string s(a);
  s.append(b);
  return s;
}

std::string_view OutcomeOf(RemediationStatus s) {
  switch (s) {
    case RemediationStatus::kFixed:
      return "fixed";
    case RemediationStatus::kNoteOnly:
      return "note_only";
    default:
      return "failed";
  }
}

Status CheckSizes(const FinishRemediationRequest& r) {
  for (const std::string* text :
       {&r.note, &r.result, &r.base_source, &r.proposed_source, &r.summary, &r.reason}) {
    if (text->size() > kMaxText) return Invalid("a remediation field is over 1 MiB");
  }
  return {};
}

}  // namespace

Result<RecordRemediationResult> RemediationSql::Record(const RecordRemediationRequest& req) {
  if (req.fingerprint.empty()) return Invalid("a remediation candidate needs a fingerprint");
  if (req.workflow_id.empty() || req.run_id.empty() || req.version < 1) {
    return Invalid("a remediation candidate needs a workflow, a version and a run");
  }
  if (req.context.size() > kMaxText || req.error.size() > kMaxText) {
    return Invalid("remediation context is over 1 MiB");
  }
  const int64_t now = s_.Now();
  // One statement decides insert-or-attach against the partial unique index, so concurrent
  // failures on several workers (and processes) make one row.
  auto r = s_.Query(
      "INSERT INTO remediations (id, fingerprint, workflow_id, version, run_id, last_run_id, "
      "failed_node, error, error_normalized, context, status, occurrences, first_seen_ms, "
      "last_seen_ms, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, "
      "'pending', 1, $10, $10, $10, $10) "
      "ON CONFLICT (fingerprint) WHERE status IN ('pending', 'claimed', 'failed') "
      "DO UPDATE SET occurrences = remediations.occurrences + 1, last_seen_ms = "
      "excluded.last_seen_ms, last_run_id = excluded.last_run_id, updated_ms = "
      "excluded.updated_ms RETURNING id, occurrences",
      {P::Text(NewId(now)), P::Text(req.fingerprint), P::Text(req.workflow_id), P::Int(req.version),
       P::Text(req.run_id), P::Text(req.failed_node), P::Text(req.error),
       P::Text(req.error_normalized), P::Text(req.context.empty() ? "{}" : req.context),
       P::Int(now)});
  if (!r) {
    if (r.error().code == ErrorCode::kConflict) {
      auto wf = s_.Query("SELECT 1 FROM workflows WHERE id = $1", {P::Text(req.workflow_id)});
      if (wf && wf->rows.empty()) {
        return Fail(ErrorCode::kNotFound, "no workflow " + req.workflow_id);
      }
    }
    return Fail(r.error());
  }
  if (r->rows.empty())
    return Fail(ErrorCode::kInternal, "store: remediation upsert returned nothing");
  RecordRemediationResult out;
  out.created = r->rows[0].Int(1) == 1;
  auto got = MustGet(r->rows[0].Text(0));
  if (!got) return Fail(got.error());
  out.remediation = std::move(*got);
  return out;
}

Result<std::optional<Remediation>> RemediationSql::Get(const std::string& id) {
  auto r = s_.Query(Cat(kSelect, "WHERE r.id = $1"), {P::Text(id)});
  if (!r) return Fail(r.error());
  if (r->rows.empty()) return std::optional<Remediation>();
  return std::optional<Remediation>(FromRow(r->rows[0]));
}

Result<Remediation> RemediationSql::MustGet(const std::string& id) {
  auto got = Get(id);
  if (!got) return Fail(got.error());
  if (!*got) return Fail(ErrorCode::kNotFound, "no remediation candidate " + id);
  return std::move(**got);
}

tl::unexpected<Error> RemediationSql::TransitionError(const std::string& id,
                                                      std::string_view wanted) {
  auto got = Get(id);
  if (!got) return Fail(got.error());
  if (!*got) return Fail(ErrorCode::kNotFound, "no remediation candidate " + id);
  return Fail(ErrorCode::kConflict, "remediation candidate " + id + " is " +
                                        std::string(RemediationStatusName((*got)->status)) + "; " +
                                        std::string(wanted));
}

Result<RemediationPage> RemediationSql::List(const RemediationFilter& filter) {
  if (filter.limit < 1 || filter.limit > 1000) {
    return Invalid("remediation list limit must be 1..1000");
  }
  std::string where;
  std::vector<SqlParam> params;
  auto add = [&](std::string_view cond, SqlParam p) {
    params.push_back(std::move(p));
    where += where.empty() ? "WHERE " : " AND ";
    where += cond;
    where += "$" + std::to_string(params.size());
  };
  if (filter.status) {
    add("r.status = ", P::Text(std::string(RemediationStatusName(*filter.status))));
  }
  if (filter.workflow_id) add("r.workflow_id = ", P::Text(*filter.workflow_id));
  if (!filter.cursor.empty()) {
    int64_t seq = 0;
    const char* b = filter.cursor.data();
    const char* e = b + filter.cursor.size();
    auto [ptr, ec] = std::from_chars(b, e, seq);
    if (ec != std::errc() || ptr != e || seq <= 0) {
      return Invalid("malformed remediation list cursor \"" + filter.cursor + "\"");
    }
    add("r.seq < ", P::Int(seq));
  }
  params.push_back(P::Int(filter.limit + 1));
  auto r = s_.Query(
      Cat(kSelect, where) + " ORDER BY r.seq DESC LIMIT $" + std::to_string(params.size()), params);
  if (!r) return Fail(r.error());
  RemediationPage page;
  const size_t n = std::min(r->rows.size(), static_cast<size_t>(filter.limit));
  for (size_t i = 0; i < n; ++i) page.remediations.push_back(FromRow(r->rows[i]));
  if (r->rows.size() > n) page.next_cursor = r->rows[n - 1].Text(kSeqCol);
  return page;
}

Result<std::vector<RemediationAttempt>> RemediationSql::ListAttempts(const std::string& id) {
  auto r = s_.Query(
      "SELECT remediation_id, attempt, workflow_id, owner, outcome, detail, agent_ms, started_ms, "
      "finished_ms FROM remediation_attempts WHERE remediation_id = $1 ORDER BY attempt",
      {P::Text(id)});
  if (!r) return Fail(r.error());
  std::vector<RemediationAttempt> out;
  for (const auto& row : r->rows) out.push_back(AttemptFromRow(row));
  return out;
}

Result<std::vector<Remediation>> RemediationSql::ExpireClaims(int attempt_cap) {
  if (attempt_cap < 1) return Invalid("attempt cap must be >= 1");
  std::vector<Remediation> out;
  auto st = s_.Atomically([&]() -> Status {
    const int64_t now = s_.Now();
    auto due = s_.Query(
        "SELECT id, attempts, attempt_base, claim_owner FROM remediations WHERE status = "
        "'claimed' AND claim_deadline_ms < $1 ORDER BY claim_deadline_ms LIMIT 100",
        {P::Int(now)});
    if (!due) return Fail(due.error());
    for (const auto& row : due->rows) {
      const std::string id = row.Text(0);
      const int64_t attempt = row.Int(1);
      const bool spent = attempt - row.Int(2) >= attempt_cap;
      const std::string detail = "the claim of " + row.Text(3) + " expired";
      const std::string reason =
          detail + " after attempt " + std::to_string(attempt) + " (the attempt cap is reached)";
      // Conditional on the claim seen: a renewal or finish that raced us wins.
      auto u = s_.Query(
          "UPDATE remediations SET status = $4, next_attempt_ms = $5, reason = $6, claim_owner "
          "= '', claim_deadline_ms = 0, updated_ms = $3 WHERE id = $1 AND status = 'claimed' "
          "AND attempts = $2 AND claim_deadline_ms < $3",
          {P::Text(id), P::Int(attempt), P::Int(now), P::Text(spent ? "failed" : "pending"),
           P::Int(spent ? 0 : now), P::Text(spent ? reason : "")});
      if (!u) return Fail(u.error());
      if (u->affected == 0) continue;
      auto a = s_.Query(
          "UPDATE remediation_attempts SET outcome = 'expired', detail = $3, finished_ms = $4 "
          "WHERE remediation_id = $1 AND attempt = $2 AND outcome = 'running'",
          {P::Text(id), P::Int(attempt), P::Text(detail), P::Int(now)});
      if (!a) return Fail(a.error());
      auto got = MustGet(id);
      if (!got) return Fail(got.error());
      out.push_back(std::move(*got));
    }
    return {};
  });
  if (!st) return Fail(st.error());
  return out;
}

Result<ClaimRemediationsResult> RemediationSql::Claim(const ClaimRemediationsRequest& req) {
  if (req.owner.empty()) return Invalid("a claim needs an owner");
  if (req.max_active < 1 || req.attempt_cap < 1 || req.daily_cap < 1) {
    return Invalid("max_active, attempt_cap and daily_cap must be >= 1");
  }
  if (req.lease.count() <= 0) return Invalid("the claim lease must be > 0");
  ClaimRemediationsResult out;
  auto st = s_.Atomically([&]() -> Status {
    out = ClaimRemediationsResult{};
    const int64_t now = s_.Now();
    // Serializes claimers (PostgreSQL row lock; SQLite holds the write lock already).
    auto gate = s_.Query("UPDATE remediation_gate SET claims = claims + 1 WHERE id = 1", {});
    if (!gate) return Fail(gate.error());
    auto active = CountActive();
    if (!active) return Fail(active.error());
    out.active_before = *active;
    int64_t slots = req.max_active - *active;
    if (slots <= 0) return {};
    auto cands =
        s_.Query(Cat("SELECT id, workflow_id FROM remediations WHERE ", kClaimable) +
                     " AND next_attempt_ms <= $1 AND attempts - attempt_base < $2 ORDER BY "
                     "next_attempt_ms, seq LIMIT $3",
                 {P::Int(now), P::Int(req.attempt_cap), P::Int(kClaimScan)});
    if (!cands) return Fail(cands.error());
    std::map<std::string, int64_t> today;  // attempts per workflow in the last 24 hours
    for (const auto& row : cands->rows) {
      if (slots <= 0) break;
      const std::string id = row.Text(0);
      const std::string wf = row.Text(1);
      auto it = today.find(wf);
      if (it == today.end()) {
        auto n = s_.Query(
            "SELECT COUNT(*) FROM remediation_attempts WHERE workflow_id = $1 AND started_ms > $2",
            {P::Text(wf), P::Int(now - kDayMs)});
        if (!n) return Fail(n.error());
        it = today.emplace(wf, n->rows.empty() ? 0 : n->rows[0].Int(0)).first;
      }
      if (it->second >= req.daily_cap) {
        ++out.capped;
        continue;
      }
      auto u = s_.Query(Cat("UPDATE remediations SET status = 'claimed', attempts = attempts + 1, "
                            "claim_owner = $2, claim_deadline_ms = $3, updated_ms = $4 WHERE id = "
                            "$1 AND ",
                            kClaimable) +
                            " AND next_attempt_ms <= $4 AND attempts - attempt_base < $5 "
                            "RETURNING attempts",
                        {P::Text(id), P::Text(req.owner), P::Int(now + req.lease.count()),
                         P::Int(now), P::Int(req.attempt_cap)});
      if (!u) return Fail(u.error());
      if (u->rows.empty()) continue;
      const int64_t attempt = u->rows[0].Int(0);
      auto a = s_.Query(
          "INSERT INTO remediation_attempts (remediation_id, attempt, workflow_id, owner, "
          "started_ms) VALUES ($1, $2, $3, $4, $5)",
          {P::Text(id), P::Int(attempt), P::Text(wf), P::Text(req.owner), P::Int(now)});
      if (!a) return Fail(a.error());
      ++it->second;
      --slots;
      auto got = MustGet(id);
      if (!got) return Fail(got.error());
      out.claimed.push_back(std::move(*got));
    }
    return {};
  });
  if (!st) return Fail(st.error());
  return out;
}

Status RemediationSql::Renew(const std::string& id, const std::string& owner, int attempt,
                             std::chrono::milliseconds lease) {
  if (lease.count() <= 0) return Invalid("the claim lease must be > 0");
  auto r = s_.Query(
      "UPDATE remediations SET claim_deadline_ms = $4 WHERE id = $1 AND status = 'claimed' AND "
      "claim_owner = $2 AND attempts = $3",
      {P::Text(id), P::Text(owner), P::Int(attempt), P::Int(s_.Now() + lease.count())});
  if (!r) return Fail(r.error());
  if (r->affected == 1) return {};
  return TransitionError(
      id, "the claim of " + owner + " (attempt " + std::to_string(attempt) + ") is gone");
}

Result<Remediation> RemediationSql::Finish(const FinishRemediationRequest& req) {
  if (req.status == RemediationStatus::kClaimed || req.status == RemediationStatus::kDismissed) {
    return Invalid("an attempt ends fixed, note_only, failed or released (pending)");
  }
  if (auto st = CheckSizes(req); !st) return Fail(st.error());
  Remediation out;
  auto st = s_.Atomically([&]() -> Status {
    const int64_t now = s_.Now();
    const bool release = req.status == RemediationStatus::kPending;
    auto u =
        release
            ? s_.Query(
                  "UPDATE remediations SET status = 'pending', attempts = attempts - 1, "
                  "next_attempt_ms = 0, claim_owner = '', claim_deadline_ms = 0, updated_ms = $4 "
                  "WHERE id = $1 AND status = 'claimed' AND claim_owner = $2 AND attempts = $3",
                  {P::Text(req.id), P::Text(req.owner), P::Int(req.attempt), P::Int(now)})
            : s_.Query(
                  "UPDATE remediations SET status = $4, next_attempt_ms = $5, classification = "
                  "$6, summary = $7, confidence = $8, note = $9, reason = $10, result = $11, "
                  "base_source = $12, proposed_source = $13, fixed_version = $14, retry_run_id "
                  "= $15, claim_owner = '', claim_deadline_ms = 0, updated_ms = $16 WHERE id = "
                  "$1 AND status = 'claimed' AND claim_owner = $2 AND attempts = $3",
                  {P::Text(req.id), P::Text(req.owner), P::Int(req.attempt),
                   P::Text(std::string(RemediationStatusName(req.status))),
                   P::Int(req.status == RemediationStatus::kFailed ? req.next_attempt_ms : 0),
                   P::Text(req.classification), P::Text(req.summary), P::Text(req.confidence),
                   P::Text(req.note), P::Text(req.reason),
                   P::Text(req.result.empty() ? "{}" : req.result), P::Text(req.base_source),
                   P::Text(req.proposed_source), P::Int(req.fixed_version),
                   P::Text(req.retry_run_id), P::Int(now)});
    if (!u) return Fail(u.error());
    if (u->affected == 0) {
      return TransitionError(req.id, "attempt " + std::to_string(req.attempt) + " of " + req.owner +
                                         " no longer holds its claim");
    }
    auto a = release ? s_.Query(
                           "DELETE FROM remediation_attempts WHERE remediation_id = $1 AND "
                           "attempt = $2",
                           {P::Text(req.id), P::Int(req.attempt)})
                     : s_.Query(
                           "UPDATE remediation_attempts SET outcome = $3, detail = $4, agent_ms "
                           "= $5, finished_ms = $6 WHERE remediation_id = $1 AND attempt = $2",
                           {P::Text(req.id), P::Int(req.attempt),
                            P::Text(std::string(OutcomeOf(req.status))),
                            P::Text(req.reason.empty() ? req.summary : req.reason),
                            P::Int(req.agent_ms), P::Int(now)});
    if (!a) return Fail(a.error());
    auto got = MustGet(req.id);
    if (!got) return Fail(got.error());
    out = std::move(*got);
    return {};
  });
  if (!st) return Fail(st.error());
  return out;
}

Status RemediationSql::SetRetryError(const std::string& id, const std::string& error) {
  auto r = s_.Query("UPDATE remediations SET retry_error = $2, updated_ms = $3 WHERE id = $1",
                    {P::Text(id), P::Text(error), P::Int(s_.Now())});
  if (!r) return Fail(r.error());
  if (r->affected == 0) {
    return Fail(ErrorCode::kNotFound, "no remediation candidate " + id);
  }
  return {};
}

Result<Remediation> RemediationSql::Dismiss(const std::string& id, const std::string& reason) {
  if (reason.size() > 4096) return Invalid("a dismissal reason is at most 4096 bytes");
  Remediation out;
  auto st = s_.Atomically([&]() -> Status {
    const int64_t now = s_.Now();
    auto u = s_.Query(
        "UPDATE remediations SET status = 'dismissed', reason = $2, claim_owner = '', "
        "claim_deadline_ms = 0, updated_ms = $3 WHERE id = $1 AND status IN ('pending', "
        "'claimed', 'failed')",
        {P::Text(id), P::Text(reason), P::Int(now)});
    if (!u) return Fail(u.error());
    if (u->affected == 0) return TransitionError(id, "only pending, claimed or failed dismiss");
    // An attempt in flight loses its claim: its renewal and its finish now fail.
    auto a = s_.Query(
        "UPDATE remediation_attempts SET outcome = 'dismissed', finished_ms = $2 WHERE "
        "remediation_id = $1 AND outcome = 'running'",
        {P::Text(id), P::Int(now)});
    if (!a) return Fail(a.error());
    auto got = MustGet(id);
    if (!got) return Fail(got.error());
    out = std::move(*got);
    return {};
  });
  if (!st) return Fail(st.error());
  return out;
}

Result<Remediation> RemediationSql::Reopen(const std::string& id) {
  Remediation out;
  auto st = s_.Atomically([&]() -> Status {
    auto u = s_.Query(
        "UPDATE remediations SET status = 'pending', attempt_base = attempts, next_attempt_ms = "
        "0, reason = '', updated_ms = $2 WHERE id = $1 AND status IN ('dismissed', 'failed', "
        "'note_only')",
        {P::Text(id), P::Int(s_.Now())});
    if (!u) {
      if (u.error().code == ErrorCode::kConflict) {
        return Fail(ErrorCode::kConflict,
                    "another open remediation candidate has the same fingerprint as " + id +
                        "; dismiss that one first");
      }
      return Fail(u.error());
    }
    if (u->affected == 0) return TransitionError(id, "only dismissed, failed or note_only reopen");
    auto got = MustGet(id);
    if (!got) return Fail(got.error());
    out = std::move(*got);
    return {};
  });
  if (!st) return Fail(st.error());
  return out;
}

Result<int64_t> RemediationSql::CountActive() {
  auto r = s_.Query("SELECT COUNT(*) FROM remediations WHERE status = 'claimed'", {});
  if (!r) return Fail(r.error());
  return r->rows.empty() ? 0 : r->rows[0].Int(0);
}

Result<RemediationStats> RemediationSql::Stats(const std::vector<double>& buckets) {
  RemediationStats out;
  for (auto s :
       {RemediationStatus::kPending, RemediationStatus::kClaimed, RemediationStatus::kFixed,
        RemediationStatus::kNoteOnly, RemediationStatus::kFailed, RemediationStatus::kDismissed}) {
    out.by_status[s] = 0;
  }
  auto st = s_.Query("SELECT status, COUNT(*) FROM remediations GROUP BY status", {});
  if (!st) return Fail(st.error());
  for (const auto& row : st->rows) {
    if (auto s = ParseRemediationStatus(row.Text(0))) out.by_status[*s] = row.Int(1);
  }
  auto oc = s_.Query("SELECT outcome, COUNT(*) FROM remediation_attempts GROUP BY outcome", {});
  if (!oc) return Fail(oc.error());
  for (const auto& row : oc->rows) out.attempts_by_outcome[row.Text(0)] = row.Int(1);
  out.agent_buckets.assign(buckets.size(), 0);
  auto d = s_.Query("SELECT agent_ms FROM remediation_attempts WHERE agent_ms >= 0", {});
  if (!d) return Fail(d.error());
  for (const auto& row : d->rows) {
    const double seconds = static_cast<double>(row.Int(0)) / 1000.0;
    out.agent_seconds_sum += seconds;
    ++out.agent_count;
    for (size_t i = 0; i < buckets.size(); ++i) {
      if (seconds <= buckets[i]) ++out.agent_buckets[i];
    }
  }
  return out;
}

}  // namespace ferry::store_internal
