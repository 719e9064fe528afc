"""LlamaIndex ``BasePydanticVectorStore`` over a T4DM store: :class:`T4DMVectorStore`.

Contracts:

* **Nodes.** One node is one memory in the adapter's namespace: the memory id is
  ``node.node_id``, its text is the node's content, its vector ``node.get_embedding()`` and
  its metadata exactly what ``node_to_metadata_dict(node, remove_text=True,
  flat_metadata=False)`` returns: the user metadata keys at the top level (so filters reach
  them) plus LlamaIndex's own keys ``_node_content``, ``_node_type``, ``document_id``,
  ``doc_id`` and ``ref_doc_id``. ``metadata_dict_to_node`` rebuilds the node from that, so
  nodes come back equal to what was added. User metadata keys starting with ``_t4dm_`` are
  reserved for the adapters and refused with :class:`t4dm_core.InvalidInputError`.
* **Writes.** ``add`` is an upsert by node id and atomic per call (a node id given twice in
  one call: the last one wins, as in ``SimpleVectorStore``); on any error (a node without an
  embedding, a vector of the wrong dimension, bad metadata) nothing is written.
  ``delete(ref_doc_id)`` removes every node whose ``ref_doc_id`` matches;
  ``delete_nodes``/``get_nodes`` select by node ids and/or filters, and with neither they
  select every node (``SimpleVectorStore`` semantics).
* **Embeddings** are stored unit-normalised as float32 (the engine's format), so
  ``get_nodes`` returns nodes whose ``embedding`` is the normalised vector; cosine
  similarity is unaffected. Query results carry no embedding.
* **Dimension.** The store's dimension is fixed when it is created: by ``dim=``, or, when
  neither ``dim=`` nor ``store=`` is given and no store exists at ``path`` yet (or
  ``path=None``, a temporary store), by the length of the first embedding added: the store is
  opened lazily on the first ``add`` and ``client`` is ``None`` until then (queries,
  deletes and ``get_nodes`` on it see an empty store). An existing store at ``path`` opens
  with its recorded dimension; a shared ``store=`` keeps its own.
* **Queries.** ``similarities`` are cosine similarities in [-1, 1], higher = more similar
  (as ``SimpleVectorStore`` reports), best first. Supported: ``query_embedding``,
  ``similarity_top_k`` (0 or ``None`` = no limit, as in ``SimpleVectorStore``), ``node_ids``
  and ``doc_ids`` (``ref_doc_id`` in the list; an empty list restricts nothing, because
  ``VectorStoreIndex.as_retriever`` passes ``node_ids=[]`` to stores that keep the text; the
  database-backed integrations read it the same way), ``filters`` (every
  ``FilterOperator`` and condition, nested groups too; semantics in
  :mod:`protocol_adapters.llama_index._filters`), modes ``DEFAULT`` and ``MMR``. MMR reads
  λ from ``query.mmr_threshold`` or the ``mmr_threshold`` kwarg (default 0.5) and re-ranks
  the ``mmr_prefetch_k`` (kwarg) or ``similarity_top_k * mmr_prefetch_factor`` (kwarg,
  default 4) nearest nodes with LlamaIndex's ``get_top_k_mmr_embeddings``; its similarities
  are the MMR scores that helper reports. ``TEXT_SEARCH`` ranks ``query_str`` by the
  engine's BM25 (similarities = BM25 scores) and ``HYBRID`` by the engine's fused vector +
  BM25 + graph + priors ranking (similarities = the engine's fused scores); both run
  inside the engine, so they need ``similarity_top_k``, no ``node_ids`` and engine-exact
  filters. Other modes raise :class:`UnsupportedQueryModeError`. Records stored without an embedding by other adapters
  (``_t4dm_unembedded``) never appear in query results.
* **Where filtering runs.** Filters the engine can evaluate exactly run inside the engine's
  vector search (or ``Store.find`` for ``get_nodes``/``delete_nodes``). Otherwise (operators
  listed in ``_filters``, a ``node_ids`` restriction, or no ``similarity_top_k`` limit) the
  adapter reads the candidates (``Store.get_many``, or ``Store.find`` with an exact
  prefilter), applies the filters in Python and ranks them exactly by cosine.
* **Learning on read.** This is a memory store, so a query the engine's vector search
  answers records the engine's learning writes (``Options.learn_on_read``: access counts,
  ``co_retrieved`` edges) for the nodes it returns. An MMR query fetches more candidates
  than it returns: it searches with ``learn=False`` (only the returned nodes may count as
  retrieved, and the engine cannot be told which those are), so it records no learning,
  unless ``mmr_prefetch_k`` equals ``similarity_top_k`` (then every candidate is returned).
  Queries answered by the Python-side scan below read with ``get_many``/``find``, which
  never learn. Deleting a node also removes its edges (the engine's delete detaches them).
* **Thread-safety.** Every method may be called from several threads; the async methods
  (``async_add``, ``adelete``, ``adelete_nodes``, ``aget_nodes``, ``aclear``, ``aquery``)
  run the engine call in a worker thread, so the event loop is never blocked.
* **Lifetime.** :meth:`close` (or ``with``) closes a store the adapter opened; a shared
  ``store=`` stays open. A temporary store (``path=None``) is deleted on close. Every write is
  as durable as the engine makes it (see :class:`t4dm_core.Options` ``sync``), so data
  written through ``path=`` is there when the path is opened again; ``persist()`` has
  nothing to do.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

import t4dm_core
from protocol_adapters._common import StoreHandle, run_in_thread
from protocol_adapters.llama_index._filters import RESERVED_PREFIX, CompiledFilters, compile_metadata_filters, conjoin
from t4dm_core import (
    DimensionMismatchError,
    InvalidInputError,
    InvalidNamespaceError,
    InvalidVectorError,
    Memory,
    Store,
    StoreClosedError,
    T4DMError,
)

__all__ = ["T4DMVectorStore", "UnsupportedQueryModeError"]

DEFAULT_NAMESPACE = "default"
ENGINE_MAX_K = 10_000  # Store.search accepts k in 1..10_000
DEFAULT_MMR_PREFETCH_FACTOR = 4.0
_NOT_UNEMBEDDED = {"_t4dm_unembedded": {"$exists": False}}
_MAX_NAMESPACE_LEN = 128


class UnsupportedQueryModeError(T4DMError, NotImplementedError):
    """The query asked for a ranking mode this adapter does not provide (lexical, hybrid, learners)."""


def _check_namespace(namespace: object) -> str:
    """The engine's namespace rules, checked before any store is opened (the store may open lazily)."""
    if not isinstance(namespace, str) or not namespace:
        raise InvalidNamespaceError(f"namespace must be a non-empty string, got {namespace!r}")
    if len(namespace) > _MAX_NAMESPACE_LEN or any(ord(c) < 32 for c in namespace):
        raise InvalidNamespaceError(f"namespace {namespace!r} is longer than {_MAX_NAMESPACE_LEN} characters "
                                    "or holds control characters")
    return namespace


