"""Behaviour of the store through its public API."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import t4dm_core
from t4dm_core import Memory, Options
from tests.helpers import DIM, memories, unit


def test_put_get_roundtrip_exact(store, rng) -> None:
    meta = {"s": "x", "n": 1, "f": 1.5, "b": True, "z": None, "l": [1, "a", {"k": [2]}], "d": {"e": {"f": 1}}}
    vec = unit(rng)
    mid = store.put(Memory(text="hello", id="h", vector=vec, metadata=meta, importance=0.9, pinned=True))
    got = store.get(mid)
    assert got is not None
    assert (got.text, got.metadata, got.importance, got.pinned) == ("hello", meta, pytest.approx(0.9), True)
    np.testing.assert_allclose(got.vector, vec, rtol=1e-6)
    store.flush()
    again = store.get(mid)
    assert again is not None and again.metadata == meta and type(again.metadata["n"]) is int
    np.testing.assert_allclose(again.vector, vec, rtol=1e-6)


def test_returned_metadata_is_a_copy(store, rng) -> None:
    meta = {"list": [1]}
    store.put(Memory(text="x", id="x", vector=unit(rng), metadata=meta))
    meta["list"].append(2)  # caller mutates its own dict
    got = store.get("x")
    assert got is not None and got.metadata == {"list": [1]}
    got.metadata["list"].append(3)
    assert store.get("x").metadata == {"list": [1]}


def test_auto_ids_and_order(store, rng) -> None:
    ids = store.put_many([Memory(text=str(i), vector=unit(rng)) for i in range(5)])
    assert len(set(ids)) == 5
    assert [m.text for m in store.get_many(ids)] == ["0", "1", "2", "3", "4"]


def test_update_creates_version_not_loss(store, rng) -> None:
    store.put(Memory(text="v1", id="a", vector=unit(rng), metadata={"v": 1}))
    t_between = time.time()
    time.sleep(0.002)
    store.put(Memory(text="v2", id="a", vector=unit(rng), metadata={"v": 2}))
    assert store.get("a").text == "v2"
    history = store.history("a")
    assert [m.text for m in history] == ["v1", "v2"]
    assert history[0].superseded_at == history[1].recorded_at
    assert history[1].superseded_at is None
    assert store.get("a", as_of=(None, t_between)).text == "v1"
    assert len(store.ids()) == 1


def test_delete_is_tombstone(store, rng) -> None:
    store.put_many(memories(rng, 5))
    t_before = time.time()
    time.sleep(0.002)
    assert store.delete(["m1", "m2", "missing"]) == 2
    assert store.delete("m1") == 0
    assert store.get("m1") is None
    assert "m1" not in {h.memory.id for h in store.search(unit(rng), k=10)}
    assert store.get("m1", as_of=t_before).text == "m 1"
    assert [m.deleted for m in store.history("m1")] == [False, True]
    store.flush()
    assert store.get("m1") is None and store.get("m1", as_of=t_before) is not None


def test_superseded_versions_never_leak_into_search(store, rng) -> None:
    target = unit(rng)
    store.put(Memory(text="old", id="a", vector=target))
    store.flush()  # old version now lives in a segment's HNSW
    store.put(Memory(text="new", id="a", vector=unit(rng)))
    hits = store.search(target, k=5)
    assert [h.memory.text for h in hits if h.memory.id == "a"] == ["new"]
    store.flush()
    store.compact(full=True)
    hits = store.search(target, k=5)
    assert [h.memory.text for h in hits if h.memory.id == "a"] == ["new"]
    assert store.search(target, k=1, as_of=store.history("a")[0].recorded_at)[0].memory.text == "old"


def test_valid_time_vs_transaction_time(store, rng) -> None:
    store.put(Memory(text="lives in Paris", id="city", vector=unit(rng), valid_from=100.0, valid_to=200.0))
    store.put(Memory(text="lives in Rome", id="city2", vector=unit(rng), valid_from=200.0))
    now = time.time()
    assert store.get("city", as_of=(150.0, now)).text == "lives in Paris"
    assert store.get("city", as_of=(250.0, now)) is None
    assert store.get("city2", as_of=(250.0, now)).text == "lives in Rome"
    assert store.get("city", as_of=(150.0, 1.0)) is None  # the store did not know it yet
    ids_at_150 = {h.memory.id for h in store.search(unit(rng), k=10, as_of=(150.0, now))}
    assert ids_at_150 == {"city"}


def test_an_update_overrides_the_past_only_over_its_own_valid_range(store, rng) -> None:
    store.put(Memory(text="likes tea", id="drink", vector=unit(rng), valid_from=100.0))
    store.put(Memory(text="likes coffee", id="drink", vector=unit(rng), valid_from=300.0))  # in place, later
    store.put(Memory(text="owns a cat", id="pet", vector=unit(rng), valid_from=100.0))
    store.put(Memory(text="owns a dog", id="pet", vector=unit(rng), valid_from=50.0))  # a correction of all time
    assert store.get("drink").text == "likes coffee"
    assert store.get("drink", as_of=(200.0, None)).text == "likes tea"  # what we now believe held at 200
    assert store.get("drink", as_of=(400.0, None)).text == "likes coffee"
    assert store.get("drink", as_of=(50.0, None)) is None  # before either began
    assert store.get("pet", as_of=(200.0, None)).text == "owns a dog"  # the newer version covers 200 too
    assert {m.text for m in store.find(as_of=(200.0, None))} == {"likes tea", "owns a dog"}
    assert {h.memory.text for h in store.search(unit(rng), k=5, as_of=(200.0, None))} == {"likes tea", "owns a dog"}
    store.delete("drink")
    assert store.get("drink", as_of=(200.0, None)) is None  # a delete retracts every earlier version
    assert store.get("drink", as_of=(200.0, store.history("drink")[-2].recorded_at)).text == "likes tea"


def test_namespaces_isolate(store, rng) -> None:
    shared = unit(rng)
    store.put(Memory(text="tenant a", id="x", namespace="a", vector=shared))
    store.put(Memory(text="tenant b", id="x", namespace="b", vector=shared))
    store.put(Memory(text="tenant b2", id="y", namespace="b", vector=unit(rng)))
    store.link("x", "y", namespace="b")
    for _ in range(2):
        assert [h.memory.text for h in store.search(shared, k=10, namespace="a")] == ["tenant a"]
        assert {h.memory.namespace for h in store.search(shared, k=10, namespace="b")} == {"b"}
        assert store.neighbors("x", namespace="a") == []
        assert [n.memory.id for n in store.neighbors("x", namespace="b")] == ["y"]
        assert store.search(shared, namespace="nobody") == []
        store.flush()
    assert store.namespaces() == ["a", "b"]


def test_graph_neighbors_hops_types_direction(store, rng) -> None:
    store.put_many(memories(rng, 6))
    store.link("m0", "m1", type="next")
    store.link("m1", "m2", type="next")
    store.link("m2", "m3", type="next")
    store.link("m0", "m4", type="about", weight=0.5)
    store.link("m5", "m0", type="about")
    assert [(n.memory.id, n.hops) for n in store.neighbors("m0")] == [("m1", 1), ("m4", 1)]
    assert [n.memory.id for n in store.neighbors("m0", hops=3, type="next")] == ["m1", "m2", "m3"]
    assert [n.memory.id for n in store.neighbors("m0", direction="in")] == ["m5"]
    assert {n.memory.id for n in store.neighbors("m0", direction="both")} == {"m1", "m4", "m5"}
    assert store.neighbors("m0", type="about")[0].edge.weight == 0.5
    store.delete("m1")
    assert [n.memory.id for n in store.neighbors("m0", hops=3, type="next")] == []
    assert store.unlink("m0", "m4", type="about") is True
    assert store.unlink("m0", "m4", type="about") is False
    store.flush()
    assert [n.memory.id for n in store.neighbors("m0", direction="both")] == ["m5"]


def test_learning_writes_overlay(store, rng) -> None:
    store.put_many(memories(rng, 3))
    store.bump("m0", "access_count", 1)
    store.bump("m0", "access_count", 2)
    store.bump("m0", "kappa", 0.7)
    store.bump("m0", "kappa", 0.7)  # clamped to 1
    store.strengthen("m0", "m1", 0.25)
    store.strengthen("m0", "m1", 0.25)
    m = store.get("m0")
    assert (m.access_count, m.kappa) == (3, 1.0)
    assert store.edges("m0")[0].weight == pytest.approx(0.5)
    store.put(Memory(text="m 0 updated", id="m0", vector=unit(rng)))  # new version inherits counters
    assert store.get("m0").access_count == 3
    store.flush()
    store.bump("m0", "access_count", 1)
    store.flush()
    store.compact(full=True)
    assert store.get("m0").access_count == 4
    assert store.edges("m0")[0].weight == pytest.approx(0.5)


def test_persistence_across_reopen(tmp_path, rng) -> None:
    path = tmp_path / "s"
    with t4dm_core.open(path, dim=DIM, options=Options(memtable_max_records=40, learn_on_read=False)) as s:
        s.put_many(memories(rng, 100))  # > memtable size: flushes happen during the batch loop below
        for i in range(0, 100, 10):
            s.put(Memory(text=f"upd {i}", id=f"m{i}", vector=unit(rng)))
        s.delete(["m1", "m3"])
        s.link("m2", "m4")
        s.bump("m2", "importance", 0.25)
        expected = {mid: s.get(mid) for mid in s.ids()}
        q = unit(rng)
        before = [(h.memory.id, round(h.score, 5)) for h in s.search(q, k=10, ef=200)]
    with t4dm_core.open(path, options=Options(learn_on_read=False)) as s:
        assert {mid: s.get(mid) for mid in s.ids()} == expected
        assert [(h.memory.id, round(h.score, 5)) for h in s.search(q, k=10, ef=200)] == before
        assert [n.memory.id for n in s.neighbors("m2")] == ["m4"]
        assert s.get("m2").importance == pytest.approx(0.75)
        assert len(s.history("m0")) == 2


def test_flush_and_compaction_preserve_answers(tmp_path, rng) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(auto_compact=False)) as s:
        for batch in range(6):
            s.put_many(memories(rng, 50, prefix=f"b{batch}-"))
            s.flush()
        s.delete([f"b0-{i}" for i in range(10)])
        queries = [unit(rng) for _ in range(5)]
        flt = {"group": {"$in": [1, 2]}, "tag": {"$ne": "t0"}}
        before = [[h.memory.id for h in s.search(q, k=10, filter=flt)] for q in queries]
        stats = s.stats()
        assert stats["segments"] == 6
        assert s.compact() is True  # size-tiered: 6 similar segments >= min_merge
        assert s.stats()["segments"] < 6
        s.compact(full=True)
        assert s.stats()["segments"] == 1
        after = [[h.memory.id for h in s.search(q, k=10, filter=flt)] for q in queries]
        assert after == before


def test_ann_recall_against_exact(tmp_path) -> None:
    rng = np.random.default_rng(7)
    n, dim = 3000, 32
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with t4dm_core.open(tmp_path / "s", dim=dim) as s:
        s.put_many([Memory(text=str(i), id=str(i), vector=v) for i, v in enumerate(vecs)])
        s.flush()
        recalls = []
        for _ in range(50):
            q = rng.normal(size=dim).astype(np.float32)
            q /= np.linalg.norm(q)
            exact = set(np.argsort(-(vecs @ q))[:10].astype(str))
            got = {h.memory.id for h in s.search(q, k=10)}
            recalls.append(len(exact & got) / 10)
    assert np.mean(recalls) >= 0.95


def test_filtered_search_wide_and_selective(tmp_path) -> None:
    """Both strategies (exact pre-filter and HNSW filtering during the walk) return the exact
    filtered top-k; exact_search_max_rows=4 at 16 dimensions means 96 rows (limit x 384 / dim)."""
    rng = np.random.default_rng(3)
    n, dim = 4000, 16
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    opts = Options(exact_search_max_rows=4, exact_search_max_fraction=0.01, hnsw_ef_search=64)
    with t4dm_core.open(tmp_path / "s", dim=dim, options=opts) as s:
        s.put_many([Memory(text=str(i), id=str(i), vector=v, metadata={"bucket": i % 100})
                    for i, v in enumerate(vecs)])
        s.flush()
        for cut, flt in ((None, {"bucket": 7}), (30, {"bucket": {"$lt": 30}}), (5, {"bucket": {"$lt": 5}})):
            match = np.array([i for i in range(n) if (i % 100 == 7 if cut is None else i % 100 < cut)])
            recall = []
            for _ in range(20):
                q = unit(rng)
                exact = set(match[np.argsort(-(vecs[match] @ q))[:10]].astype(str))
                hits = s.search(q, k=10, filter=flt)
                assert all(int(h.memory.id) in set(match) for h in hits)
                recall.append(len(exact & {h.memory.id for h in hits}) / 10)
            assert np.mean(recall) >= 0.95, (flt, np.mean(recall))


def test_background_compaction_bounds_segment_count(tmp_path, rng) -> None:
    opts = Options(memtable_max_records=50, compaction_min_merge=3)
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as s:
        for batch in range(30):
            s.put_many(memories(rng, 50, prefix=f"b{batch}-"))
        q = unit(rng)
        live = s.search(q, k=5)
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as s:  # close waited for the compactor
        assert s.stats()["segments"] < 10
        assert s.stats()["memories"] == 1500
        assert [h.memory.id for h in s.search(q, k=5)] == [h.memory.id for h in live]
        assert s.background_error is None


def test_searches_run_while_writes_continue(tmp_path, rng) -> None:
    errors: list[BaseException] = []
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(memtable_max_records=300)) as s:
        s.put_many(memories(rng, 200))
        stop = threading.Event()

        def reader(seed: int) -> None:
            r = np.random.default_rng(seed)
            try:
                while not stop.is_set():
                    hits = s.search(unit(r), k=5)
                    assert len(hits) == 5
                    assert len({h.memory.id for h in hits}) == 5  # never two versions of one memory
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        wr = np.random.default_rng(99)
        for i in range(60):
            s.put_many([Memory(text="u", id=f"m{(i * 7 + j) % 200}", vector=unit(wr)) for j in range(10)])
            if i % 20 == 19:
                s.compact(full=True)
        stop.set()
        for t in threads:
            t.join()
    assert errors == []


def test_temporary_store_is_removed(rng) -> None:
    s = t4dm_core.open(None, dim=DIM)
    s.put(Memory(text="x", vector=unit(rng)))
    path = s.path
    s.close()
    import os

    assert not os.path.exists(path)


def test_callable_and_langchain_style_embedders(tmp_path) -> None:
    def embed(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t.lower():
                out[i, ord(ch) % 8] += 1.0
        return out + 1e-3

    class LangChainLike:
        model = "toy-v1"

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embed(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embed([text])[0].tolist()

    with t4dm_core.open(tmp_path / "a", embedder=embed) as s:
        s.put("aaaa bbbb", id="ab")
        s.put("zzzz yyyy", id="zy")
        assert s.search("aaaa", k=1)[0].memory.id == "ab"
    with t4dm_core.open(tmp_path / "b", embedder=LangChainLike()) as s:
        s.put("aaaa bbbb", id="ab")
        assert s.stats()["embedder"].endswith(":toy-v1")
        assert s.search("bbbb", k=1)[0].memory.id == "ab"


def test_hits_are_lazy_but_complete(store, rng) -> None:
    vec = unit(rng)
    store.put(Memory(text="lazy", id="l", vector=vec, metadata={"a": 1}))
    hit = store.search(vec, k=1)[0]
    assert (hit.id, hit.namespace) == ("l", "default") and hit.score == pytest.approx(1.0, abs=1e-5)
    store.bump("l", "access_count", 2)  # counters are read when the memory is first built
    assert hit.memory.text == "lazy" and hit.memory.metadata == {"a": 1} and hit.memory.access_count == 2
    assert hit.memory is hit.memory
    early = store.search(vec, k=1)[0]
    store.flush()  # the version moves from the memtable into a segment before first access
    assert early.memory.text == "lazy"


def test_find_lists_matching_current_memories_in_write_order(tmp_path, rng) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM) as s:
        s.put_many(memories(rng, 12))
        s.flush()  # half in a segment, half in the memtable
        s.put_many(memories(rng, 4, prefix="x"))
        s.put(Memory(text="m3 again", id="m3", vector=unit(rng), metadata={"i": 3, "group": 3, "tag": "t0"}))
        s.delete("m4")
        s.put_many(memories(rng, 3, namespace="other"))
        t_before = time.time()
        time.sleep(0.01)
        s.delete("m5")
        found = s.find({"group": {"$in": [3, 4, 0]}})
        assert [m.id for m in found] == ["m0", "m8", "m9", "m10", "x0", "x3", "m3"]  # m3 rewritten last
        assert found[-1].text == "m3 again"
        assert [m.id for m in s.find(limit=3)] == ["m0", "m1", "m2"]
        assert len(s.find()) == 12 + 4 - 2
        assert [m.id for m in s.find(namespace="other")] == ["m0", "m1", "m2"]
        assert "m5" in [m.id for m in s.find({"group": 0}, as_of=t_before)]
        assert s.find({"nope": 1}) == [] and s.find(namespace="empty") == []
        with pytest.raises(t4dm_core.InvalidInputError):
            s.find(limit=-1)
        with pytest.raises(t4dm_core.FilterError):
            s.find({"group": {"$bogus": 1}})
        expected = [m.id for m in s.find()]
    with t4dm_core.open(tmp_path / "s", dim=DIM) as s:
        s.compact(full=True)
        assert [m.id for m in s.find()] == expected


def test_write_is_one_atomic_batch_of_puts_edges_and_deletes(tmp_path, rng) -> None:
    from t4dm_core import Edge

    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(learn_on_read=False)) as s:
        s.put_many(memories(rng, 3))
        s.link("m0", "m1")
        s.link("m1", "m2", type="t")
        lsn = s.stats()["next_lsn"]
        ids = s.write(put=[Memory(text="new", id="n", vector=unit(rng))],
                      link=[Edge("n", "m0", "about"), Edge("m0", "n", "about", 0.5)],
                      unlink=[Edge("m0", "m1"), Edge("m0", "absent")], delete=["m2", "ghost"])
        assert ids == ["n"]
        assert s.stats()["next_lsn"] > lsn
        assert {(e.dst, e.type, e.weight) for e in s.edges("n")} == {("m0", "about", 1.0)}
        assert [e.dst for e in s.edges("m0")] == ["n"]  # m0 -> m1 unlinked
        assert s.get("m2") is None and s.edges("m1") == []  # deleting m2 removed m1 -> m2
        bad_batches = [
            {"put": [Memory(text="x", id="x", vector=unit(rng))], "link": [Edge("x", "nowhere")]},
            {"put": [Memory(text="y", id="y", vector=unit(rng))], "delete": ["y"]},
            {"link": [Edge("m0", "n", "z")], "delete": ["n"]},
            {"put": [Memory(text="z", id="z", vector=unit(rng))], "link": ["m0->z"]},
            {"put": [Memory(text="w", id="w", vector=[np.nan] * DIM)]},
        ]
        before = (s.stats()["next_lsn"], sorted(s.ids()))
        for batch in bad_batches:
            with pytest.raises(t4dm_core.T4DMError):
                s.write(**batch)
        assert (s.stats()["next_lsn"], sorted(s.ids())) == before  # nothing of a bad batch was written
    with t4dm_core.open(tmp_path / "s", dim=DIM) as s:  # and it all survives reopening
        assert sorted(s.ids()) == ["m0", "m1", "n"]
        assert {e.dst for e in s.edges("n")} == {"m0"}


def test_exists_detects_stores_without_creating_anything(tmp_path, rng) -> None:
    assert not t4dm_core.exists(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    (tmp_path / "empty").mkdir()
    assert not t4dm_core.exists(tmp_path / "empty")
    with t4dm_core.open(tmp_path / "s", dim=DIM):
        pass
    assert t4dm_core.exists(tmp_path / "s")


def test_superseded_versions_stay_out_of_the_ann_index_but_not_out_of_history(tmp_path, rng) -> None:
    opts = Options(learn_on_read=False, auto_compact=False)
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as s:
        s.put_many(memories(rng, 10))
        s.flush()
        old = {m.id: m for m in s.find()}
        t_old = time.time()
        time.sleep(0.01)
        s.put_many([Memory(text=f"new {i}", id=f"m{i}", vector=unit(rng)) for i in range(5)])
        s.put(Memory(text="newer 0", id="m0", vector=unit(rng)))
        s.flush()
        assert [seg["vectors"] for seg in s._manifest["segments"]] == [10, 5]  # "new 0" replaced in its own flush
        s.compact(full=True)
        assert [seg["vectors"] for seg in s._manifest["segments"]] == [10]  # 10 current of 16 versions
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as s:
        for i in range(10):
            current = s.get(f"m{i}")
            assert s.search(current.vector, k=1)[0].id == current.id
            past = s.search(old[f"m{i}"].vector, k=1, as_of=t_old)
            assert past[0].id == f"m{i}" and past[0].score == pytest.approx(1.0, abs=1e-5)


def test_memtable_filter_cache_extends_over_new_rows(store, rng) -> None:
    flt = {"group": {"$in": [1, 2]}}
    store.put_many(memories(rng, 10))
    first = {m.id for m in store.find(flt)}
    assert first == {f"m{i}" for i in range(10) if i % 5 in (1, 2)}
    store.put_many(memories(rng, 10, prefix="x"))
    store.put(Memory(text="regrouped", id="m1", vector=unit(rng), metadata={"group": 4}))
    second = {m.id for m in store.find(flt)}
    assert second == (first - {"m1"}) | {f"x{i}" for i in range(10) if i % 5 in (1, 2)}
    assert {h.id for h in store.search(unit(rng), k=50, filter=flt)} == second


def test_compaction_never_folds_edge_ops_across_a_segment_it_leaves_out(tmp_path, rng) -> None:
    """A size-tiered pick may skip a big segment between small ones; the merge must cover it."""
    opts = Options(auto_compact=False, learn_on_read=False)
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as s:
        s.put_many([Memory(text="a", id="a", vector=unit(rng)), Memory(text="b", id="b", vector=unit(rng))])
        s.link("a", "b", type="t", weight=1.0)
        s.flush()  # small: set 1.0
        s.put_many(memories(rng, 100))
        s.unlink("a", "b", type="t")
        s.flush()  # big: delete
        s.strengthen("a", "b", 0.1, type="t")
        s.put(Memory(text="c", id="c", vector=unit(rng)))
        s.flush()  # small: add 0.1
        for i in range(2):
            s.put(Memory(text=f"y{i}", id=f"y{i}", vector=unit(rng)))
            s.flush()
        assert s.compact()
        assert [(e.dst, e.weight) for e in s.edges("a")] == [("b", pytest.approx(0.1))]
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as s:
        assert [(e.dst, e.weight) for e in s.edges("a")] == [("b", pytest.approx(0.1))]


def test_edge_endpoints_are_checked_again_under_the_write_lock(store, rng) -> None:
    store.put_many(memories(rng, 2))
    original = store._check_edge

    def stale_check(*args, **kwargs):  # white-box: the endpoint is deleted right after the early check passes
        original(*args, **kwargs)
        store.delete("m1")

    store._check_edge = stale_check
    with pytest.raises(t4dm_core.MemoryNotFoundError):
        store.link("m0", "m1")
    assert store.edges("m0") == []
