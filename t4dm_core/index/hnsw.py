"""HNSW index of one segment (hnswlib, inner product on unit vectors = cosine).

Labels are segment row numbers. Rows that are superseded or deleted are ``mark_deleted``
in memory (never persisted: liveness is derived at open), so plain HNSW queries return
only current rows. Thread-safety: :meth:`query` may run from many threads concurrently
with :meth:`hide` (hnswlib guards its deleted flags); :meth:`build` is single-threaded.
"""

from __future__ import annotations

import os
import threading

import hnswlib
import numpy as np

__all__ = ["HnswIndex"]


class HnswIndex:
    """A loaded or freshly built hnswlib index."""

    def __init__(self, index: hnswlib.Index, size: int, labels: set[int]) -> None:
        self._index = index
        self.size = size
        self._labels = labels  # rows present in the index (superseded rows may be left out)
        self._hidden: set[int] = set()
        self._lock = threading.Lock()
        self._ef = -1  # beam width last set (hnswlib keeps one per index)

    @classmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray, *, m: int, ef_construction: int,
              num_threads: int, seed: int) -> HnswIndex:
        dim = vectors.shape[1]
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=max(1, len(labels)), ef_construction=ef_construction, M=m, random_seed=seed)
        index.set_num_threads(num_threads if num_threads > 0 else (os.cpu_count() or 1))
        if len(labels):
            index.add_items(vectors, labels)
        return cls(index, len(labels), {int(x) for x in labels})

    @classmethod
    def load(cls, path: str, dim: int, size: int) -> HnswIndex:
        """Load from ``path``. The caller must have verified the file's checksum first."""
        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(path, max_elements=max(1, size))
        if index.get_current_count() != size:
            raise ValueError(f"index holds {index.get_current_count()} elements, manifest says {size}")
        return cls(index, size, set(index.get_ids_list()))

    def save(self, path: str) -> None:
        self._index.save_index(path)

    def hide(self, label: int) -> None:
        """Exclude ``label`` from future query results (idempotent; a label never indexed is ignored)."""
        with self._lock:
            if label in self._hidden or label not in self._labels:
                return
            self._hidden.add(label)
            self._index.mark_deleted(label)

    @property
    def visible(self) -> int:
        return self.size - len(self._hidden)

    def query(self, vector: np.ndarray, k: int, ef: int,
              allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` visible labels and cosine scores (descending). May return fewer than k.

        ``allowed`` (a boolean mask over labels) filters *during* the graph search: every
        node still routes the search, but only allowed ones are returned, so a restrictive
        filter keeps its recall (post-filtering a fixed candidate list does not).
        """
        k = min(k, self.visible)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        ef = max(ef, k)
        if ef != self._ef:  # concurrent queries may race on this; any value >= k is correct
            self._index.set_ef(ef)
            self._ef = ef
        while True:
            try:
                if allowed is None:
                    labels, distances = self._index.knn_query(vector, k=k, num_threads=1)
                else:
                    labels, distances = self._index.knn_query(vector, k=k, num_threads=1,
                                                              filter=lambda label: bool(allowed[label]))
                break
            except RuntimeError:  # fewer than k reachable (many hidden rows): ask for fewer
                if k == 1:
                    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
                k = max(1, k // 2)
        return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)
