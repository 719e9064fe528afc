"""T4DM: an embedded memory engine for AI agents (T4DX storage engine).

Quick use::

    import t4dm_core
    with t4dm_core.open("./memories") as store:
        store.put("The user prefers dark mode", metadata={"kind": "preference"})
        hits = store.search("what theme does the user like?", k=3)

``import t4dm_core`` never imports torch, transformers, langchain or llama_index; the
default embedder loads them on first use.
"""

from __future__ import annotations

import os
from typing import Any

from t4dm_core.consolidation.policy import SleepPolicy
from t4dm_core.consolidation.report import SleepReport
from t4dm_core.embedding import CallableEmbedder, Embedder, MiniLMEmbedder
from t4dm_core.errors import (
    CorruptionError,
    DimensionMismatchError,
    DuplicateIdError,
    EmbedderMismatchError,
    FilterError,
    FormatVersionError,
    HistoryUnavailableError,
    InvalidInputError,
    InvalidNamespaceError,
    InvalidVectorError,
    MemoryNotFoundError,
    MetadataError,
    ReadOnlyError,
    StorageError,
    StoreClosedError,
    StoreFailedError,
    StoreLockedError,
    T4DMError,
)
from t4dm_core.learning.gate import GateDecision, WriteGate
from t4dm_core.options import Options
from t4dm_core.ranking import Ranking
from t4dm_core.storage.compaction import CompactionPolicy, SizeTieredPolicy
from t4dm_core.storage.fs import FaultInjectingFS, FileSystem, LocalFS
from t4dm_core.storage.manifest import list_manifests
from t4dm_core.store import Store, open_store
from t4dm_core.types import Edge, Hit, Memory, Neighbor

__all__ = [
    "CallableEmbedder",
    "CompactionPolicy",
    "CorruptionError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "Edge",
    "Embedder",
    "EmbedderMismatchError",
    "FaultInjectingFS",
    "FileSystem",
    "FilterError",
    "FormatVersionError",
    "GateDecision",
    "HistoryUnavailableError",
    "Hit",
    "InvalidInputError",
    "InvalidNamespaceError",
    "InvalidVectorError",
    "LocalFS",
    "Memory",
    "MemoryNotFoundError",
    "MetadataError",
    "MiniLMEmbedder",
    "Neighbor",
    "Options",
    "Ranking",
    "ReadOnlyError",
    "SizeTieredPolicy",
    "SleepPolicy",
    "SleepReport",
    "StorageError",
    "Store",
    "StoreClosedError",
    "StoreFailedError",
    "StoreLockedError",
    "T4DMError",
    "WriteGate",
    "__version__",
    "exists",
    "open",
]

__version__ = "0.1.0"


def open(
    path: str | os.PathLike[str] | None = None,
    *,
    dim: int | None = None,
    embedder: Any = None,
    options: Options | None = None,
    read_only: bool = False,
    fs: FileSystem | None = None,
) -> Store:
    """Open or create the store at ``path``; ``None`` or ``":memory:"`` = a temporary store.

    Args:
        path: store directory (created if missing).
        dim: vector dimension, for a store you feed with your own vectors. Omit it to use the
            default embedder (all-MiniLM-L6-v2, 384 dimensions, offline).
        embedder: an :class:`Embedder`, a LangChain ``Embeddings``, or ``fn(list[str]) ->
            array``. The store records its name and refuses a different one later.
        options: :class:`Options` (sync mode, memtable size, HNSW parameters, ...).
        read_only: open without the writer lock (any number of readers may do this while
            one writer process has the store open); sees the state as of opening.
        fs: file layer (tests inject :class:`FaultInjectingFS`).

    Raises:
        StoreLockedError: another process has the store open for writing.
        CorruptionError: a file failed verification (the message names it).
        EmbedderMismatchError: the embedder or dimension differs from the store's.
    """
    return open_store(path, dim=dim, embedder=embedder, options=options, read_only=read_only, fs=fs)


def exists(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a directory holding a T4DM store (it has a manifest).

    Cheap (one directory listing), takes no lock and creates nothing; use it to decide
    whether ``open`` would create a new store.
    """
    directory = os.fspath(path)
    return os.path.isdir(directory) and bool(list_manifests(LocalFS(), directory))
