"""T4DMStore beyond the reference: TTL, persistence, multi-vector fields, index=False, shared
stores, bad input, crash atomicity, and a real LangGraph graph using it as its store.

Everything runs on the real engine (tiny dimensions); time is an injected clock, not sleeps.
"""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pytest
from langchain_core.embeddings.fake import DeterministicFakeEmbedding
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

import t4dm_core
from protocol_adapters.langchain import T4DMStore as LazyT4DMStore
from protocol_adapters.langgraph import T4DMStore

ROOT = Path(__file__).resolve().parents[2]
DIMS = 6
MINUTE = 60.0
SWEEPER = "t4dm-langgraph-ttl-sweep"


def index(**extra: Any) -> Any:
    return {"dims": DIMS, "embed": DeterministicFakeEmbedding(size=DIMS), "fields": ["text"], **extra}


def cosine(a: str, b: str) -> float:
    embed = DeterministicFakeEmbedding(size=DIMS)
    x, y = np.array(embed.embed_query(a)), np.array(embed.embed_query(b))
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def keys(items: list[Any]) -> list[str]:
    return [it.key for it in items]


# --------------------------------------------------------------------------- TTL
def test_ttl_expiry_and_refresh_on_read(tmp_path: Path) -> None:
    clock = Clock()
    with T4DMStore(path=tmp_path / "s", index=index(), ttl={"default_ttl": 1.0}, clock=clock) as store:
        store.put(("m",), "a", {"text": "alpha"})
        store.put(("m",), "forever", {"text": "beta"}, ttl=None)
        clock.advance(50)
        assert store.get(("m",), "a") is not None  # refreshes: now expires 60 s from here
        clock.advance(50)
        assert store.get(("m",), "a", refresh_ttl=False) is not None  # 100 s after put, alive thanks to refresh
        clock.advance(11)
        assert store.get(("m",), "a") is None
        assert keys(store.search(("m",))) == ["forever"]
        assert keys(store.search(("m",), query="alpha")) == ["forever"]
        clock.advance(10 * 365 * 86400)
        assert store.get(("m",), "forever") is not None


def test_search_refreshes_and_refresh_on_read_false(tmp_path: Path) -> None:
    clock = Clock()
    with T4DMStore(path=tmp_path / "s", index=index(), ttl={"default_ttl": 1.0}, clock=clock) as store:
        store.put(("m",), "a", {"text": "alpha"})
        clock.advance(40)
        assert keys(store.search(("m",), query="alpha")) == ["a"]  # refreshed by the search
        clock.advance(40)
        assert keys(store.search(("m",), refresh_ttl=False)) == ["a"]
        clock.advance(25)
        assert store.get(("m",), "a") is None  # 65 s since the last refreshing read
    clock = Clock()
    ttl = {"default_ttl": 1.0, "refresh_on_read": False}
    with T4DMStore(path=tmp_path / "t", index=index(), ttl=ttl, clock=clock) as store:
        store.put(("m",), "a", {"text": "alpha"})
        clock.advance(40)
        assert store.get(("m",), "a") is not None  # no refresh by default
        clock.advance(25)
        assert store.get(("m",), "a") is None
        store.put(("m",), "b", {"text": "beta"}, ttl=2.0)  # a per-put ttl overrides the default
        clock.advance(110)
        assert store.get(("m",), "b", refresh_ttl=True) is not None
        clock.advance(110)
        assert store.get(("m",), "b") is not None  # the explicit refresh above extended it


def test_expired_items_leave_namespace_listing_and_overwrite_starts_fresh(tmp_path: Path) -> None:
    clock = Clock()
    with T4DMStore(path=tmp_path / "s", clock=clock) as store:
        store.put(("short",), "a", {"v": 1}, ttl=1.0)
        store.put(("long",), "b", {"v": 2})
        assert store.list_namespaces() == [("long",), ("short",)]
        clock.advance(61)
        assert store.list_namespaces() == [("long",)]
        clock.advance(5)
        store.put(("short",), "a", {"v": 3})  # the expired version is gone: this is a new item
        item = store.get(("short",), "a")
        assert item is not None and item.value == {"v": 3}
        assert item.created_at.timestamp() == pytest.approx(clock.now)


