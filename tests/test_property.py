"""Hypothesis state machine: the store against a plain bitemporal dict model.

Operations: put (batch), delete, link, bump, flush, compact, reopen. After every step,
get / exact search / as_of / neighbours agree with the model, and ANN recall is checked
against exact scoring.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import t4dm_core
from t4dm_core import Memory, Options

DIM = 8
IDS = [f"k{i}" for i in range(12)]
NAMESPACES = ["a", "b"]


@dataclass
class ModelMemory:
    text: str
    vector: np.ndarray
    metadata: dict
    access_count: int = 0


@dataclass
class Model:
    current: dict[tuple[str, str], ModelMemory] = field(default_factory=dict)
    snapshots: list[tuple[float, dict[tuple[str, str], str]]] = field(default_factory=list)
    edges: dict[tuple[str, str, str], float] = field(default_factory=dict)


vectors = st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=DIM, max_size=DIM).filter(
    lambda v: np.linalg.norm(v) > 1e-3)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="t4dm-prop-")
        self.opts = Options(memtable_max_records=7, compaction_min_merge=2, learn_on_read=False)  # reads are pure here
        self.store = t4dm_core.open(self.dir, dim=DIM, options=self.opts)
        self.model = Model()
        self.counter = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _snapshot(self) -> None:
        time.sleep(0.0005)
        self.model.snapshots.append((time.time(), {k: m.text for k, m in self.model.current.items()}))
        time.sleep(0.0005)

    @rule(ns=st.sampled_from(NAMESPACES), ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True),
          vecs=st.lists(vectors, min_size=4, max_size=4), color=st.sampled_from(["red", "blue", "green"]))
    def put(self, ns, ids, vecs, color) -> None:
        batch = []
        for mid, vec in zip(ids, vecs, strict=False):
            self.counter += 1
            text = f"{mid}@{self.counter}"
            batch.append(Memory(text=text, id=mid, namespace=ns, vector=np.array(vec), metadata={"color": color}))
        self.store.put_many(batch)
        for mem in batch:
            prev = self.model.current.get((ns, mem.id))
            v = np.asarray(mem.vector, dtype=np.float64)
            self.model.current[(ns, mem.id)] = ModelMemory(mem.text, (v / np.linalg.norm(v)).astype(np.float32),
                                                           mem.metadata, prev.access_count if prev else 0)
        self._snapshot()

    @rule(ns=st.sampled_from(NAMESPACES), ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=3))
    def delete(self, ns, ids) -> None:
        expected = len({i for i in ids if (ns, i) in self.model.current})
        assert self.store.delete(ids, namespace=ns) == expected
        for mid in ids:
            self.model.current.pop((ns, mid), None)
            for key in [k for k in self.model.edges if k[0] == ns and mid in (k[1], k[2])]:
                del self.model.edges[key]  # deleting a memory removes its edges
        self._snapshot()

    @rule(ns=st.sampled_from(NAMESPACES), src=st.sampled_from(IDS), dst=st.sampled_from(IDS))
    def link(self, ns, src, dst) -> None:
        if (ns, src) in self.model.current and (ns, dst) in self.model.current and src != dst:
            self.store.link(src, dst, namespace=ns)
            self.model.edges[(ns, src, dst)] = 1.0

    @rule(ns=st.sampled_from(NAMESPACES), mid=st.sampled_from(IDS))
    def bump(self, ns, mid) -> None:
        if (ns, mid) in self.model.current:
            self.store.bump(mid, "access_count", 1, namespace=ns)
            self.model.current[(ns, mid)].access_count += 1

    @rule()
    def flush(self) -> None:
        self.store.flush()

    @rule()
    def compact(self) -> None:
        self.store.compact(full=True)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = t4dm_core.open(self.dir, options=self.opts)

    @invariant()
    def gets_agree(self) -> None:
        for ns in NAMESPACES:
            assert sorted(self.store.ids(namespace=ns)) == sorted(i for n, i in self.model.current if n == ns)
        for (ns, mid), mem in self.model.current.items():
            got = self.store.get(mid, namespace=ns)
            assert got is not None and got.text == mem.text and got.metadata == mem.metadata
            assert got.access_count == mem.access_count

    @invariant()
    def exact_search_agrees(self) -> None:
        q = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
        for ns in NAMESPACES:
            members = {mid: m for (n, mid), m in self.model.current.items() if n == ns}
            hits = self.store.search(q, k=len(IDS), namespace=ns, ef=200)
            assert {h.memory.id for h in hits} == set(members)
            for hit in hits:
                assert abs(hit.score - float(members[hit.memory.id].vector @ q)) < 1e-4
            red = {mid for mid, m in members.items() if m.metadata["color"] == "red"}
            assert {h.memory.id for h in self.store.search(q, k=len(IDS), namespace=ns,
                                                           filter={"color": "red"})} == red

    @invariant()
    def as_of_agrees(self) -> None:
        for ts, state in self.model.snapshots[-3:]:
            for (ns, mid), text in state.items():
                got = self.store.get(mid, namespace=ns, as_of=(None, ts))
                assert got is not None and got.text == text
            for ns in NAMESPACES:
                for mid in IDS:
                    if (ns, mid) not in state:
                        assert self.store.get(mid, namespace=ns, as_of=(None, ts)) is None

    @precondition(lambda self: bool(self.model.edges))
    @invariant()
    def neighbours_agree(self) -> None:
        for ns in NAMESPACES:
            for mid in IDS:
                if (ns, mid) not in self.model.current:
                    continue
                expected = {d for (n, s, d) in self.model.edges if n == ns and s == mid}
                assert {x.memory.id for x in self.store.neighbors(mid, namespace=ns)} == expected


TestStoreMachine = StoreMachine.TestCase
