"""Write-ahead log: format, writer (group commit) and reader (recovery).

File ``wal-NNNNNN.log``::

    header  (32 B): magic "T4DMWAL\\0" | format u32 | file number u64 | salt u64 | xxh32(header[:28]) u32
    record  (24 B + payload): length u32 | n_ops u32 | first_lsn u64 |
                              xxh3_64(salt, length, n_ops, first_lsn, payload) u64

A record is one atomic batch of ``n_ops`` operations with LSNs ``first_lsn .. first_lsn+n_ops-1``.
The salt is random per file, so stale bytes from an older file never verify.

Recovery (:func:`read_wal`): records are read in order. A bad or short record after which
no valid record follows is a torn tail (the crash interrupted the write): everything before
it is returned and the caller truncates. A bad record followed by a valid one is corruption
in the middle of the log and raises :class:`~t4dm_core.errors.CorruptionError` naming the
file and offset. Lengths are capped, so a flipped length never allocates gigabytes.
"""

from __future__ import annotations

import os
import secrets
import struct
import threading
from dataclasses import dataclass

import xxhash

from t4dm_core.errors import CorruptionError, FormatVersionError
from t4dm_core.storage.fs import FileSystem, WritableFile

__all__ = ["WAL_FORMAT", "WalContents", "WalWriter", "read_wal", "wal_name"]

WAL_MAGIC = b"T4DMWAL\x00"
WAL_FORMAT = 1
_HEADER = struct.Struct("<8sIQQ")  # + u32 checksum
HEADER_SIZE = _HEADER.size + 4
_RECORD = struct.Struct("<IIQQ")
RECORD_HEADER_SIZE = _RECORD.size
MAX_RECORD_BYTES = 256 * 1024 * 1024
MAX_OPS_PER_RECORD = 10_000_000


def wal_name(number: int) -> str:
    return f"wal-{number:06d}.log"


def _record_checksum(salt: int, length: int, n_ops: int, first_lsn: int, payload: bytes | memoryview) -> int:
    h = xxhash.xxh3_64(seed=salt)
    h.update(struct.pack("<IIQ", length, n_ops, first_lsn))
    h.update(payload)
    return h.intdigest()


def encode_record(salt: int, first_lsn: int, n_ops: int, payload: bytes) -> bytes:
    length = len(payload)
    return _RECORD.pack(length, n_ops, first_lsn, _record_checksum(salt, length, n_ops, first_lsn, payload)) + payload


class WalWriter:
    """Appends records to one WAL file.

    Thread-safety: :meth:`append` and :meth:`buffer` must be called under the engine's
    writer mutex; :meth:`sync_to` may be called from many threads at once and coalesces
    their fsyncs (group commit). Any OSError propagates; the engine then marks itself
    failed, so a failed fsync is never retried as if it had succeeded.
    """

    def __init__(self, fs: FileSystem, path: str, number: int, *, create: bool, salt: int | None = None) -> None:
        self.fs = fs
        self.path = path
        self.number = number
        if create:
            self.salt = secrets.randbits(63)
            self._file: WritableFile = fs.create(path)
            header = _HEADER.pack(WAL_MAGIC, WAL_FORMAT, number, self.salt)
            try:
                self._file.write(header + struct.pack("<I", xxhash.xxh32_intdigest(header)))
            except BaseException:
                self._file.close()
                raise
        else:
            assert salt is not None
            self.salt = salt
            self._file = fs.open_append(path)
        self._pending = bytearray()
        self._written = self._file.tell()
        self._synced = 0 if create else self._written
        self._sync_cond = threading.Condition()
        self._syncing = False

    @property
    def size(self) -> int:
        return self._written + len(self._pending)

    def buffer(self, first_lsn: int, n_ops: int, payload: bytes) -> None:
        """Queue a record in memory; it is written with the next :meth:`append` or :meth:`flush_buffer`."""
        self._pending += encode_record(self.salt, first_lsn, n_ops, payload)

    def flush_buffer(self) -> int:
        """Write queued records to the OS. Returns the end offset."""
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            self._file.write(data)
            self._written += len(data)
        return self._written

    def append(self, first_lsn: int, n_ops: int, payload: bytes) -> int:
        """Write one record (after any queued ones) to the OS. Returns the end offset."""
        self._pending += encode_record(self.salt, first_lsn, n_ops, payload)
        return self.flush_buffer()

    def sync_to(self, offset: int) -> None:
        """Return once bytes up to ``offset`` are fsynced; concurrent callers share one fsync."""
        with self._sync_cond:
            while self._synced < offset:
                if self._syncing:
                    self._sync_cond.wait()
                    continue
                self._syncing = True
                target = self._written
                self._sync_cond.release()
                try:
                    self._file.sync()
                finally:
                    self._sync_cond.acquire()
                    self._syncing = False
                    self._sync_cond.notify_all()
                self._synced = max(self._synced, target)

    def close(self) -> None:
        self._file.close()