def test_sweep_ttl_deletes_expired_items(tmp_path: Path) -> None:
    clock = Clock()
    with t4dm_core.open(tmp_path / "s", dim=DIMS) as engine:
        store = T4DMStore(store=engine, index=index(), clock=clock)
        store.put(("m",), "a", {"text": "alpha"}, ttl=1.0)
        store.put(("m",), "b", {"text": "beta"}, ttl=5.0)
        store.put(("m",), "c", {"text": "gamma"})
        records = len(engine.ids(namespace="langgraph"))
        assert store.sweep_ttl() == 0
        clock.advance(2 * MINUTE)
        assert store.sweep_ttl() == 1
        assert len(engine.ids(namespace="langgraph")) == records - 2  # the item and its one vector
        clock.advance(-2 * MINUTE)  # turning the clock back does not resurrect a swept item
        assert store.get(("m",), "a") is None
        assert keys(store.search(("m",))) == ["b", "c"]
        store.close()
        assert not engine.closed


def record_kinds(engine: t4dm_core.Store) -> list[str]:
    """The adapter's record kinds in the engine (for checks a LangGraph read cannot make)."""
    return sorted(m.metadata.get("_t4dm_kind", "?") for m in engine.find(namespace="langgraph"))


def test_sweeper_thread_runs_on_interval_and_stops_on_close(tmp_path: Path) -> None:
    clock = Clock()
    with t4dm_core.open(tmp_path / "s", dim=DIMS) as engine:
        store = T4DMStore(store=engine, clock=clock, ttl={"sweep_interval_minutes": 0.001})  # every 60 ms
        store.put(("m",), "a", {"v": 1}, ttl=1.0)
        assert any(t.name == SWEEPER for t in threading.enumerate())
        assert record_kinds(engine) == ["item", "namespace"]
        clock.advance(2 * MINUTE)
        deadline = time.monotonic() + 10
        while record_kinds(engine) != ["namespace"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert record_kinds(engine) == ["namespace"]  # swept; only the namespace-order record stays
        store.close()
    assert not any(t.name == SWEEPER for t in threading.enumerate())
    with T4DMStore(ttl={"default_ttl": 1.0}) as plain:
        assert not any(t.name == SWEEPER for t in threading.enumerate())
        assert plain.supports_ttl


def test_ttl_and_refresh_survive_reopen(tmp_path: Path) -> None:
    clock = Clock()
    with T4DMStore(path=tmp_path / "s", clock=clock) as store:
        store.put(("m",), "a", {"v": 1}, ttl=1.0)
        store.put(("m",), "b", {"v": 2}, ttl=1.0)
        clock.advance(50)
        assert store.get(("m",), "a") is not None  # refresh, made durable by close
    clock.advance(20)
    with T4DMStore(path=tmp_path / "s", clock=clock) as store:
        assert store.get(("m",), "a", refresh_ttl=False) is not None
        assert store.get(("m",), "b") is None


# ------------------------------------------------------------------ persistence
def test_data_survives_reopen(tmp_path: Path) -> None:
    clock = Clock()
    ops = [PutOp(("docs", "a"), "k1", {"text": "red apple", "n": 1}),
           PutOp(("docs", "b"), "k2", {"text": "green river", "facts": ["x", "y"]}, index=["text", "facts[*]"]),
           PutOp(("docs",), "raw", {"text": "red apple"}, index=False)]
    reads = [SearchOp(("docs",), None, 10, 0, "red apple"), SearchOp((), {"n": 1}, 10, 0, None),
             ListNamespacesOp(None, None, 100, 0), GetOp(("docs", "b"), "k2")]
    with T4DMStore(path=tmp_path / "s", index=index(), clock=clock) as store:
        store.batch(ops)
        clock.advance(30)
        store.put(("docs", "a"), "k1", {"text": "red apple", "n": 1, "v": 2})
        before = store.batch(reads)
    with T4DMStore(path=tmp_path / "s", index=index(), clock=clock) as store:
        after = store.batch(reads)
        item = store.get(("docs", "a"), "k1")
    assert [[x.dict() for x in r] for r in before[:2]] == [[x.dict() for x in r] for r in after[:2]]
    assert before[2] == after[2] == [("docs",), ("docs", "a"), ("docs", "b")]
    assert before[3] == after[3]
    assert item is not None and item.value == {"text": "red apple", "n": 1, "v": 2}
    assert (item.updated_at - item.created_at).total_seconds() == pytest.approx(30)  # created_at kept
    assert [(x.key, x.score is None) for x in after[0]] == [("k1", False), ("k2", False), ("raw", True)]


def test_overwrite_keeps_created_at_unlike_in_memory_store() -> None:
    clock = Clock()
    ref = InMemoryStore()
    with T4DMStore(clock=clock) as store:
        for s in (store, ref):
            s.put(("m",), "a", {"v": 1})
        first, ref_first = store.get(("m",), "a"), ref.get(("m",), "a")
        clock.advance(10)
        time.sleep(0.002)
        for s in (store, ref):
            s.put(("m",), "a", {"v": 2})
        second, ref_second = store.get(("m",), "a"), ref.get(("m",), "a")
    assert first is not None and second is not None and ref_first is not None and ref_second is not None
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert ref_second.created_at > ref_first.created_at  # the reference resets it (documented divergence)


def test_namespace_order_and_long_names_survive_reopen(tmp_path: Path) -> None:
    """No-query search lists namespaces in first-write order, keys in first-write order;
    that order is persisted, and very long labels/keys (hashed ids) round-trip."""
    long_ns, long_key = ("n" * 300, "m" * 300), "k" * 1000
    with T4DMStore(path=tmp_path / "s") as store:
        store.put(("b",), "1", {"v": 1})
        store.put(("a",), "1", {"v": 2})
        store.put(long_ns, long_key, {"v": 3})
        store.put(("b",), "0", {"v": 4})
    with T4DMStore(path=tmp_path / "s") as store:
        store.put(("a",), "0", {"v": 5})  # an existing namespace keeps its place after reopen
        store.put(("b",), "1", {"v": 6})  # an overwrite keeps its place
        assert [(h.namespace, h.key) for h in store.search(())] == [
            (("b",), "1"), (("b",), "0"), (("a",), "1"), (("a",), "0"), (long_ns, long_key)]
        assert store.get(long_ns, long_key).value == {"v": 3}
        assert store.list_namespaces(prefix=(long_ns[0],)) == [long_ns]
        store.delete(long_ns, long_key)
        assert store.get(long_ns, long_key) is None


# ------------------------------------------------------------ vectors per item
def test_multi_vector_fields_score_the_best_element_and_shrink_cleanly() -> None:
    facts = ["the cat sleeps", "paris is in france", "water boils"]
    with T4DMStore(index=index(fields=["facts[*]"])) as store:
        store.put(("m",), "a", {"facts": facts})
        store.put(("m",), "b", {"facts": ["unrelated words"]})
        for fact in facts:
            hits = store.search(("m",), query=fact)
            assert keys(hits) == ["a", "b"]
            assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        store.put(("m",), "a", {"facts": ["the cat sleeps"]})
        hit = store.search(("m",), query="paris is in france", limit=1)[0]
        best = max(cosine("paris is in france", "the cat sleeps"), cosine("paris is in france", "unrelated words"))
        assert hit.score == pytest.approx(best, abs=1e-5)  # the dropped facts' vectors are gone
        store.put(("m",), "c", {"facts": ["paris is in france"]}, index=["facts[0]"])  # per-put paths
        assert keys(store.search(("m",), query="paris is in france", limit=1)) == ["c"]


def test_index_false_items_are_never_scored_hits() -> None:
    with T4DMStore(index=index()) as store:
        store.put(("m",), "plain", {"text": "exact query"}, index=False)
        store.put(("m",), "indexed", {"text": "something else"})
        store.put(("m",), "turned-off", {"text": "exact query"})
        store.put(("m",), "turned-off", {"text": "exact query"}, index=False)  # drops its vector
        hits = store.search(("m",), query="exact query")
        assert [(h.key, h.score is None) for h in hits] == [("indexed", False), ("plain", True), ("turned-off", True)]
        assert keys(store.search(("m",), query="exact query", limit=1)) == ["indexed"]
        assert keys(store.search(("m",), query="exact query", offset=1, limit=2)) == ["plain", "turned-off"]


def test_search_beyond_the_first_index_query_and_exact_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deep pages over multi-vector items need widening index queries; past the engine's k
    limit an exact scan takes over. Every path must give the reference ranking."""
    config = index(fields=["facts[*]"])
    ref = InMemoryStore(index=config)
    with T4DMStore(index=config) as store:
        for s in (store, ref):
            s.batch([PutOp(("m", f"g{i % 3}"), f"k{i}", {"facts": [f"fact {i} {j}" for j in range(5)], "i": i})
                     for i in range(120)])

        def both(**kwargs: Any) -> tuple[list[Any], list[Any]]:
            expected = ref.search(("m",), query="fact 7 3", **kwargs)
            got = store.search(("m",), query="fact 7 3", **kwargs)
            assert [h.score for h in got] == pytest.approx([h.score for h in expected], abs=1e-5)
            return [(h.namespace, h.key) for h in got], [(h.namespace, h.key) for h in expected]

        for kwargs in ({"offset": 90, "limit": 20}, {"filter": {"i": {"$gte": 60}}, "limit": 30}):
            got, expected = both(**kwargs)
            assert got == expected
            monkeypatch.setattr("protocol_adapters.langgraph._reads.ENGINE_MAX_K", 16)
            got, expected = both(**kwargs)
            assert got == expected
            monkeypatch.undo()


# ---------------------------------------------------------------- sharing
def test_shared_store_namespaces_are_isolated(tmp_path: Path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIMS) as engine:
        first = T4DMStore(store=engine, namespace="lg-a", index=index())
        second = T4DMStore(store=engine, namespace="lg-b", index=index())
        first.put(("users",), "k", {"text": "from a"})
        second.put(("users",), "k", {"text": "from b"})
        second.put(("other",), "k2", {"text": "only b"})
        assert first.get(("users",), "k").value == {"text": "from a"}
        assert second.get(("users",), "k").value == {"text": "from b"}
        assert first.list_namespaces() == [("users",)]
        assert keys(first.search((), query="only b")) == ["k"]
        first.delete(("users",), "k")
        assert second.get(("users",), "k") is not None
        first.close()
        second.close()
        assert not engine.closed
        assert engine.get("anything", namespace="default") is None
    assert LazyT4DMStore is T4DMStore


# ------------------------------------------------------- namespace catalogue
def namespace_versions(engine: t4dm_core.Store, namespace: str = "langgraph") -> dict[tuple[str, ...], int]:
    """How many versions each namespace record has (each flag change writes one)."""
    records = engine.find({"_t4dm_kind": "namespace"}, namespace=namespace)
    return {tuple(m.metadata["_t4dm_ns"]): len(engine.history(m.id or "", namespace=namespace)) for m in records}


def test_list_namespaces_follows_items_without_rewriting_namespace_records(tmp_path: Path) -> None:
    """A namespace is listed while it holds an item; its record is rewritten only when it
    gains its first item or loses its last one, and it keeps its place in search order."""
    ref = InMemoryStore()
    with t4dm_core.open(tmp_path / "s", dim=DIMS) as engine:
        store = T4DMStore(store=engine)
        for s in (store, ref):
            s.batch([PutOp(("a",), f"k{i}", {"v": i}) for i in range(3)])
            s.put(("b",), "k", {"v": 9})
            s.put(("a",), "k3", {"v": 3})
            s.put(("a",), "k0", {"v": 0, "again": True})  # an overwrite
        assert namespace_versions(engine) == {("a",): 1, ("b",): 1}
        for key in ("k0", "k1", "k2"):
            store.delete(("a",), key)
        assert store.list_namespaces() == [("a",), ("b",)] and namespace_versions(engine)[("a",)] == 1
        store.batch([PutOp(("a",), "k3", None), PutOp(("b",), "k", None)])  # the last items of both
        assert store.list_namespaces() == []
        assert namespace_versions(engine) == {("a",): 2, ("b",): 2}
        store.batch([PutOp(("a",), "k0", None), PutOp(("c",), "k", None)])  # nothing left to delete
        assert namespace_versions(engine) == {("a",): 2, ("b",): 2}  # no record for ("c",) either
        store.put(("b",), "new", {"v": 1})
        store.put(("a",), "new", {"v": 2})
        assert store.list_namespaces() == [("a",), ("b",)]
        for s in (store, ref):
            for key in ("k0", "k1", "k2", "k3"):
                s.delete(("a",), key)
            s.delete(("b",), "k")
            s.put(("b",), "new", {"v": 1})
            s.put(("a",), "new", {"v": 2})
        assert [(x.namespace, x.key) for x in store.search(())] == [(x.namespace, x.key) for x in ref.search(())]
        assert namespace_versions(engine) == {("a",): 3, ("b",): 3}
        store.close()


def test_list_namespaces_with_ttl_items(tmp_path: Path) -> None:
    """Namespaces whose items all have a TTL are listed only while one has not expired, also
    after a permanent item is deleted or given a TTL, and after a sweep."""
    clock = Clock()
    with T4DMStore(path=tmp_path / "s", clock=clock) as store:
        store.put(("ttl",), "a", {"v": 1}, ttl=1.0)
        store.put(("ttl",), "b", {"v": 1}, ttl=3.0)
        store.put(("mixed",), "p", {"v": 1})
        store.put(("mixed",), "t", {"v": 1}, ttl=1.0)
        store.put(("turned",), "p", {"v": 1})
        store.put(("turned",), "p", {"v": 2}, ttl=1.0)  # its only permanent item gets a TTL
        assert store.list_namespaces() == [("mixed",), ("ttl",), ("turned",)]
        store.delete(("mixed",), "p")
        clock.advance(2 * MINUTE)
        assert store.list_namespaces() == [("ttl",)]
        assert store.sweep_ttl() == 3
        assert store.list_namespaces() == [("ttl",)]
        clock.advance(2 * MINUTE)
        assert store.list_namespaces() == []
        assert store.sweep_ttl() == 1
        store.put(("ttl",), "c", {"v": 1})
        clock.advance(10 * 365 * 86400)
        assert store.list_namespaces() == [("ttl",)]
    with T4DMStore(path=tmp_path / "s", clock=clock) as store:
        assert store.list_namespaces() == [("ttl",)]


def test_adapters_sharing_a_namespace_keep_the_flags_right(tmp_path: Path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIMS) as engine:
        first, second = T4DMStore(store=engine), T4DMStore(store=engine)
        first.put(("x",), "k", {"v": 1})
        second.delete(("x",), "k")
        assert first.list_namespaces() == []
        first.put(("x",), "k2", {"v": 2})  # must notice that the other adapter emptied ("x",)
        assert second.list_namespaces() == [("x",)]
        first.close()
        second.close()


def downgrade(engine: t4dm_core.Store) -> None:
    """Rewrite the adapter's records as the previous layout had them: namespace records
    without flags, vector records without the copy of their item's fields."""
    stale = {"namespace": ("_t4dm_has_items", "_t4dm_has_permanent"), "vector": ("_t4dm_fields",)}
    old = []
    for m in engine.find(namespace="langgraph"):
        dropped = stale.get(m.metadata["_t4dm_kind"], ())
        if dropped:
            meta = {k: v for k, v in m.metadata.items() if k not in dropped}
            old.append(t4dm_core.Memory(text=m.text, id=m.id, namespace=m.namespace, vector=m.vector, metadata=meta,
                                        pinned=True))
    engine.put_many(old)


def test_stores_written_before_namespace_flags_and_vector_fields(tmp_path: Path) -> None:
    """Records of the previous layout read correctly, and writes bring them up to date."""
    clock = Clock()
    values = [{"text": f"note {i}", "n": i % 4, "tag": "x" if i % 2 else "y"} for i in range(12)]
    ref = InMemoryStore(index=index())
    with t4dm_core.open(tmp_path / "s", dim=DIMS) as engine:
        store = T4DMStore(store=engine, index=index(), clock=clock)
        for s in (store, ref):
            s.batch([PutOp(("p", f"g{i % 3}"), str(i), v) for i, v in enumerate(values)])
            s.batch([PutOp(("p", "g2"), str(i), None) for i in range(2, 12, 3)])  # empties ("p", "g2")
        store.put(("short",), "t", {"text": "brief"}, ttl=1.0)
        store.close()
        del store  # no live adapter may remember the namespace records rewritten behind its back
        gc.collect()
        downgrade(engine)
        clock.advance(2 * MINUTE)
        store = T4DMStore(store=engine, index=index(), clock=clock)

        def same_as_reference() -> None:
            for flt in ({"n": {"$gte": 2}}, {"tag": "x"}, {"n": {"$lt": 3}, "tag": {"$ne": "y"}}):
                got, expected = (s.search(("p",), query="note 7", filter=flt) for s in (store, ref))
                assert [(h.key, round(h.score or 0, 5)) for h in got] == [(h.key, round(h.score or 0, 5))
                                                                           for h in expected], flt

        assert store.list_namespaces() == [("p", "g0"), ("p", "g1")]
        same_as_reference()
        store.batch([PutOp(("p", f"g{i % 3}"), str(i), v) for i, v in enumerate(values) if i % 3 != 2])
        same_as_reference()
        store.delete(("short",), "t")
        assert engine.find({"_t4dm_kind": "vector", "_t4dm_fields": {"$exists": False}}, namespace="langgraph") == []
        flags = {tuple(m.metadata["_t4dm_ns"]): (m.metadata.get("_t4dm_has_items"),
                                                 m.metadata.get("_t4dm_has_permanent"))
                 for m in engine.find({"_t4dm_kind": "namespace"}, namespace="langgraph")}
        assert flags == {("p", "g0"): (True, True), ("p", "g1"): (True, True), ("p", "g2"): (None, None),
                         ("short",): (False, False)}
        assert store.list_namespaces() == [("p", "g0"), ("p", "g1")]
        store.close()


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize(("ops", "error"), [
    ([GetOp(("a.b",), "k")], InvalidNamespaceError),
    ([SearchOp(("",), None, 10, 0, None)], InvalidNamespaceError),
    ([PutOp((), "k", {"v": 1})], InvalidNamespaceError),
    ([PutOp(("langgraph", "x"), "k", {"v": 1})], InvalidNamespaceError),
    ([PutOp("abc", "k", {"v": 1})], InvalidNamespaceError),
    ([PutOp(("a",), 7, {"v": 1})], t4dm_core.InvalidInputError),
    ([PutOp(("a",), "k", {"v": (1, 2)})], t4dm_core.MetadataError),
    ([PutOp(("a",), "k", {"v": math.nan})], t4dm_core.MetadataError),
    ([PutOp(("a",), "k", {1: "int key"})], t4dm_core.MetadataError),
    ([PutOp(("a",), "k", {"v": object()})], t4dm_core.MetadataError),
    ([PutOp(("a",), "k", {"v": 1}, index="text")], t4dm_core.InvalidInputError),
    ([PutOp(("a",), "k", {"v": 1}, ttl=-1)], t4dm_core.InvalidInputError),
    ([SearchOp(("a",), {"v": {"$in": [1]}}, 10, 0, None)], ValueError),
    ([SearchOp(("a",), {"v": {"$eq": 1, "x": 2}}, 10, 0, None)], ValueError),
    ([SearchOp(("a",), None, -1, 0, None)], t4dm_core.InvalidInputError),
    ([SearchOp(("a",), None, 10, 0, 42)], t4dm_core.InvalidInputError),
    ([SearchOp(("a",), ["not", "a", "dict"], 10, 0, None)], t4dm_core.InvalidInputError),
    ([SearchOp(("a",), {"v": {1: "x"}}, 10, 0, None)], t4dm_core.InvalidInputError),
    ([ListNamespacesOp(None, 0, 100, 0)], t4dm_core.InvalidInputError),
    ([ListNamespacesOp("prefix", None, 100, 0)], t4dm_core.InvalidInputError),
    ([ListNamespacesOp(("prefix",), None, 100, 0)], t4dm_core.InvalidInputError),
    (["not an op"], t4dm_core.InvalidInputError),
])
async def test_bad_ops_raise_and_write_nothing(ops: list[Any], error: type[Exception]) -> None:
    with T4DMStore(index=index()) as store:
        good = PutOp(("a",), "good", {"text": "fine"})
        with pytest.raises(error):
            store.batch([good, *ops])
        with pytest.raises(error):
            await store.abatch([good, *ops])
        assert store.get(("a",), "good") is None
        assert store.list_namespaces() == []


def test_bad_configuration_and_closed_store(tmp_path: Path) -> None:
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMStore(index={"dims": 0, "embed": DeterministicFakeEmbedding(size=DIMS)})
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMStore(index={"dims": DIMS})
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMStore(ttl={"default_ttl": -5})
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMStore(ttl={"unknown": 1})
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMStore(ttl={"refresh_on_read": "yes"})
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMStore(index={"dims": DIMS, "embed": DeterministicFakeEmbedding(size=DIMS), "fields": "text"})
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMStore(index=["not a dict"])
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMStore(namespace="")
    with t4dm_core.open(tmp_path / "s", dim=8) as engine:
        with pytest.raises(t4dm_core.InvalidInputError):
            T4DMStore(path=tmp_path / "other", store=engine)
        with pytest.raises(t4dm_core.DimensionMismatchError):
            T4DMStore(store=engine, index=index())
    for embed, error in [(lambda texts: [[1.0, 2.0]] * len(texts), t4dm_core.DimensionMismatchError),
                         (lambda texts: [[0.0] * DIMS] * len(texts), t4dm_core.InvalidVectorError),
                         (lambda texts: [[math.nan] * DIMS] * len(texts), t4dm_core.InvalidVectorError),
                         (lambda texts: [[1.0] * DIMS], t4dm_core.InvalidVectorError),
                         (lambda texts: [["x"] * DIMS] * len(texts), t4dm_core.InvalidVectorError)]:
        with T4DMStore(index={"dims": DIMS, "embed": embed}) as bad:
            with pytest.raises(error):
                bad.batch([PutOp(("a",), "k", {"text": "one"}), PutOp(("a",), "k2", {"text": "two"})])
            assert bad.search(("a",)) == []
    store = T4DMStore(index=index())
    store.close()
    with pytest.raises(t4dm_core.StoreClosedError):
        store.get(("a",), "k")


async def test_async_only_embedder_works_through_abatch() -> None:
    embed = DeterministicFakeEmbedding(size=DIMS)

    async def aembed(texts: list[str]) -> list[list[float]]:
        return embed.embed_documents(texts)

    with T4DMStore(index={"dims": DIMS, "embed": aembed, "fields": ["text"]}) as store:
        await store.aput(("a",), "k", {"text": "hello"})
        hits = await store.asearch(("a",), query="hello")
        assert keys(hits) == ["k"] and hits[0].score == pytest.approx(1.0, abs=1e-5)
        with pytest.raises(ValueError, match="async function"):
            store.put(("a",), "k2", {"text": "sync path"})


# ---------------------------------------------------------------- crashes
CRASH_SCRIPT = textwrap.dedent("""
    import os, sys
    from langchain_core.embeddings.fake import DeterministicFakeEmbedding
    from langgraph.store.base import PutOp
    import t4dm_core
    from protocol_adapters.langgraph import T4DMStore

    class DyingFile:
        def __init__(self, fs, path, real):
            self.fs, self.path, self.real = fs, path, real

        def write(self, data):
            if self.fs.mode and os.path.basename(self.path).startswith("wal-"):
                keep = len(data) // 2 if self.fs.mode == "torn" else len(data)
                self.real.write(bytes(data)[:keep])
                os._exit(17)  # the process dies during (torn) or right after (whole) the batch's WAL write
            self.real.write(data)

        def sync(self):
            self.real.sync()

        def close(self):
            self.real.close()

        def tell(self):
            return self.real.tell()

    class DyingFS(t4dm_core.LocalFS):
        mode = None

        def create(self, path):
            return DyingFile(self, path, super().create(path))

        def open_append(self, path):
            return DyingFile(self, path, super().open_append(path))

    fs = DyingFS()
    engine = t4dm_core.open(sys.argv[1], dim=6, fs=fs)
    index = {"dims": 6, "embed": DeterministicFakeEmbedding(size=6), "fields": ["facts[*]"]}
    store = T4DMStore(store=engine, index=index)
    store.put(("m",), "a", {"facts": ["one fact", "two fact", "three fact"]})
    store.put(("m",), "gone", {"facts": ["doomed"]})
    fs.mode = sys.argv[2]
    store.batch([PutOp(("m",), "a", {"facts": ["one fact"]}), PutOp(("m",), "gone", None),
                 PutOp(("n",), "new", {"facts": ["fresh"]})])
""")


@pytest.mark.parametrize("mode", ["torn", "whole"])
def test_a_crash_leaves_a_batch_all_or_nothing(tmp_path: Path, mode: str) -> None:
    """A real process death inside (torn) or right after (whole) the batch's one WAL write:
    on reopen the batch (an overwrite with fewer vectors, a delete, a put in a new
    namespace) is entirely absent or entirely present, with no leftover records."""
    path = tmp_path / "s"
    done = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(path), mode], cwd=ROOT, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 17, done.stderr.decode()
    with t4dm_core.open(path, dim=DIMS) as engine:  # exactly the records of one state: nothing to clean up
        expected = {"torn": ["item"] * 2 + ["namespace"] + ["vector"] * 4,
                    "whole": ["item"] * 2 + ["namespace"] * 2 + ["vector"] * 2}
        assert record_kinds(engine) == expected[mode]
    with T4DMStore(path=path, index=index(fields=["facts[*]"])) as store:
        hits = store.search(("m",), query="two fact")
        if mode == "torn":
            assert store.get(("m",), "a").value == {"facts": ["one fact", "two fact", "three fact"]}
            assert store.get(("m",), "gone").value == {"facts": ["doomed"]}
            assert store.get(("n",), "new") is None
            assert store.list_namespaces() == [("m",)]
            assert keys(hits) == ["a", "gone"] and hits[0].score == pytest.approx(1.0, abs=1e-5)
        else:
            assert store.get(("m",), "a").value == {"facts": ["one fact"]}
            assert store.get(("m",), "gone") is None
            assert store.get(("n",), "new").value == {"facts": ["fresh"]}
            assert store.list_namespaces() == [("m",), ("n",)]
            assert keys(hits) == ["a"] and hits[0].score == pytest.approx(cosine("two fact", "one fact"), abs=1e-5)