def _dimension(embedding: object) -> int:
    """Length of an embedding: the dimension of a store created by the first ``add``."""
    if not isinstance(embedding, Sequence | np.ndarray) or isinstance(embedding, str) or len(embedding) == 0:
        raise InvalidVectorError(f"an embedding must be a non-empty list of numbers, got {embedding!r}")
    return len(embedding)


def _check_ids(ids: Sequence[str], what: str) -> list[str]:
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise InvalidInputError(f"{what} must be a list of strings, got {ids!r}")
    return list(dict.fromkeys(ids))


def _restriction(ids: Sequence[str] | None, what: str) -> list[str] | None:
    """A query's ``node_ids``/``doc_ids``; ``None`` or ``[]`` = no restriction.

    ``VectorStoreIndex.as_retriever`` passes ``node_ids=[]`` to stores that keep the text (its
    own node list stays empty), and the database-backed integrations read ``[]`` the same way.
    """
    return None if ids is None else (_check_ids(ids, what) or None)


def _check_top_k(top_k: object) -> int | None:
    """``similarity_top_k``; 0 and ``None`` mean "no limit", as in SimpleVectorStore."""
    if top_k is None or top_k == 0:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InvalidInputError(f"similarity_top_k must be a non-negative integer, got {top_k!r}")
    return top_k


def _unit_query(embedding: object, dim: int) -> np.ndarray:
    try:
        vector = np.asarray(embedding, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidVectorError("query_embedding is not a list of numbers") from None
    if vector.ndim != 1:
        raise InvalidVectorError(f"query_embedding must be one-dimensional, got shape {vector.shape}")
    if vector.shape[0] != dim:
        raise DimensionMismatchError(f"query_embedding has dimension {vector.shape[0]}, the store {dim}")
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm == 0.0:
        raise InvalidVectorError("query_embedding is zero or holds NaN/infinity")
    return vector / norm


_TEXT_MODES = {VectorStoreQueryMode.TEXT_SEARCH: "lexical", VectorStoreQueryMode.HYBRID: "hybrid"}
_SUPPORTED_MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR, *_TEXT_MODES)