@dataclass
class WalContents:
    """What :func:`read_wal` recovered from one file."""

    salt: int
    records: list[tuple[int, int, bytes]]  # (first_lsn, n_ops, payload)
    valid_end: int  # offset just past the last good record
    torn: bool  # bytes after valid_end must be truncated


def read_wal(fs: FileSystem, path: str, number: int) -> WalContents | None:
    """Read and verify a WAL file. Returns None for a file whose header was never completed."""
    data = fs.read_bytes(path)
    if len(data) < HEADER_SIZE:
        if data.strip(b"\x00") and not WAL_MAGIC.startswith(data[: len(WAL_MAGIC)]):
            raise CorruptionError(path, "WAL header is damaged", 0)
        return None
    magic, fmt, file_number, salt = _HEADER.unpack_from(data, 0)
    (crc,) = struct.unpack_from("<I", data, _HEADER.size)
    if magic != WAL_MAGIC or crc != xxhash.xxh32_intdigest(data[: _HEADER.size]):
        if not data[:HEADER_SIZE].strip(b"\x00"):
            return None
        raise CorruptionError(path, "WAL header is damaged", 0)
    if fmt > WAL_FORMAT:
        raise FormatVersionError(f"{path}: WAL format {fmt} is newer than this release supports ({WAL_FORMAT})")
    if file_number != number:
        raise CorruptionError(path, f"WAL header names file {file_number}, expected {number}", 0)
    records: list[tuple[int, int, bytes]] = []
    view = memoryview(data)
    offset = HEADER_SIZE
    last_lsn = -1
    while offset < len(data):
        parsed = _parse_record(view, offset, salt, last_lsn)
        if parsed is None:
            if _valid_record_after(view, offset + 1, salt, last_lsn):
                raise CorruptionError(path, "bad WAL record followed by valid records (mid-log corruption)", offset)
            return WalContents(salt, records, offset, True)
        first_lsn, n_ops, payload, end = parsed
        records.append((first_lsn, n_ops, payload))
        last_lsn = first_lsn + n_ops - 1
        offset = end
    return WalContents(salt, records, offset, False)


def _parse_record(view: memoryview, offset: int, salt: int, last_lsn: int) -> tuple[int, int, bytes, int] | None:
    if len(view) - offset < RECORD_HEADER_SIZE:
        return None
    length, n_ops, first_lsn, checksum = _RECORD.unpack_from(view, offset)
    start = offset + RECORD_HEADER_SIZE
    if length > MAX_RECORD_BYTES or length > len(view) - start or not 0 < n_ops <= MAX_OPS_PER_RECORD:
        return None
    if last_lsn >= 0 and first_lsn != last_lsn + 1:
        return None
    payload = view[start : start + length]
    if _record_checksum(salt, length, n_ops, first_lsn, payload) != checksum:
        return None
    return first_lsn, n_ops, bytes(payload), start + length


def _valid_record_after(view: memoryview, start: int, salt: int, last_lsn: int) -> bool:
    """Whether any verifiable record with a later LSN starts at or after ``start``."""
    end = len(view) - RECORD_HEADER_SIZE
    for pos in range(start, end + 1):
        length, n_ops, first_lsn, _ = _RECORD.unpack_from(view, pos)
        if length > len(view) - pos - RECORD_HEADER_SIZE or not 0 < n_ops <= MAX_OPS_PER_RECORD:
            continue
        if first_lsn <= last_lsn or first_lsn - last_lsn > 2**40:
            continue
        if _parse_record(view, pos, salt, -1) is not None:
            return True
    return False


def list_wal_numbers(fs: FileSystem, directory: str) -> list[int]:
    """WAL file numbers present in ``directory``, ascending."""
    numbers = []
    for name in fs.listdir(directory):
        if name.startswith("wal-") and name.endswith(".log"):
            stem = name[4:-4]
            if stem.isdigit():
                numbers.append(int(stem))
    return sorted(numbers)


def wal_path(directory: str, number: int) -> str:
    return os.path.join(directory, wal_name(number))
