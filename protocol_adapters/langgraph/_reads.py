"""The read side of :class:`~protocol_adapters.langgraph.T4DMStore`: get, search, list namespaces.

Semantics are ``InMemoryStore``'s (see :mod:`protocol_adapters.langgraph.store`); this module
only decides how to get them from the engine:

* **Listing** (search without a query, ``list_namespaces``) is an exact metadata scan
  (``Store.find``) of the item records under the namespace prefix (pushed down as a LIKE on
  ``_t4dm_nspath``), followed by the exact LangGraph filter in Python.
* **Ranking** (search with a query) asks the engine's vector index for the best vector
  records under the prefix, folds them into items (an item's score is its best vector's
  cosine), and fetches more candidates (x4, up to the engine's 10,000) until
  ``offset + limit`` acceptable items are found or the index is exhausted; past 10,000 it
  scores every vector under the prefix exactly. With a ``filter``, the filter is first
  evaluated over every item under the prefix (as the reference does, so it fails the same
  way on the same data), and ranking is then restricted to the matching items, by one
  exact engine search when they hold at most 10,000 vectors.

Expired items (TTL) are invisible everywhere. Scores are cosine similarity in [-1, 1],
higher = better; the engine's index is exact while rows sit in its memtable or a filter is
selective, and HNSW-approximate on large segments. Thread-safe (engine reads only).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import takewhile
from typing import Any

import numpy as np
from langgraph.store.base import ListNamespacesOp, SearchOp

from protocol_adapters.langgraph._records import (
    ITEM,
    KIND,
    VECTOR,
    StoredItem,
    decode_item,
    like_prefix,
    owner_of,
)
from protocol_adapters.langgraph._semantics import matches_filter, namespace_matches
from t4dm_core import Store

__all__ = ["ENGINE_MAX_K", "ItemReader", "Ranked"]

ENGINE_MAX_K = 10_000  # the engine's largest k, and its largest $in list
_MIN_FETCH = 16
_GROWTH = 4

Ranked = list[tuple[StoredItem, float | None]]
Acceptor = Callable[[str], StoredItem | None]


class ItemReader:
    """Reads LangGraph items from one engine namespace of ``store``."""

    def __init__(self, store: Store, engine_namespace: str) -> None:
        self._store = store
        self._ns = engine_namespace

    # ------------------------------------------------------------------ items
    def get(self, record_id: str, now: float) -> StoredItem | None:
        """The visible item with engine id ``record_id``, or None (missing or expired)."""
        item = decode_item(self._store.get(record_id, namespace=self._ns))
        return None if item is None or item.expired(now) else item

    def items_under(self, prefix: tuple[str, ...], now: float, **equal: Any) -> list[StoredItem]:
        """Visible items whose namespace starts with ``prefix``, in listing order.

        ``equal`` adds engine-side equality conditions on reserved keys (e.g. ``_t4dm_nvec=0``).
        """
        flt: dict[str, Any] = {KIND: ITEM, **equal}
        if prefix:
            flt["_t4dm_nspath"] = {"$like": like_prefix(prefix)}
        found = (decode_item(m) for m in self._store.find(flt, namespace=self._ns))
        items = [it for it in found if it is not None and not it.expired(now)]
        items.sort(key=lambda it: it.order)
        return items

    # ----------------------------------------------------------------- search
    def search(self, op: SearchOp, query_vector: np.ndarray | None, now: float) -> Ranked:
        """The items a ``SearchOp`` returns, with scores (None when unranked)."""
        prefix = tuple(op.namespace_prefix)
        end = op.offset + op.limit
        if query_vector is None:
            listed = [it for it in self.items_under(prefix, now) if matches_filter(it.value, op.filter)]
            return [(it, None) for it in listed[op.offset:end]]
        scoreless: list[StoredItem] | None = None
        if op.filter:
            matching = [it for it in self.items_under(prefix, now) if matches_filter(it.value, op.filter)]
            scoreless = [it for it in matching if it.nvec == 0]
            scored = self._rank_among(query_vector, {it.id: it for it in matching if it.nvec}, prefix, end)
        else:
            scored = self._rank_open(query_vector, prefix, end, lambda owner: self.get(owner, now))
        kept: Ranked = list(scored[op.offset:end])
        if len(kept) < op.limit:  # like the reference: unranked items fill the page (offset not applied)
            if scoreless is None:
                scoreless = self.items_under(prefix, now, _t4dm_nvec=0)
            kept.extend((it, None) for it in scoreless[:op.limit - len(kept)])
        return kept

    def _vector_filter(self, prefix: tuple[str, ...]) -> dict[str, Any]:
        flt: dict[str, Any] = {KIND: VECTOR}
        if prefix:
            flt["_t4dm_nspath"] = {"$like": like_prefix(prefix)}
        return flt

    def _rank_among(self, query: np.ndarray, allowed: dict[str, StoredItem], prefix: tuple[str, ...],
                    want: int) -> Ranked:
        """Rank the ``allowed`` items (already filtered) by their best vector."""
        total = sum(it.nvec for it in allowed.values())
        if want == 0 or total == 0:
            return []
        if len(allowed) <= ENGINE_MAX_K and total <= ENGINE_MAX_K:
            flt = {KIND: VECTOR, "_t4dm_item": {"$in": list(allowed)}}
            hits = self._store.search(query, total, namespace=self._ns, filter=flt, learn=False)
            return _fold([(owner_of(str(h.id)), h.score) for h in hits], allowed.get, want)
        return self._rank_open(query, prefix, want, allowed.get)

    def _rank_open(self, query: np.ndarray, prefix: tuple[str, ...], want: int, accept: Acceptor) -> Ranked:
        """The ``want`` best acceptable items under ``prefix``, widening the index query as needed."""
        if want == 0:
            return []
        flt = self._vector_filter(prefix)
        cache: dict[str, StoredItem | None] = {}

        def cached(owner: str) -> StoredItem | None:
            if owner not in cache:
                cache[owner] = accept(owner)
            return cache[owner]

        k = min(ENGINE_MAX_K, max(_MIN_FETCH, 2 * want))
        while True:
            hits = self._store.search(query, k, namespace=self._ns, filter=flt, learn=False)
            ranked = _fold([(owner_of(str(h.id)), h.score) for h in hits], cached, want)
            if len(ranked) >= want or len(hits) < k:
                return ranked
            if k == ENGINE_MAX_K:
                return self._rank_exact(query, flt, want, cached)
            k = min(ENGINE_MAX_K, k * _GROWTH)

    def _rank_exact(self, query: np.ndarray, flt: dict[str, Any], want: int, accept: Acceptor) -> Ranked:
        """Score every vector record matching ``flt`` (the fallback past the engine's k limit)."""
        records = self._store.find(flt, namespace=self._ns)
        if not records:
            return []
        unit = (query / np.linalg.norm(query)).astype(np.float32)
        scores = np.stack([np.asarray(r.vector, dtype=np.float32) for r in records]) @ unit
        order = np.argsort(-scores, kind="stable")
        return _fold([(owner_of(records[i].id or ""), float(scores[i])) for i in order], accept, want)

    # ------------------------------------------------------------- namespaces
    def list_namespaces(self, op: ListNamespacesOp, now: float) -> list[tuple[str, ...]]:
        """Namespaces holding at least one visible item, matched, truncated, sorted, paged."""
        conditions = tuple(op.match_conditions or ())
        literal: tuple[str, ...] = ()
        for condition in conditions:
            if condition.match_type == "prefix":
                literal = tuple(takewhile(lambda label: label != "*", condition.path))
                break
        found = {it.namespace for it in self.items_under(literal, now)}
        matched = [ns for ns in found if all(namespace_matches(c, ns) for c in conditions)]
        if op.max_depth is not None:
            matched = list({ns[:op.max_depth] for ns in matched})
        matched.sort()
        return matched[op.offset:op.offset + op.limit]


def _fold(scored: list[tuple[str, float]], accept: Acceptor, want: int) -> Ranked:
    """Fold vector scores (best first) into acceptable items, each at its best score."""
    seen: set[str] = set()
    out: Ranked = []
    for owner, score in scored:
        if owner in seen:
            continue
        seen.add(owner)
        item = accept(owner)
        if item is not None:
            out.append((item, float(score)))
            if len(out) >= want:
                break
    return out
