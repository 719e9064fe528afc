"""Legacy stores into T4DM: the Neo4j + Qdrant importer, dual-write shim, shadow reads, cut-over.

``import integrations`` is light: the ``neo4j`` and ``qdrant-client`` packages (the
``t4dm[migrate]`` extra) are imported only by the modules that talk to those servers.
Code here uses only names from ``t4dm_core.__all__``.
"""

from __future__ import annotations

from integrations.errors import (
    LegacyAuthError,
    LegacyConnectionError,
    MappingError,
    MigrationError,
    UnsupportedCypherShapeError,
    VectorShapeError,
)
from integrations.mapping import Mapping, NodeRule, PointRule, RelationshipRule

__all__ = [
    "LegacyAuthError",
    "LegacyConnectionError",
    "Mapping",
    "MappingError",
    "MigrationError",
    "NodeRule",
    "PointRule",
    "RelationshipRule",
    "UnsupportedCypherShapeError",
    "VectorShapeError",
]
