"""Mutable in-memory table of recent versions plus typed overlays (edge and field deltas).

Rows are appended in LSN order and never change, except the ``live`` flag (cleared when a
later version or tombstone supersedes the row). Thread-safety: mutated only by the engine
under its exclusive lock; readers hold the shared lock, so they see a consistent state.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np

from t4dm_core.filters import Filter
from t4dm_core.index.lexical import MemtableLexicon
from t4dm_core.storage.ops import EdgeOp, FieldDeltaOp, PutOp

__all__ = ["Memtable"]

FILTER_CACHE_SIZE = 32


class Memtable:
    """Recent versions (rows), edge ops and field deltas, all tagged with LSNs."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self._vectors = np.zeros((1024, dim), dtype=np.float32)
        self._ns_codes = np.zeros(1024, dtype=np.int32)
        self._live = np.zeros(1024, dtype=bool)
        self.namespace: list[str] = []
        self.ids: list[str] = []
        self.lsn: list[int] = []
        self.recorded_at: list[float] = []
        self.deleted: list[bool] = []
        self.text: list[str | None] = []
        self.metadata: list[dict[str, Any]] = []
        self.valid_from: list[float] = []
        self.valid_to: list[float | None] = []
        self.kappa: list[float] = []
        self.importance: list[float] = []
        self.access_count: list[int] = []
        self.pinned: list[bool] = []
        self.edge_ops: list[tuple[int, EdgeOp]] = []
        self.field_deltas: list[tuple[int, float, FieldDeltaOp]] = []
        self.max_lsn = -1
        self.lexicon = MemtableLexicon()
        self._filter_cache: dict[str, np.ndarray] = {}
        self._filter_lock = threading.Lock()

    # -- views used by search (valid for the first ``n`` rows) ----------------
    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: self.n]

    @property
    def ns_codes(self) -> np.ndarray:
        return self._ns_codes[: self.n]

    @property
    def live(self) -> np.ndarray:
        return self._live[: self.n]

    @property
    def is_empty(self) -> bool:
        return self.n == 0 and not self.edge_ops and not self.field_deltas

    def _grow(self) -> None:
        cap = self._vectors.shape[0] * 2
        for name in ("_vectors", "_ns_codes", "_live"):
            old = getattr(self, name)
            new = np.zeros((cap, *old.shape[1:]), dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def add_version(self, lsn: int, recorded_at: float, ns_code: int, op: PutOp | None,
                    namespace: str, memory_id: str) -> int:
        """Append a version row (``op=None`` = tombstone). Returns the row number."""
        if self.n == self._vectors.shape[0]:
            self._grow()
        row = self.n
        self.namespace.append(namespace)
        self.ids.append(memory_id)
        self.lsn.append(lsn)
        self.recorded_at.append(recorded_at)
        self._ns_codes[row] = ns_code
        if op is None:
            self.deleted.append(True)
            self.text.append(None)
            self.metadata.append({})
            self.valid_from.append(recorded_at)
            self.valid_to.append(None)
            self.kappa.append(0.0)
            self.importance.append(0.0)
            self.access_count.append(0)
            self.pinned.append(False)
            self._live[row] = False
        else:
            self._vectors[row] = op.vector
            self.deleted.append(False)
            self.text.append(op.text)
            self.metadata.append(op.metadata)
            self.valid_from.append(op.valid_from)
            self.valid_to.append(op.valid_to)
            self.kappa.append(op.kappa)
            self.importance.append(op.importance)
            self.access_count.append(op.access_count)
            self.pinned.append(op.pinned)
            self._live[row] = True
        self.lexicon.add(row, None if op is None else op.text)
        self.n = row + 1
        self.max_lsn = max(self.max_lsn, lsn)
        return row

    def add_edge_op(self, lsn: int, op: EdgeOp) -> None:
        self.edge_ops.append((lsn, op))
        self.max_lsn = max(self.max_lsn, lsn)

    def add_field_delta(self, lsn: int, recorded_at: float, op: FieldDeltaOp) -> None:
        self.field_deltas.append((lsn, recorded_at, op))
        self.max_lsn = max(self.max_lsn, lsn)

    def set_live(self, row: int, value: bool) -> None:
        self._live[row] = value

    # -- row access (same shape as Segment) ------------------------------------
    def row_text(self, row: int) -> str | None:
        return self.text[row]

    def row_metadata(self, row: int) -> dict[str, Any]:
        """A private copy (callers may mutate it)."""
        return json.loads(json.dumps(self.metadata[row]))

    def row_fields(self, row: int) -> dict[str, Any]:
        return {
            "namespace": self.namespace[row], "id": self.ids[row], "lsn": self.lsn[row],
            "recorded_at": self.recorded_at[row], "deleted": self.deleted[row],
            "valid_from": self.valid_from[row], "valid_to": self.valid_to[row],
            "kappa": self.kappa[row], "importance": self.importance[row],
            "access_count": self.access_count[row], "pinned": self.pinned[row],
        }

    def row_vector(self, row: int) -> np.ndarray:
        return self._vectors[row].copy()

    def filter_mask(self, flt: Filter) -> np.ndarray:
        """Mask over all rows (reference evaluator).

        Rows never change once appended, so each filter's mask is cached and only extended
        over rows added since it was last asked for (a few recent filters are kept).
        Safe under concurrent readers: a small lock serialises cache updates.
        """
        n = self.n
        with self._filter_lock:
            cached = self._filter_cache.get(flt.canonical)
            done = 0 if cached is None else cached.size
            if done < n:
                fresh = np.fromiter((flt.matches(m) for m in self.metadata[done:n]), dtype=bool, count=n - done)
                cached = fresh if cached is None else np.concatenate([cached, fresh])
                if flt.canonical not in self._filter_cache and len(self._filter_cache) >= FILTER_CACHE_SIZE:
                    self._filter_cache.pop(next(iter(self._filter_cache)))
                self._filter_cache[flt.canonical] = cached
            assert cached is not None
            return cached[:n]
