"""Corruption sweeps: a damaged file is reported (CorruptionError naming it) or harmlessly
recovered from; never a wrong answer, a crash, a hang or an untyped exception.

A small store (2 segments with edges and overlays, a retained older manifest, and a WAL tail
of 8 records) is built once. Every mutation is applied to a fresh copy of the directory,
which is then opened for writing (the normal recovery path) and read through get/history/
search/neighbors/edges for every id ever written. Allowed outcomes, per file:

* segment files (records, hnsw, edges, overlays): CorruptionError naming the file (every
  byte is covered by the manifest's hash, so hnswlib and Arrow never see damaged bytes);
* newest manifest: fallback to the retained previous manifest, with identical contents;
* older manifest, older WAL files: ignored, identical contents;
* active WAL: a flipped header byte -> CorruptionError at offset 0; a flipped byte in record i
  with valid records after it -> CorruptionError at that record's offset; a flipped byte in
  the last record, or a truncation anywhere, is a torn tail: the store holds exactly the
  records that are still complete (a prefix), and keeps working after the repair.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import t4dm_core
from t4dm_core import CorruptionError, Memory, Options, T4DMError

DIM = 8
WAL_HEADER = 32
RECORD_HEADER = 24
OPTIONS = Options(memtable_max_records=10_000, auto_compact=False, num_threads=1, learn_on_read=False)
REPAIR_CHECK_EVERY = 7


def _vec(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=DIM)


def fingerprint(store: t4dm_core.Store, all_ids: list[str]) -> dict[str, Any]:
    """Everything observable about ``all_ids`` (layout-independent)."""
    out: dict[str, Any] = {"ids": sorted(store.ids()), "stats": store.stats()["memories"]}
    for mid in all_ids:
        versions = [(m.recorded_at, m.deleted, m.text) for m in store.history(mid)]
        m = store.get(mid)
        if m is None:
            out[mid] = ("absent", versions)
            continue
        hits = store.search(m.vector, k=1, ef=200)
        out[mid] = (m.text, m.metadata, m.vector.tobytes(), round(m.importance, 6), m.access_count, m.recorded_at,
                    m.valid_from, versions, hits[0].memory.id == mid and hits[0].score > 0.999,
                    sorted((n.memory.id, n.hops, n.edge.weight) for n in store.neighbors(mid, hops=2)),
                    sorted((e.src, e.dst, e.type, e.weight) for e in store.edges(mid, direction="both")))
    return out


def build_store(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Create the fixture store. Returns all ids and the fingerprints after each WAL-tail record
    (index j = state with the first j tail records)."""
    rng = np.random.default_rng(7)
    ids: list[str] = []
    with t4dm_core.open(path, dim=DIM, options=OPTIONS) as store:
        def put(n: int, prefix: str) -> None:
            mems = [Memory(f"{prefix} text {i} ✓", id=f"{prefix}{i}", vector=_vec(rng),
                           metadata={"i": i, "p": prefix, "x": float(rng.random()), "l": [i, "s", None]})
                    for i in range(n)]
            store.put_many(mems)
            if prefix in ("a", "b"):
                ids.extend(m.id for m in mems)

        put(40, "a")
        for i in range(0, 30, 3):
            store.link(f"a{i}", f"a{i + 1}", weight=0.5 + i)
        store.bump("a1", "importance", 0.25)
        store.bump("a2", "access_count", 3)
        store.flush()  # segment 1 (records, hnsw, edges, overlays)
        put(30, "b")
        store.put_many([Memory(f"a{i} v2", id=f"a{i}", vector=_vec(rng), metadata={"v": 2}) for i in range(5)])
        store.delete(["a10", "a11", "b3"])
        store.link("b1", "a1", type="cites")
        store.bump("b2", "importance", -0.5)
        store.flush()  # segment 2; the previous manifest is retained
        # The WAL tail: one record per call below (the bump is written with the next call).
        ids += [f"c{i}" for i in range(5)] + ["d0", "e0"]
        snapshots = [fingerprint(store, ids)]
        tail = [
            lambda: put(5, "c"),
            lambda: store.put(Memory("d", id="d0", vector=_vec(rng))),
            lambda: store.link("c0", "d0"),
            lambda: store.bump("c1", "importance", 1.0),
            lambda: store.delete("c2"),
            lambda: store.put(Memory("e", id="e0", vector=_vec(rng))),
            lambda: store.link("e0", "c0", weight=2.0),
            lambda: store.delete(["c3"]),
        ]
        for step in tail:
            step()
            snapshots.append(fingerprint(store, ids))
        # the bump record reaches the file with the following write: state after "bump" alone is
        # never on disk separately from the delete, but the records still map 1:1 to the calls.
        assert store.stats()["segments"] == 2
    return ids, snapshots


