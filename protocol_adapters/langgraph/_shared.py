"""What every :class:`~protocol_adapters.langgraph.T4DMStore` of the process on one (store
directory, engine namespace) shares: :class:`SharedState`, from :func:`shared_state`.

Its caches are valid while every write to that engine namespace goes through those
adapters (the engine lets one process write a store directory; the adapter's records are
not meant to be written by anything else). Thread-safe: the registry is locked; the state's
fields follow the rules in :class:`SharedState`.
"""

from __future__ import annotations

import os
import threading
import weakref

from protocol_adapters.langgraph._records import StoredNamespace
from t4dm_core import Store

__all__ = ["SharedState", "shared_state"]


class SharedState:
    """Shared by the adapters on one (store directory, engine namespace).

    Attributes:
        lock: ``RLock`` serialising their writes (batches, TTL refreshes, sweeps).
        namespaces: namespace records as a writer last read or wrote them; read and written
            only under ``lock``, cleared when an engine write fails.
        generation: bumped after every engine write by a writer (success or failure), so a
            reader that notes it before reading can tell whether what it read may be stale.
        catalogue: a reader's last scan of the namespace records, with the generation noted
            before the scan (replaced whole, so readers need no lock).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.namespaces: dict[tuple[str, ...], StoredNamespace] = {}
        self.generation = 0
        self.catalogue: tuple[int, list[StoredNamespace]] | None = None

    def wrote(self) -> None:
        """Record that an engine write ended (call with ``lock`` held)."""
        self.generation += 1


_guard = threading.Lock()
_states: weakref.WeakValueDictionary[tuple[str, str, bool], SharedState] = weakref.WeakValueDictionary()


def shared_state(store: Store, engine_namespace: str) -> SharedState:
    """The :class:`SharedState` of (``store``'s directory, ``engine_namespace``), apart for
    read-only stores (a snapshot as of their opening); the registry keeps it only while some
    adapter holds it."""
    key = (os.path.realpath(store.path), engine_namespace, bool(store.read_only))
    with _guard:
        state = _states.get(key)
        if state is None:
            state = _states[key] = SharedState()
        return state
