"""Typed errors of the migration tools; all derive from :class:`t4dm_core.T4DMError`.

Every error names the thing that is wrong (server, collection, property, Cypher clause) so a
user can fix it without reading the source.
"""

from __future__ import annotations

from t4dm_core import T4DMError

__all__ = [
    "LegacyAuthError",
    "LegacyConnectionError",
    "MappingError",
    "MigrationError",
    "UnsupportedCypherShapeError",
    "VectorShapeError",
]


class MigrationError(T4DMError):
    """Base class of everything the importer, the dual-write shim and the verifier raise."""


class LegacyConnectionError(MigrationError):
    """A legacy server (Neo4j over Bolt, Qdrant) cannot be reached; the message names it."""


class LegacyAuthError(MigrationError):
    """The legacy server refused the credentials."""


class MappingError(MigrationError):
    """The mapping is malformed, or names a label, property, collection or vector that is missing."""


class VectorShapeError(MigrationError):
    """A legacy vector has the wrong dimension (or is not a finite float vector) for the store."""


class UnsupportedCypherShapeError(MigrationError):
    """The dual-write shim does not understand a Cypher statement; it was sent nowhere."""
