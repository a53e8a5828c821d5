#!/usr/bin/env python3
"""Summarizes results/*.summary|walstats|stat0|stat1|counts into markdown tables."""
import collections
import glob
import os
import re
import statistics
import sys

N = 200
R = os.path.join(os.environ.get("FERRY_WAL_DIR", "/tmp/ferry-wal-variants"), "results")
ORDER = ["base", "v1", "v2", "v2wf", "v2ev", "v3", "base_seqkey", "base_reorder", "v4", "v5", "v5r", "v5o", "v6",
         "v7", "v7ff90", "v7ff100", "v8", "v7nohot", "v8nohot", "v3open", "v9", "v10"]


def load(prefix):
    d = {}
    s = open(prefix + ".summary").read()
    d["bytes"] = int(re.search(r"bytes (\d+)", s).group(1))
    m = re.search(r"vacuum_bytes (\d+) runs_in_tables (\d+)", s)
    d["vac"] = int(m.group(1)) / int(m.group(2)) if m else None
    rec = {}
    for line in open(prefix + ".walstats"):
        k, c, rs, fpi, comb = line.strip().split("|")
        rec[k] = (int(c), int(rs), int(fpi), int(comb))
    d["rec"] = rec
    st = {}
    for fn, key in ((".stat0", 0), (".stat1", 1)):
        for line in open(prefix + fn):
            rel, ins, upd, hot = line.split()
            st.setdefault(rel, [None, None])[key] = (int(ins), int(upd), int(hot))
    d["stat"] = st
    d["counts"] = open(prefix + ".counts").read().split()
    return d


def agg(d):
    rec = d["rec"]

    def cnt(*names):
        return sum(rec.get(n, (0, 0, 0, 0))[0] for n in names)

    def size(pred):
        return sum(v[3] for k, v in rec.items() if pred(k))

    out = {}
    out["bytes"] = d["bytes"] / N
    out["bt_leaf"] = cnt("Btree/INSERT_LEAF") / N
    out["bt_bytes"] = size(lambda k: k.startswith("Btree/")) / N
    out["h_ins"] = cnt("Heap/INSERT", "Heap/INSERT+INIT") / N
    out["h_ins_b"] = size(lambda k: k in ("Heap/INSERT", "Heap/INSERT+INIT")) / N
    upd = cnt("Heap/UPDATE", "Heap/UPDATE+INIT")
    hot = cnt("Heap/HOT_UPDATE", "Heap/HOT_UPDATE+INIT")
    out["h_upd"] = (upd + hot) / N
    out["h_upd_b"] = size(lambda k: "UPDATE" in k and k.startswith("Heap/")) / N
    out["hot_wal"] = hot / (upd + hot) if upd + hot else 0
    s0, s1 = d["stat"]["runs"]
    dupd, dhot = s1[1] - s0[1], s1[2] - s0[2]
    out["hot_stat"] = f"{dhot}/{dupd}"
    out["h_lock"] = cnt("Heap/LOCK") / N
    out["h_lock_b"] = size(lambda k: k == "Heap/LOCK") / N
    out["commit_b"] = size(lambda k: k.startswith("Transaction/")) / N
    out["fpi_b"] = sum(v[2] for v in rec.values()) / N
    out["other_b"] = size(lambda k: not (k.startswith("Btree/") or k.startswith("Heap/")
                                         or k.startswith("Transaction/"))) / N
    out["heap_other_b"] = size(lambda k: k.startswith("Heap/") and k not in (
        "Heap/INSERT", "Heap/INSERT+INIT", "Heap/LOCK") and "UPDATE" not in k) / N
    out["prune_b"] = size(lambda k: k.startswith("Heap2/PRUNE")) / N
    out["counts"] = d["counts"]
    out["vac"] = d["vac"]
    return out


def main():
    by = collections.defaultdict(list)
    for p in sorted(glob.glob(R + "/*.summary")):
        prefix = p[:-len(".summary")]
        name = os.path.basename(prefix)
        v, fpw, rep = name.split(".")
        fpw = fpw[len("fpw"):]
        by[(v, fpw)].append(agg(load(prefix)))
    print("| variant | WAL B/run (mean; range over repeats) | B-tree leaf inserts/run (all B-tree B) "
          "| heap inserts/run (B) | heap updates/run (B) | HOT share (WAL; pg_stat runs) "
          "| VACUUM B/run | heap locks/run (B) | commits B | other heap B (deletes, confirms) | prune B (Heap2/PRUNE) | other B (sequence, clog) | FPI B/run | rows after (runs, succeeded, run_events, run_steps) |")
    print("|" + "---|" * 14)
    for fpw, suffix in (("off", ""), ("off", "_b50"), ("on", "")):
        for v0 in ORDER:
            v = v0 + suffix
            rs = by.get((v, fpw))
            if not rs:
                continue
            b = [r["bytes"] for r in rs]
            m = lambda k: statistics.mean(r[k] for r in rs)
            rng = f"{min(b):,.0f}-{max(b):,.0f}" if len(b) > 1 else "1 run"
            name = v if fpw == "off" else f"{v}, full_page_writes=on"
            vac = [r["vac"] for r in rs if r["vac"] is not None]
            vac = f"{statistics.mean(vac):.0f}" if vac else "-"
            print(f"| {name} | **{statistics.mean(b):,.0f}** ({rng}, n={len(b)}) | "
                  f"{m('bt_leaf'):.2f} ({m('bt_bytes'):,.0f}) | {m('h_ins'):.2f} ({m('h_ins_b'):,.0f}) | "
                  f"{m('h_upd'):.2f} ({m('h_upd_b'):,.0f}) | {m('hot_wal'):.0%}; {rs[0]['hot_stat']} | {vac} | "
                  f"{m('h_lock'):.2f} ({m('h_lock_b'):,.0f}) | {m('commit_b'):,.0f} | "
                  f"{m('heap_other_b'):,.0f} | {m('prune_b'):,.0f} | "
                  f"{m('other_b') - m('prune_b'):,.0f} | {m('fpi_b'):,.0f} | "
                  f"{' '.join(rs[0]['counts'])} |")


if __name__ == "__main__":
    main()
