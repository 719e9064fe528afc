"""Markdown rendering of a results JSON written by ``run_engine_bench.py``.

``python benchmarks/report.py benchmarks/results/engine-DATE.json`` prints the tables again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

TARGET_RECALL = 0.95


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} µs" if value >= 100 else f"{value:.1f} µs"


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value and base else "-"


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f} MiB"


def first_at_recall(sweep: list[dict[str, Any]], target: float = TARGET_RECALL) -> dict[str, Any] | None:
    """The smallest-ef point of a sweep whose recall@10 reaches ``target``."""
    return next((p for p in sorted(sweep, key=lambda p: p["ef"]) if p["recall"] >= target), None)


def ingest_table(leg: dict[str, Any]) -> str:
    ingest = leg["ingest"]
    base = ingest.get("hnswlib", {}).get("rate")
    rows = []
    for name, r in ingest.items():
        rows.append([name, f"{r['records']:,}", f"{r['seconds']:.1f} s", f"{r['rate']:,.0f}",
                     _ratio(r["rate"], base), r.get("note", "")])
    return _table(["engine", "records", "wall time", "records/s", "vs hnswlib", "what is timed"], rows)


def sweep_table(leg: dict[str, Any]) -> str:
    """One row per ef; each engine's cell is ``recall@10 · p50 / p99``, plus T4DM's p50 over hnswlib's."""
    sweeps: dict[str, list[dict[str, Any]]] = leg["search_sweep"]
    names = list(sweeps)
    efs = sorted({p["ef"] for s in sweeps.values() for p in s})

    def point(name: str, ef: int) -> dict[str, Any] | None:
        return next((x for x in sweeps.get(name, []) if x["ef"] == ef), None)

    rows = []
    for ef in efs:
        row: list[Any] = [ef]
        for n in names:
            p = point(n, ef)
            row.append("-" if p is None else f"{p['recall']:.4f} · {_us(p['p50_us'])} / {_us(p['p99_us'])}")
        t4, hn = point("T4DM", ef), point("hnswlib", ef)
        row.append(_ratio(t4["p50_us"] if t4 else None, hn["p50_us"] if hn else None))
        rows.append(row)
    header = ["ef", *(f"{n}: recall · p50 / p99" for n in names), "T4DM p50 / hnswlib p50"]
    return _table(header, rows)


def equal_recall_table(leg: dict[str, Any]) -> str:
    sweeps = leg["search_sweep"]
    base = first_at_recall(sweeps.get("hnswlib", []))
    rows = []
    for name, sweep in sweeps.items():
        p = first_at_recall(sweep)
        if p is None:
            best = max(sweep, key=lambda x: x["recall"])
            rows.append([name, f"not reached (max {best['recall']:.4f} at ef={best['ef']})", "-", "-", "-", "-"])
            continue
        rows.append([name, p["ef"], f"{p['recall']:.4f}", _us(p["p50_us"]), _us(p["p99_us"]),
                     _ratio(p["p50_us"], base["p50_us"] if base else None)])
    return _table(["engine", f"smallest ef with recall@10 >= {TARGET_RECALL}", "recall@10", "p50", "p99",
                   "p50 vs hnswlib"], rows)


def filtered_table(leg: dict[str, Any]) -> str:
    rows = [[f"{r['selectivity']:.0%}", r["engine"], r["setting"], f"{r['recall']:.4f}", _us(r["p50_us"]),
             _us(r["p99_us"]), r["n"]] for r in leg["filtered"]]
    return _table(["selectivity", "engine", "setting", "recall@10", "p50", "p99", "queries"], rows)


def overlay_table(leg: dict[str, Any]) -> str:
    rows = [[r["op"], r["engine"], _us(r["p50_us"]), _us(r["p99_us"]), _us(r["mean_us"]), f"{r['n']:,}"]
            for r in leg["overlay"]]
    return _table(["operation", "engine", "p50", "p99", "mean", "calls"], rows)


def reopen_table(leg: dict[str, Any]) -> str:
    rows = [[r["state"], ", ".join(f"{s:.3f}" for s in r["seconds"]), f"{min(r['seconds']):.3f} s",
             _us(r.get("first_query_us"))] for r in leg["reopen"]]
    return _table(["store state before close", "open() wall time per trial (s)", "best", "first query after"], rows)


def disk_table(leg: dict[str, Any]) -> str:
    disk = leg["disk"]
    base = disk.get("hnswlib index file")
    rows = [[name, _mib(size), _ratio(size, base)] for name, size in disk.items()]
    return _table(["what", "bytes on disk (du)", "vs hnswlib file"], rows)


