"""Bad input to the importer: a typed error naming the problem, nothing written by a failed preflight,
and a checkpoint plus report saying exactly what was committed when a run stops midway."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

import t4dm_core
from integrations.errors import LegacyAuthError, LegacyConnectionError, MappingError, MigrationError, VectorShapeError
from integrations.mapping import Mapping, NodeRule, PointRule, RelationshipRule
from integrations.migrate import Checkpoint, Neo4jSource, QdrantSource, migrate
from integrations.migrate.importer import CHECKPOINT_NAME
from integrations.migrate.progress import NoProgress
from t4dm_core.cli import main
from tests.integrations.falkordb_server import AUTH
from tests.integrations.test_import_support import Legacy, cli_args

pytest_plugins = ("tests.integrations.test_import_support",)


def source(legacy: Legacy, *, password: str = AUTH[1], uri: str | None = None) -> Neo4jSource:
    legacy.absorb_goodbye()
    return Neo4jSource(uri or legacy.server.uri, AUTH[0], password, legacy.database, timeout=2)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_neo4j_is_named_and_nothing_is_created(import_legacy, tmp_path) -> None:
    uri = f"bolt://127.0.0.1:{closed_port()}"
    with pytest.raises(LegacyConnectionError, match=uri):
        migrate(Neo4jSource(uri, AUTH[0], AUTH[1], "g", timeout=1), tmp_path / "store",
                qdrant=QdrantSource(path=import_legacy.qdrant_path))
    assert not (tmp_path / "store").exists()


def test_refused_credentials_raise_auth_error(import_legacy, tmp_path) -> None:
    # FalkorDB checks the Bolt password against the Redis "default" user (no password on the test
    # server): a non-empty password is refused with FalkorDB.ClientError.Security.Unauthorized.
    with pytest.raises(LegacyAuthError, match=f"{import_legacy.server.uri}.*{AUTH[0]}"):
        migrate(source(import_legacy, password="not-the-password"), tmp_path / "store",
                qdrant=QdrantSource(path=import_legacy.qdrant_path))
    assert not (tmp_path / "store").exists()


def test_unreachable_qdrant_is_named(import_legacy, tmp_path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(LegacyConnectionError, match=url):
        migrate(source(import_legacy), tmp_path / "store", qdrant=QdrantSource(url=url))
    missing = tmp_path / "no-such-qdrant"
    with pytest.raises(LegacyConnectionError, match=str(missing)):
        migrate(source(import_legacy), tmp_path / "store", qdrant=QdrantSource(path=str(missing)))
    assert not (tmp_path / "store").exists()


def test_mapping_naming_what_exists_nowhere_lists_every_name(import_legacy, tmp_path) -> None:
    mapping = Mapping(nodes=(NodeRule(label="Persn"), NodeRule(label="Fact", text=("body",)),
                             NodeRule(label="Event", valid_from="happened")),
                      relationships=(RelationshipRule(type="KNOWZ"),
                                     RelationshipRule(type="KNOWS", weight="closeness")),
                      points=(PointRule(collection="memories"), PointRule(collection=None, vector="image")))
    with pytest.raises(MappingError) as caught:
        migrate(source(import_legacy), tmp_path / "store", qdrant=QdrantSource(path=import_legacy.qdrant_path),
                mapping=mapping)
    message = str(caught.value)
    for name in ("'Persn'", "'body'", "'happened'", "'KNOWZ'", "'closeness'", "'memories'", "'image'"):
        assert name in message
    assert not (tmp_path / "store").exists()


def test_missing_requested_collection_is_a_mapping_error(import_legacy, tmp_path) -> None:
    with pytest.raises(MappingError, match="'nope'"):
        migrate(source(import_legacy), tmp_path / "store",
                qdrant=QdrantSource(path=import_legacy.qdrant_path, collections=("nope",)))
    assert not (tmp_path / "store").exists()


def test_vector_dimension_of_an_existing_store_is_checked_first(import_legacy, tmp_path) -> None:
    with t4dm_core.open(tmp_path / "store", dim=8) as store:
        store.put(t4dm_core.Memory(text="already here", vector=[1.0] * 8))
        lsn = store.stats()["next_lsn"]
    with pytest.raises(VectorShapeError, match=r"16.*8"):
        migrate(source(import_legacy), tmp_path / "store", qdrant=QdrantSource(path=import_legacy.qdrant_path))
    with t4dm_core.open(tmp_path / "store", read_only=True) as store:
        assert store.stats()["next_lsn"] == lsn
    assert not (tmp_path / "store" / CHECKPOINT_NAME).exists()


def test_collections_of_different_dimensions_are_refused(import_legacy, tmp_path) -> None:
    client = QdrantClient(path=import_legacy.qdrant_path)
    client.create_collection("wide", vectors_config=models.VectorParams(size=32, distance=models.Distance.COSINE))
    client.close()
    with pytest.raises(VectorShapeError, match="wide"):
        migrate(source(import_legacy), tmp_path / "store", qdrant=QdrantSource(path=import_legacy.qdrant_path))
    assert not (tmp_path / "store").exists()


def test_cli_preflight_failure_exits_1_and_says_nothing_was_written(import_legacy, tmp_path, capsys) -> None:
    report = tmp_path / "report.json"
    args = cli_args(import_legacy, tmp_path / "store", "--neo4j-password", "wrong", "--report", str(report))
    import_legacy.absorb_goodbye()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "refused the credentials" in err and "stopped before writing anything" in err
    assert json.loads(report.read_text())["status"] == "failed"


def test_bad_value_midway_leaves_checkpoint_and_report_of_what_was_committed(import_legacy, tmp_path,
                                                                              capsys) -> None:
    store = tmp_path / "store"
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps({"relationships": [{"type": "KNOWS", "weight": "since"}]}))  # an ISO string
    report = tmp_path / "report.json"
    import_legacy.absorb_goodbye()
    assert main(cli_args(import_legacy, store, "--mapping", str(mapping_file), "--report", str(report),
                         "--no-progress")) == 1
    err = capsys.readouterr().err
    assert "'since'" in err and "phase relationships" in err

    checkpoint = Checkpoint.load(store / CHECKPOINT_NAME)
    assert checkpoint is not None and checkpoint.status == "failed" and checkpoint.phase == "relationships"
    assert "MappingError" in (checkpoint.error or "")
    data = json.loads(report.read_text())
    assert data["status"] == "failed" and data["phase"] == "relationships"
    assert data["counts"]["nodes_read"] == 200 and data["counts"]["points_read"] == 150
    with t4dm_core.open(store, read_only=True) as opened:  # the report's counts are what the store holds
        assert len(opened.ids(namespace="legacy")) == data["counts"]["memories_written"]
        assert opened.stats()["edges"] == data["counts"].get("edges_linked", 0)

    import_legacy.absorb_goodbye()  # another mapping is another migration: refused unless restarted
    with pytest.raises(MigrationError, match="another migration"):
        migrate(source(import_legacy), store, qdrant=QdrantSource(path=import_legacy.qdrant_path))
    result = migrate(source(import_legacy), store, qdrant=QdrantSource(path=import_legacy.qdrant_path), restart=True)
    assert result.report is not None and result.report.ok
    assert result.counts["memories_written"] == 0  # the first run's memories were kept, not rewritten


class StopServerAt(NoProgress):
    """A progress sink that stops the legacy server when a phase starts (an outage mid-import)."""

    def __init__(self, legacy: Legacy, phase: str) -> None:
        self.legacy, self.phase = legacy, phase

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        if phase == self.phase:
            self.legacy.server.stop()


def test_legacy_outage_midway_then_resume_completes(import_legacy, tmp_path) -> None:
    store = tmp_path / "store"
    with pytest.raises(LegacyConnectionError, match=import_legacy.server.uri):
        migrate(source(import_legacy), store, qdrant=QdrantSource(path=import_legacy.qdrant_path),
                progress=StopServerAt(import_legacy, "relationships"))
    checkpoint = Checkpoint.load(store / CHECKPOINT_NAME)
    assert checkpoint is not None and checkpoint.status == "failed" and checkpoint.phase == "relationships"
    assert checkpoint.counts["nodes_read"] == 200 and "relationships_read" not in checkpoint.counts

    import_legacy.server.start()
    result = migrate(source(import_legacy), store, qdrant=QdrantSource(path=import_legacy.qdrant_path))
    assert result.resumed and result.report is not None and result.report.ok, result.report
    assert result.counts["relationships_read"] == 600
    with t4dm_core.open(store, read_only=True) as opened:
        stats = opened.stats()
        assert stats["versions"] == stats["memories"]
        assert stats["edges"] == 600


def test_damaged_checkpoint_is_reported(import_legacy, tmp_path) -> None:
    store: Path = tmp_path / "store"
    store.mkdir()
    (store / CHECKPOINT_NAME).write_text("{not json")
    with pytest.raises(MigrationError, match="damaged"):
        migrate(source(import_legacy), store, qdrant=QdrantSource(path=import_legacy.qdrant_path))

