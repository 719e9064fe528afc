"""Sleep = compaction with consolidation semantics: NREM, REM, PRUNE, provenance, time travel."""

from __future__ import annotations

import time

import numpy as np
import pytest

import t4dm_core
from t4dm_core import Memory, Options, SleepPolicy

DIM = 16
QUIET = Options(learn_on_read=False, lability_window=0)


def basis(i: int, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    if jitter:
        v += jitter * np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v


def no_prune_no_rem(**kw) -> SleepPolicy:
    return SleepPolicy(prune=False, rem=False, **kw)


@pytest.fixture
def store(tmp_path):
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=QUIET) as s:
        yield s


def test_nrem_replay_raises_kappa_and_stdp_follows_time_order(store) -> None:
    store.write(put=[Memory(text="wake up", id="a", vector=basis(0), valid_from=100.0),
                     Memory(text="coffee", id="b", vector=basis(1), valid_from=200.0),
                     Memory(text="commute", id="c", vector=basis(2), valid_from=300.0)],
                link=[t4dm_core.Edge("a", "b", "next", 0.5), t4dm_core.Edge("c", "b", "next", 0.5)])
    report = store.sleep(policy=no_prune_no_rem())
    assert report.replayed == 3 and report.stdp_edges == 2
    assert all(store.get(m).kappa == pytest.approx(0.1) for m in "abc")
    weights = {(e.src, e.dst): e.weight for m in "ac" for e in store.edges(m)}
    assert weights[("a", "b")] == pytest.approx(0.5 + 0.05 * 0.5)  # pre before post: potentiated
    assert weights[("c", "b")] == pytest.approx(0.5 - 0.05 * 0.5)  # post before pre: depressed
    store.sleep(policy=no_prune_no_rem())
    assert store.get("a").kappa == pytest.approx(0.1 + 0.1 * 0.9)  # κ approaches 1


def test_near_duplicates_merge_with_provenance_and_time_travel(store) -> None:
    store.put_many([Memory(text="user likes tea", id="t1", vector=basis(3), importance=0.2, metadata={"u": 1}),
                    Memory(text="user likes tea", id="t2", vector=basis(5), importance=0.9, metadata={"u": 1}),
                    Memory(text="The user likes tea.", id="t3", vector=basis(3, 0.01, seed=1), metadata={"u": 1}),
                    Memory(text="user likes tea", id="other-user", vector=basis(3), metadata={"u": 2}),
                    Memory(text="user owns a bike", id="bike", vector=basis(7))])
    store.link("t1", "bike", type="about")
    before = time.time()
    report = store.sleep(policy=no_prune_no_rem())
    assert report.merged == {("default", "t2"): [("default", "t3"), ("default", "t1")]}  # most important survives
    survivor = store.get("t2")
    assert [p["id"] for p in survivor.metadata["_t4dm_merged_from"]] == ["t3", "t1"]
    assert survivor.importance == pytest.approx(0.9)
    assert store.get("t1") is None and store.get("t3") is None
    assert [(e.dst, e.type) for e in store.edges("t2")] == [("bike", "about")]  # edges move to the survivor
    assert "merged by" in store.why_forgotten("t1") and "'t2'" in store.why_forgotten("t1")
    assert store.get("t1", as_of=before).text == "user likes tea"  # reversible in time
    assert store.get("t2", as_of=before).metadata == {"u": 1}
    assert store.why_forgotten("bike") is None
    assert store.get("other-user") is not None  # equal text, different metadata: never merged


def test_rem_builds_prototypes_with_abstracts_edges_once(store) -> None:
    rng = np.random.default_rng(7)
    memories = []
    for cluster in range(2):
        center = basis(cluster * 4)
        for j in range(8):
            v = center + 0.15 * rng.normal(size=DIM).astype(np.float32)
            memories.append(Memory(text=f"cluster {cluster} episode {j}", id=f"c{cluster}-{j}", vector=v))
    store.put_many(memories)
    policy = SleepPolicy(prune=False, dedupe_similarity=1.0, rem_min_cluster_size=4)
    report = store.sleep(policy=policy)
    assert len(report.prototypes) == 2
    for (ns, pid), members in report.prototypes.items():
        proto = store.get(pid, namespace=ns)
        assert proto.kappa == 1.0 and proto.metadata["_t4dm_kind"] == "prototype"
        assert "summary of" in proto.text
        assert {e.dst for e in store.edges(pid) if e.type == "abstracts"} == {m for _, m in members}
        clusters = {m.split("-")[0] for _, m in members}
        assert len(clusters) == 1  # a prototype abstracts one cluster
    again = store.sleep(policy=policy)
    assert again.prototypes == {}  # members already abstracted are not clustered again


