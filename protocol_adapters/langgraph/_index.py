"""The semantic-search side of an ``IndexConfig``: which texts of a value to embed, and embedding.

Text extraction follows ``InMemoryStore`` exactly (the ``langgraph.store.base.embed``
helpers): each configured field path (default ``["$"]``, the whole value as JSON) yields
zero or more texts (``"arr[*].text"`` one per element), and every text becomes one vector.
A per-put ``index=[paths]`` replaces the configured fields. Thread-safe if the wrapped
``Embeddings`` is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from langgraph.store.base import IndexConfig, ensure_embeddings, get_text_at_path, tokenize_path

from t4dm_core import DimensionMismatchError, InvalidInputError, InvalidVectorError

__all__ = ["IndexSpec"]

_WHOLE_VALUE = "$"


class IndexSpec:
    """A validated ``IndexConfig``: ``dims``, the LangChain ``embeddings`` and the field paths.

    Raises:
        InvalidInputError: ``dims`` is not a positive int, ``embed`` is missing, or
            ``fields`` is not a list of strings.
    """

    def __init__(self, config: IndexConfig) -> None:
        if not isinstance(config, Mapping):
            raise InvalidInputError(f"index must be an IndexConfig dict, got {type(config).__name__}")
        dims = config.get("dims")
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise InvalidInputError(f"index['dims'] must be a positive int, got {dims!r}")
        if config.get("embed") is None:
            raise InvalidInputError("index['embed'] is required (Embeddings, a function, or 'provider:model')")
        fields = config.get("fields") or [_WHOLE_VALUE]
        if not isinstance(fields, (list, tuple)) or not all(isinstance(f, str) for f in fields):
            raise InvalidInputError(f"index['fields'] must be a list of field paths, got {fields!r}")
        self.dims = dims
        self.embeddings = ensure_embeddings(config["embed"])
        self._fields: list[str | list[str]] = [f if f == _WHOLE_VALUE else tokenize_path(f) for f in fields]

    def texts(self, value: Mapping[str, Any], index: Sequence[str] | None) -> list[str]:
        """The texts of ``value`` to embed: configured fields, or ``index`` paths when given."""
        paths = self._fields if index is None else [tokenize_path(p) for p in index]
        out: list[str] = []
        for path in paths:
            out.extend(get_text_at_path(value, path))
        return out

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts`` as an ``(n, dims)`` float32 array."""
        return self._matrix(self.embeddings.embed_documents(texts) if texts else [], len(texts))

    async def aembed_documents(self, texts: list[str]) -> np.ndarray:
        """Async :meth:`embed_documents` (native when the embedder is async)."""
        return self._matrix(await self.embeddings.aembed_documents(texts) if texts else [], len(texts))

    def embed_queries(self, queries: list[str]) -> np.ndarray:
        """Query vectors, one row per query."""
        return self._matrix([self.embeddings.embed_query(q) for q in queries], len(queries))

    async def aembed_queries(self, queries: list[str]) -> np.ndarray:
        """Async :meth:`embed_queries`."""
        return self._matrix([await self.embeddings.aembed_query(q) for q in queries], len(queries))

    def _matrix(self, raw: Any, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros((0, self.dims), dtype=np.float32)
        try:
            arr = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidVectorError(f"the embedder returned something that is not {n} vectors: {exc}") from None
        if arr.ndim != 2 or arr.shape[0] != n:
            raise InvalidVectorError(f"the embedder returned shape {arr.shape} for {n} texts")
        if arr.shape[1] != self.dims:
            raise DimensionMismatchError(f"the embedder returned {arr.shape[1]}-d vectors, index['dims'] is "
                                         f"{self.dims}")
        if not np.all(np.isfinite(arr)) or np.any(np.linalg.norm(arr, axis=1) == 0):
            raise InvalidVectorError("the embedder returned a zero, NaN or infinite vector")
        return arr.astype(np.float32)
