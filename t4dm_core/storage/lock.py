"""Single-writer lock: ``flock(LOCK_EX | LOCK_NB)`` on a dedicated ``LOCK`` file.

flock (not POSIX ``lockf``) is used because closing any other descriptor to the same file
does not drop it. The lock belongs to this process; the handle refuses use after ``fork``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from t4dm_core.errors import StoreLockedError

__all__ = ["ReaderPin", "WriterLock", "pinned_versions"]


class WriterLock:
    """Holds the writer lock of one store directory until :meth:`release`."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, "LOCK")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(self._fd)
            os.close(self._fd)
            self._fd = -1
            raise StoreLockedError(
                f"store {directory} is open for writing by another process{holder}; "
                "open it with read_only=True, or close the other writer"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


PINS_DIR = "readers"
PIN_ALL = 0  # a reader that has not chosen its manifest yet: keep everything


class ReaderPin:
    """A read-only opener's claim on a manifest version while it opens the store.

    The pin is a file ``readers/pin-<pid>-<random>`` holding the version (0 until chosen),
    with a shared flock held for its lifetime. The writer's GC keeps every file the pinned
    manifest references. Once open, a reader no longer needs the files by name (segments are
    memory-mapped or loaded, and POSIX keeps unlinked mapped files valid), so the pin is
    released at the end of the open.
    """

    def __init__(self, directory: str) -> None:
        pins = os.path.join(directory, PINS_DIR)
        os.makedirs(pins, exist_ok=True)
        self.path = os.path.join(pins, f"pin-{os.getpid()}-{os.urandom(6).hex()}")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        self.set_version(PIN_ALL)

    def set_version(self, version: int) -> None:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(version).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            os.close(self._fd)
            self._fd = -1


def pinned_versions(directory: str) -> list[int]:
    """Versions pinned by live readers (``PIN_ALL`` = keep everything); stale pins are removed."""
    pins = os.path.join(directory, PINS_DIR)
    try:
        names = os.listdir(pins)
    except FileNotFoundError:
        return []
    versions = []
    for name in names:
        path = os.path.join(pins, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live reader holds it
                text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                versions.append(int(text) if text.isdigit() else PIN_ALL)
                continue
            os.remove(path)  # the reader died without releasing its pin
        finally:
            os.close(fd)
    return versions
