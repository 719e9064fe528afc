"""Bookkeeping of retrievals: the queue of learning writes they owe, and which memories are labile.

A search reports what it returned with :meth:`AccessLog.record`; the store later turns the
queued retrievals into overlay writes (``access_count`` +1 per hit, bounded Hebbian
strengthening of ``co_retrieved`` edges between the top hits) when it can take the write
lock without waiting. The same records make a memory *labile* for a window of time
(reconsolidation): :meth:`AccessLog.labile` lists the memories of a namespace retrieved
within that window.

Thread-safety: every method may be called from any thread (an internal lock guards the
queue and the labile table; the lock is never held while the store's locks are taken).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from itertools import combinations

__all__ = ["AccessLog", "co_retrieval_pairs"]

MAX_LABILE = 4096  # most recently retrieved memories remembered per store


class AccessLog:
    """Pending retrievals (FIFO) and the most recent retrieval time of each memory."""

    def __init__(self, lability_window: float) -> None:
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, tuple[str, ...]]] = deque()
        self._last_retrieved: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._window = lability_window

    def record(self, namespace: str, ids: list[str], now: float) -> None:
        """Queue one search's hits (best first) and mark them labile from ``now``."""
        with self._lock:
            self._pending.append((namespace, tuple(ids)))
            if self._window > 0:
                for mid in ids:
                    key = (namespace, mid)
                    self._last_retrieved[key] = now
                    self._last_retrieved.move_to_end(key)
                while len(self._last_retrieved) > MAX_LABILE:
                    self._last_retrieved.popitem(last=False)

    def drain(self) -> list[tuple[str, tuple[str, ...]]]:
        """Take every queued retrieval (oldest first)."""
        with self._lock:
            out = list(self._pending)
            self._pending.clear()
            return out

    @property
    def pending(self) -> int:
        return len(self._pending)

    def labile(self, namespace: str, now: float) -> list[str]:
        """Ids of ``namespace`` retrieved within the lability window before ``now``, newest first."""
        if self._window <= 0:
            return []
        horizon = now - self._window
        with self._lock:
            return [mid for (ns, mid), t in reversed(self._last_retrieved.items()) if ns == namespace and t >= horizon]


def co_retrieval_pairs(ids: tuple[str, ...], top: int) -> list[tuple[str, str]]:
    """Unordered pairs among the first ``top`` distinct ids, each as (smaller id, larger id)."""
    best = list(dict.fromkeys(ids))[:top]
    return [(a, b) if a < b else (b, a) for a, b in combinations(best, 2)]
