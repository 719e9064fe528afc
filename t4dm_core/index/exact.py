"""Exact (brute-force) cosine scoring over unit vectors: the small-set path and the test oracle."""

from __future__ import annotations

import numpy as np

__all__ = ["top_k_exact"]


def top_k_exact(vectors: np.ndarray, query: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` of ``rows`` by dot product with ``query`` (cosine for unit vectors).

    Returns (rows, scores), scores descending. Thread-safe (pure).
    """
    if rows.size == 0 or k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    scores = vectors[rows] @ query
    part = np.argpartition(-scores, k - 1)[:k] if rows.size > k else np.arange(rows.size)
    order = part[np.argsort(-scores[part], kind="stable")]
    return rows[order].astype(np.int64), scores[order].astype(np.float32)
