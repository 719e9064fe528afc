"""Shadow reads and cut-over, end to end on a dual-written stream (FalkorDB Bolt, local Qdrant, T4DM).

The T4DM store flushes every 400 records and is told to use its HNSW index for filtered
segment searches however few rows qualify (``exact_search_max_rows=50``; by default a
segment with at most 5000 qualifying rows is scored exactly), so the vector queries compare
T4DM's approximate search with Qdrant's exact local-mode search. The measured overlap@10 is
printed (``pytest -s``) and must stay at or above 0.9.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import t4dm_core
from integrations.dualwrite import (
    DualWriter,
    Neo4jShim,
    Neo4jSide,
    NodeQuery,
    PendingWriteWarning,
    QdrantShim,
    QdrantSide,
    ShadowReader,
    UnsupportedQueryError,
)
from tests.integrations.test_dualwrite_support import COLLECTION, FAST, GRAPH, in_step, legacy_rows, make_collection

pytest_plugins = ("tests.integrations.test_dualwrite_support",)

DIM = 32
NODES = 1500
LINKS_PER_NODE = 3
QUERIES = 40


@pytest.fixture
def shadow_writer(server_up: Any, qdrant_path: str, tmp_path: Path) -> Any:
    client = QdrantClient(path=qdrant_path)
    make_collection(client, size=DIM)
    options = t4dm_core.Options(memtable_max_records=400, exact_search_max_rows=50, exact_search_max_fraction=0.0)
    store = t4dm_core.open(tmp_path / "store", dim=DIM, options=options)
    writer = DualWriter(store, tmp_path / "journal", neo4j=Neo4jSide(server_up, GRAPH),
                        qdrant=QdrantSide(client, reconnect=lambda: QdrantClient(path=qdrant_path)), retry=FAST)
    yield writer
    writer.close()
    store.close()
    writer.sides["qdrant"].client.close()


def populate(writer: DualWriter, rng: np.random.Generator) -> np.ndarray:
    """Dual-write NODES memory nodes, their relationships and one point per node; returns the vectors."""
    graph, points = Neo4jShim(writer), QdrantShim(writer)
    vectors = rng.standard_normal((NODES, DIM)).astype(np.float32)
    for start in range(0, NODES, 250):
        ids = range(start, min(NODES, start + 250))
        graph.write("UNWIND $rows AS row MERGE (m:Memory {id: row.id}) SET m += row.props",
                    {"rows": [{"id": f"m{i}", "props": {"text": f"memory {i}", "topic": i % 17}} for i in ids]})
        points.upsert(COLLECTION, points=[models.PointStruct(id=i, vector=vectors[i].tolist(),
                                                             payload={"node_id": f"m{i}", "topic": i % 17})
                                          for i in ids])
    links = [{"a": f"m{i}", "b": f"m{int(j)}", "w": round(float(w), 3)}
             for i in range(NODES) for j, w in zip(rng.integers(0, NODES, LINKS_PER_NODE), rng.random(LINKS_PER_NODE),
                                                  strict=True) if j != i]
    for start in range(0, len(links), 500):
        graph.write("UNWIND $rows AS row MATCH (a:Memory {id: row.a}), (b:Memory {id: row.b}) "
                    "MERGE (a)-[r:RELATES]->(b) SET r.weight = row.w", {"rows": links[start:start + 500]})
    return vectors


def shadow_queries(vectors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[NodeQuery]]:
    picks = rng.choice(NODES, QUERIES, replace=False)
    queries = vectors[picks] + 0.3 * rng.standard_normal((QUERIES, DIM)).astype(np.float32)
    nodes = [NodeQuery(("Memory",), f"m{int(i)}", direction=("out", "in", "both")[n % 3],
                       rel_type="RELATES" if n % 2 else None) for n, i in enumerate(picks)]
    return queries, nodes


def reader(writer: DualWriter) -> ShadowReader:
    return ShadowReader(writer.store, writer.mapping, qdrant=writer.sides["qdrant"].client,
                        collection=COLLECTION, neo4j=writer.sides["neo4j"].driver,
                        database=GRAPH, k=10)


def test_shadow_report_after_a_dual_written_stream(shadow_writer: DualWriter) -> None:
    rng = np.random.default_rng(7)
    vectors = populate(shadow_writer, rng)
    assert shadow_writer.store.stats()["segments"] >= 1  # HNSW segments, not only the memtable
    assert in_step(shadow_writer) == []
    queries, nodes = shadow_queries(vectors, rng)
    versions = shadow_writer.store.stats()["versions"]
    report = reader(shadow_writer).run(queries, nodes)
    summary = report.summary()
    print(f"\nshadow reads over {NODES} nodes / points:\n{report.to_markdown()}")
    assert summary["vector"]["queries"] == QUERIES and summary["neighbors"]["queries"] == QUERIES
    assert summary["vector"]["overlap_mean"] >= 0.9
    assert summary["neighbors"]["overlap_min"] == 1.0  # graph neighbourhoods are exact
    assert all(len(c.legacy_ids) == 10 for c in report.of_kind("vector"))
    assert any(len(c.legacy_ids) >= 2 for c in report.of_kind("neighbors"))
    assert all(c.legacy_ms > 0 and c.t4dm_ms > 0 for c in report.comparisons)
    recommendation = report.recommendation()
    assert recommendation.ready, recommendation.reasons
    assert shadow_writer.store.stats()["versions"] == versions  # shadow reads never write (learn=False)
    assert set(report.to_dict()) == {"k", "summary", "comparisons"}


def test_shadow_report_sees_divergence(shadow_writer: DualWriter) -> None:
    rng = np.random.default_rng(8)
    vectors = populate(shadow_writer, rng)
    queries, nodes = shadow_queries(vectors, rng)
    legacy_client = shadow_writer.sides["qdrant"].client
    legacy_client.delete(COLLECTION, points_selector=list(range(0, NODES, 2)))  # behind the shim's back
    legacy_rows(shadow_writer.sides["neo4j"].driver, GRAPH,
                "MATCH (:Memory)-[r:RELATES]->(:Memory) WHERE r.weight < 0.5 DELETE r")
    report = reader(shadow_writer).run(queries, nodes)
    summary = report.summary()
    assert summary["vector"]["overlap_mean"] < 0.8
    assert summary["neighbors"]["overlap_mean"] < 1.0
    recommendation = report.recommendation()
    assert not recommendation.ready
    assert any("vector: mean overlap@10" in r and "< 0.9" in r for r in recommendation.reasons)


def test_cut_over_serves_reads_from_t4dm_and_keeps_mirroring(shadow_writer: DualWriter, qdrant_path: str) -> None:
    rng = np.random.default_rng(9)
    vectors = populate(shadow_writer, rng)
    points = QdrantShim(shadow_writer)
    legacy = shadow_writer.sides["qdrant"].client
    query = vectors[11] + 0.05 * rng.standard_normal(DIM).astype(np.float32)
    before = legacy.query_points(COLLECTION, query=query.tolist(), limit=10)
    shadow_writer.cut_over()
    served = points.query_points(COLLECTION, query=query.tolist(), limit=10, with_vectors=True)
    assert served.points[0].id == 11 and served.points[0].payload == {"node_id": "m11", "topic": 11}
    assert len({p.id for p in served.points} & {p.id for p in before.points}) >= 9
    assert served.points[0].score == pytest.approx(before.points[0].score, abs=1e-4)  # same cosine
    assert np.allclose(served.points[0].vector, vectors[11] / np.linalg.norm(vectors[11]), atol=1e-5)
    assert [r.id for r in points.retrieve(COLLECTION, [5, 999_999, 7])] == [5, 7]
    with pytest.raises(UnsupportedQueryError, match="query_filter"):
        points.query_points(COLLECTION, query=query.tolist(), query_filter=models.Filter(must=[]))

    legacy.close()  # Qdrant outage after cut-over: T4DM (primary) takes the writes and serves the reads
    blocker = QdrantClient(path=qdrant_path)
    fresh = rng.standard_normal(DIM).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = shadow_writer.submit("qdrant", points.upsert_ops(COLLECTION, [
            models.PointStruct(id=50_000, vector=fresh.tolist(), payload={"new": True})]))
    assert result.applied == ("t4dm",) and result.pending == ("qdrant",)
    assert any(issubclass(w.category, PendingWriteWarning) for w in caught)
    assert points.query_points(COLLECTION, query=fresh.tolist(), limit=1).points[0].id == 50_000
    blocker.close()
    assert shadow_writer.reconcile().converged
    assert in_step(shadow_writer) == []

    graph = Neo4jShim(shadow_writer)
    assert graph.write("MERGE (m:Memory {id: 'late'}) SET m.text = 'after cut-over'").applied == ("t4dm", "neo4j")
    assert shadow_writer.decommission("qdrant") == 0
    count = points.client.count(COLLECTION).count
    after = points.upsert(COLLECTION, points=[models.PointStruct(id=50_001, vector=fresh.tolist(), payload={})])
    assert after.status == models.UpdateStatus.COMPLETED and points.client.count(COLLECTION).count == count
    assert shadow_writer.store.get("p:mem:50001", namespace=shadow_writer.mapping.namespace) is not None
