"""The write side of :class:`~protocol_adapters.langgraph.T4DMStore`: puts, deletes, TTL upkeep.

Atomicity and crash semantics. All writes of one LangGraph batch are one atomic engine
``Store.write``: it puts every new item record, all of their vector records and the
ordering record of each namespace written for the first time, and tombstones every record
the batch retires (deleted items, their vectors, and the surplus vectors of an item
overwritten with fewer texts). After an error or a crash the store holds either the whole
batch or none of it, so an item is never seen without exactly its current vectors. A TTL
sweep is likewise one atomic engine ``delete``.

TTL refreshes are engine learning writes (``Store.bump``): O(1), no new record version,
durable with the next acknowledged write, ``flush`` or ``close``, so a crash can lose
refreshes made since the last write (the item then expires as if not read since).

Not thread-safe by itself: the caller serialises calls per (store, namespace).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import numpy as np

from protocol_adapters.langgraph._plan import PlannedPut
from protocol_adapters.langgraph._records import (
    ITEM,
    KIND,
    StoredItem,
    decode_item,
    item_record,
    namespace_record,
    namespace_record_id,
    timestamp,
    vector_id,
    vector_record,
)
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


class ItemWriter:
    """Applies planned writes and TTL upkeep to one engine namespace of ``store``."""

    def __init__(self, store: Store, engine_namespace: str) -> None:
        self._store = store
        self._ns = engine_namespace
        self._namespace_seqs: dict[tuple[str, ...], int] = {}  # ordering records never change once written

    def apply(self, puts: list[PlannedPut], vectors: dict[str, np.ndarray], now: float) -> None:
        """Write ``puts`` (``vectors`` maps each text to its embedding) as one atomic engine batch."""
        if not puts:
            return
        previous = [decode_item(m) for m in self._store.get_many([p.id for p in puts], namespace=self._ns)]
        records: list[Memory] = []
        retired: list[str] = []
        new_namespaces: dict[tuple[str, ...], int] = {}
        for put, old in zip(puts, previous, strict=True):
            old_count = old.nvec if old is not None else 0
            if put.value is None:
                if old is not None:
                    retired += [put.id, *(vector_id(put.id, i) for i in range(old_count))]
                continue
            live = old if old is not None and not old.expired(now) else None
            item = self._new_item(put, live, now, records, new_namespaces)
            records.append(item_record(item, engine_namespace=self._ns, dim=self._store.dim))
            records += [vector_record(item, i, text, vectors[text], engine_namespace=self._ns)
                        for i, text in enumerate(put.texts)]
            retired += [vector_id(put.id, i) for i in range(len(put.texts), old_count)]
        self._store.write(put=records, delete=retired, namespace=self._ns)
        self._namespace_seqs.update(new_namespaces)

    def _new_item(self, put: PlannedPut, live: StoredItem | None, now: float, records: list[Memory],
                  new_namespaces: dict[tuple[str, ...], int]) -> StoredItem:
        assert put.value is not None
        stamp = timestamp(now)
        return StoredItem(
            id=put.id, namespace=put.namespace, key=put.key, value=put.value,
            created_at=live.created_at if live is not None else stamp, updated_at=stamp,
            seq=live.seq if live is not None else next_seq(),
            ns_seq=self._namespace_seq(put.namespace, records, new_namespaces), nvec=len(put.texts), ttl=put.ttl,
            expiry_base=None if put.ttl is None else now,
            expires_at=None if put.ttl is None else now + put.ttl * 60.0)

    def _namespace_seq(self, namespace: tuple[str, ...], records: list[Memory],
                       new_namespaces: dict[tuple[str, ...], int]) -> int:
        """The first-write order of ``namespace``; queues its ordering record if it is new."""
        known = self._namespace_seqs.get(namespace, new_namespaces.get(namespace))
        if known is not None:
            return known
        stored = self._store.get(namespace_record_id(namespace), namespace=self._ns)
        if stored is not None:
            seq = int(stored.metadata["_t4dm_ns_seq"])
            self._namespace_seqs[namespace] = seq
            return seq
        seq = next_seq()
        new_namespaces[namespace] = seq
        records.append(namespace_record(namespace, seq, engine_namespace=self._ns, dim=self._store.dim))
        return seq

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
        """Tombstone every item whose TTL ran out (and its vectors); returns how many items."""
        records = self._store.find({KIND: ITEM, "_t4dm_ttl": {"$gt": 0}}, namespace=self._ns)
        expired = [it for it in map(decode_item, records) if it is not None and it.expired(now)]
        doomed = [rid for it in expired for rid in (it.id, *(vector_id(it.id, i) for i in range(it.nvec)))]
        if doomed:
            self._store.delete(doomed, namespace=self._ns)
        return len(expired)
