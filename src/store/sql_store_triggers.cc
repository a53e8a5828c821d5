// SqlStore: triggers (synced from a workflow's definition) and cron fires.
#include <set>
#include <utility>

#include "core/ids.h"
#include "store/sql_store_impl.h"

namespace ferry::store_internal {
namespace {

using P = SqlParam;

constexpr std::string_view kTriggerSelect =
    "SELECT t.id, t.workflow_id, w.name, w.paused, t.kind, t.key, t.config, t.enabled, "
    "t.last_fire_ms, t.next_fire_ms, t.created_ms, t.updated_ms "
    "FROM triggers t JOIN workflows w ON w.id = t.workflow_id ";

Trigger TriggerFromRow(const SqlRow& r) {
  Trigger t;
  t.id = r.Text(0);
  t.workflow_id = r.Text(1);
  t.workflow_name = r.Text(2);
  t.workflow_paused = r.Bool(3);
  t.kind = ParseTriggerKind(r.Text(4)).value_or(TriggerKind::kWebhook);
  t.key = r.Text(5);
  t.config = r.Text(6);
  t.enabled = r.Bool(7);
  t.last_fire_ms = r.Int(8);
  t.next_fire_ms = r.Int(9);
  t.created_ms = r.Int(10);
  t.updated_ms = r.Int(11);
  return t;
}

}  // namespace

// ---------------------------------------------------------------- triggers

Result<std::vector<Trigger>> SqlStore::SyncTriggers(const std::string& workflow_id,
                                                    const std::vector<TriggerSpec>& specs) {
  std::set<std::string> keys;
  for (const auto& s : specs) {
    if (s.key.empty()) return Invalid("trigger key is required");
    if (!keys.insert(s.key).second) return Invalid("duplicate trigger key \"" + s.key + "\"");
  }
  return InTx([&]() -> Result<std::vector<Trigger>> {
    int64_t now = NowMs();
    // Locks the workflow row (PostgreSQL) so concurrent syncs of one workflow serialize.
    auto lock =
        Exec("UPDATE workflows SET updated_ms = updated_ms WHERE id = $1", {P::Text(workflow_id)});
    if (!lock) return Fail(lock.error());
    if (lock->affected == 0) return NotFound("no workflow " + workflow_id);
    auto cur = Exec("SELECT id, key, kind, config, enabled FROM triggers WHERE workflow_id = $1",
                    {P::Text(workflow_id)});
    if (!cur) return Fail(cur.error());
    std::set<std::string> seen;
    for (const auto& spec : specs) {
      std::string kind(TriggerKindName(spec.kind));
      std::string config = spec.config.empty() ? "{}" : spec.config;
      const SqlRow* found = nullptr;
      for (const auto& row : cur->rows) {
        if (row.Text(1) == spec.key) found = &row;
      }
      if (found == nullptr) {
        auto ins = Exec(
            "INSERT INTO triggers (id, workflow_id, kind, key, config, enabled, last_fire_ms, "
            "next_fire_ms, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7)",
            {P::Text(NewId(now)), P::Text(workflow_id), P::Text(kind), P::Text(spec.key),
             P::Text(config), P::Bool(true), P::Int(now)});
        if (!ins) return Fail(ins.error());
        continue;
      }
      bool changed = found->Text(2) != kind || found->Text(3) != config;
      if (!changed && found->Bool(4)) continue;
      auto up = Exec(
          "UPDATE triggers SET kind = $2, config = $3, enabled = $4, updated_ms = $5, "
          "next_fire_ms = CASE WHEN $6 THEN 0 ELSE next_fire_ms END WHERE id = $1",
          {P::Text(found->Text(0)), P::Text(kind), P::Text(config), P::Bool(true), P::Int(now),
           P::Bool(changed)});
      if (!up) return Fail(up.error());
    }
    for (const auto& row : cur->rows) {
      if (keys.count(row.Text(1)) != 0 || !row.Bool(4)) continue;
      auto off = Exec("UPDATE triggers SET enabled = $2, updated_ms = $3 WHERE id = $1",
                      {P::Text(row.Text(0)), P::Bool(false), P::Int(now)});
      if (!off) return Fail(off.error());
    }
    TriggerFilter f;
    f.workflow_id = workflow_id;
    return ListTriggers(f);
  });
}

Result<std::optional<Trigger>> SqlStore::GetTrigger(const std::string& id) {
  return One<Trigger>(Cat(kTriggerSelect, "WHERE t.id = $1"), {P::Text(id)}, TriggerFromRow);
}

Result<std::vector<Trigger>> SqlStore::ListTriggers(const TriggerFilter& filter) {
  std::string sql(kTriggerSelect);
  std::vector<SqlParam> params;
  std::string where;
  auto add = [&](std::string_view cond, SqlParam p) {
    params.push_back(std::move(p));
    where += where.empty() ? "WHERE " : " AND ";
    where += cond;
    where += "$" + std::to_string(params.size());
  };
  if (filter.workflow_id) add("t.workflow_id = ", P::Text(*filter.workflow_id));
  if (filter.kind) add("t.kind = ", P::Text(std::string(TriggerKindName(*filter.kind))));
  if (filter.enabled_only) add("t.enabled = ", P::Bool(true));
  sql += where + " ORDER BY w.name, t.key";
  return Many<Trigger>(sql, params, TriggerFromRow);
}

Status SqlStore::UpdateTriggerFireTimes(const std::string& trigger_id, int64_t last_fire_ms,
                                        int64_t next_fire_ms) {
  auto r = Exec(
      "UPDATE triggers SET last_fire_ms = CASE WHEN last_fire_ms < $2 THEN $2 ELSE "
      "last_fire_ms END, next_fire_ms = $3, updated_ms = $4 WHERE id = $1",
      {P::Text(trigger_id), P::Int(last_fire_ms), P::Int(next_fire_ms), P::Int(NowMs())});
  if (!r) return Fail(r.error());
  if (r->affected == 0) return NotFound("no trigger " + trigger_id);
  return {};
}

// ---------------------------------------------------------------- cron fires

Result<bool> SqlStore::RecordCronFire(const std::string& trigger_id, int64_t fire_ms,
                                      const std::string& run_id) {
  return InTx([&]() -> Result<bool> {
    if (auto st = RequireTrigger(trigger_id); !st) return Fail(st.error());
    return InsertFire(trigger_id, fire_ms, run_id);
  });
}

Result<std::optional<Run>> SqlStore::CreateCronRun(const std::string& trigger_id, int64_t fire_ms,
                                                   const CreateRunRequest& request) {
  return InTx([&]() -> Result<std::optional<Run>> {
    auto wf = Exec("SELECT workflow_id FROM triggers WHERE id = $1", {P::Text(trigger_id)});
    if (!wf) return Fail(wf.error());
    if (wf->rows.empty()) return NotFound("no trigger " + trigger_id);
    // The occurrence is claimed first: a second scheduler stops here (in PostgreSQL it waits
    // on the key until the first commits, then finds it taken).
    auto claimed = InsertFire(trigger_id, fire_ms, "");
    if (!claimed) return Fail(claimed.error());
    if (!*claimed) return std::optional<Run>();
    CreateRunRequest req = request;
    if (req.workflow_id.empty()) req.workflow_id = wf->rows[0].Text(0);
    req.triggered_by = TriggeredBy::kCron;
    req.trigger_id = trigger_id;
    if (auto st = ValidateCreate(req); !st) return Fail(st.error());
    auto run = InsertRun(req, "");
    if (!run) return Fail(run.error());
    auto link = Exec("UPDATE cron_fires SET run_id = $3 WHERE trigger_id = $1 AND fire_ms = $2",
                     {P::Text(trigger_id), P::Int(fire_ms), P::Text(run->id)});
    if (!link) return Fail(link.error());
    auto last = Exec(
        "UPDATE triggers SET last_fire_ms = CASE WHEN last_fire_ms < $2 THEN $2 ELSE "
        "last_fire_ms END, updated_ms = $3 WHERE id = $1",
        {P::Text(trigger_id), P::Int(fire_ms), P::Int(NowMs())});
    if (!last) return Fail(last.error());
    return std::optional<Run>(std::move(*run));
  });
}

Result<std::vector<CronFire>> SqlStore::ListCronFires(const std::string& trigger_id, int limit) {
  if (limit < 1) return Invalid("limit must be >= 1");
  return Many<CronFire>(
      "SELECT trigger_id, fire_ms, run_id, created_ms FROM cron_fires WHERE trigger_id = $1 "
      "ORDER BY fire_ms DESC LIMIT $2",
      {P::Text(trigger_id), P::Int(limit)}, [](const SqlRow& r) {
        CronFire f;
        f.trigger_id = r.Text(0);
        f.fire_ms = r.Int(1);
        f.run_id = r.Text(2);
        f.created_ms = r.Int(3);
        return f;
      });
}

Status SqlStore::RequireTrigger(const std::string& trigger_id) {
  auto t = Exec("SELECT 1 FROM triggers WHERE id = $1", {P::Text(trigger_id)});
  if (!t) return Fail(t.error());
  if (t->rows.empty()) return NotFound("no trigger " + trigger_id);
  return {};
}

Result<bool> SqlStore::InsertFire(const std::string& trigger_id, int64_t fire_ms,
                                  const std::string& run_id) {
  auto r = Exec(
      "INSERT INTO cron_fires (trigger_id, fire_ms, run_id, created_ms) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (trigger_id, fire_ms) DO NOTHING",
      {P::Text(trigger_id), P::Int(fire_ms), P::TextOrNull(run_id), P::Int(NowMs())});
  if (!r) return Fail(r.error());
  return r->affected == 1;
}

}  // namespace ferry::store_internal
