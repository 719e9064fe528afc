"""The write side of :class:`~protocol_adapters.langgraph.T4DMStore`: puts, deletes, TTL upkeep.

Atomicity and crash semantics. All writes of one LangGraph batch are one atomic engine
``Store.write``: it puts every new item record, all of their vector records and a new
version of the record of each namespace written for the first time or whose flags change
(it gains its first item, or loses its last one: see :mod:`~protocol_adapters.langgraph._records`),
and tombstones every record the batch retires (deleted items, their vectors, and the
surplus vectors of an item overwritten with fewer texts). After an error or a crash the
store holds either the whole batch or none of it, so an item is never seen without
exactly its current vectors, and the namespace flags always match the item records. A
TTL sweep is likewise one atomic engine ``write`` (tombstones plus updated flags).
Deciding whether a batch removed a namespace's last item reads a few of its item records
(an engine metadata scan of the adapter's namespace); adding items never does.
A namespace record that predates the flags gets them the first time a batch touches it.

TTL refreshes are engine learning writes (``Store.bump``): O(1), no new record version,
durable with the next acknowledged write, ``flush`` or ``close``, so a crash can lose
refreshes made since the last write (the item then expires as if not read since).

Not thread-safe by itself: the caller holds the lock of the
:class:`~protocol_adapters.langgraph._shared.SharedState` around every call, so the
writers of one (store directory, namespace) never interleave.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protocol_adapters.langgraph._plan import PlannedPut
from protocol_adapters.langgraph._records import (
    ITEM,
    KIND,
    StoredItem,
    StoredNamespace,
    decode_item,
    decode_namespace,
    item_record,
    namespace_path,
    namespace_record,
    namespace_record_id,
    timestamp,
    vector_id,
    vector_record,
)
from protocol_adapters.langgraph._shared import SharedState
from t4dm_core import Memory, MemoryNotFoundError, Store

__all__ = ["ItemWriter", "next_seq"]

_seq_lock = threading.Lock()
_last_seq = 0


def next_seq() -> int:
    """A process-wide strictly increasing number (wall-clock nanoseconds, bumped past ties).

    Orders items and namespaces by first write; persisted in their records, so the order
    survives reopening as long as the wall clock does not run backwards across restarts.
    """
    global _last_seq  # noqa: PLW0603 - one counter shared by every adapter instance in the process
    with _seq_lock:
        _last_seq = max(time.time_ns(), _last_seq + 1)
        return _last_seq


@dataclass
class _Change:
    """What one batch does to one namespace's items."""

    touched: set[str] = field(default_factory=set)  # ids put or deleted
    added: bool = False  # an item is put
    added_permanent: bool = False  # an item without a TTL is put
    removed: bool = False  # an item record is deleted
    lost_permanent: bool = False  # an item without a TTL is deleted or given a TTL

    def note(self, put: PlannedPut, old: StoredItem | None) -> None:
        self.touched.add(put.id)
        if put.value is not None:
            self.added = True
            self.added_permanent |= put.ttl is None
        elif old is not None:
            self.removed = True
        if old is not None and old.ttl is None and (put.value is None or put.ttl is not None):
            self.lost_permanent = True

    def note_expired(self, item: StoredItem) -> None:
        self.touched.add(item.id)
        self.removed = True


