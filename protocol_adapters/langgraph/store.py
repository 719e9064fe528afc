"""LangGraph long-term memory (``langgraph.store.base.BaseStore``) on a T4DM store: :class:`T4DMStore`.

Contracts:

* **Semantics** are those of LangGraph's reference ``InMemoryStore`` (a differential test
  replays random op sequences against both): ``batch``/``abatch`` return results in input
  order; all reads of a batch see the store as it was before the batch's writes; within a
  batch the last ``PutOp`` for a ``(namespace, key)`` wins; ``PutOp(value=None)`` deletes.
  Search without a query lists items grouped by namespace in the order namespaces were
  first written, then by key in the order keys were first written (an overwrite keeps its
  place, a delete followed by a put moves to the end), with ``score=None``. Search with a
  query (and an ``index`` config) ranks items by cosine similarity in [-1, 1], higher =
  better, an item scoring its best vector; items without vectors fill the page after the
  ranked ones with ``score=None``; the filter applies before ranking, offset/limit after.
  Without an index config a query is ignored, as in the reference. Filters: see
  :mod:`protocol_adapters.langgraph._semantics`. ``list_namespaces`` returns the sorted
  namespaces holding at least one item, matched by prefix/suffix (``"*"`` = any label),
  truncated to ``max_depth`` and de-duplicated, then paged.
* **Indexing.** ``index={"dims", "embed", "fields"}`` as for ``InMemoryStore``: each field
  path (``"a.b"``, ``"arr[*].text"`` one vector per element, default ``"$"`` the whole
  value) gives texts, each embedded into one vector. ``put(..., index=False)`` stores no
  vector (the item is never a ranked hit), ``index=[paths]`` replaces the fields for that
  item. An overwrite replaces all of an item's vectors.
* **TTL** (``supports_ttl = True``): ``put(..., ttl=minutes)`` or ``ttl={"default_ttl": ...}``
  makes an item expire that many minutes after its last write or read; reads refresh it
  unless ``refresh_ttl=False`` (default from ``ttl["refresh_on_read"]``, True). Expired
  items are invisible to get, search and ``list_namespaces`` at once (whatever
  ``omit_expired`` says), and a put over one starts a new item; :meth:`T4DMStore.sweep_ttl`
  deletes them, and runs every ``ttl["sweep_interval_minutes"]`` on a daemon thread when
  that is set.
* **Deliberate differences from InMemoryStore** (each pinned by a test): ``created_at``
  survives an overwrite (as in LangGraph's Postgres store; InMemoryStore resets it); a
  namespace whose items were all deleted, or that was only read, is not listed; a stale
  vector never outlives the item version it was computed for (InMemoryStore keeps the
  vectors of an earlier version when an overwrite embeds fewer texts or uses
  ``index=False``); unsupported filter operators, negative ``limit``/``offset``, a
  ``max_depth`` below 1, non-str keys and values that do not round-trip through JSON are
  refused up front (:class:`t4dm_core.InvalidInputError`, a ``ValueError``); ops passed
  straight to ``batch`` get the same namespace checks as the public methods
  (``langgraph.store.base.InvalidNamespaceError``), including "no empty namespace and no
  ``"langgraph"`` root" for puts; an embedder returning a zero or NaN vector is refused.
* **Persistence and crashes.** Data written through the adapter survives reopening the
  store at the same ``path=``. Each batch's writes (puts, overwrites and deletes, with
  their vectors) are one atomic engine write: after an error or a crash either the whole
  batch is stored or none of it (see :mod:`protocol_adapters.langgraph._writes`).
* **Thread-safety.** Every method may be called from several threads and tasks. Reads run
  concurrently; the write phase of a batch (and TTL refreshes and sweeps) is serialised
  per (store directory, namespace) across every ``T4DMStore`` of the process. A search
  makes several engine reads and is not isolated from a concurrent batch's writes. ``abatch``
  embeds with the embedder's async methods, then runs the engine work in a worker thread.
* **Lifetime.** :meth:`T4DMStore.close` (or ``with``) stops the sweeper and closes a store
  the adapter opened; a shared ``store=`` stays open. ``path=None`` is a temporary store
  removed on close.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    ListNamespacesOp,
    Op,
    Result,
    SearchOp,
    TTLConfig,
)

from protocol_adapters._common import StoreHandle, run_in_thread
from protocol_adapters.langgraph._index import IndexSpec
from protocol_adapters.langgraph._plan import Plan, plan_batch
from protocol_adapters.langgraph._reads import ItemReader
from protocol_adapters.langgraph._records import StoredItem, item_id
from protocol_adapters.langgraph._shared import shared_state
from protocol_adapters.langgraph._ttl import Sweeper, check_ttl_config
from protocol_adapters.langgraph._writes import ItemWriter
from t4dm_core import InvalidNamespaceError, Store, StoreClosedError

__all__ = ["DEFAULT_NAMESPACE", "T4DMStore"]

DEFAULT_NAMESPACE = "langgraph"
_SCRATCH_DIM = 8  # stand-in vectors of a temporary store without an index config
_MAX_ENGINE_NAMESPACE = 128

class T4DMStore(BaseStore):
    """LangGraph ``BaseStore`` over a T4DM store (see the module docstring for the contracts).

    Args:
        path: store directory (``None`` = a temporary store removed on close).
        store: an open ``t4dm_core.Store`` to share (the caller closes it); not with ``path``.
        namespace: the engine namespace holding this adapter's records.
        index: LangGraph ``IndexConfig`` enabling semantic search (``dims``, ``embed``,
            ``fields``); ``dims`` must equal the store's dimension.
        ttl: LangGraph ``TTLConfig`` (``default_ttl``, ``refresh_on_read``,
            ``sweep_interval_minutes``).
        clock: POSIX-seconds clock for timestamps and TTL (tests inject one); default
            ``time.time``.

    Raises:
        t4dm_core.InvalidInputError: a bad ``index``/``ttl`` config or ``namespace``, or both
            ``path`` and ``store``.
        t4dm_core.DimensionMismatchError: ``index["dims"]`` differs from a shared store's.
        t4dm_core.EmbedderMismatchError: the store at ``path`` has another dimension.
    """

    supports_ttl: bool = True

    def __init__(self, *, path: str | os.PathLike[str] | None = None, store: Store | None = None,
                 namespace: str = DEFAULT_NAMESPACE, index: IndexConfig | None = None,
                 ttl: TTLConfig | None = None, clock: Callable[[], float] | None = None) -> None:
        if not isinstance(namespace, str) or not namespace or len(namespace) > _MAX_ENGINE_NAMESPACE or any(
                ord(c) < 32 for c in namespace):
            raise InvalidNamespaceError(f"namespace must be a non-empty string of at most {_MAX_ENGINE_NAMESPACE} "
                                        f"printable characters, got {namespace!r}")
        self._index = IndexSpec(index) if index is not None else None
        self.index_config: IndexConfig | None = IndexConfig(**index) if index is not None else None
        self.embeddings = self._index.embeddings if self._index is not None else None
        self.ttl_config = check_ttl_config(ttl)
        self._clock = clock or time.time
        if self._index is not None:
            dim: int | None = self._index.dims
        else:
            dim = None if path is not None or store is not None else _SCRATCH_DIM
        self._handle = StoreHandle(path=path, store=store, dim=dim)
        self.namespace = namespace
        self._closed = False
        self._sweeper: Sweeper | None = None
        try:
            engine = self._handle.store
            shared = shared_state(engine, namespace)
            self._lock = shared.lock
            self._reader = ItemReader(engine, namespace, shared)
            self._writer = ItemWriter(engine, namespace, shared)
            interval = (self.ttl_config or {}).get("sweep_interval_minutes")
            if interval:
                self._sweeper = Sweeper(self.sweep_ttl, interval * 60.0)
        except BaseException:
            self._handle.close()
            raise

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> T4DMStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the TTL sweeper and close the store if the adapter opened it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.stop()
        self._handle.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("this T4DMStore is closed")

    # ---------------------------------------------------------------- batch
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute ``ops``; results in input order. Bad input raises and nothing is written."""
        self._check_open()
        plan = plan_batch(ops, self._index)
        vectors: dict[str, np.ndarray] = {}
        queries: dict[str, np.ndarray] = {}
        if self._index is not None:
            vectors = dict(zip(plan.texts, self._index.embed_documents(plan.texts), strict=True))
            queries = dict(zip(plan.queries, self._index.embed_queries(plan.queries), strict=True))
        return self._execute(plan, vectors, queries)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async :meth:`batch`: embeds asynchronously, runs the engine work in a worker thread."""
        self._check_open()
        plan = plan_batch(ops, self._index)
        vectors: dict[str, np.ndarray] = {}
        queries: dict[str, np.ndarray] = {}
        if self._index is not None:
            vectors = dict(zip(plan.texts, await self._index.aembed_documents(plan.texts), strict=True))
            queries = dict(zip(plan.queries, await self._index.aembed_queries(plan.queries), strict=True))
        return await run_in_thread(self._execute, plan, vectors, queries)

    def _execute(self, plan: Plan, vectors: dict[str, np.ndarray], queries: dict[str, np.ndarray]) -> list[Result]:
        self._check_open()
        now = self._clock()
        results: list[Result] = []
        touched: list[StoredItem] = []
        for op in plan.ops:
            if isinstance(op, GetOp):
                item = self._reader.get(item_id(tuple(op.namespace), op.key), now)
                if item is not None and op.refresh_ttl:
                    touched.append(item)
                results.append(None if item is None else item.to_item())
            elif isinstance(op, SearchOp):
                ranked = self._reader.search(op, queries.get(op.query) if op.query else None, now)
                if op.refresh_ttl:
                    touched.extend(it for it, _ in ranked)
                results.append([it.to_search_item(score) for it, score in ranked])
            elif isinstance(op, ListNamespacesOp):
                results.append(self._reader.list_namespaces(op, now))
            else:
                results.append(None)
        refresh = [it for it in touched if it.ttl is not None and not self._handle.store.read_only]
        if plan.puts or refresh:
            with self._lock:
                self._writer.refresh(refresh, now)
                self._writer.apply(plan.puts, vectors, now)
        return results

    # ------------------------------------------------------------------ TTL
    def sweep_ttl(self) -> int:
        """Delete every expired item (engine tombstones; history keeps them). Returns the count."""
        self._check_open()
        with self._lock:
            return self._writer.sweep(self._clock())
