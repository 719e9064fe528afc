"""Embedders for evaluation stores: the real MiniLM default, or a fast deterministic hashing embedder.

``"minilm"`` is the store's packaged all-MiniLM-L6-v2 (:class:`t4dm_core.MiniLMEmbedder`);
use it for reported numbers. ``"hashing"`` is a bag-of-words embedder with no model: each
normalised word adds ±1 to one of ``dim`` coordinates chosen by a BLAKE2b hash of the word
(then the vector is L2-normalised by the store). It is deterministic across processes and
machines and meant for tests of the harness mechanics; retrieval with it is purely lexical.
Thread-safe (no mutable state).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from t4dm_core import MiniLMEmbedder
from t4dm_core.learning.llm.evaluation.errors import EvalConfigError
from t4dm_core.learning.llm.evaluation.metrics import normalize_answer

__all__ = ["EMBEDDERS", "HashingEmbedder", "make_embedder"]

EMBEDDERS: tuple[str, ...] = ("minilm", "hashing")


class HashingEmbedder:
    """Signed feature hashing of normalised words into ``dim`` dimensions (see the module doc)."""

    def __init__(self, dim: int = 256) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise EvalConfigError(f"HashingEmbedder dim must be an integer >= 2, got {dim!r}")
        self.dim = dim
        self.name = f"t4dm-eval-hashing-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        out = np.zeros(self.dim, dtype=np.float32)
        for word in normalize_answer(text).split():
            digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            out[digest % self.dim] += 1.0 if (digest >> 63) & 1 else -1.0
        if not out.any():
            out[0] = 1.0  # a text without words still needs a non-zero vector
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)


def make_embedder(name: str) -> MiniLMEmbedder | HashingEmbedder:
    """The embedder called ``name`` (one of :data:`EMBEDDERS`); raises :class:`~.errors.EvalConfigError` otherwise."""
    if name == "minilm":
        return MiniLMEmbedder()
    if name == "hashing":
        return HashingEmbedder()
    raise EvalConfigError(f"embedder must be one of {list(EMBEDDERS)}, got {name!r}")