# ------------------------------------------------------------- a real graph
class State(TypedDict):
    user: str
    fact: str
    recalled: list[str]


def remember(state: State, runtime: Runtime) -> dict[str, Any]:
    assert runtime.store is not None
    runtime.store.put(("memories", state["user"]), state["fact"], {"text": state["fact"]})
    return {}


def recall(state: State) -> dict[str, Any]:
    hits = get_store().search(("memories", state["user"]), query=state["fact"], limit=2)
    return {"recalled": [h.value["text"] for h in hits]}


async def aremember(state: State, runtime: Runtime) -> dict[str, Any]:
    assert runtime.store is not None
    await runtime.store.aput(("memories", state["user"]), "async-fact", {"text": state["fact"]})
    return {}


async def arecall(state: State, runtime: Runtime) -> dict[str, Any]:
    assert runtime.store is not None
    hits = await runtime.store.asearch(("memories", state["user"]), query=state["fact"], limit=1)
    return {"recalled": [h.value["text"] for h in hits]}


def build(store: T4DMStore, first: Any, second: Any) -> Any:
    graph = StateGraph(State)
    graph.add_node("remember", first)
    graph.add_node("recall", second)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", "recall")
    graph.add_edge("recall", END)
    return graph.compile(store=store)


async def test_graph_nodes_read_and_write_memories(tmp_path: Path) -> None:
    with T4DMStore(path=tmp_path / "s", index=index()) as store:
        graph = build(store, remember, recall)
        graph.invoke({"user": "ada", "fact": "likes green tea", "recalled": []})
        out = graph.invoke({"user": "ada", "fact": "owns a bicycle", "recalled": []})
        assert out["recalled"][0] == "owns a bicycle" and set(out["recalled"]) == {"owns a bicycle", "likes green tea"}
        other = graph.invoke({"user": "bob", "fact": "likes green tea", "recalled": []})
        assert other["recalled"] == ["likes green tea"]  # bob sees only his own namespace
        agraph = build(store, aremember, arecall)
        out = await agraph.ainvoke({"user": "ada", "fact": "speaks french", "recalled": []})
        assert out["recalled"] == ["speaks french"]
    with T4DMStore(path=tmp_path / "s", index=index()) as store:
        assert store.list_namespaces(prefix=("memories",)) == [("memories", "ada"), ("memories", "bob")]
        assert len(store.search(("memories", "ada"))) == 3


# ------------------------------------------------------------------ example
@pytest.mark.embedder
def test_langgraph_agent_example_runs(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "langgraph_agent.py"), "--store",
                           str(tmp_path / "agent")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("== thread 2", 1)
    assert "stored memory: my favourite colour is teal" in first
    retrieved = [line for line in second.splitlines() if line.startswith("retrieved: [")]
    assert len(retrieved) == 2 and retrieved[0].endswith("] my favourite colour is teal")  # best match first
    assert "(2 messages in thread-2's short-term history)" in second  # a separate conversation
