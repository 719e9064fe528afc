"""Pattern separation and completion of query cues (HEI-NW): a DG keyer and modern-Hopfield recall.

:class:`DGKeyer` maps a dense vector to a sparse code: a fixed random expansion (seeded, so
the same store always gets the same keyer) followed by k-winners-take-all, which pulls
similar inputs apart (pattern separation). :class:`HopfieldCompleter` holds a snapshot of
stored patterns and completes a partial or noisy cue by the modern-Hopfield update
``ξ ← Xᵀ softmax(β · K ξ)`` (in key space when a keyer is used), returning a unit vector
near the stored pattern the cue most resembles.

Both are read-only at query time: the store rebuilds the snapshot when it opens and after
each sleep, never during a search. Thread-safe (immutable after construction).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DGKeyer", "HopfieldCompleter"]


class DGKeyer:
    """k-WTA sparse code of an ``expansion``-times wider random projection."""

    def __init__(self, dim: int, *, expansion: int = 4, sparsity: float = 0.05, seed: int = 0) -> None:
        if expansion < 1 or not 0.0 < sparsity <= 1.0:
            raise ValueError("DGKeyer needs expansion >= 1 and sparsity in (0, 1]")
        rng = np.random.default_rng(seed)
        self.projection = (rng.standard_normal((dim, dim * expansion)) / np.sqrt(dim)).astype(np.float32)
        self.active = max(1, round(dim * expansion * sparsity))

    def keys(self, vectors: np.ndarray) -> np.ndarray:
        """Sparse unit-length codes of ``vectors`` (rows)."""
        x = np.atleast_2d(vectors).astype(np.float32) @ self.projection
        winners = np.argpartition(-x, self.active - 1, axis=1)[:, : self.active]
        codes = np.zeros_like(x)
        rows = np.arange(x.shape[0])[:, None]
        codes[rows, winners] = np.maximum(x[rows, winners], 0.0)
        norms = np.linalg.norm(codes, axis=1, keepdims=True)
        return codes / np.where(norms == 0.0, 1.0, norms)


class HopfieldCompleter:
    """Modern-Hopfield completion over a fixed set of unit-length patterns."""

    def __init__(self, patterns: np.ndarray, *, beta: float = 20.0, steps: int = 1,
                 keyer: DGKeyer | None = None) -> None:
        self.patterns = np.asarray(patterns, dtype=np.float32)
        self.keyer = keyer
        self.keys = keyer.keys(self.patterns) if keyer is not None and len(self.patterns) else self.patterns
        self.beta = beta
        self.steps = steps

    def __len__(self) -> int:
        return int(self.patterns.shape[0])

    def complete(self, cue: np.ndarray) -> np.ndarray:
        """The completed, unit-length version of ``cue`` (the cue itself if there are no patterns)."""
        xi = np.asarray(cue, dtype=np.float32)
        if len(self) == 0:
            return xi
        for _ in range(self.steps):
            key = self.keyer.keys(xi)[0] if self.keyer is not None else xi
            logits = self.beta * (self.keys @ key)
            weights = np.exp(logits - logits.max())
            xi = (weights / weights.sum()) @ self.patterns
            xi = xi / max(float(np.linalg.norm(xi)), 1e-12)
        return xi.astype(np.float32)
