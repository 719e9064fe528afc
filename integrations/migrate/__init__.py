"""``t4dm migrate``: import a legacy Neo4j (Bolt) + Qdrant agent memory into a T4DM store.

Python API: :func:`migrate` (or :class:`Importer`), :func:`verify_only`; command line:
``t4dm migrate --neo4j-uri URI ... --to STORE_PATH`` (:mod:`.cli`). See integrations/MIGRATION.md
for the guide: contract, Cypher used, what was verified against FalkorDB and what assumes Neo4j.
Importing this package imports ``neo4j`` and ``qdrant_client`` (the ``t4dm[migrate]`` extra).
"""

from __future__ import annotations

from integrations.migrate.checkpoint import Checkpoint
from integrations.migrate.importer import Importer, MigrationResult, Neo4jSource, QdrantSource, migrate, verify_only
from integrations.migrate.neo4j_reader import Neo4jReader
from integrations.migrate.progress import NoProgress, Progress, TqdmProgress
from integrations.migrate.qdrant_reader import QdrantReader
from integrations.migrate.verify import CountCheck, SampleCheck, VerificationReport, verify

__all__ = [
    "Checkpoint",
    "CountCheck",
    "Importer",
    "MigrationResult",
    "Neo4jReader",
    "Neo4jSource",
    "NoProgress",
    "Progress",
    "QdrantReader",
    "QdrantSource",
    "SampleCheck",
    "TqdmProgress",
    "VerificationReport",
    "migrate",
    "verify",
    "verify_only",
]
