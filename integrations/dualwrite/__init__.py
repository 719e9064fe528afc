"""Dual-write shim for the move from Neo4j + Qdrant to T4DM: journal, mirrored writes, shadow reads, cut-over.

Typical use::

    writer = DualWriter(store, "journal/", mapping=mapping,
                        neo4j=Neo4jSide(driver, "memory"), qdrant=QdrantSide(client))
    driver, client = Neo4jShim(writer), QdrantShim(writer)   # hand these to the app
    ...                                                      # the app writes as before
    report = ShadowReader(store, mapping, qdrant=real_client, collection="memories",
                          neo4j=real_driver, database="memory").run(vectors, nodes)
    if report.recommendation().ready:
        writer.cut_over()                                    # T4DM primary, legacy mirrored

Modules: :mod:`.journal` (durable intents), :mod:`.cypher_shapes` (the Cypher the shim
understands), :mod:`.writer` (protocol, retries, reconcile, cut-over), the sides
(:mod:`.neo4j_side`, :mod:`.qdrant_side`, :mod:`.t4dm_side`), the drop-in wrappers
(:mod:`.neo4j_shim`, :mod:`.qdrant_shim`), :mod:`.shadow` and :mod:`.consistency`.
Importing this package imports ``neo4j`` and ``qdrant_client`` (the ``migrate`` extra).
"""

from __future__ import annotations

from integrations.dualwrite.consistency import graph_differences, point_differences
from integrations.dualwrite.cypher_shapes import CypherWrite, is_write_statement, parse_write
from integrations.dualwrite.errors import (
    DivergedWriteWarning,
    DualWriteError,
    DualWriteWarning,
    InvalidWriteError,
    JournalCorruptionError,
    JournalLockedError,
    PendingWriteWarning,
    UnsupportedQueryError,
    WriteRejectedError,
)
from integrations.dualwrite.journal import Journal, JournalEntry
from integrations.dualwrite.neo4j_shim import Neo4jShim
from integrations.dualwrite.neo4j_side import Neo4jSide
from integrations.dualwrite.qdrant_shim import QdrantShim
from integrations.dualwrite.qdrant_side import QdrantSide
from integrations.dualwrite.shadow import NodeQuery, QueryComparison, Recommendation, ShadowReader, ShadowReport
from integrations.dualwrite.writer import DualWriter, ReconcileReport, RetryPolicy, WriteResult

__all__ = [
    "CypherWrite",
    "DivergedWriteWarning",
    "DualWriteError",
    "DualWriteWarning",
    "DualWriter",
    "InvalidWriteError",
    "Journal",
    "JournalCorruptionError",
    "JournalEntry",
    "JournalLockedError",
    "Neo4jShim",
    "Neo4jSide",
    "NodeQuery",
    "PendingWriteWarning",
    "QdrantShim",
    "QdrantSide",
    "QueryComparison",
    "Recommendation",
    "ReconcileReport",
    "RetryPolicy",
    "ShadowReader",
    "ShadowReport",
    "UnsupportedQueryError",
    "WriteRejectedError",
    "WriteResult",
    "graph_differences",
    "is_write_statement",
    "parse_write",
    "point_differences",
]
