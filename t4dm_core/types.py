"""Public value types: :class:`Memory`, :class:`Edge`, :class:`Hit`, :class:`Neighbor`.

All are frozen dataclasses; the engine never mutates an object it handed out. Times are
POSIX seconds (float, UTC).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFAULT_EDGE_TYPE", "DEFAULT_NAMESPACE", "Edge", "Hit", "Memory", "Neighbor"]

DEFAULT_NAMESPACE = "default"
DEFAULT_EDGE_TYPE = "related"


@dataclass(frozen=True)
class Memory:
    """One version of one memory.

    When writing, leave ``id`` as ``None`` to get a fresh id, ``vector`` as ``None`` to have
    the store's embedder embed ``text``, and ``kappa``/``importance``/``access_count`` as
    ``None`` to inherit the values of the version being replaced (or the defaults 0.0,
    0.5, 0 for a new memory). ``recorded_at`` and ``superseded_at`` (transaction time) are
    set by the store and ignored on write.

    Attributes:
        id: identifier, unique within a namespace.
        namespace: tenant; nothing ever crosses namespaces.
        text: the memory's content.
        vector: unit-length float32 embedding (the store normalises on write).
        metadata: JSON object; round-trips exactly.
        valid_from: start of valid time (when the fact began to hold); defaults to recorded_at.
        valid_to: end of valid time, ``None`` = still holds.
        recorded_at: transaction time at which the store learned this version.
        superseded_at: transaction time at which a later version or delete replaced it.
        kappa: consolidation level in [0, 1] (0 = episodic, 1 = consolidated).
        importance: caller-assigned salience.
        access_count: how often the memory was retrieved (learning write).
        pinned: never forgotten by consolidation.
        deleted: True only for tombstone versions returned by ``Store.history``.
        last_accessed: transaction time of the latest retrieval recorded for this version
            (learning on read), ``None`` if none; set by the store, ignored on write.
    """

    text: str | None = None
    id: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    valid_from: float | None = None
    valid_to: float | None = None
    recorded_at: float | None = None
    superseded_at: float | None = None
    kappa: float | None = None
    importance: float | None = None
    access_count: int | None = None
    pinned: bool = False
    deleted: bool = False
    last_accessed: float | None = None


@dataclass(frozen=True)
class Edge:
    """A directed, typed, weighted edge between two memories of one namespace."""

    src: str
    dst: str
    type: str = DEFAULT_EDGE_TYPE
    weight: float = 1.0
    namespace: str = DEFAULT_NAMESPACE


class Hit:
    """A search result; higher ``score`` = more relevant.

    ``score`` is what the search mode ranked by: cosine similarity in [-1, 1] for vector
    search, BM25 for lexical search, the fused reciprocal-rank score for hybrid search.
    ``explain`` says why the memory ranked: per-ranking scores (``vector`` cosine,
    ``lexical`` BM25) and 1-based ranks (``vector_rank``, ``lexical_rank``).

    ``id`` and ``namespace`` are available at once; ``memory`` (text, metadata, vector,
    counters) is built on first access, so a caller that needs only ids pays nothing for
    the rest. The memory is the version the search found; its learning counters and
    ``superseded_at`` are read at the time of that first access (which may come after the
    store was closed). Thread-safe.
    """

    __slots__ = ("_load", "_memory", "explain", "id", "namespace", "score")

    def __init__(self, memory: Memory | None = None, score: float = 0.0, *, id: str | None = None,
                 namespace: str | None = None, load: Callable[[], Memory] | None = None,
                 explain: dict[str, float] | None = None) -> None:
        if memory is None and load is None:
            raise ValueError("Hit needs a memory or a loader")
        self._memory = memory
        self._load = load
        self.score = float(score)
        self.explain: dict[str, float] = explain if explain is not None else {}
        self.id: str = id if id is not None else memory.id  # type: ignore[union-attr,assignment]
        self.namespace = namespace if namespace is not None else memory.namespace  # type: ignore[union-attr]

    @property
    def memory(self) -> Memory:
        if self._memory is None:
            assert self._load is not None
            self._memory = self._load()
            self._load = None
        return self._memory

    def __repr__(self) -> str:
        return f"Hit(id={self.id!r}, namespace={self.namespace!r}, score={self.score:.4f})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hit):
            return NotImplemented
        return (self.id, self.namespace, self.score) == (other.id, other.namespace, other.score)

    def __hash__(self) -> int:
        return hash((self.id, self.namespace, self.score))


@dataclass(frozen=True)
class Neighbor:
    """A memory reached by graph traversal.

    Attributes:
        memory: the reached memory (current version).
        hops: distance from the start memory (1 = direct neighbour).
        edge: the edge by which it was first reached.
    """

    memory: Memory
    hops: int
    edge: Edge
