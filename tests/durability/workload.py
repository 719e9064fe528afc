"""Deterministic workload, reference model and state checks shared by the durability tests.

A workload is a numbered sequence of *batches*. Batch ``b`` of seed ``s`` is a pure function
of ``(s, b)`` and the model state after batches ``0..b-1`` (it picks existing ids from that
state), so a writer that restarts at batch ``k`` rebuilds the same model by replaying the
plan of batches ``0..k-1`` without touching the store. Memory contents (text, metadata,
vector) depend only on ``(seed, batch, id)`` and are regenerated when needed.

Kinds of batch: ``put`` (1-20 memories, mostly new ids ``f"b{b}-{i}"``, some new versions of
live ids), ``delete``, ``link``, ``bump`` (buffered learning write), ``flush``, ``compact``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import t4dm_core
from t4dm_core import Memory

DIM = 8
BUMP_DELTAS = (0.25, -0.25, 0.5, 1.0)  # exact in float32: segments store importance as float32
DEFAULT_IMPORTANCE = 0.5


def unit(raw: np.ndarray) -> np.ndarray:
    """Normalise exactly as the engine does (float64 division, then float32)."""
    arr = np.asarray(raw, dtype=np.float64)
    return (arr / float(np.linalg.norm(arr))).astype(np.float32)


def content(seed: int, batch: int, mid: str) -> tuple[str | None, dict[str, Any], np.ndarray]:
    """Text, metadata and raw vector of the version of ``mid`` written by ``batch``."""
    rng = random.Random(f"{seed}/{batch}/{mid}")
    vector = np.array([rng.gauss(0.0, 1.0) for _ in range(DIM)], dtype=np.float64)
    text = None if rng.random() < 0.05 else f"{mid} v{batch} {rng.choice(['alpha', 'βeta', 'gämma ✓'])}"
    metadata: dict[str, Any] = {} if rng.random() < 0.1 else {
        "batch": batch, "id": mid, "tag": rng.choice(["red", "green", "blue"]), "x": rng.random(),
        "n": rng.randint(-1000, 1000), "nested": {"list": [1, "two", None, True], "ok": rng.random() < 0.5},
    }
    return text, metadata, vector


@dataclass
class Model:
    """What the store must contain after a prefix of batches (ids only; contents regenerated)."""

    seed: int
    batches: int = 0  # number of batches applied
    live: dict[str, int] = field(default_factory=dict)  # id -> batch of its current version
    order: list[str] = field(default_factory=list)  # live ids, for O(1) deterministic random choice
    pos: dict[str, int] = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # versions incl. tombstones
    edges: dict[tuple[str, str], float] = field(default_factory=dict)
    bumps: bool = True  # False: the workload has no learning writes (see test_power_loss.py)

    def copy(self) -> Model:
        return Model(self.seed, self.batches, dict(self.live), list(self.order), dict(self.pos),
                     dict(self.importance), dict(self.versions), dict(self.edges), self.bumps)

    def _add(self, mid: str) -> None:
        self.pos[mid] = len(self.order)
        self.order.append(mid)

    def _remove(self, mid: str) -> None:
        i = self.pos.pop(mid)
        last = self.order.pop()
        if last != mid:
            self.order[i] = last
            self.pos[last] = i

    def plan(self) -> tuple[Any, ...]:
        """The next batch (number ``self.batches``) as a plain tuple."""
        b = self.batches
        rng = random.Random(self.seed * 1_000_003 + b)
        roll = rng.random()
        n_live = len(self.order)
        if roll < 0.08 and n_live >= 5:
            return ("delete", sorted({rng.choice(self.order) for _ in range(rng.randint(1, 4))}))
        if roll < 0.16 and n_live >= 2:
            src, dst = rng.sample(self.order, 2)
            return ("link", src, dst, rng.choice([0.5, 1.0, 2.5]))
        if roll < 0.22 and n_live >= 1 and self.bumps:
            return ("bump", rng.choice(self.order), rng.choice(BUMP_DELTAS))
        if roll < 0.25:
            return ("flush",)
        if roll < 0.27:
            return ("compact", rng.random() < 0.3)
        ids: list[str] = []
        for i in range(rng.randint(1, 20)):
            if n_live and rng.random() < 0.1:
                mid = rng.choice(self.order)
                if mid not in ids:
                    ids.append(mid)
            else:
                ids.append(f"b{b}-{i}")
        return ("put", ids)

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "put":
            for mid in op[1]:
                if mid not in self.live:
                    self._add(mid)
                    self.importance[mid] = DEFAULT_IMPORTANCE
                self.live[mid] = self.batches
                self.versions[mid] = self.versions.get(mid, 0) + 1
        elif kind == "delete":
            for mid in op[1]:
                del self.live[mid]
                self._remove(mid)
                self.versions[mid] += 1
                for key in [k for k in self.edges if mid in k]:
                    del self.edges[key]  # a delete removes the memory's edges in the same batch
        elif kind == "link":
            self.edges[(op[1], op[2])] = op[3]
        elif kind == "bump":
            self.importance[op[1]] += op[2]
        self.batches += 1

    def step(self) -> tuple[Any, ...]:
        op = self.plan()
        self.apply(op)
        return op

    def memory(self, mid: str) -> tuple[str | None, dict[str, Any], np.ndarray]:
        """Expected (text, metadata, unit vector) of live ``mid``."""
        text, meta, raw = content(self.seed, self.live[mid], mid)
        return text, meta, unit(raw)


def replay(seed: int, batches: int, *, bumps: bool = True) -> Model:
    """The model after ``batches`` batches."""
    model = Model(seed, bumps=bumps)
    while model.batches < batches:
        model.step()
    return model


def touched(op: tuple[Any, ...]) -> list[str]:
    """Ids whose observable state a batch changes."""
    kind = op[0]
    if kind in ("put", "delete"):
        return list(op[1])
    if kind in ("link", "bump"):
        return [op[1]] + ([op[2]] if kind == "link" else [])
    return []


def execute(store: t4dm_core.Store, seed: int, batch: int, op: tuple[Any, ...]) -> bool:
    """Run batch ``op`` against ``store``. Returns whether it is durable on return (acknowledged).

    ``bump`` is buffered and ``compact`` writes no WAL record, so neither acknowledges
    earlier buffered writes; everything else does.
    """
    kind = op[0]
    if kind == "put":
        mems = []
        for mid in op[1]:
            text, meta, raw = content(seed, batch, mid)
            mems.append(Memory(text, id=mid, vector=raw, metadata=meta))
        store.put_many(mems)
    elif kind == "delete":
        store.delete(op[1])
    elif kind == "link":
        store.link(op[1], op[2], weight=op[3])
    elif kind == "bump":
        store.bump(op[1], "importance", op[2])
        return False
    elif kind == "flush":
        store.flush()
    else:
        store.compact(full=op[1])
        return False
    return True


def diff(store: t4dm_core.Store, model: Model, check_ids: set[str], *, store_ids: set[str] | None = None,
         limit: int = 10) -> list[str]:
    """Differences between ``store`` and ``model`` (empty = equal on everything checked).

    Checks the live id set, the memory count, the full edge set, and for each id in
    ``check_ids`` presence, exact text/metadata/vector, importance and number of versions.
    """
    problems: list[str] = []
    ids = set(store.ids()) if store_ids is None else store_ids
    if ids != model.live.keys():
        extra, missing = sorted(ids - model.live.keys()), sorted(model.live.keys() - ids)
        return [f"id set differs: {len(extra)} extra {extra[:5]}, {len(missing)} missing {missing[:5]}"]
    stats = store.stats()
    if stats["memories"] != len(model.live):
        problems.append(f"stats memories {stats['memories']} != {len(model.live)}")
    if stats["edges"] != len(model.edges):
        problems.append(f"stats edges {stats['edges']} != {len(model.edges)}")
    for src in {s for s, _ in model.edges}:
        got = {(e.dst, e.weight) for e in store.edges(src)}
        want = {(d, w) for (s, d), w in model.edges.items() if s == src}
        if got != want:
            problems.append(f"edges of {src}: {sorted(got)} != {sorted(want)}")
    for mid in sorted(check_ids):
        got = store.get(mid)
        n_versions = len(store.history(mid))
        if n_versions != model.versions.get(mid, 0):
            problems.append(f"{mid}: {n_versions} versions, expected {model.versions.get(mid, 0)}")
        if mid not in model.live:
            if got is not None:
                problems.append(f"{mid}: present but should be absent")
            continue
        if got is None:
            problems.append(f"{mid}: missing")
            continue
        text, meta, vec = model.memory(mid)
        if got.text != text or got.metadata != meta:
            problems.append(f"{mid}: text/metadata {got.text!r} {got.metadata!r} != {text!r} {meta!r}")
        if got.vector is None or not np.array_equal(got.vector, vec):
            problems.append(f"{mid}: vector differs")
        if abs(got.importance - model.importance[mid]) > 1e-6:
            problems.append(f"{mid}: importance {got.importance} != {model.importance[mid]}")
        if len(problems) >= limit:
            break
    return problems[:limit]


def search_problems(store: t4dm_core.Store, model: Model, ids: list[str]) -> list[str]:
    """Each live id's own vector must find it with cosine ~1.0, and its neighbours must match."""
    problems = []
    for mid in ids:
        if mid not in model.live:
            continue
        _, _, vec = model.memory(mid)
        hits = store.search(vec, k=3, ef=256)
        if not any(h.memory.id == mid and h.score > 0.999 for h in hits):
            problems.append(f"search for {mid}'s vector returned {[(h.memory.id, h.score) for h in hits]}")
        want = {d for (s, d) in model.edges if s == mid and d in model.live}
        got = {n.memory.id for n in store.neighbors(mid)}
        if got != want:
            problems.append(f"neighbors({mid}) {sorted(got)} != {sorted(want)}")
    return problems


def match_prefix(store: t4dm_core.Store, base: Model, ops: list[tuple[Any, ...]], check_ids: set[str],
                 where: str) -> tuple[int, Model]:
    """The largest ``k`` such that ``store`` equals ``base`` plus the first ``k - base.batches``
    of ``ops`` (the batches after ``base``, in order); AssertionError if there is none."""
    store_ids = set(store.ids())
    candidate = base.copy()
    best: tuple[int, Model] | None = None
    failures: dict[int, list[str]] = {}
    for k in range(base.batches, base.batches + len(ops) + 1):
        if k > base.batches:
            candidate.apply(ops[k - base.batches - 1])
        if len(candidate.live) != len(store_ids):
            continue
        problems = diff(store, candidate, check_ids, store_ids=store_ids)
        if problems:
            failures[k] = problems
        else:
            best = (k, candidate.copy())
    if best is None:
        detail = failures or {base.batches: diff(store, base, check_ids, store_ids=store_ids)}
        raise AssertionError(f"{where}: recovered state equals no prefix of batches "
                             f"{base.batches}..{base.batches + len(ops)}: {detail}")
    return best
