"""Test data helpers: deterministic unit vectors and memories."""

from __future__ import annotations

import numpy as np

from t4dm_core import Memory

DIM = 16


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def memories(rng: np.random.Generator, n: int, *, prefix: str = "m", namespace: str = "default") -> list[Memory]:
    return [Memory(text=f"{prefix} {i}", id=f"{prefix}{i}", namespace=namespace, vector=unit(rng),
                   metadata={"i": i, "group": i % 5, "tag": f"t{i % 3}"}) for i in range(n)]
