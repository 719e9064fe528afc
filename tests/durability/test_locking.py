"""Single-writer locking: a second writer is refused at once, readers are not, and the lock
is neither dropped by closing unrelated descriptors nor usable/releasable from a fork."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import t4dm_core
from t4dm_core import Memory, Options, ReadOnlyError, StoreClosedError, StoreLockedError

DIM = 8
OPTIONS = Options(auto_compact=False, num_threads=1)
PROBE = """
import sys, t4dm_core
path, mode = sys.argv[1], sys.argv[2]
try:
    store = t4dm_core.open(path, dim=8, read_only=mode == "read")
except t4dm_core.StoreLockedError as exc:
    print("LOCKED", exc)
    sys.exit(3)
print("OPENED", len(store.ids()))
store.close()
"""


def probe(path, mode: str = "write") -> tuple[int, str]:
    """Open the store from another process; returns (exit code, output)."""
    done = subprocess.run([sys.executable, "-c", PROBE, str(path), mode], capture_output=True, text=True,
                          timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def _filled(path) -> t4dm_core.Store:
    store = t4dm_core.open(path, dim=DIM, options=OPTIONS)
    rng = np.random.default_rng(0)
    store.put_many([Memory(f"m{i}", id=f"m{i}", vector=rng.normal(size=DIM)) for i in range(20)])
    store.flush()
    store.put(Memory("tail", id="tail", vector=rng.normal(size=DIM)))
    return store


@pytest.mark.timeout(120)
def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "s"
    with _filled(path):
        code, out = probe(path)
        assert code == 3 and "LOCKED" in out, out
        assert f"pid {os.getpid()}" in out  # the message names the holder
        with pytest.raises(StoreLockedError):  # also from this process: flock is per open file
            t4dm_core.open(path, dim=DIM)
    code, out = probe(path)
    assert code == 0 and "OPENED 21" in out, out


@pytest.mark.timeout(120)
def test_readers_open_while_writer_holds_lock(tmp_path):
    path = tmp_path / "s"
    with _filled(path) as writer:
        code, out = probe(path, "read")
        assert code == 0 and "OPENED 21" in out, out
        with t4dm_core.open(path, read_only=True) as reader:
            assert sorted(reader.ids()) == sorted(writer.ids())
            assert reader.get("tail").text == "tail"
            writer.put(Memory("later", id="later", vector=np.ones(DIM)))
            assert reader.get("later") is None  # a reader sees the state as of opening
            with pytest.raises(ReadOnlyError):
                reader.put(Memory("nope", id="nope", vector=np.ones(DIM)))
        assert probe(path)[0] == 3  # closing the reader did not touch the writer's lock


@pytest.mark.timeout(120)
def test_lock_survives_other_descriptors(tmp_path):
    path = tmp_path / "s"
    with _filled(path) as writer:
        for name in os.listdir(path):  # open and close every file of the store, LOCK included
            fd = os.open(path / name, os.O_RDONLY)
            os.read(fd, 16)
            os.close(fd)
            with open(path / name, "rb") as fh:
                fh.read(16)
        for _ in range(3):
            with t4dm_core.open(path, read_only=True) as reader:
                reader.search(np.ones(DIM), k=3)
        code, out = probe(path)
        assert code == 3, out
        writer.put(Memory("still writable", id="w", vector=np.ones(DIM)))
    with t4dm_core.open(path, dim=DIM) as store:
        assert store.get("w").text == "still writable"


@pytest.mark.timeout(120)
def test_forked_child_cannot_use_or_release_the_handle(tmp_path):
    path = tmp_path / "s"
    with _filled(path) as store:
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 1
            try:
                results = []
                for attempt in (lambda: store.search(np.ones(DIM), k=1), lambda: store.get("m1"),
                                lambda: store.put(Memory("from child", id="child", vector=np.ones(DIM))),
                                store.flush):
                    try:
                        attempt()
                        results.append(False)
                    except StoreClosedError:
                        results.append(True)
                store.close()  # must not release the parent's lock or sync the parent's WAL
                code = 0 if all(results) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child could use the store handle"
        assert probe(path)[0] == 3, "the child released the parent's writer lock"
        store.put(Memory("parent", id="parent", vector=np.ones(DIM)))
        assert store.get("parent").text == "parent"
    with t4dm_core.open(path, dim=DIM) as reopened:
        assert reopened.get("parent").text == "parent"
        assert reopened.get("child") is None


_BUSY_WRITER = """
import sys, numpy as np, t4dm_core
from t4dm_core import Memory, Options
s = t4dm_core.open(sys.argv[1], dim=8, options=Options(memtable_max_records=5, num_threads=1))
rng = np.random.default_rng(0)
print("READY", flush=True)
i = 0
while True:
    s.put_many([Memory("t", id=f"m{i}-{j}", vector=rng.normal(size=8)) for j in range(3)])
    i += 1
"""


@pytest.mark.timeout(120)
def test_read_only_opens_race_a_busy_writer(tmp_path):
    """Readers opening while the writer flushes, compacts and collects files every few ms never
    fail: a reader pins its manifest until its files are loaded (regression for a GC race)."""
    path = tmp_path / "s"
    with t4dm_core.open(path, dim=8) as s:
        s.put(Memory("x", id="x", vector=[1.0] * 8))
    writer = subprocess.Popen([sys.executable, "-c", _BUSY_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    opens, errors = 0, []
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "READY"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with t4dm_core.open(path, read_only=True) as reader:
                    assert reader.get("x") is not None
                    opens += 1
            except t4dm_core.T4DMError as exc:
                errors.append(exc)
    finally:
        writer.kill()
        writer.wait()
    assert errors == []
    assert opens > 50
    assert list((path / "readers").glob("pin-*")) == []  # every reader released its pin
