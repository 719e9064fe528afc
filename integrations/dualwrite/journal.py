"""The durable, append-only journal of dual-write intents, with a per-side status for each.

Layout: a directory holding ``journal.log`` (the records) and ``LOCK`` (held with ``flock``
while a :class:`Journal` is open, so one process at a time writes it; the kernel drops the
lock when the process dies, SIGKILL included).

Record framing: ``MAGIC (2 bytes) | length (u32 LE) | crc32 of payload (u32 LE) | payload``,
the payload being one JSON object. Three record types:

* ``intent`` — a write: ``seq``, ``source`` ("neo4j" / "qdrant"), the ops (journal form,
  see :mod:`integrations.dualwrite.ops`) and the state of each side ("pending" at first).
* ``status`` — a later state of one side of one entry ("done" or "failed", with the error).
* ``set`` — a durable setting (the primary side, decommissioned sides, the next seq).

Durability: :meth:`Journal.append` and :meth:`Journal.set` write and ``fsync`` before they
return — the append is the commit point of a shim write. :meth:`Journal.mark` only hands
the record to the OS (it survives a process crash, not necessarily a power loss): a lost
status record makes a finished entry look pending, and replaying it is harmless because
every side applies ops idempotently.

Crash safety: on open the file is scanned; a damaged record at the end (a torn append) is
cut off and counted in ``stats()["truncated_bytes"]``; a damaged record followed by valid
ones is real corruption and raises :class:`JournalCorruptionError` naming the offset.

Compaction: finished entries (every side done or failed) are dropped from memory at once
and from the file by :meth:`Journal.compact`, which rewrites the live records to a temporary
file, fsyncs it and renames it over the log (atomic). It runs automatically once at least
``compact_after`` entries finished since the last compaction (and at least as many as are
still open, so a long outage does not make it quadratic).

Thread-safety: every method takes an internal lock; one :class:`Journal` may be shared by
threads of one process.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.dualwrite.errors import DualWriteError, JournalCorruptionError, JournalLockedError

__all__ = ["DONE", "FAILED", "PENDING", "Journal", "JournalEntry"]

PENDING, DONE, FAILED = "pending", "done", "failed"
_STATES = (PENDING, DONE, FAILED)
MAGIC = b"\xa7J"
_HEADER = struct.Struct("<2sII")
LOG_NAME = "journal.log"
LOCK_NAME = "LOCK"
MAX_RECORD_BYTES = 1 << 30


@dataclass
class JournalEntry:
    """One journaled write: its ops and the state of each side ("pending", "done", "failed")."""

    seq: int
    source: str
    ops: list[dict[str, Any]]
    sides: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True when no side is still pending."""
        return all(state != PENDING for state in self.sides.values())

    def to_record(self) -> dict[str, Any]:
        return {"t": "intent", "seq": self.seq, "source": self.source, "sides": dict(self.sides),
                "errors": dict(self.errors), "ops": self.ops}