class _Plan:
    """One validated query: what to rank, how many to fetch, how to re-rank."""

    def __init__(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> None:
        try:
            mode = VectorStoreQueryMode(query.mode)
        except ValueError:
            raise InvalidInputError(f"unknown query mode {query.mode!r}") from None
        if mode not in _SUPPORTED_MODES:
            raise UnsupportedQueryModeError(
                f"query mode {mode.value!r} is not supported: T4DMVectorStore supports "
                f"{', '.join(m.value for m in _SUPPORTED_MODES)}")
        self.text_mode = _TEXT_MODES.get(mode)  # engine mode for lexical / hybrid ranking, else None
        if self.text_mode is not None and not query.query_str:
            raise InvalidInputError(f"query mode {mode.value!r} ranks text: the query needs query_str")
        if query.query_embedding is None and self.text_mode != "lexical":
            raise InvalidInputError("the query has no query_embedding (T4DMVectorStore ranks by vector similarity)")
        self.mmr = mode == VectorStoreQueryMode.MMR
        self.top_k = _check_top_k(query.similarity_top_k)
        self.filters = compile_metadata_filters(query.filters)
        self.node_ids = _restriction(query.node_ids, "node_ids")
        self.doc_ids = _restriction(query.doc_ids, "doc_ids")
        self.threshold = self._threshold(query, kwargs) if self.mmr else None
        self.fetch = self._fetch(kwargs) if self.mmr else self.top_k

    @staticmethod
    def _threshold(query: VectorStoreQuery, kwargs: dict[str, Any]) -> float | None:
        value = query.mmr_threshold if query.mmr_threshold is not None else kwargs.get("mmr_threshold")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0.0 <= value <= 1.0):
            raise InvalidInputError(f"mmr_threshold must be a number in [0, 1], got {value!r}")
        return None if value is None else float(value)

    def _fetch(self, kwargs: dict[str, Any]) -> int | None:
        prefetch_k, factor = kwargs.get("mmr_prefetch_k"), kwargs.get("mmr_prefetch_factor")
        if prefetch_k is not None and factor is not None:
            raise InvalidInputError("pass mmr_prefetch_k or mmr_prefetch_factor, not both")
        if prefetch_k is not None and (isinstance(prefetch_k, bool) or not isinstance(prefetch_k, int)
                                       or prefetch_k < 1):
            raise InvalidInputError(f"mmr_prefetch_k must be a positive integer, got {prefetch_k!r}")
        if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1):
            raise InvalidInputError(f"mmr_prefetch_factor must be a number >= 1, got {factor!r}")
        if self.top_k is None:
            return None
        wanted = prefetch_k or math.ceil(self.top_k * (factor or DEFAULT_MMR_PREFETCH_FACTOR))
        return max(wanted, self.top_k)

    def nothing_matches(self) -> bool:
        return self.filters.engine is False

    def engine_filter(self) -> dict[str, Any] | bool:
        """Engine-side restriction: embedded records, doc ids, and the (pre)filter."""
        doc_filter = None if self.doc_ids is None else {"ref_doc_id": {"$in": self.doc_ids}}
        return conjoin(_NOT_UNEMBEDDED, doc_filter, self.filters.engine)

    def accepts(self, memory: Memory) -> bool:
        """The full restriction evaluated in Python (for candidates not selected by the engine)."""
        metadata = memory.metadata
        if "_t4dm_unembedded" in metadata:
            return False
        if self.doc_ids is not None and metadata.get("ref_doc_id") not in self.doc_ids:
            return False
        return self.filters.matches(metadata)