def wal_records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record of a well-formed WAL file."""
    out = []
    offset = WAL_HEADER
    while offset + RECORD_HEADER <= len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        out.append((offset, offset + RECORD_HEADER + length))
        offset += RECORD_HEADER + length
    assert offset == len(data)
    return out


class Sweep:
    """Applies mutations to copies of the fixture store and checks the outcome of opening them."""

    def __init__(self, fixture: Path, work: Path, ids: list[str], snapshots: list[dict[str, Any]]) -> None:
        self.fixture = fixture
        self.work = work
        self.ids = ids
        self.snapshots = snapshots
        self.outcomes: dict[str, int] = {}
        self.opens = 0

    def open_copy(self, name: str, mutate: Any) -> tuple[str, Any]:
        """Copy the store, mutate ``name``, open it and read everything.

        Returns ("corrupt", error) or ("ok", fingerprint); other exceptions propagate. Every
        REPAIR_CHECK_EVERY-th successful open also checks that the repaired store keeps
        working: write, flush, reopen (a badly repaired WAL would fail there).
        """
        target = self.work / "copy"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(self.fixture, target)
        mutate(target / name)
        self.opens += 1
        try:
            with t4dm_core.open(target, dim=DIM, options=OPTIONS) as store:
                state = fingerprint(store, self.ids)
                repair_check = self.opens % REPAIR_CHECK_EVERY == 1
                if repair_check:
                    store.put(Memory("after repair", id="zz-after", vector=np.ones(DIM)))
                    store.flush()
            if repair_check:
                with t4dm_core.open(target, dim=DIM, read_only=True) as store:
                    assert store.get("zz-after").text == "after repair"
        except CorruptionError as exc:
            return "corrupt", exc
        return "ok", state

    def check(self, name: str, mutate: Any, label: str, *, expect_state: int | None = None,
              expect_offset: int | None = None, corrupt_only: bool = False) -> None:
        """Open a mutated copy; the outcome must be a CorruptionError naming ``name`` (with
        ``expect_offset`` if given) or a state equal to snapshot ``expect_state``."""
        kind, result = self.open_copy(name, mutate)
        where = f"{name} {label}"
        if kind == "corrupt":
            assert os.path.basename(result.path) == name or name in str(result), f"{where}: {result} names another file"
            assert expect_state is None, f"{where}: expected recovery to snapshot {expect_state}, got {result}"
            if expect_offset is not None:
                assert result.offset == expect_offset, f"{where}: {result} (expected offset {expect_offset})"
        else:
            assert not corrupt_only and expect_offset is None, f"{where}: damage went unnoticed"
            want = self.snapshots[-1 if expect_state is None else expect_state]
            if result != want:
                bad = [k for k in want if result.get(k) != want[k]]
                raise AssertionError(f"{where}: opened with a different state: {bad[:5]}")
        self.outcomes[f"{kind}"] = self.outcomes.get(kind, 0) + 1


def flip(offset: int):
    def mutate(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[offset] ^= 0xFF if offset % 2 else 0x01
        path.write_bytes(bytes(data))
    return mutate


def truncate(length: int):
    def mutate(path: Path) -> None:
        os.truncate(path, length)
    return mutate


def offsets(size: int, rng: random.Random, n: int = 200, head: int = 64) -> list[int]:
    """Every offset of a small file; else the first ``head`` bytes, the last 16 and ``n`` random ones."""
    if size <= head + n:
        return list(range(size))
    return sorted(set(range(head)) | set(range(size - 16, size)) | set(rng.sample(range(size), n)))


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory):
    base = tmp_path_factory.mktemp("corruption")
    ids, snapshots = build_store(base / "store")
    return base, ids, snapshots


def _files(store: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in store.glob(pattern))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["records", "hnsw", "edges", "overlays"])
def test_segment_file_damage_is_reported(fixture_store, tmp_path, kind):
    base, ids, snapshots = fixture_store
    store = base / "store"
    names = _files(store, f"seg-*.{kind}.arrow" if kind != "hnsw" else "seg-*.hnsw")
    assert len(names) == 2, names  # one per segment
    sweep = Sweep(store, tmp_path, ids, snapshots)
    rng = random.Random(kind)
    checked = 0
    for name in names:
        size = (store / name).stat().st_size
        for off in offsets(size, rng):
            sweep.check(name, flip(off), f"flip@{off}", corrupt_only=True)
            checked += 1
        for length in sorted({0, 1, size - 1, *rng.sample(range(size), min(size, 40))}):
            sweep.check(name, truncate(length), f"truncate@{length}", corrupt_only=True)
            checked += 1
        sweep.check(name, lambda p: p.unlink(), "deleted", corrupt_only=True)
        sweep.check(name, lambda p: p.write_bytes(p.read_bytes() + b"\0"), "extended", corrupt_only=True)
    assert sweep.outcomes == {"corrupt": checked + 2 * len(names)}
    print(f"{kind}: {sweep.outcomes['corrupt']} damaged copies of {names}, all reported")


@pytest.mark.timeout(900)
def test_manifest_damage_falls_back(fixture_store, tmp_path):
    base, ids, snapshots = fixture_store
    store = base / "store"
    manifests = _files(store, "MANIFEST-*.json")
    assert len(manifests) == 2, manifests  # newest + the retained previous one
    sweep = Sweep(store, tmp_path, ids, snapshots)
    rng = random.Random(3)
    for name in manifests:
        size = (store / name).stat().st_size
        for off in offsets(size, rng, n=200 if name == manifests[-1] else 40):
            sweep.check(name, flip(off), f"flip@{off}")
        for length in sorted({0, 1, size - 1, *rng.sample(range(size), 40)}):
            sweep.check(name, truncate(length), f"truncate@{length}")
    sweep.check(manifests[-1], lambda p: p.write_bytes(b""), "zero bytes")
    sweep.check(manifests[-1], lambda p: p.unlink(), "deleted")
    assert set(sweep.outcomes) == {"ok"}, sweep.outcomes  # every damaged manifest was recovered from
    print(f"manifests {manifests}: {sweep.outcomes}")


@pytest.mark.timeout(900)
def test_wal_damage(fixture_store, tmp_path):
    base, ids, snapshots = fixture_store
    store = base / "store"
    wals = {name: (store / name).read_bytes() for name in _files(store, "wal-*.log")}
    active = max(name for name, data in wals.items() if len(data) > WAL_HEADER)
    records = wal_records(wals[active])
    assert len(records) == len(snapshots) - 1, (len(records), len(snapshots))
    sweep = Sweep(store, tmp_path, ids, snapshots)
    rng = random.Random(5)
    size = len(wals[active])

    def complete(length: int) -> int:
        return sum(1 for _, end in records if end <= length)

    # (a) flips: header -> error at 0; a middle record -> error at its offset; last record -> torn tail
    flips = set(range(WAL_HEADER)) | {s + i for s, _ in records for i in range(RECORD_HEADER)}
    flips |= set(rng.sample(range(size), 200))
    for off in sorted(flips):
        if off < WAL_HEADER:
            sweep.check(active, flip(off), f"flip@{off}", expect_offset=0)
            continue
        index = next(i for i, (s, e) in enumerate(records) if s <= off < e)
        if index == len(records) - 1:
            sweep.check(active, flip(off), f"flip@{off} (last record)", expect_state=index)
        else:
            sweep.check(active, flip(off), f"flip@{off} (record {index})", expect_offset=records[index][0])
    # (b) truncation: every length within the last 3 records, some before: the complete-record prefix
    lengths = set(range(records[-3][0], size + 1)) | set(rng.sample(range(records[-3][0]), 40)) | {0, 8, 31, 32}
    for length in sorted(lengths):
        sweep.check(active, truncate(length), f"truncate@{length}", expect_state=complete(length))
    # (c) garbage appended after the last record is a torn tail, as is a zero-filled tail
    sweep.check(active, lambda p: p.write_bytes(p.read_bytes() + os.urandom(40)), "junk tail",
                expect_state=len(records))
    sweep.check(active, lambda p: p.write_bytes(p.read_bytes() + bytes(4096)), "zero tail",
                expect_state=len(records))
    # (d) older WAL files are not needed by the newest manifest: damage there changes nothing
    for name in sorted(set(wals) - {active}):
        for off in offsets(len(wals[name]), rng, n=20):
            sweep.check(name, flip(off), f"flip@{off} (older WAL)")
        sweep.check(name, truncate(0), "truncate@0 (older WAL)")
    print(f"WAL {active}: {len(records)} records, {size} bytes, outcomes {sweep.outcomes}")


@pytest.mark.timeout(300)
def test_no_untyped_errors_from_random_multi_byte_damage(fixture_store, tmp_path):
    """Several random flips at once in random files: only CorruptionError or a correct state."""
    base, ids, snapshots = fixture_store
    store = base / "store"
    names = sorted(p.name for p in store.iterdir() if p.name != "LOCK")
    rng = random.Random(11)
    sweep = Sweep(store, tmp_path, ids, snapshots)
    for trial in range(60):
        name = rng.choice(names)
        size = (store / name).stat().st_size
        picks = rng.sample(range(size), min(size, 4))

        def mutate(path: Path, picks: list[int] = picks) -> None:
            data = bytearray(path.read_bytes())
            for off in picks:
                data[off] = rng.randrange(256)
            path.write_bytes(bytes(data))

        try:
            kind, result = sweep.open_copy(name, mutate)
        except T4DMError as exc:  # pragma: no cover - reported with context below
            raise AssertionError(f"trial {trial}: {name} damaged at {picks}: {exc!r}") from exc
        if kind == "corrupt":
            assert os.path.basename(result.path) == name or name in str(result)
        else:  # a torn WAL tail loses a suffix of records; anything else must be the full state
            assert result in snapshots, f"trial {trial}: {name} damaged at {picks}: wrong state"


@pytest.mark.timeout(300)
def test_manifest_fallback_after_compaction(tmp_path):
    """The newest manifest is a compaction's: damaging it falls back to the pre-compaction
    segments (retained on disk), with identical contents."""
    path = tmp_path / "store"
    ids, _ = build_store(path)
    with t4dm_core.open(path, dim=DIM, options=OPTIONS) as store:
        assert store.compact(full=True)
        assert store.stats()["segments"] == 1
        expected = fingerprint(store, ids)
    newest = _files(path, "MANIFEST-*.json")[-1]
    sweep = Sweep(path, tmp_path, ids, [expected])
    size = (path / newest).stat().st_size
    for label, mutate in [("zero bytes", truncate(0)), ("half", truncate(size // 2)), ("flip", flip(size // 2)),
                          ("flip hash", flip(size - 5))]:
        sweep.check(newest, mutate, label)
    assert sweep.outcomes == {"ok": 4}
