"""I/O errors: an injected EIO fails the write that hit it, the failure is sticky, and a reopen
recovers every acknowledged write. No file descriptor leaks across failures.

For each file-layer operation and several N, :meth:`FaultInjectingFS.fail` makes the Nth call
after warm-up raise EIO while a ``sync="full"`` workload with a small memtable runs (so the Nth
call lands in WAL appends/fsyncs, segment file writes, manifest commits or the directory
sync of a flush). Compaction gets its own sweep. Recovery is checked both after a simulated
power cut (:meth:`FaultInjectingFS.crash`, then a plain LocalFS) and with the same file layer.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from crashloop import fd_count
from workload import DIM, Model, execute, match_prefix, replay, touched

import t4dm_core
from t4dm_core import FaultInjectingFS, Memory, Options, StorageError, StoreFailedError

WARMUP_BATCHES = 30
WORKLOAD_BATCHES = 160
FAULTS = [
    ("write", [1, 2, 3, 7, 20, 45, 90, 140]),
    ("sync", [1, 2, 4, 9, 25, 60, 110]),
    ("create", [1, 2, 3, 5, 8]),
    ("rename", [1, 2, 3]),
    ("sync_dir", [1, 2, 3, 5]),
    ("remove", [1, 3]),
]
CASES = [(op, nth) for op, nths in FAULTS for nth in nths]
OPTIONS = Options(sync="full", memtable_max_records=40, num_threads=1, auto_compact=False,
                  learn_on_read=False)  # deterministic I/O order; verification reads must not write


@contextlib.contextmanager
def engine_log() -> Iterator[io.StringIO]:
    """Capture the engine's log as text only.

    The engine logs OSError objects as arguments; a handler that keeps LogRecords (pytest's
    log capture does) would keep their tracebacks, hence the Store and its mapped files,
    alive and make the descriptor count meaningless.
    """
    logger = logging.getLogger("t4dm")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _later_writes_fail(store: t4dm_core.Store, model: Model) -> None:
    """After a failure every write API raises StoreFailedError; reads keep working."""
    live = model.order[0] if model.order else None
    attempts = [lambda: store.put_many([Memory("after failure", id="after-failure", vector=[1.0] * DIM)]),
                lambda: store.delete(["after-failure"]), store.flush, lambda: store.compact(full=True)]
    if live is not None:
        attempts += [lambda: store.bump(live, "importance", 1.0), lambda: store.link(live, live)]
    for attempt in attempts:
        with pytest.raises(StoreFailedError):
            attempt()
    assert store.get("after-failure") is None
    if live is not None:
        assert store.get(live) is not None


def _check_recovery(path: Path, ffs: FaultInjectingFS, crash: bool, seed: int, acked: int, end: int,
                    where: str) -> int:
    """Reopen (after a power cut, or with the same file layer) and match a prefix in [acked, end]."""
    if crash:
        ffs.crash()
    else:
        ffs.clear_faults()
    base = replay(seed, acked)
    walker = base.copy()
    ops = [walker.step() for _ in range(end - acked)]
    with t4dm_core.open(path, dim=DIM, fs=None if crash else ffs, options=OPTIONS) as reopened:
        check = {m for o in ops for m in touched(o)} | set(base.order[:50])
        k, _ = match_prefix(reopened, base, ops, check, where)
        reopened.put(Memory("writable again", id="post-recovery", vector=[1.0] * DIM))
        reopened.flush()
    assert acked <= k <= end, f"{where}: acknowledged batches lost ({k} < {acked})"
    return k


def run_case(path: Path, op: str, nth: int, crash: bool) -> str:
    """Run the workload with one injected fault; check stickiness and recovery.

    Returns the message of the StoreFailedError raised ("" if none was raised).
    """
    seed = 17 * nth + len(op)
    ffs = FaultInjectingFS()
    store = t4dm_core.open(path, dim=DIM, fs=ffs, options=OPTIONS)
    model = Model(seed)
    for _ in range(WARMUP_BATCHES):
        execute(store, seed, model.batches, model.step())
    store.flush()
    acked = model.batches
    ffs.fail(op, nth)
    failure = ""
    compaction_failure = ""
    for _ in range(WORKLOAD_BATCHES):
        b = model.batches
        batch = model.plan()
        try:
            durable = execute(store, seed, b, batch)
        except StoreFailedError as exc:
            failure = str(exc)
            break
        except StorageError as exc:
            assert batch[0] == "compact", f"non-sticky StorageError from {batch[0]}"
            durable = False  # a failed compaction leaves the store unchanged and writable
            compaction_failure = compaction_failure or f"compaction failed: {exc}"
        model.apply(batch)
        if durable:
            acked = model.batches
    if failure:
        _later_writes_fail(store, model)
        model.apply(batch)  # the failed batch may or may not have reached the disk
    store.close()
    del store
    _check_recovery(path, ffs, crash, seed, acked, model.batches, f"fault {op}#{nth} crash={crash}")
    return failure or compaction_failure


@pytest.mark.timeout(600)
def test_eio_injection(tmp_path):
    outcomes = {}
    with engine_log() as log:
        gc.collect()
        fds_start = fd_count()
        for i, (op, nth) in enumerate(CASES):
            gc.collect()
            before = fd_count()
            failure = run_case(tmp_path / f"s{i}", op, nth, crash=i % 2 == 0)
            gc.collect()
            leaked = fd_count() - before
            outcomes[(op, nth)] = (failure.split(":")[0], leaked)
            assert leaked == 0, f"{op}#{nth} ({failure}) leaked {leaked} descriptors"
        leaked_total = fd_count() - fds_start
    assert leaked_total == 0
    print(outcomes)
    kinds = {kind for kind, _ in outcomes.values()}
    assert {"WAL write failed", "WAL fsync failed", "flush failed"} <= kinds, kinds
    for (op, nth), (kind, _) in outcomes.items():
        if op == "remove":  # removing obsolete files is best effort: logged, retried, never fatal
            assert kind == "", (op, nth, kind)
        else:
            assert kind, f"injected {op}#{nth} never failed a write"
    assert "could not remove obsolete file" in log.getvalue()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("op,nths", [("write", range(1, 6)), ("sync", range(1, 6)), ("create", range(1, 5)),
                                     ("rename", [1]), ("sync_dir", [1, 2])])
def test_eio_during_compaction(tmp_path, op, nths):
    """A failed compaction either leaves the store unchanged and writable (StorageError) or,
    if its manifest commit failed, is sticky (StoreFailedError); nothing is lost either way."""
    seen = set()
    with engine_log():
        for nth in nths:
            path = tmp_path / f"s{nth}"
            seed = 400 + nth
            ffs = FaultInjectingFS()
            gc.collect()
            before = fd_count()
            store = t4dm_core.open(path, dim=DIM, fs=ffs, options=OPTIONS)
            model = Model(seed)
            while store.stats()["segments"] < 3 or model.batches < 40:
                execute(store, seed, model.batches, model.step())
            acked = model.batches  # sync="full": every batch so far is durable (bumps via the flush below)
            store.flush()
            ffs.fail(op, nth)
            try:
                merged = store.compact(full=True)
                seen.add("ok")
                assert merged
            except StoreFailedError:
                seen.add("sticky")
                _later_writes_fail(store, model)
            except StorageError:
                seen.add("soft")
                assert store.stats()["segments"] >= 3  # unchanged
                store.put(Memory("after failed compaction", id="after", vector=[1.0] * DIM))
                store.delete(["after"])
                assert store.compact(full=True)  # a retry works once the fault has passed
            store.close()
            del store
            gc.collect()
            assert fd_count() == before, f"compaction failure {op}#{nth} leaked descriptors"
            _check_recovery(path, ffs, nth % 2 == 0, seed, acked, acked, f"compaction {op}#{nth}")
    assert seen - {"ok"}, f"no injected {op} fault hit the compaction"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("op", ["create", "write", "sync", "sync_dir", "rename", "truncate"])
def test_failed_open_leaks_nothing(tmp_path, op):
    """An I/O error while opening (recovery, WAL creation) leaves no descriptor or lock behind
    and loses nothing: the next clean open succeeds with all data."""
    path = tmp_path / "s"
    with t4dm_core.open(path, dim=DIM) as store:
        store.put(Memory("kept", id="kept", vector=[1.0] * DIM))
    with path.joinpath(next(p.name for p in path.glob("wal-*.log") if p.stat().st_size > 32)).open("ab") as fh:
        fh.write(b"torn")  # gives recovery a tail to truncate
    with engine_log():
        gc.collect()
        before = fd_count()
        ffs = FaultInjectingFS()
        ffs.fail(op, 1)
        with contextlib.suppress(t4dm_core.StorageError), t4dm_core.open(path, dim=DIM, fs=ffs) as store:
            assert store.get("kept") is not None
        gc.collect()
        assert fd_count() == before
    with t4dm_core.open(path, dim=DIM) as store:
        assert store.get("kept").text == "kept"
