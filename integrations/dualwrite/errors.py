"""Typed errors and warnings of the dual-write shim (all errors derive from :class:`MigrationError`).

They live here rather than in :mod:`integrations.errors` because that module belongs to the
importer; each names the side, the journal entry or the value that is wrong.
"""

from __future__ import annotations

from integrations.errors import MigrationError

__all__ = [
    "DivergedWriteWarning",
    "DualWriteError",
    "DualWriteWarning",
    "InvalidWriteError",
    "JournalCorruptionError",
    "JournalLockedError",
    "PendingWriteWarning",
    "UnsupportedQueryError",
    "WriteRejectedError",
]


class DualWriteError(MigrationError):
    """Base class of the errors the dual-write shim raises on purpose."""


class InvalidWriteError(DualWriteError, ValueError):
    """A write was refused before it was journaled (bad parameter, value or id); nothing was sent anywhere."""


class WriteRejectedError(DualWriteError):
    """The first side to apply a journaled write rejected it; no side applied it.

    ``side`` names the side ("neo4j", "qdrant" or "t4dm"), ``seq`` the journal entry (now
    marked failed) and ``__cause__`` the side's own error.
    """

    def __init__(self, message: str, *, side: str, seq: int) -> None:
        super().__init__(message)
        self.side = side
        self.seq = seq


class JournalCorruptionError(DualWriteError):
    """A journal record before the tail fails its checksum: real damage, not a torn final write."""


class JournalLockedError(DualWriteError):
    """Another process (or another writer in this process) has the journal open."""


class UnsupportedQueryError(DualWriteError):
    """A read the shim serves from T4DM uses an option it cannot translate (the message names it)."""


class DualWriteWarning(UserWarning):
    """Base class of the shim's warnings."""


class PendingWriteWarning(DualWriteWarning):
    """A write was journaled but one side could not be reached; ``reconcile()`` will replay it."""


class DivergedWriteWarning(DualWriteWarning):
    """A side rejected a write another side had already applied; the journal records the conflict."""