def test_prune_forgets_weak_unpinned_memories_and_explains(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(lability_window=0)) as s:
        s.put_many([Memory(text="used", id="used", vector=basis(0)), Memory(text="idle", id="idle", vector=basis(1)),
                    Memory(text="pinned", id="pin", vector=basis(2), pinned=True)])
        s.link("idle", "used", type="co_retrieved", weight=0.05)
        time.sleep(0.2)
        s.search(basis(0), k=1)  # learning on read: "used" was just retrieved
        before = time.time()
        policy = SleepPolicy(rem=False, half_life_days=1e-7, min_idle_days=0.0, edge_forget_below=0.5)
        report = s.sleep(policy=policy)
        assert set(report.forgotten) == {("default", "idle")}
        assert s.get("idle") is None and s.get("used") is not None and s.get("pin") is not None
        reason = s.why_forgotten("idle")
        assert reason.startswith("forgotten by sleep-") and "0 retrievals" in reason and "idle" in reason
        assert s.get("idle", as_of=before).text == "idle"
        assert s.edges("used", direction="both") == []


def test_sleep_leaves_memories_changed_during_planning_alone(store) -> None:
    store.put_many([Memory(text="same", id="x1", vector=basis(0)), Memory(text="same", id="x2", vector=basis(0))])

    def interfere(phase: str, done: int, total: int) -> None:
        if done == total:  # planning finished, nothing applied yet
            store.put(Memory(text="x1 rewritten meanwhile", id="x1", vector=basis(9)))

    report = store.sleep(policy=no_prune_no_rem(), progress=interfere)
    assert store.sleep(policy=no_prune_no_rem(), progress=True).merged == {}  # a tqdm bar, nothing left to merge
    assert report.merged == {} and ("default", "x1") in report.skipped
    assert store.get("x1").text == "x1 rewritten meanwhile" and store.get("x2") is not None


def test_background_sleep_and_log_namespace(store) -> None:
    store.put_many([Memory(text="dup", id="d1", vector=basis(0)), Memory(text="dup", id="d2", vector=basis(0))])
    future = store.sleep(policy=no_prune_no_rem(), background=True)
    report = future.result(timeout=60)
    assert report.compacted in (True, False) and report.sleep_id is not None
    assert "_t4dm_sleep" in store.namespaces()
    assert store.sleep(policy=no_prune_no_rem()).merged == {}  # nothing left to merge; the log is not consolidated


@pytest.mark.parametrize("bad", [{"kappa_step": 2.0}, {"half_life_days": 0.0}, {"rem_min_cluster_size": 1},
                                 {"dedupe_similarity": 1.5}, {"edge_decay": -0.1}])
def test_bad_policies_raise(bad) -> None:
    with pytest.raises(t4dm_core.InvalidInputError):
        SleepPolicy(**bad)


def test_scheduler_sleeps_after_writes_and_when_idle(tmp_path) -> None:
    dup = [Memory(text="same", id=f"s{i}", vector=basis(0)) for i in range(3)]
    opts = Options(learn_on_read=False, sleep_after_writes=3, sleep_policy=no_prune_no_rem(compact=False))
    with t4dm_core.open(tmp_path / "a", dim=DIM, options=opts) as s:
        s.put_many(dup)
        deadline = time.time() + 20
        while time.time() < deadline and s.get("s1") is not None:
            time.sleep(0.05)
        assert s.get("s1") is None and s.get("s2") is None and s.get("s0") is not None
        assert s.background_error is None
    idle = Options(learn_on_read=False, sleep_when_idle=0.3, sleep_policy=no_prune_no_rem(compact=False))
    with t4dm_core.open(tmp_path / "b", dim=DIM, options=idle) as s:
        s.put_many(dup)
        deadline = time.time() + 20
        while time.time() < deadline and not s.find(namespace="_t4dm_sleep"):
            time.sleep(0.05)
        assert len(s.find(namespace="_t4dm_sleep")) == 1
        time.sleep(1.0)
        assert len(s.find(namespace="_t4dm_sleep")) == 1  # its own writes do not trigger another sleep