class T4DMVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store whose nodes live in one namespace of a T4DM store.

    Args:
        path: store directory (``None`` = a temporary store deleted on close).
        store: an open :class:`t4dm_core.Store` to share (the caller closes it).
        namespace: the namespace holding this vector store's nodes.
        dim: the vector dimension of a store created here; omit it to take the length of the
            first embedding added.

    Raises:
        InvalidInputError: both ``path`` and ``store``; a bad ``dim``.
        InvalidNamespaceError: a bad namespace.
        DimensionMismatchError: ``dim`` differs from the shared store's dimension.
        EmbedderMismatchError: ``dim`` differs from the existing store's at ``path``.
    """

    stores_text: bool = True
    is_embedding_query: bool = True

    _namespace: str = PrivateAttr()
    _path: str | os.PathLike[str] | None = PrivateAttr(default=None)
    _handle: StoreHandle | None = PrivateAttr(default=None)
    _closed: bool = PrivateAttr(default=False)
    _open_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, path: str | os.PathLike[str] | None = None, *, store: Store | None = None,
                 namespace: str = DEFAULT_NAMESPACE, dim: int | None = None) -> None:
        super().__init__(stores_text=True)
        self._namespace = _check_namespace(namespace)
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
        self._path = path
        if store is not None or dim is not None or (path is not None and t4dm_core.exists(path)):
            self._handle = StoreHandle(path=path, store=store, dim=dim)

    @classmethod
    def class_name(cls) -> str:
        return "T4DMVectorStore"

    @property
    def client(self) -> Store | None:
        """The engine store, or ``None`` while a lazily created store awaits its first ``add``."""
        return self._handle.store if self._handle is not None else None

    @property
    def namespace(self) -> str:
        """The namespace holding this vector store's nodes."""
        return self._namespace

    def _store(self, create_with_dim: int | None = None) -> Store | None:
        with self._open_lock:
            if self._closed:
                raise StoreClosedError("this T4DMVectorStore is closed")
            if self._handle is None and create_with_dim is not None:
                self._handle = StoreHandle(path=self._path, store=None, dim=create_with_dim)
            return self._handle.store if self._handle is not None else None

    # ------------------------------------------------------------------ writes
    def _memory(self, node: BaseNode) -> Memory:
        if not isinstance(node, BaseNode):
            raise InvalidInputError(f"expected llama_index nodes, got {type(node).__name__}")
        if node.embedding is None:
            raise InvalidInputError(f"node {node.node_id!r} has no embedding; embed nodes before adding them")
        reserved = sorted(k for k in node.metadata if isinstance(k, str) and k.startswith(RESERVED_PREFIX))
        if reserved:
            raise InvalidInputError(f"node {node.node_id!r}: metadata keys {reserved} use the reserved prefix "
                                    f"{RESERVED_PREFIX!r}")
        metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)
        return Memory(text=node.get_content(metadata_mode=MetadataMode.NONE), id=node.node_id,
                      namespace=self._namespace, vector=node.embedding, metadata=metadata)  # type: ignore[arg-type]

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Upsert ``nodes`` (each with an embedding) in one atomic batch; returns their ids in input order."""
        nodes = list(nodes)
        if not nodes:
            return []
        batch = {}
        for node in nodes:
            batch[node.node_id] = self._memory(node)  # a repeated id: the last one wins
        store = self._store(create_with_dim=_dimension(nodes[0].embedding))
        assert store is not None
        store.put_many(batch.values())
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node whose ``ref_doc_id`` is ``ref_doc_id`` (none: no-op)."""
        if not isinstance(ref_doc_id, str):
            raise InvalidInputError(f"ref_doc_id must be a string, got {ref_doc_id!r}")
        store = self._store()
        if store is not None:
            found = store.find({"ref_doc_id": ref_doc_id}, namespace=self._namespace)
            store.delete([m.id for m in found if m.id is not None], namespace=self._namespace)

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        """Delete the nodes :meth:`get_nodes` would return for the same arguments (all when both are None)."""
        compiled = compile_metadata_filters(filters)
        store = self._store()
        if store is not None:
            ids = [m.id for m in self._select(store, node_ids, compiled) if m.id is not None]
            store.delete(ids, namespace=self._namespace)

    def clear(self) -> None:
        """Delete every node of the namespace (one atomic batch)."""
        store = self._store()
        if store is not None:
            store.delete(store.ids(namespace=self._namespace), namespace=self._namespace)

    # ------------------------------------------------------------------- reads
    def _select(self, store: Store, node_ids: list[str] | None, compiled: CompiledFilters) -> list[Memory]:
        ids = None if node_ids is None else _check_ids(node_ids, "node_ids")
        if compiled.engine is False or ids == []:
            return []
        if ids is not None:
            found = [m for m in store.get_many(ids, namespace=self._namespace) if m is not None]
            return [m for m in found if compiled.matches(m.metadata)]
        return _find(store, self._namespace, compiled.engine, compiled)

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes with these ids (in that order, missing ones skipped) and/or matching ``filters``.

        With neither, every node of the namespace (in write order). Nodes carry their
        (unit-normalised) embedding.
        """
        compiled = compile_metadata_filters(filters)
        store = self._store()
        if store is None:
            return []
        nodes = []
        for memory in self._select(store, node_ids, compiled):
            node = _node(memory)
            node.embedding = None if memory.vector is None else memory.vector.tolist()
            nodes.append(node)
        return nodes

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Nearest nodes to ``query.query_embedding`` (see the module docstring for the supported fields)."""
        plan = _Plan(query, kwargs)
        store = self._store()
        if store is None or plan.nothing_matches():
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        if plan.text_mode is not None:
            ranked = self._text_ranked(store, plan, query)
            return VectorStoreQueryResult(nodes=[_node(m) for m, _ in ranked], similarities=[x for _, x in ranked],
                                          ids=[m.id for m, _ in ranked])  # type: ignore[misc]
        unit = _unit_query(query.query_embedding, store.dim)
        candidates = self._candidates(store, plan, unit)
        if plan.mmr:
            vectors = [m.vector.tolist() for m, _ in candidates]  # type: ignore[union-attr]
            ids = [m.id for m, _ in candidates]
            scores, chosen = get_top_k_mmr_embeddings(unit.tolist(), vectors, similarity_top_k=plan.top_k,
                                                      embedding_ids=ids, mmr_threshold=plan.threshold)
            by_id = {m.id: m for m, _ in candidates}
            ranked = [(by_id[i], float(s)) for s, i in zip(scores, chosen, strict=True)]
        else:
            ranked = candidates[:plan.top_k] if plan.top_k is not None else candidates
        return VectorStoreQueryResult(nodes=[_node(m) for m, _ in ranked], similarities=[s for _, s in ranked],
                                      ids=[m.id for m, _ in ranked])  # type: ignore[misc]

    def _text_ranked(self, store: Store, plan: _Plan, query: VectorStoreQuery) -> list[tuple[Memory, float]]:
        """TEXT_SEARCH (engine BM25) or HYBRID (engine fusion) ranking; scores are those of the engine mode."""
        engine_filter = plan.engine_filter()
        if engine_filter is False:
            return []
        if plan.node_ids is not None or not plan.filters.exact or plan.top_k is None or plan.top_k > ENGINE_MAX_K:
            raise UnsupportedQueryModeError(
                "text and hybrid queries run inside the engine: they need a similarity_top_k, no node_ids, and "
                "filters the engine evaluates exactly")
        vector = None if query.query_embedding is None else _unit_query(query.query_embedding, store.dim)
        hits = store.search(query.query_str, plan.top_k, namespace=self._namespace,  # type: ignore[arg-type]
                            filter=None if engine_filter is True else engine_filter, mode=plan.text_mode,
                            query_vector=vector if plan.text_mode == "hybrid" else None)
        return [(hit.memory, hit.score) for hit in hits]

    def _candidates(self, store: Store, plan: _Plan, unit: np.ndarray) -> list[tuple[Memory, float]]:
        """The ``plan.fetch`` best candidates (all when None), best first, with their cosine similarity."""
        engine_filter = plan.engine_filter()
        if engine_filter is False:
            return []
        if plan.node_ids is None and plan.filters.exact and plan.fetch is not None and plan.fetch <= ENGINE_MAX_K:
            hits = store.search(unit, plan.fetch, namespace=self._namespace,
                                filter=None if engine_filter is True else engine_filter,
                                learn=None if plan.fetch == plan.top_k else False)
            return [(hit.memory, hit.score) for hit in hits]
        if plan.node_ids is not None:
            pool = [m for m in store.get_many(plan.node_ids, namespace=self._namespace)
                    if m is not None and plan.accepts(m)]
        else:
            pool = _find(store, self._namespace, engine_filter, plan.filters)
        if not pool:
            return []
        scores = np.stack([m.vector for m in pool]).astype(np.float64) @ unit  # type: ignore[misc]
        order = np.argsort(-scores, kind="stable")[:plan.fetch]
        return [(pool[i], float(scores[i])) for i in order]

    # ------------------------------------------------------------------- async
    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await run_in_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await run_in_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                            **delete_kwargs: Any) -> None:
        await run_in_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    async def aget_nodes(self, node_ids: list[str] | None = None,
                         filters: MetadataFilters | None = None) -> list[BaseNode]:
        return await run_in_thread(self.get_nodes, node_ids, filters)

    async def aclear(self) -> None:
        await run_in_thread(self.clear)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await run_in_thread(self.query, query, **kwargs)

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Close the store if this adapter opened it (a shared ``store=`` stays open). Idempotent."""
        with self._open_lock:
            self._closed = True
            if self._handle is not None:
                self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _find(store: Store, namespace: str, engine_filter: dict[str, Any] | bool | None,
          compiled: CompiledFilters) -> list[Memory]:
    """Every record passing ``engine_filter``, then ``compiled`` in Python when the engine filter is a prefilter."""
    if engine_filter is False:
        return []
    found = store.find(None if engine_filter is True else engine_filter, namespace=namespace)
    return found if compiled.exact else [m for m in found if compiled.matches(m.metadata)]


def _node(memory: Memory) -> BaseNode:
    return metadata_dict_to_node(memory.metadata, text=memory.text if memory.text is not None else "")
