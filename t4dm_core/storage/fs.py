"""The one file-layer interface all engine I/O goes through.

:class:`LocalFS` is the real thing. :class:`FaultInjectingFS` wraps it for tests: it keeps
written-but-unsynced bytes in process memory (so a SIGKILL or :meth:`FaultInjectingFS.crash`
loses exactly what a power cut would), can forget files and renames whose directory was not
synced, and can raise ``OSError`` on the Nth call of an operation.

Methods raise ``OSError`` on failure; the engine turns those into typed errors.
A file object is used by one thread at a time (the engine serialises writers).
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["FaultInjectingFS", "FileSystem", "LocalFS", "WritableFile"]


class WritableFile(Protocol):
    """An append-only file handle."""

    def write(self, data: bytes | memoryview) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...
    def tell(self) -> int: ...


class FileSystem(Protocol):
    """The operations the engine performs on files. Paths are absolute strings."""

    def create(self, path: str) -> WritableFile: ...
    def open_append(self, path: str) -> WritableFile: ...
    def read_bytes(self, path: str) -> bytes: ...
    def map_readonly(self, path: str) -> mmap.mmap | bytes: ...
    def rename(self, src: str, dst: str) -> None: ...
    def remove(self, path: str) -> None: ...
    def truncate(self, path: str, size: int) -> None: ...
    def sync_dir(self, path: str) -> None: ...
    def listdir(self, path: str) -> list[str]: ...
    def exists(self, path: str) -> bool: ...
    def size(self, path: str) -> int: ...
    def makedirs(self, path: str) -> None: ...


class _LocalFile:
    def __init__(self, path: str, flags: int) -> None:
        self.path = path
        self._fd = os.open(path, flags, 0o644)
        self._pos = os.lseek(self._fd, 0, os.SEEK_END)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            self._pos += n
            view = view[n:]

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def tell(self) -> int:
        return self._pos


class LocalFS:
    """Direct POSIX file access. Thread-safe (no shared state)."""

    def create(self, path: str) -> WritableFile:
        return _LocalFile(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC)

    def open_append(self, path: str) -> WritableFile:
        return _LocalFile(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    def map_readonly(self, path: str) -> mmap.mmap | bytes:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return b""
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        os.remove(path)

    def truncate(self, path: str, size: int) -> None:
        os.truncate(path, size)
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)


@dataclass
class _Fault:
    op: str
    nth: int
    error: int
    persistent: bool
    calls: int = 0


@dataclass
class _BufferedFile:
    """A file whose unsynced tail lives in memory until ``sync``."""

    fs: FaultInjectingFS
    path: str
    real: WritableFile
    pending: bytearray = field(default_factory=bytearray)

    def write(self, data: bytes | memoryview) -> None:
        self.fs._maybe_fail("write", self.path)
        self.pending += data
        self.fs._pending[self.path] = self

    def sync(self) -> None:
        self.fs._maybe_fail("sync", self.path)
        if self.pending:
            self.real.write(bytes(self.pending))
            self.pending.clear()
        self.real.sync()
        self.fs._pending.pop(self.path, None)

    def close(self) -> None:
        # Closing does not make data durable; unsynced bytes stay "in the page cache".
        self.real.close()

    def tell(self) -> int:
        return self.real.tell() + len(self.pending)


class FaultInjectingFS:
    """A test file layer that simulates power loss and I/O errors.

    * Written bytes stay in process memory until ``sync()``; if the process dies (SIGKILL)
      they are gone, exactly as after a power cut with a volatile page cache.
    * :meth:`crash` simulates the power cut in-process: unsynced bytes are dropped, files
      created since their directory's last ``sync_dir`` are deleted, and renames not yet
      made durable by ``sync_dir`` are undone.
    * :meth:`fail` makes the Nth call of an operation ("write", "sync", "sync_dir",
      "rename", "create", "remove") raise ``OSError``; once, or from then on.

    Thread-safe for the engine's usage (a lock guards the bookkeeping).
    """

    def __init__(self, base: LocalFS | None = None) -> None:
        self.base = base or LocalFS()
        self._pending: dict[str, _BufferedFile] = {}
        self._undurable_creates: set[str] = set()
        self._undurable_renames: list[tuple[str, str]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    # -- fault control -------------------------------------------------------
    def fail(self, op: str, nth: int = 1, *, error: int = errno.EIO, persistent: bool = False) -> None:
        """Make the ``nth`` future call of ``op`` raise OSError(error) (and later ones if persistent)."""
        with self._lock:
            self._faults.append(_Fault(op, nth, error, persistent))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _maybe_fail(self, op: str, path: str) -> None:
        with self._lock:
            for fault in self._faults:
                if fault.op != op:
                    continue
                fault.calls += 1
                if fault.calls == fault.nth or (fault.persistent and fault.calls > fault.nth):
                    raise OSError(fault.error, f"injected {os.strerror(fault.error)} on {op}", path)

    def crash(self) -> None:
        """Forget everything not made durable (call only when no store handle is open)."""
        with self._lock:
            for buffered in list(self._pending.values()):
                buffered.pending.clear()
            self._pending.clear()
            for src, dst in reversed(self._undurable_renames):
                if os.path.exists(dst):
                    os.replace(dst, src)
            self._undurable_renames.clear()
            for path in self._undurable_creates:
                if os.path.exists(path):
                    os.remove(path)
            self._undurable_creates.clear()

    # -- FileSystem ----------------------------------------------------------
    def create(self, path: str) -> WritableFile:
        self._maybe_fail("create", path)
        existed = os.path.exists(path)
        real = self.base.create(path)
        if not existed:
            with self._lock:
                self._undurable_creates.add(path)
        return _BufferedFile(self, path, real)

    def open_append(self, path: str) -> WritableFile:
        return _BufferedFile(self, path, self.base.open_append(path))

    def read_bytes(self, path: str) -> bytes:
        data = self.base.read_bytes(path)
        buffered = self._pending.get(path)
        return data + bytes(buffered.pending) if buffered else data

    def map_readonly(self, path: str) -> mmap.mmap | bytes:
        if path in self._pending:
            return self.read_bytes(path)
        return self.base.map_readonly(path)

    def rename(self, src: str, dst: str) -> None:
        self._maybe_fail("rename", src)
        self.base.rename(src, dst)
        with self._lock:
            self._undurable_renames.append((src, dst))
            if src in self._pending:
                self._pending[dst] = self._pending.pop(src)
                self._pending[dst].path = dst

    def remove(self, path: str) -> None:
        self._maybe_fail("remove", path)
        self.base.remove(path)
        with self._lock:
            self._pending.pop(path, None)
            self._undurable_creates.discard(path)

    def truncate(self, path: str, size: int) -> None:
        self._maybe_fail("truncate", path)
        self.base.truncate(path, size)

    def sync_dir(self, path: str) -> None:
        self._maybe_fail("sync_dir", path)
        self.base.sync_dir(path)
        with self._lock:
            prefix = path.rstrip(os.sep) + os.sep
            self._undurable_creates = {p for p in self._undurable_creates if not p.startswith(prefix)}
            self._undurable_renames = [(s, d) for s, d in self._undurable_renames if not d.startswith(prefix)]

    def listdir(self, path: str) -> list[str]:
        return self.base.listdir(path)

    def exists(self, path: str) -> bool:
        return self.base.exists(path)

    def size(self, path: str) -> int:
        buffered = self._pending.get(path)
        return self.base.size(path) + (len(buffered.pending) if buffered else 0)

    def makedirs(self, path: str) -> None:
        self.base.makedirs(path)
