"""Typed errors raised by T4DM.

Every error the engine raises on purpose is a :class:`T4DMError`. Errors caused by the
caller's input also derive from :class:`ValueError` (or :class:`KeyError` for a missing
memory) so generic ``except ValueError`` code keeps working. Nothing is partially applied
when one of these is raised from a write call.
"""

from __future__ import annotations

__all__ = [
    "CorruptionError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EmbedderMismatchError",
    "FilterError",
    "FormatVersionError",
    "HistoryUnavailableError",
    "InvalidInputError",
    "InvalidNamespaceError",
    "InvalidVectorError",
    "MemoryNotFoundError",
    "MetadataError",
    "ReadOnlyError",
    "StorageError",
    "StoreClosedError",
    "StoreFailedError",
    "StoreLockedError",
    "T4DMError",
]


class T4DMError(Exception):
    """Base class of every error T4DM raises on purpose."""


class InvalidInputError(T4DMError, ValueError):
    """The caller passed something the engine cannot store or evaluate."""


class DimensionMismatchError(InvalidInputError):
    """A vector's length differs from the store's dimension."""


class InvalidVectorError(InvalidInputError):
    """A vector holds NaN/inf, is all zeros, or is not one-dimensional numeric data."""


class MetadataError(InvalidInputError):
    """Metadata is not a JSON object of JSON-native values (str keys; str/int/float/bool/None/list/dict)."""


class DuplicateIdError(InvalidInputError):
    """The same id appears twice in one batch."""


class InvalidNamespaceError(InvalidInputError):
    """A namespace name is empty, too long or holds control characters."""


class FilterError(InvalidInputError):
    """A metadata filter is malformed or uses an unknown operator."""


class HistoryUnavailableError(InvalidInputError):
    """``as_of`` asked for a transaction time before the history horizon (history vacuumed)."""


class MemoryNotFoundError(T4DMError, KeyError):
    """An operation named a memory id that does not exist (or is deleted) in the namespace."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable.
        return str(self.args[0]) if self.args else "memory not found"


class EmbedderMismatchError(T4DMError):
    """The store was built with a different embedder (name or dimension) than the one supplied."""


class StoreLockedError(T4DMError):
    """Another process holds the store's writer lock."""


class ReadOnlyError(T4DMError):
    """A write was attempted on a store opened read-only."""


class StoreClosedError(T4DMError):
    """The store handle was closed, or is used from a forked child process."""


class StorageError(T4DMError):
    """An I/O operation on the store's files failed."""


class StoreFailedError(StorageError):
    """A previous write or fsync failed; the handle refuses further writes (sticky error).

    Reopen the store to recover every acknowledged write from the WAL.
    """


class FormatVersionError(StorageError):
    """The on-disk format version is newer than this release understands."""


class CorruptionError(StorageError):
    """A file failed its checksum or could not be decoded.

    Attributes:
        path: the file that is damaged.
        offset: byte offset of the first bad record, when known.
    """

    def __init__(self, path: str, detail: str, offset: int | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"corrupted file {path}{where}: {detail}")
        self.path = path
        self.offset = offset