class ItemWriter:
    """Applies planned writes and TTL upkeep to one engine namespace of ``store``."""

    def __init__(self, store: Store, engine_namespace: str, shared: SharedState) -> None:
        self._store = store
        self._ns = engine_namespace
        self._shared = shared

    def apply(self, puts: list[PlannedPut], vectors: dict[str, np.ndarray], now: float) -> None:
        """Write ``puts`` (``vectors`` maps each text to its embedding) as one atomic engine batch."""
        if not puts:
            return
        previous = [decode_item(m) for m in self._store.get_many([p.id for p in puts], namespace=self._ns)]
        changes: dict[tuple[str, ...], _Change] = {}
        for put, old in zip(puts, previous, strict=True):
            changes.setdefault(put.namespace, _Change()).note(put, old)
        after, records = self._namespaces(changes)
        retired: list[str] = []
        for put, old in zip(puts, previous, strict=True):
            old_count = old.nvec if old is not None else 0
            if put.value is None:
                if old is not None:
                    retired += [put.id, *(vector_id(put.id, i) for i in range(old_count))]
                continue
            live = old if old is not None and not old.expired(now) else None
            item = self._new_item(put, live, now, after[put.namespace].seq)
            records.append(item_record(item, engine_namespace=self._ns, dim=self._store.dim))
            records += [vector_record(item, i, text, vectors[text], engine_namespace=self._ns)
                        for i, text in enumerate(put.texts)]
            retired += [vector_id(put.id, i) for i in range(len(put.texts), old_count)]
        self._write(records, retired, after)

    @staticmethod
    def _new_item(put: PlannedPut, live: StoredItem | None, now: float, ns_seq: int) -> StoredItem:
        assert put.value is not None
        stamp = timestamp(now)
        return StoredItem(
            id=put.id, namespace=put.namespace, key=put.key, value=put.value,
            created_at=live.created_at if live is not None else stamp, updated_at=stamp,
            seq=live.seq if live is not None else next_seq(), ns_seq=ns_seq, nvec=len(put.texts), ttl=put.ttl,
            expiry_base=None if put.ttl is None else now,
            expires_at=None if put.ttl is None else now + put.ttl * 60.0)

    def _namespaces(self, changes: dict[tuple[str, ...], _Change]
                    ) -> tuple[dict[tuple[str, ...], StoredNamespace], list[Memory]]:
        """Settle the namespace records after a batch's ``changes`` (in first-appearance order).
        Returns each namespace's record as it is after the batch (new ones for namespaces
        written for the first time) and the record versions to write (flags that changed)."""
        after: dict[tuple[str, ...], StoredNamespace] = {}
        records: list[Memory] = []
        for namespace, change in changes.items():
            stored = self._shared.namespaces.get(namespace) or decode_namespace(
                self._store.get(namespace_record_id(namespace), namespace=self._ns))
            if stored is None:
                if not change.added:  # only deletes of missing keys in a namespace never written
                    continue
                state = StoredNamespace(namespace, next_seq(), True, change.added_permanent)
            else:
                state = self._settle(stored, change)
            if state != stored:
                records.append(namespace_record(state, engine_namespace=self._ns, dim=self._store.dim))
            after[namespace] = state
        return after, records

    def _settle(self, stored: StoredNamespace, change: _Change) -> StoredNamespace:
        """The flags of ``stored`` after ``change``; scans the namespace's item records only
        when the batch may have removed the last item (of a kind) or the flags are missing."""
        permanent = stored.has_permanent
        if change.added_permanent:
            permanent = True
        elif permanent is None or (permanent and change.lost_permanent):
            permanent = self._any_untouched(stored.namespace, change.touched, permanent_only=True)
        items = stored.has_items
        if change.added or permanent:
            items = True
        elif items is None or (items and change.removed):
            items = self._any_untouched(stored.namespace, change.touched, permanent_only=False)
        return StoredNamespace(stored.namespace, stored.seq, items, permanent)

    def _any_untouched(self, namespace: tuple[str, ...], touched: set[str], *, permanent_only: bool) -> bool:
        """Whether ``namespace`` holds an item record (without a TTL, if ``permanent_only``)
        that the batch does not touch. Reads at most ``len(touched) + 1`` records."""
        flt: dict[str, Any] = {KIND: ITEM, "_t4dm_nspath": namespace_path(namespace)}
        if permanent_only:
            flt["_t4dm_ttl"] = None
        found = self._store.find(flt, namespace=self._ns, limit=len(touched) + 1)
        return any(m.id not in touched for m in found)

    def _write(self, records: list[Memory], retired: list[str], after: dict[tuple[str, ...], StoredNamespace]) -> None:
        """One atomic engine write; then remember the namespace records as written."""
        try:
            self._store.write(put=records, delete=retired, namespace=self._ns)
        except BaseException:
            self._shared.namespaces.clear()  # the outcome of a failed write is unknown until read again
            raise
        finally:
            self._shared.wrote()
        self._shared.namespaces.update(after)

    def refresh(self, items: Iterable[StoredItem], now: float) -> None:
        """Restart the TTL clock of ``items`` (those with a TTL), as of ``now``."""
        for record_id in dict.fromkeys(it.id for it in items if it.ttl is not None):
            current = decode_item(self._store.get(record_id, namespace=self._ns))
            if current is None or current.ttl is None or current.expires_at is None:
                continue
            delta = now + current.ttl * 60.0 - current.expires_at
            if delta > 0:
                try:
                    self._store.bump(record_id, "importance", delta, namespace=self._ns)
                except MemoryNotFoundError:  # deleted by another writer since it was read
                    continue

    def sweep(self, now: float) -> int:
        """Tombstone every item whose TTL ran out (and its vectors) and update the namespace
        flags, as one atomic engine write; returns how many items."""
        records = self._store.find({KIND: ITEM, "_t4dm_ttl": {"$gt": 0}}, namespace=self._ns)
        expired = [it for it in map(decode_item, records) if it is not None and it.expired(now)]
        if not expired:
            return 0
        changes: dict[tuple[str, ...], _Change] = {}
        for it in expired:
            changes.setdefault(it.namespace, _Change()).note_expired(it)
        after, flags = self._namespaces(changes)
        doomed = [rid for it in expired for rid in (it.id, *(vector_id(it.id, i) for i in range(it.nvec)))]
        self._write(flags, doomed, after)
        return len(expired)
