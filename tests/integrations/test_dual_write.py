"""Dual-write shim against a live FalkorDB Bolt server, a local Qdrant and a real T4DM store.

Covers mirrored writes of every supported shape, idempotent replay, bad input (nothing sent
anywhere), rejections by the judging side, unreachable servers at construction, and the
outage scenarios: the FalkorDB server stopped mid-stream, the Qdrant client unusable
mid-stream, and a writer process SIGKILLed mid-stream — each followed by reconcile() and a
record-by-record comparison of the two sides.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import t4dm_core
from integrations.dualwrite import (
    DualWriter,
    InvalidWriteError,
    Journal,
    JournalLockedError,
    Neo4jShim,
    Neo4jSide,
    PendingWriteWarning,
    QdrantShim,
    QdrantSide,
    WriteRejectedError,
    graph_differences,
    point_differences,
)
from integrations.errors import LegacyConnectionError, UnsupportedCypherShapeError, VectorShapeError
from tests.integrations.falkordb_server import AUTH, FalkorDBServer
from tests.integrations.test_dualwrite_support import (
    COLLECTION,
    DIM,
    FAST,
    GRAPH,
    LINK_NOTES,
    REPO,
    UPSERT_NOTES,
    in_step,
    legacy_rows,
    make_collection,
    snapshot,
    vector,
)

pytest_plugins = ("tests.integrations.test_dualwrite_support",)


def test_mirrored_writes_of_every_shape(writer: DualWriter, server_up: Any, legacy_qdrant: Any) -> None:
    graph, points = Neo4jShim(writer), QdrantShim(writer)
    rng = np.random.default_rng(0)
    with graph.session() as session:
        result = session.run(UPSERT_NOTES, rows=[{"id": f"n{i}", "props": {"text": f"note {i}", "rank": i}}
                                                 for i in range(20)])
        assert result.consume().complete and result.data() == []
        session.run("CREATE (p:Person {id: $id, name: 'Ann', tags: ['a', 'b']})", id="p1")
        session.run("MATCH (a:Person {id: $a}), (b:Note {id: $b}) CREATE (a)-[:WROTE {weight: 0.25, year: 2024}]->(b)",
                    a="p1", b="n3")
        session.run(LINK_NOTES, rows=[{"a": f"n{i}", "b": f"n{i + 1}", "p": {"gap": i}} for i in range(19)])
        session.run("MATCH (n:Note {id: $id}) SET n.rank = null, n.pinned = true", id="n5")
        session.run("MATCH (n:Note {id: $id}) SET n = $p", id="n6", p={"id": "n6", "content": "replaced"})
        session.run("MATCH (a:Note {id: 'n7'})-[r:NEXT]->(b:Note {id: 'n8'}) DELETE r")
        session.run("MATCH (n:Note {id: $id}) DETACH DELETE n", id="n9")
        session.run("MERGE (n:Note {id: 'n1'})")  # no change at all
        assert [r["c"] for r in session.run("MATCH (n:Note) RETURN count(n) AS c")] == [19]  # reads pass through

        def transaction(tx: Any, first: str) -> str:
            tx.run("MERGE (t:Topic {id: $id}) SET t.title = 'memory'", id="t1")
            tx.run("MATCH (a:Note {id: $a}), (t:Topic {id: 't1'}) MERGE (a)-[:ABOUT]->(t)", a=first)
            return "done"

        before = writer.journal.stats()["next_seq"]
        assert session.execute_write(transaction, "n0") == "done"
        assert writer.journal.stats()["next_seq"] == before + 1  # one journal entry for the transaction
    eager = graph.execute_query("MERGE (n:Note {id: $id}) SET n.via = 'execute_query'", id="n0")
    assert eager.summary.complete and eager.records == []
    # (reads via execute_query pass through to the driver, but FalkorDB 1.4.1 returns no records for reads in
    # managed transactions — measured — so the check reads with an auto-commit run)
    assert legacy_rows(server_up, GRAPH, "MATCH (n:Note {id: 'n0'}) RETURN n.via AS v") == [
        {"v": "execute_query"}]

    upsert = points.upsert(COLLECTION, points=[
        models.PointStruct(id=i, vector=vector(rng), payload={"node_id": f"n{i}", "kind": "note"}) for i in range(12)])
    assert upsert.status == models.UpdateStatus.COMPLETED
    points.upsert(COLLECTION, points=models.Batch(ids=[100, 101], vectors=[vector(rng), vector(rng)],
                                                  payloads=[{"kind": "loose"}, {"kind": "loose", "n": 1}]))
    points.set_payload(COLLECTION, payload={"tag": "x"}, points=[1, 100])
    points.overwrite_payload(COLLECTION, payload={"node_id": "n2", "kind": "rewritten"}, points=[2])
    points.delete(COLLECTION, points_selector=models.PointIdsList(points=[3]))
    points.delete(COLLECTION, points_selector=models.FilterSelector(filter=models.Filter(
        must=[models.FieldCondition(key="n", match=models.MatchValue(value=1))])))
    points.upsert(COLLECTION, points=[models.PointStruct(id=4, vector=vector(rng), payload={"node_id": "n14"})])

    assert in_step(writer) == []
    assert writer.pending_counts() == {"t4dm": 0, "neo4j": 0, "qdrant": 0}
    ns = writer.mapping.namespace
    joined = writer.store.get("n:n1", namespace=ns)
    assert joined.text == "note 1" and joined.metadata["tag"] == "x" and joined.metadata["rank"] == 1
    assert writer.store.get("n:n9", namespace=ns).metadata["node_id"] == "n9"  # node deleted, its point stays
    assert writer.store.get("n:n4", namespace=ns).metadata.get("_t4dm_unembedded") is True  # point 4 moved away
    assert {(e.dst, e.type, e.weight) for e in writer.store.edges("n:p1", namespace=ns)} == {("n:n3", "WROTE", 0.25)}
    assert writer.store.get("p:mem:100", namespace=ns).metadata == {
        "kind": "loose", "tag": "x", "_t4dm_legacy": {"point": {"collection": COLLECTION, "id": 100, "vector": None,
                                                                "payload": {"kind": "loose", "tag": "x"}}}}
    # node, node + point, the payload change; the no-op MERGE added no version
    assert len(writer.store.history("n:n1", namespace=ns)) == 3


def test_transactions_are_one_entry_or_nothing(writer: DualWriter, server_up: Any, legacy_qdrant: Any) -> None:
    graph = Neo4jShim(writer)
    before = snapshot(writer, server_up, GRAPH, legacy_qdrant)

    def failing(tx: Any) -> None:
        tx.run("MERGE (n:Note {id: 'never'})")
        raise RuntimeError("the application gave up")

    with graph.session() as session:
        with pytest.raises(RuntimeError, match="gave up"):
            session.execute_write(failing)
        with session.begin_transaction() as tx:
            tx.run("MERGE (n:Note {id: 'rolled back'})")
            tx.rollback()
        assert snapshot(writer, server_up, GRAPH, legacy_qdrant) == before  # nothing journaled, nothing sent
        with session.begin_transaction() as tx:
            tx.run(UPSERT_NOTES, rows=[{"id": "x", "props": {"text": "one"}}, {"id": "y", "props": {}}])
            tx.run(LINK_NOTES, rows=[{"a": "x", "b": "y", "p": {"w": 1}}])
    assert tx.write_result is not None and tx.write_result.complete
    assert writer.journal.stats()["next_seq"] == before[0] + 1
    assert in_step(writer) == []


def test_concurrent_writers_share_one_shim(writer: DualWriter) -> None:
    graph, points = Neo4jShim(writer), QdrantShim(writer)
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((4 * 15, DIM)).tolist()

    def work(thread: int) -> None:
        for i in range(15):
            key = f"t{thread}-{i}"
            graph.write(UPSERT_NOTES, {"rows": [{"id": key, "props": {"thread": thread, "i": i}}]})
            if i:
                graph.write(LINK_NOTES, {"rows": [{"a": f"t{thread}-{i - 1}", "b": key, "p": {}}]})
            points.upsert(COLLECTION, points=[models.PointStruct(id=thread * 100 + i, vector=vectors[thread * 15 + i],
                                                                 payload={"node_id": key})])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert in_step(writer) == []
    assert len(writer.store.ids(namespace=writer.mapping.namespace)) == 60
    assert writer.startup_report.converged and writer.reconcile().replayed == {}


def test_difference_check_sees_a_write_that_bypassed_the_shim(writer: DualWriter, server_up: Any,
                                                              legacy_qdrant: Any) -> None:
    Neo4jShim(writer).write(UPSERT_NOTES, {"rows": [{"id": "a", "props": {"text": "x"}}]})
    QdrantShim(writer).upsert(COLLECTION, points=[models.PointStruct(id=1, vector=[1.0] * DIM, payload={})])
    assert in_step(writer) == []
    with server_up.session(database=GRAPH) as session:
        session.run("MATCH (n:Note {id: 'a'}) SET n.text = 'changed behind the shim'").consume()
        session.run("CREATE (:Note {id: 'b'})").consume()
    legacy_qdrant.upsert(COLLECTION, points=[models.PointStruct(id=2, vector=[1.0] * DIM, payload={})])
    differences = in_step(writer)
    assert any("node 'n:a' differs" in d for d in differences)
    assert any("T4DM lacks node 'n:b'" in d for d in differences)
    assert any("T4DM lacks point 2" in d for d in differences)


def test_replaying_entries_changes_nothing(writer: DualWriter, server_up: Any,
                                           legacy_qdrant: Any) -> None:
    graph, points = Neo4jShim(writer), QdrantShim(writer)
    rng = np.random.default_rng(1)
    statements = [
        ("CREATE (n:Note {id: 'a', text: 'first'})", {}),
        (UPSERT_NOTES, {"rows": [{"id": f"n{i}", "props": {"text": f"t{i}"}} for i in range(10)]}),
        (LINK_NOTES, {"rows": [{"a": "a", "b": f"n{i}", "p": {"w": i}} for i in range(10)]}),
        ("MATCH (n:Note {id: 'n3'}) DETACH DELETE n", {}),
        ("MATCH (a:Note {id: 'a'})-[r:NEXT]->(b:Note {id: 'n4'}) DELETE r", {}),
    ]
    ops = [op for cypher, params in statements for op in graph.ops_for(cypher, params)]
    for cypher, params in statements:
        graph.write(cypher, params)
    point_ops = points.upsert_ops(COLLECTION, [
        models.PointStruct(id=i, vector=vector(rng), payload={"node_id": f"n{i}"}) for i in range(5)])
    points.upsert(COLLECTION, points=[models.PointStruct(id=op.id, vector=op.vector, payload=op.payload)
                                      for op in point_ops])
    before = snapshot(writer, server_up, GRAPH, legacy_qdrant)
    for _ in range(2):  # what reconcile does after a crash that lost the status records
        writer.sides["neo4j"].apply(ops, first=False)
        writer.sides["qdrant"].apply(point_ops, first=False)
        writer.sides["t4dm"].apply(ops + point_ops, first=False)
    assert snapshot(writer, server_up, GRAPH, legacy_qdrant) == before  # no new versions, nodes, edges, points
    assert in_step(writer) == []


def test_bad_input_is_refused_before_anything_is_sent(writer: DualWriter, server_up: Any,
                                                      legacy_qdrant: Any) -> None:
    graph, points = Neo4jShim(writer), QdrantShim(writer)
    graph.write(UPSERT_NOTES, {"rows": [{"id": "a", "props": {"text": "x"}}]})
    before = snapshot(writer, server_up, GRAPH, legacy_qdrant)
    with graph.session() as session:
        with pytest.raises(UnsupportedCypherShapeError, match="'RETURN'"):
            session.run("MERGE (n:Note {id: 'b'}) RETURN n")
        with pytest.raises(UnsupportedCypherShapeError, match="'REMOVE'"):
            session.run("MATCH (n:Note {id: 'a'}) REMOVE n.text")
        with pytest.raises(InvalidWriteError, match="key property 'id'"):
            session.run("CREATE (n:Note {text: 'no key'})")
        with pytest.raises(InvalidWriteError, match="max_request_bytes"):
            session.run("MERGE (n:Note {id: 'big'}) SET n.text = $t", t="x" * 5000)
        with pytest.raises(InvalidWriteError, match="go to database 'dualwrite', not 'elsewhere'"):
            graph.write("MERGE (n:Note {id: 'c'})", database="elsewhere")
        with pytest.raises(UnsupportedCypherShapeError):  # inside a transaction: nothing of it is sent
            session.execute_write(lambda tx: (tx.run("MERGE (n:Note {id: 'd'})"), tx.run("MATCH (n) DELETE n")))
    with pytest.raises(VectorShapeError, match="point 5 has 7 dimensions; the collection expects 8"):
        points.upsert(COLLECTION, points=[models.PointStruct(id=4, vector=[0.5] * DIM, payload={}),
                                          models.PointStruct(id=5, vector=[0.5] * 7, payload={})])
    with pytest.raises(VectorShapeError, match="named vectors"):
        points.upsert(COLLECTION, points=[models.PointStruct(id=6, vector={"text": [0.5] * DIM})])
    with pytest.raises(InvalidWriteError, match="neither an unsigned integer nor a UUID"):
        points.upsert(COLLECTION, points=[models.PointStruct(id=7, vector=[0.5] * DIM),
                                          models.PointStruct(id="not-a-uuid", vector=[0.5] * DIM, payload={})])
    with pytest.raises(InvalidWriteError, match="cannot be mirrored"):
        points.upsert(COLLECTION, points=[models.PointStruct(id=8, vector=[0.5] * DIM)],
                      ordering=models.WriteOrdering.STRONG)
    assert snapshot(writer, server_up, GRAPH, legacy_qdrant) == before


def test_mapped_vector_must_fit_the_store(writer: DualWriter, legacy_qdrant: Any) -> None:
    make_collection(legacy_qdrant, "wide", size=DIM * 2)
    with pytest.raises(VectorShapeError, match="vector has 16 dimensions, the store has 8"):
        QdrantShim(writer).upsert("wide", points=[models.PointStruct(id=1, vector=[0.1] * (DIM * 2))])
    assert legacy_qdrant.count("wide").count == 0
    assert writer.journal.stats()["next_seq"] == 1


def test_primary_rejection_reaches_no_side(writer: DualWriter, legacy_qdrant: Any) -> None:
    points = QdrantShim(writer)
    points.upsert(COLLECTION, points=[models.PointStruct(id=1, vector=[0.3] * DIM, payload={})])
    legacy_qdrant.delete_collection(COLLECTION)  # behind the shim's back; its cached shape still validates
    with pytest.raises(WriteRejectedError) as info:
        points.upsert(COLLECTION, points=[models.PointStruct(id=2, vector=[0.3] * DIM, payload={})])
    assert info.value.side == "qdrant" and "not found" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    assert writer.store.get("p:mem:2", namespace=writer.mapping.namespace) is None
    assert writer.pending_counts() == {"t4dm": 0, "neo4j": 0, "qdrant": 0}  # failed everywhere, not pending
    assert writer.reconcile().converged


def test_t4dm_judges_writes_after_cut_over(writer: DualWriter, server_up: Any) -> None:
    graph = Neo4jShim(writer)
    graph.write(UPSERT_NOTES, {"rows": [{"id": "a", "props": {}}, {"id": "b", "props": {}}]})
    graph.write(LINK_NOTES, {"rows": [{"a": "a", "b": "b", "p": {}}]})
    writer.cut_over()
    assert writer.primary == "t4dm"
    with pytest.raises(WriteRejectedError, match="use DETACH DELETE") as info:
        graph.write("MATCH (n:Note {id: 'a'}) DELETE n")
    assert info.value.side == "t4dm"
    assert legacy_rows(server_up, GRAPH, "MATCH (n:Note {id: 'a'}) RETURN count(n) AS c") == [{"c": 1}]
    result = graph.write("MATCH (n:Note {id: 'a'}) DETACH DELETE n")
    assert result.applied == ("t4dm", "neo4j")  # T4DM first after cut-over
    assert in_step(writer) == []
    writer.close()
    with DualWriter(writer.store, writer.journal.directory, neo4j=writer.sides["neo4j"], retry=FAST) as restarted:
        assert restarted.primary == "t4dm"  # the switch is durable
        restarted.roll_back()
        assert Neo4jShim(restarted).write("MERGE (n:Note {id: 'c'})").applied == ("neo4j", "t4dm")


def test_unreachable_servers_at_construction(t4dm_store: Any, tmp_path: Path, qdrant_path: str) -> None:
    dead = neo4j.GraphDatabase.driver("bolt://127.0.0.1:1", auth=AUTH)
    with pytest.raises(LegacyConnectionError, match=r"cannot reach Neo4j database 'g'.*127\.0\.0\.1:1"):
        DualWriter(t4dm_store, tmp_path / "journal", neo4j=Neo4jSide(dead, "g"))
    dead.close()
    nowhere = QdrantClient(url="http://127.0.0.1:1", timeout=2, check_compatibility=False)
    with pytest.raises(LegacyConnectionError, match="cannot reach Qdrant"):
        DualWriter(t4dm_store, tmp_path / "journal", qdrant=QdrantSide(nowhere))
    local = QdrantClient(path=qdrant_path)
    with DualWriter(t4dm_store, tmp_path / "journal", qdrant=QdrantSide(local)):  # the failed attempts left no lock
        with pytest.raises(JournalLockedError):
            DualWriter(t4dm_store, tmp_path / "journal", qdrant=QdrantSide(local))
    local.close()


def test_neo4j_server_stopped_mid_stream(writer: DualWriter, falkordb: FalkorDBServer, server_up: Any) -> None:
    graph = Neo4jShim(writer)
    expected: dict[str, dict[str, Any]] = {}
    pending_results = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(60):
            if i == 20:
                falkordb.stop()
            if i == 45:
                assert writer.status()["down"] == ["neo4j"] and writer.status()["pending"]["neo4j"] > 20
                falkordb.start()
            rows = [{"id": f"s{i}-{j}", "props": {"text": f"stream {i}.{j}", "i": i}} for j in range(3)]
            result = graph.write(UPSERT_NOTES, {"rows": rows})
            expected.update({row["id"]: {"id": row["id"], **row["props"]} for row in rows})
            if i:
                graph.write(LINK_NOTES, {"rows": [{"a": f"s{i - 1}-0", "b": f"s{i}-0", "p": {"step": i}}]})
            if i % 7 == 3:
                graph.write("MATCH (n:Note {id: $id}) SET n.touched = $i", {"id": f"s{i - 1}-1", "i": i})
                expected[f"s{i - 1}-1"]["touched"] = i
            if i % 11 == 5:
                graph.write("MATCH (n:Note {id: $id}) DETACH DELETE n", {"id": f"s{i - 2}-2"})
                del expected[f"s{i - 2}-2"]
            assert "t4dm" in result.applied  # T4DM + journal keep accepting writes during the outage
            pending_results += bool(result.pending)
    assert pending_results >= 25  # writes 20..44 could not reach Neo4j
    assert any(issubclass(w.category, PendingWriteWarning) for w in caught)
    report = writer.reconcile()
    assert report.converged, report
    assert writer.pending_counts()["neo4j"] == 0
    rows = legacy_rows(server_up, GRAPH, "MATCH (n:Note) RETURN properties(n) AS p")
    assert {row["p"]["id"]: row["p"] for row in rows} == expected  # nothing lost, nothing extra
    assert len(legacy_rows(server_up, GRAPH, "MATCH ()-[r:NEXT]->() RETURN r")) == 59
    assert graph_differences(server_up, GRAPH, writer.store, writer.mapping) == []


def test_qdrant_unavailable_mid_stream(writer: DualWriter, legacy_qdrant: Any, qdrant_path: str) -> None:
    points = QdrantShim(writer)
    rng = np.random.default_rng(2)
    written: dict[int, list[float]] = {}
    blocker = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(40):
            if i == 10:  # the client dies and another process holds the storage: every call and reconnect fails
                legacy_qdrant.close()
                blocker = QdrantClient(path=qdrant_path)
            batch = {i * 10 + j: vector(rng) for j in range(5)}
            result = points.upsert(COLLECTION, points=[
                models.PointStruct(id=pid, vector=v, payload={"batch": i})
                for pid, v in batch.items()])
            written.update(batch)
            if i % 6 == 4:
                points.delete(COLLECTION, points_selector=[i * 10])
                del written[i * 10]
            assert (result.status == models.UpdateStatus.ACKNOWLEDGED) == (i >= 10)
    assert any(issubclass(w.category, PendingWriteWarning) for w in caught)
    assert blocker is not None
    assert blocker.count(COLLECTION).count < len(written)  # Qdrant really missed the outage's writes
    assert writer.pending_counts()["qdrant"] > 0 and writer.pending_counts()["t4dm"] == 0
    blocker.close()
    report = writer.reconcile()
    assert report.converged, report
    fresh = points.client
    assert fresh is not legacy_qdrant  # reconnected
    assert {r.id for r in fresh.scroll(COLLECTION, limit=1000)[0]} == set(written)
    assert point_differences(fresh, COLLECTION, writer.store, writer.mapping) == []
    fresh.close()


CHILD = textwrap.dedent("""
    import os, signal, sys
    import neo4j, numpy as np, t4dm_core
    from qdrant_client import QdrantClient, models
    from integrations.dualwrite import DualWriter, Neo4jShim, Neo4jSide, QdrantShim, QdrantSide
    from integrations.dualwrite.ops import op_to_dict
    uri, graph, qdrant_path, store_path, journal_path, mode, cycle = sys.argv[1:8]
    driver = neo4j.GraphDatabase.driver(uri, auth=("falkordb", ""))
    writer = DualWriter(t4dm_core.open(store_path, dim=8), journal_path,  # construction reconciles
                        neo4j=Neo4jSide(driver, graph, batch_size=4),
                        qdrant=QdrantSide(QdrantClient(path=qdrant_path)))
    graph, points = Neo4jShim(writer), QdrantShim(writer)
    rng = np.random.default_rng(int(cycle))
    for i in range(100_000):
        key = f"k{cycle}-{i}"
        rows = [{"id": f"{key}-{j}", "props": {"text": f"note {key}.{j}", "i": i}} for j in range(16)]
        graph.write("UNWIND $rows AS row MERGE (n:Note {id: row.id}) SET n += row.props", {"rows": rows})
        graph.write("UNWIND $rows AS row MATCH (a:Note {id: row.a}), (b:Note {id: row.b}) MERGE (a)-[:NEXT]->(b)",
                    {"rows": [{"a": f"{key}-{j}", "b": f"{key}-{j + 1}"} for j in range(15)]})
        points.upsert("mem", points=[models.PointStruct(id=int(cycle) * 100_000 + i * 100 + j,
                                                        vector=rng.standard_normal(8).tolist(),
                                                        payload={"node_id": f"{key}-{j}"}) for j in range(16)])
        print(i, flush=True)
        if mode != "kill-mid-stream" and i == 2:
            ops = graph.ops_for("MERGE (n:Note {id: $id}) SET n.text = $t", {"id": "orphan", "t": "journaled only"})
            writer.journal.append("neo4j", ["neo4j", "t4dm"], [op_to_dict(op) for op in ops])
            if mode == "die-between-sides":  # Neo4j applied, status not recorded, T4DM not applied
                writer.sides["neo4j"].apply(ops, first=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
KILL_DELAYS = (0.0, 0.004, 0.012, 0.03)  # after the child's 5th acknowledged iteration, one child per delay


def run_child(server: FalkorDBServer, tmp_path: Path, mode: str, cycle: int, kill_delay: float) -> int:
    """Run one writer process until it is SIGKILLed; returns the last iteration it acknowledged."""
    args = [sys.executable, "-c", CHILD, server.uri, GRAPH, str(tmp_path / "qdrant"),
            str(tmp_path / "store"), str(tmp_path / "journal"), mode, str(cycle)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    last = -1
    try:
        for line in child.stdout:
            last = int(line)
            if mode == "kill-mid-stream" and last == 5:
                time.sleep(kill_delay)
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    return last


@pytest.mark.parametrize("mode", ["kill-mid-stream", "die-after-append", "die-between-sides"])
def test_sigkilled_writer_converges_on_restart(falkordb: FalkorDBServer, server_up: Any,
                                               tmp_path: Path, mode: str) -> None:
    setup = QdrantClient(path=str(tmp_path / "qdrant"))
    make_collection(setup)
    setup.close()
    delays = KILL_DELAYS if mode == "kill-mid-stream" else (0.0,)
    acknowledged = {cycle: run_child(falkordb, tmp_path, mode, cycle, delay)
                    for cycle, delay in enumerate(delays)}
    with Journal(tmp_path / "journal") as journal:
        left_open = journal.unfinished()
    if mode != "kill-mid-stream":
        assert [(e.source, e.sides) for e in left_open][-1] == ("neo4j", {"neo4j": "pending", "t4dm": "pending"})
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    writer = DualWriter(t4dm_core.open(tmp_path / "store", dim=DIM), tmp_path / "journal",
                        neo4j=Neo4jSide(server_up, GRAPH), qdrant=QdrantSide(client), retry=FAST)
    try:
        assert writer.pending_counts() == {"t4dm": 0, "neo4j": 0, "qdrant": 0}  # construction reconciled
        assert in_step(writer, client) == []
        notes = {row["id"] for row in legacy_rows(server_up, GRAPH, "MATCH (n:Note) RETURN n.id AS id")}
        for cycle, last in acknowledged.items():  # nothing acknowledged was lost
            assert {f"k{cycle}-{i}-{j}" for i in range(last + 1) for j in range(16)} <= notes
        assert client.count(COLLECTION).count >= 16 * sum(last + 1 for last in acknowledged.values())
        if mode != "kill-mid-stream":  # journaled, not (fully) applied before the crash, applied by the restart
            assert "orphan" in notes
            assert writer.store.get("n:orphan", namespace=writer.mapping.namespace).text == "journaled only"
            assert len(legacy_rows(server_up, GRAPH, "MATCH (n:Note {id: 'orphan'}) RETURN n")) == 1
    finally:
        writer.close()
        writer.store.close()
        client.close()