def targets(leg: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's five targets evaluated on one leg (None = not measurable in this leg)."""
    out: list[dict[str, Any]] = []
    sweeps = leg["search_sweep"]
    t4, hn = first_at_recall(sweeps.get("T4DM", [])), first_at_recall(sweeps.get("hnswlib", []))
    ratio = t4["p50_us"] / hn["p50_us"] if t4 and hn else None
    out.append({"target": "search p50 <= 1.3x raw hnswlib at recall@10 >= 0.95",
                "measured": "-" if ratio is None else f"{ratio:.2f}x ({t4['p50_us']:.0f} µs vs {hn['p50_us']:.0f} µs)",  # type: ignore[index]
                "met": None if ratio is None else ratio <= 1.3})
    one = [r for r in leg["filtered"] if r["engine"] == "T4DM" and abs(r["selectivity"] - 0.01) < 1e-9]
    out.append({"target": "filtered recall@10 >= 0.95 at 1% selectivity",
                "measured": "-" if not one else f"{one[0]['recall']:.4f}",
                "met": None if not one else one[0]["recall"] >= 0.95})
    bump = next((r for r in leg.get("overlay", []) if r["engine"] == "T4DM" and r["op"].startswith("bump")), None)
    strengthen = next((r for r in leg.get("overlay", []) if r["engine"] == "T4DM"
                       and r["op"].startswith("strengthen")), None)
    if bump and strengthen:
        out.append({"target": "overlay write p50 <= 10 µs",
                    "measured": f"bump {bump['p50_us']:.1f} µs, strengthen {strengthen['p50_us']:.1f} µs",
                    "met": max(bump["p50_us"], strengthen["p50_us"]) <= 10})
    clean = next((r for r in leg.get("reopen", []) if r["state"].startswith("flushed")), None)
    if clean:
        best = min(clean["seconds"])
        out.append({"target": f"reopen of {leg['n']:,} records < 1 s", "measured": f"{best:.3f} s (best of "
                    f"{len(clean['seconds'])})", "met": best < 1.0})
    ingest = leg["ingest"]
    base = ingest.get("hnswlib", {}).get("rate")
    for name in ("T4DM sync=normal", "T4DM sync=full"):
        if name in ingest and base:
            share = ingest[name]["rate"] / base
            out.append({"target": f"ingest >= 50% of hnswlib add rate ({name})",
                        "measured": f"{share:.0%} ({ingest[name]['rate']:,.0f} vs {base:,.0f} records/s)",
                        "met": share >= 0.5})
    return out


def targets_table(leg: dict[str, Any]) -> str:
    mark = {True: "met", False: "MISSED", None: "n/a"}
    rows = [[t["target"], t["measured"], mark[t["met"]]] for t in targets(leg)]
    return _table(["target", "measured", "status"], rows)


def render(results: dict[str, Any]) -> str:
    """All tables of a results document as Markdown."""
    parts = []
    for name, leg in results["legs"].items():
        parts.append(f"## {name}: {leg['n']:,} x {leg['dim']}-d, {leg['queries']:,} queries\n")
        parts.append("### Ingest\n\n" + ingest_table(leg))
        if leg.get("compaction_seconds") is not None:
            parts.append(f"T4DM `flush()` + `compact(full=True)` afterwards: {leg['compaction_seconds']:.1f} s")
        parts.append("### Search at equal recall (k=10, single query)\n\n" + equal_recall_table(leg))
        parts.append("### ef sweep\n\n" + sweep_table(leg))
        if leg.get("filtered"):
            parts.append("### Filtered search\n\n" + filtered_table(leg))
        if leg.get("overlay"):
            parts.append("### Overlay (learning) writes\n\n" + overlay_table(leg))
        if leg.get("reopen"):
            parts.append("### Reopen\n\n" + reopen_table(leg))
        parts.append("### Disk\n\n" + disk_table(leg))
        parts.append("### Targets\n\n" + targets_table(leg))
    return "\n\n".join(parts) + "\n"


def main() -> None:
    """CLI: print the Markdown tables of a results file."""
    if len(sys.argv) != 2:
        raise SystemExit("usage: python benchmarks/report.py RESULTS.json")
    with open(sys.argv[1], encoding="utf-8") as fh:
        print(render(json.load(fh)))


if __name__ == "__main__":
    main()
