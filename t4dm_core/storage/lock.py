"""Single-writer lock: ``flock(LOCK_EX | LOCK_NB)`` on a dedicated ``LOCK`` file.

flock (not POSIX ``lockf``) is used because closing any other descriptor to the same file
does not drop it. The lock belongs to this process; the handle refuses use after ``fork``.
"""

from __future__ import annotations

import fcntl
import os

from t4dm_core.errors import StoreLockedError

__all__ = ["WriterLock"]


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