class Journal:
    """An open journal directory (created if missing). Use as a context manager or call :meth:`close`.

    Raises:
        JournalLockedError: another process or another open :class:`Journal` holds the directory.
        JournalCorruptionError: a record before the tail fails verification.
    """

    def __init__(self, directory: str | os.PathLike[str], *, compact_after: int = 1000, sync: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / LOG_NAME
        self.compact_after = max(1, int(compact_after))
        self._sync = sync
        self._lock = threading.Lock()
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise JournalLockedError(f"journal {self.directory} is in use by another writer ({exc})") from exc
        self._open: dict[int, JournalEntry] = {}
        self._settings: dict[str, Any] = {}
        self._next_seq = 1
        self._finished_since_compact = 0
        self._truncated = 0
        self._fd = -1
        try:
            self._load()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._fsync_dir()
            if self._finished_since_compact >= max(self.compact_after, len(self._open)):
                self._compact_locked()
        except BaseException:
            self._release()
            raise

    # ---- loading ------------------------------------------------------------------------------
    def _load(self) -> None:
        data = self.path.read_bytes() if self.path.exists() else b""
        pos = 0
        for offset, record in _records(data):
            self._replay(record)
            pos = offset
        if pos < len(data):
            if any(True for _ in _records(data, _next_magic(data, pos + 1))):
                raise JournalCorruptionError(f"journal {self.path}: the record at byte {pos} is damaged and valid "
                                             "records follow it (not a torn append); refusing to guess")
            self._truncated = len(data) - pos
            with open(self.path, "r+b") as handle:
                handle.truncate(pos)
                handle.flush()
                os.fsync(handle.fileno())

    def _replay(self, record: Mapping[str, Any]) -> None:
        kind = record.get("t")
        if kind == "intent":
            entry = JournalEntry(int(record["seq"]), record["source"], list(record["ops"]), dict(record["sides"]),
                                 dict(record.get("errors", {})))
            self._next_seq = max(self._next_seq, entry.seq + 1)
            self._keep_or_retire(entry)
        elif kind == "status":
            entry_or_none = self._open.get(int(record["seq"]))
            if entry_or_none is not None:
                self._set_state(entry_or_none, record["side"], record["state"], record.get("error"))
        elif kind == "set":
            self._settings[record["name"]] = record["value"]
            if record["name"] == "next_seq":
                self._next_seq = max(self._next_seq, int(record["value"]))

    def _keep_or_retire(self, entry: JournalEntry) -> None:
        if entry.finished:
            self._open.pop(entry.seq, None)
            self._finished_since_compact += 1
        else:
            self._open[entry.seq] = entry

    def _set_state(self, entry: JournalEntry, side: str, state: str, error: str | None) -> None:
        entry.sides[side] = state
        if error:
            entry.errors[side] = error
        self._keep_or_retire(entry)

    # ---- writing ------------------------------------------------------------------------------
    def append(self, source: str, sides: Sequence[str], ops: list[dict[str, Any]]) -> JournalEntry:
        """Journal a write with every side pending; durable (fsynced) when this returns."""
        with self._lock:
            self._check_open()
            entry = JournalEntry(self._next_seq, source, ops, dict.fromkeys(sides, PENDING))
            self._write(entry.to_record(), sync=self._sync)
            self._next_seq += 1
            self._open[entry.seq] = entry
            return entry

    def mark(self, seq: int, side: str, state: str, error: str | None = None) -> None:
        """Record that ``side`` finished entry ``seq`` (``state`` "done" or "failed"; not fsynced, see module doc)."""
        if state not in (DONE, FAILED):
            raise ValueError(f"state must be {DONE!r} or {FAILED!r}, got {state!r}")
        with self._lock:
            self._check_open()
            entry = self._open.get(seq)
            if entry is None or side not in entry.sides:
                raise DualWriteError(f"journal {self.path} has no open entry {seq} with side {side!r}")
            self._write({"t": "status", "seq": seq, "side": side, "state": state, "error": error}, sync=False)
            self._set_state(entry, side, state, error)
            if self._finished_since_compact >= max(self.compact_after, len(self._open)):
                self._compact_locked()

    def set(self, name: str, value: Any) -> None:
        """Durably record a setting (fsynced)."""
        with self._lock:
            self._check_open()
            self._write({"t": "set", "name": name, "value": value}, sync=True)
            self._settings[name] = value

    def setting(self, name: str, default: Any = None) -> Any:
        with self._lock:
            return self._settings.get(name, default)

    def _write(self, record: Mapping[str, Any], *, sync: bool) -> None:
        frame = _frame(record)
        view = memoryview(frame)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if sync:
            os.fsync(self._fd)

    # ---- reading ------------------------------------------------------------------------------
    def pending(self, side: str) -> list[JournalEntry]:
        """Entries still pending for ``side``, oldest first (the objects are live: do not mutate them)."""
        with self._lock:
            return [e for seq, e in sorted(self._open.items()) if e.sides.get(side) == PENDING]

    def unfinished(self) -> list[JournalEntry]:
        """Every entry some side still has pending, oldest first."""
        with self._lock:
            return [e for _, e in sorted(self._open.items())]

    def entry(self, seq: int) -> JournalEntry | None:
        """The open entry ``seq`` (None once finished)."""
        with self._lock:
            return self._open.get(seq)

    def stats(self) -> dict[str, Any]:
        """``next_seq``, ``open_entries``, ``file_bytes`` and ``truncated_bytes`` (torn tail cut at open)."""
        with self._lock:
            return {"next_seq": self._next_seq, "open_entries": len(self._open),
                    "file_bytes": self.path.stat().st_size if self.path.exists() else 0,
                    "truncated_bytes": self._truncated}

    # ---- compaction ---------------------------------------------------------------------------
    def compact(self) -> None:
        """Rewrite the log with only the settings and the open entries (atomic rename)."""
        with self._lock:
            self._check_open()
            self._compact_locked()

    def _compact_locked(self) -> None:
        records: list[Mapping[str, Any]] = [{"t": "set", "name": k, "value": v} for k, v in self._settings.items()
                                            if k != "next_seq"]
        records.append({"t": "set", "name": "next_seq", "value": self._next_seq})
        records.extend(e.to_record() for _, e in sorted(self._open.items()))
        tmp = self.path.with_name(LOG_NAME + ".tmp")
        with open(tmp, "wb") as handle:
            for record in records:
                handle.write(_frame(record))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._fsync_dir()
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o644)
        self._settings["next_seq"] = self._next_seq
        self._finished_since_compact = 0

    # ---- lifecycle ----------------------------------------------------------------------------
    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _check_open(self) -> None:
        if self._lock_fd < 0:
            raise DualWriteError(f"journal {self.directory} is closed")

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

    def close(self) -> None:
        """Release the file and the directory lock (idempotent)."""
        with self._lock:
            self._release()

    @property
    def closed(self) -> bool:
        return self._lock_fd < 0

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frame(record: Mapping[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _records(data: bytes, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Valid records from ``start`` on, each with the offset just past it; stops at the first bad one."""
    pos = start
    while pos >= 0 and len(data) - pos >= _HEADER.size:
        magic, length, crc = _HEADER.unpack_from(data, pos)
        body_start = pos + _HEADER.size
        if magic != MAGIC or length > MAX_RECORD_BYTES or body_start + length > len(data):
            return
        payload = data[body_start:body_start + length]
        if zlib.crc32(payload) != crc:
            return
        try:
            record = json.loads(payload)
        except ValueError:
            return
        if not isinstance(record, dict) or record.get("t") not in ("intent", "status", "set"):
            return
        if record.get("t") == "status" and record.get("state") not in _STATES:
            return
        pos = body_start + length
        yield pos, record


def _next_magic(data: bytes, start: int) -> int:
    """Offset of the next MAGIC at or after ``start`` that begins a valid record, or -1."""
    pos = data.find(MAGIC, start)
    while pos >= 0:
        if next(_records(data, pos), None) is not None:
            return pos
        pos = data.find(MAGIC, pos + 1)
    return -1
