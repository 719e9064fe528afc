"""TTL configuration checks and the background sweeper thread.

The sweeper is a daemon thread that calls a sweep function every ``interval`` seconds
until :meth:`Sweeper.stop`; a failing sweep is logged and retried at the next interval, a
closed store ends the thread. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from langgraph.store.base import TTLConfig

from protocol_adapters.langgraph._records import is_finite_number
from t4dm_core import InvalidInputError, StoreClosedError

__all__ = ["Sweeper", "check_ttl_config"]

log = logging.getLogger("t4dm.langgraph")
_KEYS = frozenset({"refresh_on_read", "omit_expired", "default_ttl", "sweep_interval_minutes"})


def check_ttl_config(config: object) -> TTLConfig | None:
    """A private copy of a valid ``TTLConfig`` (or None).

    Raises:
        InvalidInputError: unknown keys, a ``default_ttl`` or ``sweep_interval_minutes``
            that is not a positive number (or None), or non-bool flags.
    """
    if config is None:
        return None
    if not isinstance(config, Mapping) or not set(config) <= _KEYS:
        raise InvalidInputError(f"ttl must be a TTLConfig dict with keys from {sorted(_KEYS)}, got {config!r}")
    for key in ("default_ttl", "sweep_interval_minutes"):
        value = config.get(key)
        if value is not None and not (is_finite_number(value) and value > 0):
            raise InvalidInputError(f"ttl[{key!r}] must be a positive number of minutes or None, got {value!r}")
    for key in ("refresh_on_read", "omit_expired"):
        if key in config and not isinstance(config[key], bool):
            raise InvalidInputError(f"ttl[{key!r}] must be a bool, got {config[key]!r}")
    return TTLConfig(**config)


class Sweeper:
    """Calls ``sweep()`` every ``interval_seconds`` on a daemon thread until stopped."""

    def __init__(self, sweep: Callable[[], int], interval_seconds: float) -> None:
        self._sweep = sweep
        self._interval = interval_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="t4dm-langgraph-ttl-sweep", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                removed = self._sweep()
            except StoreClosedError:
                return
            except Exception:  # a transient failure must not end periodic cleanup
                log.exception("t4dm: LangGraph TTL sweep failed; retrying in %.0f s", self._interval)
            else:
                log.debug("t4dm: LangGraph TTL sweep removed %d expired items", removed)

    def stop(self) -> None:
        """Stop the thread and wait for a sweep in progress to finish. Idempotent."""
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
