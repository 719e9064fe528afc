"""Fixtures for the migration tests: a live FalkorDB Bolt server and a local Qdrant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integrations.falkordb_server import AUTH, FalkorDBServer

neo4j = pytest.importorskip("neo4j")
pytest.importorskip("qdrant_client")


@pytest.fixture(scope="session")
def falkordb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalkorDBServer]:
    """One FalkorDB server for the session; tests use their own graph (database) names."""
    with FalkorDBServer(tmp_path_factory.mktemp("falkordb")) as server:
        yield server


@pytest.fixture
def graph_name(request: pytest.FixtureRequest) -> str:
    """A database (graph) name unique to the test."""
    return "g_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]


@pytest.fixture
def neo4j_driver(falkordb: FalkorDBServer) -> Iterator[Any]:
    if not falkordb.running:  # a test may have stopped it to model an outage
        falkordb.start()
    driver = neo4j.GraphDatabase.driver(falkordb.uri, auth=AUTH)
    yield driver
    driver.close()


@pytest.fixture
def qdrant_path(tmp_path: Any) -> str:
    """Directory for a local-mode Qdrant (``QdrantClient(path=...)``)."""
    return str(tmp_path / "qdrant")
