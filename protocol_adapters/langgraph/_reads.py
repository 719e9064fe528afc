"""The read side of :class:`~protocol_adapters.langgraph.T4DMStore`: get, search, list namespaces.

Semantics are ``InMemoryStore``'s (see :mod:`protocol_adapters.langgraph.store`); this module
only decides how to get them from the engine:

* **Filters** are prefiltered by the engine (:mod:`protocol_adapters.langgraph._pushdown`):
  it keeps every item the LangGraph filter holds for or may raise on, and the exact filter
  then runs in Python on those, in listing order, so results and errors are those of
  evaluating every item (as the reference does).
* **Listing** (search without a query) is an exact metadata scan (``Store.find``) of the
  item records under the namespace prefix (pushed down as a LIKE on ``_t4dm_nspath``) and
  the filter's prefilter.
* **Ranking** (search with a query) asks the engine's vector index for the best vector
  records under the prefix, folds them into items (an item's score is its best vector's
  cosine), and fetches more candidates (x4, up to the engine's 10,000) until
  ``offset + limit`` acceptable items are found or the index is exhausted; past 10,000 it
  scores every vector under the prefix exactly. With a ``filter``, the vector query is
  prefiltered on the item fields each vector record copies (``_t4dm_fields``), widened to
  the items that only the exact filter can decide (found first, with every item the filter
  could raise on), and each candidate item is checked exactly. When the filter cannot be
  bounded that way, or the store still holds vector records written before the copy
  existed, the matching items are found first and ranking is restricted to them, by one
  exact engine search when they hold at most 10,000 vectors.
* **list_namespaces** reads the namespace records only (one per namespace) and their flags,
  and keeps them until an adapter of the process writes to the engine namespace (see
  :mod:`protocol_adapters.langgraph._shared`); only namespaces whose items all have a TTL
  (or whose record predates the flags) are checked against their item records for one
  that has not expired.

Expired items (TTL) are invisible everywhere. Scores are cosine similarity in [-1, 1],
higher = better; the engine's index is exact while rows sit in its memtable or a filter is
selective, and HNSW-approximate on large segments. Thread-safe (engine reads only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from langgraph.store.base import ListNamespacesOp, SearchOp

from protocol_adapters.langgraph._pushdown import Pushdown, compile_pushdown
from protocol_adapters.langgraph._records import (
    FIELD_STRING_LIMIT,
    FIELDS,
    ITEM,
    KIND,
    NAMESPACE,
    VALUE,
    VECTOR,
    StoredItem,
    StoredNamespace,
    decode_item,
    decode_namespace,
    like_prefix,
    namespace_path,
    owner_of,
)
from protocol_adapters.langgraph._semantics import matches_filter, namespace_matches
from protocol_adapters.langgraph._shared import SharedState
from t4dm_core import Store

__all__ = ["ENGINE_MAX_K", "ItemReader", "Ranked"]

ENGINE_MAX_K = 10_000  # the engine's largest k, and its largest $in list
_MIN_FETCH = 16
_GROWTH = 4
_UNRANKED = {"_t4dm_nvec": 0}

Ranked = list[tuple[StoredItem, float | None]]
Acceptor = Callable[[str], StoredItem | None]
Filter = Mapping[str, Any]


class ItemReader:
    """Reads LangGraph items from one engine namespace of ``store``."""

    def __init__(self, store: Store, engine_namespace: str, shared: SharedState) -> None:
        self._store = store
        self._ns = engine_namespace
        self._shared = shared
        self._fields_everywhere = False  # no vector record lacks _t4dm_fields (this version never writes one)

    # ------------------------------------------------------------------ items
    def get(self, record_id: str, now: float) -> StoredItem | None:
        """The visible item with engine id ``record_id``, or None (missing or expired)."""
        item = decode_item(self._store.get(record_id, namespace=self._ns))
        return None if item is None or item.expired(now) else item

    def items_under(self, prefix: tuple[str, ...], now: float, where: dict[str, Any] | None = None) -> list[StoredItem]:
        """Visible items whose namespace starts with ``prefix`` (and whose record matches the
        engine filter ``where``), in listing order."""
        flt: dict[str, Any] = {KIND: ITEM}
        if where:  # before the LIKE: the engine tests conditions in order and stops at the first miss
            flt["$and"] = [where]
        if prefix:
            flt["_t4dm_nspath"] = {"$like": like_prefix(prefix)}
        found = (decode_item(m) for m in self._store.find(flt, namespace=self._ns))
        items = [it for it in found if it is not None and not it.expired(now)]
        items.sort(key=lambda it: it.order)
        return items

    def matching(self, prefix: tuple[str, ...], flt: Filter | None, now: float) -> list[StoredItem]:
        """Visible items under ``prefix`` that ``flt`` holds for, in listing order; raises
        what evaluating ``flt`` on every such item in that order would raise first."""
        where = compile_pushdown(flt, VALUE).candidates() if flt else None
        return [it for it in self.items_under(prefix, now, where) if matches_filter(it.value, flt)]

    # ----------------------------------------------------------------- search
    def search(self, op: SearchOp, query_vector: np.ndarray | None, now: float) -> Ranked:
        """The items a ``SearchOp`` returns, with scores (None when unranked)."""
        prefix = tuple(op.namespace_prefix)
        end = op.offset + op.limit
        if query_vector is None:
            return [(it, None) for it in self.matching(prefix, op.filter, now)[op.offset:end]]
        scoreless: list[StoredItem] | None = None
        if op.filter:
            scored, scoreless = self._rank_filtered(query_vector, prefix, op.filter, end, now)
        else:
            scored = self._rank_open(query_vector, self._vector_filter(prefix), end, lambda owner: self.get(owner, now))
        kept: Ranked = list(scored[op.offset:end])
        if len(kept) < op.limit:  # like the reference: unranked items fill the page (offset not applied)
            if scoreless is None:
                candidates = compile_pushdown(op.filter, VALUE).candidates()
                where = {"$and": [_UNRANKED, candidates]} if candidates else _UNRANKED
                scoreless = [it for it in self.items_under(prefix, now, where) if matches_filter(it.value, op.filter)]
            kept.extend((it, None) for it in scoreless[:op.limit - len(kept)])
        return kept

    def _vector_filter(self, prefix: tuple[str, ...], where: dict[str, Any] | None = None) -> dict[str, Any]:
        flt: dict[str, Any] = {KIND: VECTOR}
        if where:
            flt["$and"] = [where]
        if prefix:
            flt["_t4dm_nspath"] = {"$like": like_prefix(prefix)}
        return flt

    def _rank_filtered(self, query: np.ndarray, prefix: tuple[str, ...], flt: Filter, want: int,
                       now: float) -> tuple[Ranked, list[StoredItem] | None]:
        """Rank the items ``flt`` holds for; also returns the unranked matching items when
        they were found on the way (None: not looked up yet)."""
        bounds = compile_pushdown(flt, VALUE)
        on_vectors = compile_pushdown(flt, FIELDS, nested=False, max_string=FIELD_STRING_LIMIT).holds_filter()
        if bounds.candidates() is None or on_vectors is None or not self._fields_on_every_vector():
            return self._rank_matching(query, prefix, flt, want, now)
        undecided: list[str] = []
        if bounds.raises:
            undecided = self._check_risky(prefix, flt, bounds, now)
            if len(undecided) > ENGINE_MAX_K:
                return self._rank_matching(query, prefix, flt, want, now)
        where = {"$or": [on_vectors, {"_t4dm_item": {"$in": undecided}}]} if undecided else on_vectors
        vectors = self._vector_filter(prefix, where)

        def accept(owner: str) -> StoredItem | None:
            item = self.get(owner, now)
            return item if item is not None and matches_filter(item.value, flt) else None

        return self._rank_open(query, vectors, want, accept), None

    def _check_risky(self, prefix: tuple[str, ...], flt: Filter, bounds: Pushdown, now: float) -> list[str]:
        """Evaluate ``flt`` on every item it may raise on, in listing order (so it raises as
        a full scan would: an item outside ``raises`` cannot). Returns the ids of the ranked
        items it holds for among them, which the vector prefilter may not keep."""
        risky = self.items_under(prefix, now, {"$or": bounds.raises} if len(bounds.raises) > 1 else bounds.raises[0])
        return [it.id for it in risky if matches_filter(it.value, flt) and it.nvec]

    def _fields_on_every_vector(self) -> bool:
        """Whether every vector record carries ``_t4dm_fields`` (stays true once true)."""
        if not self._fields_everywhere:
            older = self._store.find({KIND: VECTOR, FIELDS: {"$exists": False}}, namespace=self._ns, limit=1)
            self._fields_everywhere = not older
        return self._fields_everywhere

    def _rank_matching(self, query: np.ndarray, prefix: tuple[str, ...], flt: Filter, want: int,
                       now: float) -> tuple[Ranked, list[StoredItem]]:
        """Find every matching item first, then rank among them (and return the unranked ones)."""
        matching = self.matching(prefix, flt, now)
        scored = self._rank_among(query, {it.id: it for it in matching if it.nvec}, prefix, want)
        return scored, [it for it in matching if it.nvec == 0]

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
        return self._rank_open(query, self._vector_filter(prefix), want, allowed.get)

    def _rank_open(self, query: np.ndarray, flt: dict[str, Any], want: int, accept: Acceptor) -> Ranked:
        """The ``want`` best acceptable items among the vector records matching ``flt``,
        widening the index query as needed."""
        if want == 0:
            return []
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
        matched: list[tuple[str, ...]] = []
        unsure: list[tuple[str, ...]] = []
        for record in self._namespace_records():
            if not all(namespace_matches(c, record.namespace) for c in conditions):
                continue
            if record.has_permanent:  # an item without a TTL never expires
                matched.append(record.namespace)
            elif record.has_items is not False:  # TTL items only, or a record older than the flags
                unsure.append(record.namespace)
        matched += self._with_visible_items(unsure, now)
        if op.max_depth is not None:
            matched = list({ns[:op.max_depth] for ns in matched})
        matched.sort()
        return matched[op.offset:op.offset + op.limit]

    def _namespace_records(self) -> list[StoredNamespace]:
        """Every namespace record; rescanned only after a write by an adapter of the process."""
        generation = self._shared.generation  # noted before the scan: a write during it forces the next one
        cached = self._shared.catalogue
        if cached is not None and cached[0] == generation:
            return cached[1]
        found = self._store.find({KIND: NAMESPACE}, namespace=self._ns)
        records = [r for r in map(decode_namespace, found) if r is not None]
        self._shared.catalogue = (generation, records)
        return records

    def _with_visible_items(self, namespaces: list[tuple[str, ...]], now: float) -> list[tuple[str, ...]]:
        """Those of ``namespaces`` that hold an item that has not expired."""
        paths = [namespace_path(ns) for ns in namespaces]
        visible: set[tuple[str, ...]] = set()
        for start in range(0, len(paths), ENGINE_MAX_K):
            flt = {KIND: ITEM, "_t4dm_nspath": {"$in": paths[start:start + ENGINE_MAX_K]}}
            found = (decode_item(m) for m in self._store.find(flt, namespace=self._ns))
            visible.update(it.namespace for it in found if it is not None and not it.expired(now))
        return [ns for ns in namespaces if ns in visible]


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
