"""Plumbing every adapter shares: getting a store, stand-in vectors, score mapping, async bridging.

Only :mod:`t4dm_core` public names are used here (the import rule for ``protocol_adapters``).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
from collections.abc import Callable
from typing import Any, Self, TypeVar

import numpy as np

import t4dm_core
from t4dm_core import DimensionMismatchError, InvalidInputError, Store

__all__ = ["StoreBacked", "StoreHandle", "lazy_exports", "relevance_from_cosine", "run_in_thread", "stand_in_vector"]

T = TypeVar("T")


def lazy_exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each exported name from its home module on first
    use, so importing one adapter needs only its own framework installed."""
    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return __getattr__


class StoreHandle:
    """The store an adapter works on, and whether the adapter owns (and so closes) it.

    Pass ``store=`` to share an open store between adapters (the caller closes it), or
    ``path=`` to open one (``None`` = a temporary store deleted on close). ``dim`` and
    ``embedder`` are only used when opening.

    Raises:
        InvalidInputError: both ``path`` and ``store`` were given.
        DimensionMismatchError: a shared store has a different dimension than ``dim``.
    """

    def __init__(self, *, path: str | os.PathLike[str] | None, store: Store | None, dim: int | None = None,
                 embedder: Any = None) -> None:
        if store is not None and path is not None:
            raise InvalidInputError("pass either path= or store=, not both")
        if store is not None:
            if not isinstance(store, Store):
                raise InvalidInputError(f"store= must be an open t4dm_core.Store, got {type(store).__name__}")
            if dim is not None and store.dim != dim:
                raise DimensionMismatchError(f"the shared store has dimension {store.dim}, the embedding gives {dim}")
            self.store, self.owned = store, False
        else:
            self.store, self.owned = t4dm_core.open(path, dim=dim, embedder=embedder), True

    def close(self) -> None:
        """Close the store if this handle opened it; a shared store stays open. Idempotent."""
        if self.owned:
            self.store.close()


class StoreBacked:
    """Lifecycle shared by adapters that keep a :class:`StoreHandle` in ``_handle`` and their
    namespace in ``_namespace``: ``store``/``namespace`` properties, ``close`` and ``with``."""

    _handle: StoreHandle
    _namespace: str

    @property
    def store(self) -> Store:
        """The underlying engine store (shared or owned; see :class:`StoreHandle`)."""
        return self._handle.store

    @property
    def namespace(self) -> str:
        """The engine namespace this adapter reads and writes."""
        return self._namespace

    def close(self) -> None:
        """Close the store if this adapter opened it (a shared ``store=`` stays open). Idempotent."""
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stand_in_vector(key: str, dim: int) -> np.ndarray:
    """A deterministic unit vector for a record that has no embedding of its own.

    The engine gives every record a vector; records that must never be found by vector
    search (key-value items stored with ``index=False``, graph nodes without embeddings)
    get this pseudo-random direction, derived from ``key`` so distinct records do not pile
    onto one point of the HNSW graph, and adapters exclude them from vector queries with a
    metadata filter.
    """
    seed = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.float32(np.linalg.norm(vector))


def relevance_from_cosine(score: float) -> float:
    """Map cosine similarity in [-1, 1] to a relevance in [0, 1]; higher = more relevant."""
    return min(1.0, max(0.0, (1.0 + float(score)) / 2.0))


async def run_in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking engine call in a worker thread so the event loop stays responsive.

    The engine is thread-safe (one writer mutex, shared read lock), so concurrent calls
    from several tasks are safe.
    """
    return await asyncio.to_thread(fn, *args, **kwargs)
