"""The importer against a live FalkorDB Bolt server and a local Qdrant: full-size import, idempotent
re-runs, changes picked up, SIGKILL and resume, the CLI in process and as the console script."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import t4dm_core
from integrations.mapping import LEGACY_KEY, Mapping, NodeRule, PointRule, RelationshipRule
from integrations.migrate import Checkpoint, MigrationResult, Neo4jSource, QdrantSource, migrate
from integrations.migrate.importer import CHECKPOINT_NAME
from seeds.legacy_memory import JOIN_KEY, LegacyMemory, SeedNode, generate
from t4dm_core.cli import main
from tests.integrations.falkordb_server import AUTH
from tests.integrations.test_import_support import REPO, Legacy, cli_args, load_legacy, t4dm_script

pytest_plugins = ("tests.integrations.test_import_support",)

NS = "legacy"
UNEMBEDDED = "_t4dm_unembedded"


def run_migrate(legacy: Legacy, store: Path, **options: Any) -> MigrationResult:
    legacy.absorb_goodbye()
    return migrate(Neo4jSource(legacy.server.uri, AUTH[0], AUTH[1], legacy.database, timeout=2), store,
                   qdrant=QdrantSource(path=legacy.qdrant_path), **options)


def text_property(props: dict[str, Any]) -> str | None:
    return next((k for k in ("text", "content", "name", "description") if isinstance(props.get(k), str)), None)


def expected_memories(memory: LegacyMemory) -> int:
    """Node memories + memories of points that join no existing node."""
    orphan_keys = {p.payload[JOIN_KEY] for p in memory.orphan_points()}
    return len(memory.nodes) + len(orphan_keys) + len(memory.unjoined_points())


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def assert_store_matches(store: t4dm_core.Store, memory: LegacyMemory) -> None:
    """Every legacy record is in the store exactly once, with equal content (checked here, not by the verifier)."""
    stats = store.stats()
    assert len(store.ids(namespace=NS)) == expected_memories(memory)
    assert stats["edges"] == len(memory.relationships)
    with_props = sum(bool(r.properties) for r in memory.relationships)
    assert len(store.ids(namespace=NS + ".relationships")) == with_props
    assert stats["versions"] == stats["memories"], "some memory has more than one version"
    joined = {p.payload[JOIN_KEY]: p for p in memory.joined_points()}
    for node in memory.nodes:
        if "id" not in node.properties:
            continue
        got = store.get("n:" + node.properties["id"], namespace=NS)
        assert got is not None
        text_key = text_property(node.properties)
        assert got.text == node.properties.get(text_key)
        for key, value in node.properties.items():
            if key != text_key:
                assert got.metadata[key] == value, (node.properties["id"], key)
        assert got.metadata[LEGACY_KEY]["labels"] == sorted(node.labels)
        point = joined.get(node.properties["id"])
        if point is None:
            assert got.metadata.get(UNEMBEDDED) is True
        else:
            assert UNEMBEDDED not in got.metadata
            np.testing.assert_allclose(got.vector, unit(point.vector), atol=1e-5)
    for point in memory.unjoined_points():
        got = store.get(f"p:{memory.collection}:{point.id}", namespace=NS)
        assert got is not None and got.text == point.payload["text"]
        np.testing.assert_allclose(got.vector, unit(point.vector), atol=1e-5)


def test_full_size_agent_memory_migrates_and_verifies(falkordb, bolt, tmp_path) -> None:
    memory = generate(nodes=5000, relationships=20_000, points=5000, dim=32, seed=11)
    legacy = load_legacy(falkordb, bolt, str(tmp_path / "qdrant"), memory)
    result = run_migrate(legacy, tmp_path / "store", verify_sample=150)

    assert result.report is not None and result.report.ok, result.report.to_text()
    counts = {c.name: (c.legacy, c.t4dm) for c in result.report.counts}
    assert counts["nodes"] == (5000, 5000)
    for label, n in memory.label_counts().items():
        assert counts[f"label {label}"] == (n, n)
    for rel_type, n in memory.type_counts().items():
        assert counts[f"edges {rel_type}"] == (n, n)
    assert counts[f"points {memory.collection}"] == (5000, 5000)
    assert result.counts["nodes_read"] == 5000
    assert result.counts["relationships_read"] == 20_000
    assert result.counts["points_read"] == 5000
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        assert_store_matches(store, memory)
        # nodes without a point carry a stand-in vector: a search that excludes the flag never returns one
        flagged = store.find({UNEMBEDDED: True}, namespace=NS)
        assert len(flagged) == len(memory.nodes) - len(memory.joined_points())
        probe = flagged[0]
        assert store.search(probe.vector, k=1, namespace=NS)[0].id == probe.id
        hits = store.search(probe.vector, k=50, namespace=NS, filter={UNEMBEDDED: {"$exists": False}})
        assert hits and all(UNEMBEDDED not in h.memory.metadata for h in hits)


def test_rerun_writes_nothing(import_legacy, tmp_path) -> None:
    first = run_migrate(import_legacy, tmp_path / "store")
    assert first.report is not None and first.report.ok
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        lsn = store.stats()["next_lsn"]

    second = run_migrate(import_legacy, tmp_path / "store")

    assert second.report is not None and second.report.ok
    assert not second.resumed
    assert second.counts["memories_written"] == 0 and second.counts["records_written"] == 0
    assert second.counts["edges_linked"] == 0
    assert second.counts["memories_unchanged"] == first.counts["memories_written"] + first.counts["memories_unchanged"]
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        assert store.stats()["next_lsn"] == lsn
        assert_store_matches(store, import_legacy.memory)


def test_custom_mapping_imports_verifies_and_reruns_idempotently(import_legacy, tmp_path) -> None:
    mapping = Mapping(namespace="agent",
                      nodes=(NodeRule(label="Fact", metadata=("confidence",), valid_from="learned_at"),),
                      relationships=(RelationshipRule(type="KNOWS", edge_type="knows"),),
                      points=(PointRule(collection=import_legacy.memory.collection, vector="text"),))
    first = run_migrate(import_legacy, tmp_path / "store", mapping=mapping)
    assert first.report is not None and first.report.ok, first.report.to_text()
    assert {c.name for c in first.report.counts} >= {"edges knows", "records KNOWS"}
    fact = next(n.properties for n in import_legacy.memory.nodes if n.labels == ("Fact",))
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        got = store.get("n:" + fact["id"], namespace="agent")
        assert got is not None and got.metadata["confidence"] == fact["confidence"]
        assert "source" not in got.metadata and "verified" not in got.metadata  # not in the rule's metadata list
        assert got.valid_from == datetime.fromisoformat(fact["learned_at"]).timestamp()

    second = run_migrate(import_legacy, tmp_path / "store", mapping=mapping)
    assert second.counts["memories_written"] == 0 and second.counts["edges_linked"] == 0


def test_import_passes_the_dual_write_shims_record_by_record_check(falkordb, bolt, tmp_path) -> None:
    """The importer and the dual-write shim must lay out a record the same way (the shim takes over after it)."""
    from qdrant_client import QdrantClient

    from integrations.dualwrite import graph_differences, point_differences

    memory = generate(nodes=300, relationships=900, points=250, dim=16, seed=8)
    keyed = tuple(SeedNode(n.labels, {"id": f"topic-{i}", **n.properties}) for i, n in enumerate(memory.nodes))
    memory = dataclasses.replace(memory, nodes=keyed)  # the shim's checker needs every node to have its key
    legacy = load_legacy(falkordb, bolt, str(tmp_path / "qdrant"), memory)
    run_migrate(legacy, tmp_path / "store", verify_after=False)
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        assert graph_differences(legacy.driver, legacy.database, store) == []
        client = QdrantClient(path=legacy.qdrant_path)
        try:
            assert point_differences(client, memory.collection, store) == []
        finally:
            client.close()


def test_rerun_writes_exactly_what_changed_in_the_legacy_stores(import_legacy, tmp_path) -> None:
    from qdrant_client import QdrantClient

    run_migrate(import_legacy, tmp_path / "store")
    fact = next(n.properties for n in import_legacy.memory.nodes if n.labels == ("Fact",))
    chunk = import_legacy.memory.unjoined_points()[0]
    with import_legacy.driver.session(database=import_legacy.database) as session:
        session.run("MATCH (n:Fact {id: $id}) SET n.confidence = 0.01 REMOVE n.source", id=fact["id"]).consume()
        session.run("MATCH (a:Person {id: 'person-00001'}), (b:Person {id: 'person-00002'}) "
                    "CREATE (a)-[:MENTORS {weight: 0.25}]->(b)").consume()
    client = QdrantClient(path=import_legacy.qdrant_path)
    client.set_payload(import_legacy.memory.collection, payload={"source": "renamed.md"}, points=[chunk.id])
    client.close()

    result = run_migrate(import_legacy, tmp_path / "store")

    assert result.report is not None and result.report.ok, result.report.to_text()
    assert result.counts["memories_written"] == 2
    assert result.counts["edges_linked"] == 1 and result.counts["records_written"] == 1
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        history = store.history("n:" + fact["id"], namespace=NS)
        assert len(history) == 2
        assert history[-1].metadata["confidence"] == 0.01
        assert "source" not in history[-1].metadata  # a removed property does not linger
        point = store.get(f"p:{import_legacy.memory.collection}:{chunk.id}", namespace=NS)
        assert point is not None and point.metadata["source"] == "renamed.md"
        assert [e.weight for e in store.edges("n:person-00001", namespace=NS) if e.type == "MENTORS"] == [0.25]


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen[bytes], ready: Any, timeout: float = 120.0) -> Checkpoint:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        checkpoint = Checkpoint.load(path) if path.exists() else None
        if checkpoint is not None and ready(checkpoint):
            return checkpoint
        if proc.poll() is not None:
            pytest.fail(f"the import ended (exit {proc.returncode}) before the kill point: "
                        f"{proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.005)
    pytest.fail("the kill point was not reached in time")


def _kill_when(legacy: Legacy, store: Path, ready: Any) -> Checkpoint:
    legacy.absorb_goodbye()
    proc = subprocess.Popen([sys.executable, "-m", "t4dm_core.cli", *cli_args(legacy, store, "--batch-size", "20",
                                                                                "--no-progress")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_checkpoint(store / CHECKPOINT_NAME, proc, ready)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    checkpoint = Checkpoint.load(store / CHECKPOINT_NAME)
    assert checkpoint is not None and checkpoint.status == "running"
    return checkpoint


def test_sigkilled_import_resumes_without_duplicates(falkordb, bolt, tmp_path) -> None:
    memory = generate(nodes=1200, relationships=4000, points=900, dim=16, seed=5)
    legacy = load_legacy(falkordb, bolt, str(tmp_path / "qdrant"), memory)
    store = tmp_path / "store"

    first = _kill_when(legacy, store, lambda c: c.phase == "nodes" and c.counts.get("nodes_read", 0) >= 300)
    assert first.phase == "nodes" and first.counts["nodes_read"] < 1200
    second = _kill_when(legacy, store, lambda c: c.phase == "relationships" and c.counts.get("relationships_read", 0))
    assert second.started_at == first.started_at  # the same pass continued
    assert second.counts["nodes_read"] == 1200 and second.counts["points_read"] == 900
    report = tmp_path / "report.json"
    legacy.absorb_goodbye()
    assert main(cli_args(legacy, store, "--batch-size", "20", "--no-progress", "--report", str(report))) == 0

    data = json.loads(report.read_text())
    assert data["status"] == "complete" and data["resumed"] is True
    assert data["verification"]["ok"] is True
    assert data["counts"]["nodes_read"] == 1200 and data["counts"]["relationships_read"] == 4000
    final = Checkpoint.load(store / CHECKPOINT_NAME)
    assert final is not None and final.status == "complete" and final.started_at == first.started_at
    with t4dm_core.open(store, read_only=True) as opened:
        assert_store_matches(opened, memory)


def test_cli_in_process_prints_summary_and_writes_report(import_legacy, tmp_path, capsys) -> None:
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    import_legacy.absorb_goodbye()
    code = main(cli_args(import_legacy, tmp_path / "store", "--no-progress", "--report", str(report),
                         "--verify-sample", "50"))
    out = capsys.readouterr().out
    assert code == 0
    assert "Verification PASSED" in out and "nodes_read 200" in out
    data = json.loads(report.read_text())
    assert data["status"] == "complete" and data["verification"]["ok"] is True
    assert data["verification"]["samples"]["node"] == {"checked": 50, "equal": 50}
    assert data["counts"]["relationships_read"] == 600


def test_console_script_shows_progress_with_counts_and_rates(import_legacy, tmp_path) -> None:
    import_legacy.absorb_goodbye()
    proc = subprocess.run([t4dm_script(), *cli_args(import_legacy, tmp_path / "store", "--batch-size", "50")],
                          check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Verification PASSED" in proc.stdout
    assert "nodes: 100%" in proc.stderr and "200/200" in proc.stderr and "node/s" in proc.stderr
    assert "relationships: 100%" in proc.stderr and "rel/s" in proc.stderr
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        assert_store_matches(store, import_legacy.memory)


def test_verify_only_writes_nothing_and_catches_damage(import_legacy, tmp_path, capsys) -> None:
    store_path = tmp_path / "store"
    run_migrate(import_legacy, store_path, verify_after=False)
    with t4dm_core.open(store_path, read_only=True) as store:
        lsn = store.stats()["next_lsn"]
    import_legacy.absorb_goodbye()
    assert main(cli_args(import_legacy, store_path, "--verify-only", "--verify-sample", "300")) == 0
    with t4dm_core.open(store_path, read_only=True) as store:
        assert store.stats()["next_lsn"] == lsn
    capsys.readouterr()

    fact = next(n.properties["id"] for n in import_legacy.memory.nodes if n.labels == ("Fact",))
    with t4dm_core.open(store_path, dim=16) as store:
        store.delete("n:" + fact, namespace=NS)
    report = tmp_path / "verify.json"
    import_legacy.absorb_goodbye()
    assert main(cli_args(import_legacy, store_path, "--verify-only", "--verify-sample", "300",
                         "--report", str(report))) == 1
    assert "Verification FAILED" in capsys.readouterr().out
    data = json.loads(report.read_text())
    mismatched = {c["name"] for c in data["verification"]["counts"] if not c["ok"]}
    assert {"nodes", "label Fact"} <= mismatched


@pytest.mark.embedder
def test_store_embedder_embeds_nodes_that_have_no_point(import_legacy, tmp_path) -> None:
    import_legacy.absorb_goodbye()
    result = migrate(Neo4jSource(import_legacy.server.uri, AUTH[0], AUTH[1], import_legacy.database, timeout=2),
                     tmp_path / "store", verify_sample=20)  # no Qdrant: a new store embeds with MiniLM
    assert result.report is not None and result.report.ok
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        assert store.embedder is not None
        fact = next(n.properties for n in import_legacy.memory.nodes if n.labels == ("Fact",))
        got = store.get("n:" + fact["id"], namespace=NS)
        assert got is not None and UNEMBEDDED not in got.metadata
        expected = store.embedder.embed_documents([fact["text"]])[0]
        assert float(got.vector @ unit(expected)) > 0.999
        session = next(n.properties for n in import_legacy.memory.nodes if n.labels == ("Session",))
        untexted = store.get("n:" + session["id"], namespace=NS)
        assert untexted is not None and untexted.text is None and untexted.metadata[UNEMBEDDED] is True