def test_conversation_ingestion_links_turns_in_order(store) -> None:
    turns = [("user", "I moved to Lisbon last month"), ("assistant", "Nice! How do you like it?"),
             ("user", "Love it, but I miss snow")]
    ids = store.add_conversation("sess-1", turns, vectors=[basis(i) for i in range(3)])
    assert ids == ["sess-1/000000", "sess-1/000001", "sess-1/000002"]
    first = store.get(ids[0])
    assert first.text == "I moved to Lisbon last month"
    assert first.metadata == {"session": "sess-1", "turn": 0, "role": "user"}
    assert [n.memory.id for n in store.neighbors(ids[1], type="next")] == [ids[2]]
    assert [n.memory.id for n in store.neighbors(ids[1], type="prev")] == [ids[0]]
    more = store.add_conversation("sess-1", [("assistant", "Snow is overrated")], vectors=[basis(4)])
    assert more == ["sess-1/000003"]
    assert [n.memory.id for n in store.neighbors(ids[2], type="next")] == more
    with pytest.raises(t4dm_core.InvalidInputError):
        store.add_conversation("sess-1", [("user", 42)], vectors=[basis(5)])
    assert len(store.find({"session": "sess-1"})) == 4
    store.delete(more[0])
    again = store.add_conversation("sess-1", [("user", "back again")], vectors=[basis(6)])
    assert again == ["sess-1/000004"]  # a deleted turn's id is never reused
    assert [v.text for v in store.history(again[0])] == ["back again"]


def test_merges_repoint_edges_between_merged_groups_and_survivors_are_not_pruned(store) -> None:
    store.put_many([Memory(text="a", id="a1", vector=basis(0), importance=0.1),
                    Memory(text="a", id="s1", vector=basis(0), importance=0.9),
                    Memory(text="b", id="b1", vector=basis(1), importance=0.1),
                    Memory(text="b", id="s2", vector=basis(1), importance=0.9)])
    store.link("a1", "b1", type="rel", weight=0.7)
    report = store.sleep(policy=SleepPolicy(rem=False, half_life_days=1e-7, min_idle_days=0.0, forget_below=100.0))
    assert set(report.merged) == {("default", "s1"), ("default", "s2")}
    assert [(e.src, e.dst, e.weight) for e in store.edges("s1")] == [("s1", "s2", pytest.approx(0.7))]
    assert store.get("s1") is not None and store.get("s2") is not None  # just rewritten: not judged this sleep


def test_sleep_never_recreates_an_edge_removed_while_it_was_planning(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=QUIET) as s:
        s.put_many([Memory(text="a", id="a", vector=basis(0), valid_from=1.0),
                    Memory(text="b", id="b", vector=basis(1), valid_from=2.0)])
        s.link("a", "b", type="next", weight=0.5)
        s.link("a", "b", type="co_retrieved", weight=0.5)

        def interfere(phase: str, done: int, total: int) -> None:
            if done == total:
                s.unlink("a", "b", type="next")
                s.unlink("a", "b", type="co_retrieved")

        s.sleep(policy=no_prune_no_rem(), progress=interfere)
        assert s.edges("a") == []


def test_close_waits_for_a_background_sleep(tmp_path) -> None:
    s = t4dm_core.open(tmp_path / "s", dim=DIM, options=QUIET)
    s.put_many([Memory(text=f"m{i}", id=f"m{i}", vector=basis(i % DIM, 0.05, seed=i)) for i in range(200)])
    future = s.sleep(policy=SleepPolicy(prune=False, rem_min_cluster_size=3), background=True)
    s.close()
    assert future.done() and future.exception() is None
