"""Learning writes recorded by reads (access counts, co-retrieval edges) and reconsolidation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import t4dm_core
from t4dm_core import Memory, Options
from tests.helpers import DIM, unit

CO = "co_retrieved"


def basis(i: int, dim: int = DIM) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def near(i: int, j: int, weight: float = 0.3) -> np.ndarray:
    return basis(i) + weight * basis(j)


@pytest.fixture
def store(tmp_path):
    with t4dm_core.open(tmp_path / "s", dim=DIM) as s:
        s.put_many([Memory(text=f"m{i}", id=f"m{i}", vector=near(0, i + 1)) for i in range(4)])
        s.put(Memory(text="far", id="far", vector=basis(10)))
        yield s


def test_search_counts_accesses_and_links_co_retrieved_hits(store) -> None:
    hits = store.search(basis(0), k=3)
    top = [h.id for h in hits]
    for mid in top:
        m = store.get(mid)
        assert m.access_count == 1 and m.last_accessed is not None
    assert store.get("far").access_count == 0 and store.get("far").last_accessed is None
    edges = {(e.src, e.dst): e.weight for mid in top for e in store.edges(mid, direction="both") if e.type == CO}
    assert len(edges) == 3  # every pair of the three hits, once
    assert all(w == pytest.approx(0.05) for w in edges.values())
    store.search(basis(0), k=3)
    a, b = sorted(top[:2])
    (w,) = [e.weight for e in store.edges(a) if e.dst == b and e.type == CO]
    assert w == pytest.approx(0.05 + 0.05 * 0.95)  # bounded Hebbian: w += rate * (1 - w)
    assert store.get(top[0]).access_count == 2


def test_hebbian_weights_saturate_below_one(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(hebbian_rate=0.5)) as s:
        s.put_many([Memory(text="a", id="a", vector=near(0, 1)), Memory(text="b", id="b", vector=near(0, 2))])
        for _ in range(30):
            s.search(basis(0), k=2)
        (edge,) = s.edges("a", direction="both")
        assert 0.99 < edge.weight <= 1.0


def test_learning_on_read_is_durable_and_can_be_turned_off(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM) as s:
        s.put(Memory(text="x", id="x", vector=basis(0)))
        s.search(basis(0), k=1)
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(learn_on_read=False)) as s:
        assert s.get("x").access_count == 1 and s.get("x").last_accessed is not None  # survived close/reopen
        s.search(basis(0), k=1)
        assert s.get("x").access_count == 1
        s.search(basis(0), k=1, learn=True)  # per-call override
        assert s.get("x").access_count == 2
    with t4dm_core.open(tmp_path / "s", dim=DIM) as s:
        s.search(basis(0), k=1, learn=False)
        assert s.get("x").access_count == 2
    with t4dm_core.open(tmp_path / "s", read_only=True) as r:
        r.search(basis(0), k=1)  # a reader records nothing (and does not fail)
        assert r.get("x").access_count == 2


def test_as_of_searches_do_not_learn(store) -> None:
    t = store.get("m0").recorded_at
    store.search(basis(0), k=2, as_of=t + 1e-3)
    assert store.get("m0").access_count == 0


def test_learning_waits_when_a_writer_holds_the_lock_and_is_applied_later(store) -> None:
    """A search never blocks on the write lock; its learning writes are applied by a later call."""
    held, release = threading.Event(), threading.Event()

    def writer_holding_lock() -> None:
        with store._write_mutex:  # white-box: simulate a long write in progress
            held.set()
            release.wait(5)

    t = threading.Thread(target=writer_holding_lock)
    t.start()
    held.wait(5)
    hits = store.search(basis(0), k=1)  # returns although the writer holds the lock
    assert store.get(hits[0].id).access_count == 0  # not applied yet
    release.set()
    t.join()
    store.put(Memory(text="later", id="later", vector=basis(12)))  # the next write applies the queue
    assert store.get(hits[0].id).access_count == 1


def test_reconsolidation_turns_a_near_repeat_of_a_labile_memory_into_a_new_version(store) -> None:
    store.search(basis(0), k=1)  # m? becomes labile
    target = store.search(basis(0), k=1)[0].id
    before = store.get(target)
    new_id = store.put(Memory(text="updated fact", vector=before.vector + 0.01 * unit(np.random.default_rng(1))))
    assert new_id == target
    assert [v.text for v in store.history(target)] == [before.text, "updated fact"]
    far_id = store.put(Memory(text="a different fact", vector=basis(13)))
    assert far_id != target and store.get(far_id).text == "a different fact"
    explicit = store.put(Memory(text="explicit id is never redirected", id="own", vector=before.vector))
    assert explicit == "own"


def test_reconsolidation_respects_window_namespace_and_batch(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(lability_window=0)) as s:
        s.put(Memory(text="a", id="a", vector=basis(0)))
        s.search(basis(0), k=1)
        assert s.put(Memory(text="again", vector=basis(0))) != "a"  # reconsolidation off
    with t4dm_core.open(tmp_path / "t", dim=DIM) as s:
        s.put(Memory(text="a", id="a", vector=basis(0)))
        s.search(basis(0), k=1)
        assert s.put(Memory(text="other ns", vector=basis(0), namespace="n2")) != "a"
        ids = s.put_many([Memory(text="v2", vector=basis(0)), Memory(text="v3", vector=basis(0))])
        assert ids[0] == "a" and ids[1] != "a"  # one labile memory absorbs one update per batch
