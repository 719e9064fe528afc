"""T4DMVectorStore and T4DMRetriever against the real engine.

Filter semantics follow the langchain-postgres ``$`` dialect (own data, same ideas as its
filtering fixture); ranking and MMR are checked differentially against langchain_core's
``InMemoryVectorStore``.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.vectorstores import InMemoryVectorStore, VectorStoreRetriever

import t4dm_core
from protocol_adapters._common import stand_in_vector
from protocol_adapters.langchain import T4DMRetriever, T4DMVectorStore
from t4dm_core import Memory

ROOT = Path(__file__).resolve().parents[2]
DIM = 8


class TableEmbeddings(Embeddings):
    """Fixed vectors for known texts (tests that need exact geometry); unknown texts fail loudly."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[text] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table.get(text, next(iter(self.table.values())))


@pytest.fixture
def emb() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=DIM)


@pytest.fixture
def vs(tmp_path, emb) -> Iterator[T4DMVectorStore]:
    with T4DMVectorStore(emb, path=tmp_path / "store") as store:
        yield store


def _written(vs: T4DMVectorStore) -> int:
    return vs.store.stats()["versions"]


# --------------------------------------------------------------------------- filters
FILTER_DOCS = [
    Document(id="1", page_content="first", metadata={
        "name": "alice", "rank": 1, "active": True, "height": 1.62, "city": "Oslo", "mood": "calm", "note": "a",
        "profile": {"team": "red"}}),
    Document(id="2", page_content="second", metadata={
        "name": "bruno", "rank": 2, "active": False, "height": 1.80, "city": "oslo", "mood": "glad", "note": "b",
        "profile": {"team": "blue"}}),
    Document(id="3", page_content="third", metadata={
        "name": "carla", "rank": 3, "active": True, "height": 1.75, "city": "Bergen", "mood": None,
        "profile": {"team": "red"}}),  # no "note" key at all
]

FILTER_CASES: list[tuple[dict[str, Any], list[str]]] = [
    # equality, implicit AND of top-level keys
    ({"rank": 1}, ["1"]),
    ({"name": "bruno"}, ["2"]),
    ({"active": True}, ["1", "3"]),
    ({"active": False}, ["2"]),
    ({"rank": 1, "active": True}, ["1"]),
    ({"rank": 1, "active": False}, []),
    ({"rank": {"$eq": 3}}, ["3"]),
    ({"rank": {"$ne": 2}}, ["1", "3"]),
    ({"active": {"$ne": True}}, ["2"]),
    ({"note": {"$ne": "a"}}, ["2", "3"]),  # a missing key is "not equal"
    # ordering: numbers with numbers, strings lexicographically (code points), never across kinds
    ({"rank": {"$gt": 1}}, ["2", "3"]),
    ({"rank": {"$gte": 2}}, ["2", "3"]),
    ({"rank": {"$lt": 2}}, ["1"]),
    ({"rank": {"$lte": 3}}, ["1", "2", "3"]),
    ({"height": {"$gt": 1.7}}, ["2", "3"]),
    ({"height": {"$lte": 1.75}}, ["1", "3"]),
    ({"name": {"$gt": "bruno"}}, ["3"]),
    ({"name": {"$gte": "bruno"}}, ["2", "3"]),
    ({"name": {"$lt": "b"}}, ["1"]),
    ({"city": {"$lt": "a"}}, ["1", "3"]),  # "Oslo" and "Bergen" sort before lowercase
    ({"rank": {"$gt": "0"}}, []),
    ({"rank": {"$gt": 1, "$lt": 3}}, ["2"]),
    # $in / $nin / $between
    ({"name": {"$in": ["alice", "carla"]}}, ["1", "3"]),
    ({"rank": {"$in": [2, 9]}}, ["2"]),
    ({"rank": {"$in": []}}, []),
    ({"name": {"$nin": ["alice"]}}, ["2", "3"]),
    ({"note": {"$nin": ["a"]}}, ["2", "3"]),
    ({"rank": {"$between": [1, 2]}}, ["1", "2"]),
    ({"rank": {"$between": (2, 2)}}, ["2"]),
    ({"height": {"$between": [1.7, 1.8]}}, ["2", "3"]),
    ({"name": {"$between": ["b", "c"]}}, ["2"]),
    # $like / $ilike (SQL LIKE patterns; non-strings never match)
    ({"name": {"$like": "_r%"}}, ["2"]),
    ({"name": {"$like": "%l%"}}, ["1", "3"]),
    ({"city": {"$like": "o%"}}, ["2"]),
    ({"city": {"$ilike": "o%"}}, ["1", "2"]),
    ({"mood": {"$like": "%"}}, ["1", "2"]),
    # $exists: true even for a None value
    ({"mood": {"$exists": True}}, ["1", "2", "3"]),
    ({"mood": {"$exists": False}}, []),
    ({"note": {"$exists": False}}, ["3"]),
    ({"note": {"$exists": True}}, ["1", "2"]),
    # logic
    ({"$or": [{"rank": 1}, {"name": "carla"}]}, ["1", "3"]),
    ({"$and": [{"active": True}, {"rank": {"$gt": 1}}]}, ["3"]),
    ({"$and": [{"rank": 1}, {"rank": 2}]}, []),
    ({"$or": [{"$and": [{"active": True}, {"city": "Bergen"}]}, {"rank": 2}]}, ["2", "3"]),
    ({"active": True, "$or": [{"rank": 1}, {"rank": 2}]}, ["1"]),
    ({"$not": {"rank": 1}}, ["2", "3"]),
    ({"$not": {"active": True}}, ["2"]),
    ({"$not": {"height": {"$gt": 1.7}}}, ["1"]),
    ({"$not": [{"rank": 1}]}, ["2", "3"]),
    ({"$not": [{"rank": 1}, {"name": "bruno"}]}, ["3"]),  # none of them
    # extension: dotted keys reach into nested objects
    ({"profile.team": "red"}, ["1", "3"]),
]


@pytest.fixture(scope="module", params=["memtable", "segment"])
def filter_store(request, tmp_path_factory) -> Iterator[T4DMVectorStore]:
    """The three filter documents, unflushed (memtable) or flushed (Arrow segment columns)."""
    with T4DMVectorStore(DeterministicFakeEmbedding(size=DIM), path=tmp_path_factory.mktemp("filters")) as store:
        store.add_documents(FILTER_DOCS)
        if request.param == "segment":
            store.store.flush()
        yield store


@pytest.mark.parametrize(("flt", "expected"), FILTER_CASES, ids=[str(c[0]) for c in FILTER_CASES])
def test_filter_dialect(filter_store, flt, expected) -> None:
    docs = filter_store.similarity_search("anything", k=10, filter=flt)
    assert sorted(doc.id for doc in docs) == expected
    by_id = {doc.id: doc for doc in FILTER_DOCS}
    assert all(doc == by_id[doc.id] for doc in docs)


def test_filter_cases_cover_every_operator() -> None:
    def operators(node: Any) -> set[str]:
        if isinstance(node, dict):
            return {k for k in node if k.startswith("$")} | {o for v in node.values() for o in operators(v)}
        if isinstance(node, list | tuple):
            return {o for v in node for o in operators(v)}
        return set()

    used = set().union(*(operators(flt) for flt, _ in FILTER_CASES))
    assert used == {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$between", "$exists", "$like",
                    "$ilike", "$and", "$or", "$not"}


@pytest.mark.parametrize("flt", [
    {"rank": {"$regex": "a"}},  # unknown field operator
    {"$nor": [{"rank": 1}]},  # unknown logical operator
    {"rank": {"$contains": 1}},  # an engine operator outside the PGVector dialect
    {"rank": math.nan},
    {"rank": {"$gt": math.inf}},
    {"rank": {"$in": [1, math.nan]}},
    {"rank": {"$gt": True}},
    {"rank": {"$in": 1}},
    {"rank": {"$between": [1]}},
    {"rank": {"$exists": "yes"}},
    {"name": {"$like": 1}},
    {"$and": []},
    {"$or": {"rank": 1}},
    {"$not": []},
    {"$not": 1},
    {"rank": {"$and": [{"rank": 1}]}},
    {"rank": {"$eq": 1, "plain": 2}},
    {"_t4dm_kind": "item"},  # reserved prefix
    {"$eq": 1},
    {"rank": {"$eq": dt.datetime(2026, 1, 1)}},
    "rank = 1",
])
def test_bad_filters_raise_filter_error(filter_store, flt) -> None:
    with pytest.raises(t4dm_core.FilterError):
        filter_store.similarity_search("anything", k=3, filter=flt)


def test_callable_filter_overfetches_until_k_pass(vs) -> None:
    docs = [Document(f"text {i}", id=str(i), metadata={"i": i}) for i in range(120)]
    vs.add_documents(docs)
    picked = vs.similarity_search("text 5", k=3, filter=lambda d: d.metadata["i"] % 50 == 7)
    assert sorted(doc.id for doc in picked) == ["107", "57", "7"]  # only 3 of 120 pass; found beyond 4*k
    assert vs.similarity_search("text 5", k=3, filter=lambda d: False) == []


# --------------------------------------------------------------------------- differential vs InMemoryVectorStore
WORDS = ["apple", "river", "stone", "cloud", "piano", "tiger", "lemon", "glass", "ember", "orbit"]
CORPUS = [Document(f"{WORDS[i % 10]} {WORDS[(3 * i + 1) % 10]} {i}", id=f"d{i}", metadata={"i": i, "even": i % 2 == 0})
          for i in range(30)]
QUERIES = ["apple river", "tiger", "glass orbit 7", "nothing like the corpus"]


@pytest.fixture
def pair(vs, emb) -> tuple[T4DMVectorStore, InMemoryVectorStore]:
    reference = InMemoryVectorStore(emb)
    reference.add_documents(CORPUS)
    vs.add_documents(CORPUS)
    return vs, reference


@pytest.mark.parametrize("query", QUERIES)
def test_similarity_matches_in_memory_reference(pair, query) -> None:
    ours, reference = pair
    got = ours.similarity_search_with_score(query, k=7)
    want = reference.similarity_search_with_score(query, k=7)
    assert [doc for doc, _ in got] == [doc for doc, _ in want]
    for (_, relevance), (_, cosine) in zip(got, want, strict=True):
        assert relevance == pytest.approx((1 + cosine) / 2, abs=1e-5)
    even = lambda d: d.metadata["even"]  # noqa: E731
    assert ours.similarity_search(query, k=5, filter=even) == reference.similarity_search(query, k=5, filter=even)
    assert ours.similarity_search(query, k=5, filter={"even": True}) == reference.similarity_search(
        query, k=5, filter=even)


@pytest.mark.parametrize("lambda_mult", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("query", QUERIES[:3])
def test_mmr_matches_in_memory_reference(pair, emb, query, lambda_mult) -> None:
    ours, reference = pair
    got = ours.max_marginal_relevance_search(query, k=4, fetch_k=12, lambda_mult=lambda_mult)
    assert got == reference.max_marginal_relevance_search(query, k=4, fetch_k=12, lambda_mult=lambda_mult)
    vector = emb.embed_query(query)
    assert ours.max_marginal_relevance_search_by_vector(vector, k=4, fetch_k=12, lambda_mult=lambda_mult) == got


def test_mmr_diversifies(pair) -> None:
    ours, _ = pair
    plain = ours.similarity_search("apple river", k=4)
    diverse = ours.max_marginal_relevance_search("apple river", k=4, fetch_k=20, lambda_mult=0.0)
    assert plain[0] == diverse[0] and plain != diverse


def test_scores_are_relevances_in_unit_interval_best_first(pair, emb) -> None:
    ours, _ = pair
    target = np.asarray(emb.embed_query(CORPUS[4].page_content))
    nearest = ours.similarity_search_with_score_by_vector(target.tolist(), k=30)
    farthest = ours.similarity_search_with_score_by_vector((-target).tolist(), k=30)
    for scored in (nearest, farthest):
        scores = [score for _, score in scored]
        assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    assert nearest[0][0].id == "d4" and nearest[0][1] == pytest.approx(1.0, abs=1e-6)
    assert farthest[-1][0].id == "d4" and farthest[-1][1] == pytest.approx(0.0, abs=1e-6)
    assert len(ours.similarity_search("apple", k=30)) == 30  # no threshold in plain similarity search


def test_similarity_score_threshold_retrieval(pair) -> None:
    ours, reference = pair
    cosines = {doc.id: cos for doc, cos in reference.similarity_search_with_score("apple river", k=30)}
    threshold = float(np.median([(1 + c) / 2 for c in cosines.values()]))
    expected = sorted((i for i, c in cosines.items() if (1 + c) / 2 >= threshold), key=lambda i: -cosines[i])
    assert 0 < len(expected) < 30
    retriever = ours.as_retriever(search_type="similarity_score_threshold",
                                  search_kwargs={"score_threshold": threshold, "k": 30})
    assert isinstance(retriever, VectorStoreRetriever)
    assert [doc.id for doc in retriever.invoke("apple river")] == expected
    field_form = T4DMRetriever(vectorstore=ours, search_type="similarity_score_threshold", score_threshold=threshold,
                               k=30)
    assert [doc.id for doc in field_form.invoke("apple river")] == expected
    scored = ours.similarity_search_with_relevance_scores("apple river", k=30, score_threshold=threshold)
    assert [doc.id for doc, _ in scored] == expected


# --------------------------------------------------------------------------- documents, metadata, ids
def test_metadata_round_trips_exactly(vs) -> None:
    metadata = {"id": 7, "count": 3, "ratio": 0.5, "flag": False, "none": None, "big": 2**62,
                "nested": {"a": [1, 2.0, {"b": "c"}], "empty": {}}, "text": "ü ✓"}
    original = Document("exact", id="doc-1", metadata=metadata)
    snapshot = copy.deepcopy(original)
    vs.add_documents([original])
    assert original == snapshot  # input not mutated
    (got,) = vs.get_by_ids(["doc-1"])
    assert got == Document("exact", id="doc-1", metadata=metadata)
    assert type(got.metadata["count"]) is int and type(got.metadata["nested"]["a"][1]) is float
    assert vs.similarity_search("exact", k=1) == [got]


def test_ids_kwarg_wins_and_generated_ids_are_uuids(vs) -> None:
    assert vs.add_documents([Document("x", id="doc-id")], ids=["kw-id"]) == ["kw-id"]
    assert vs.get_by_ids(["doc-id"]) == []
    generated = vs.add_texts(["a", "b"], [{"n": 1}, {"n": 2}])
    assert len(set(generated)) == 2 and all(len(g) == 36 and g.count("-") == 4 for g in generated)
    mixed = vs.add_documents([Document("c", id="given"), Document("d")])
    assert mixed[0] == "given" and mixed[1] not in generated


def test_get_by_ids_keeps_order_and_skips_missing(vs) -> None:
    vs.add_texts(["a", "b", "c"], ids=["a", "b", "c"])
    assert [doc.id for doc in vs.get_by_ids(["c", "missing", "a", "b"])] == ["c", "a", "b"]


def test_upsert_and_delete_semantics(vs) -> None:
    vs.add_texts(["one", "two", "three"], [{"v": 1}, {"v": 2}, {"v": 3}], ids=["1", "2", "3"])
    vs.add_texts(["uno"], [{"v": 10}], ids=["1"])
    assert vs.get_by_ids(["1"]) == [Document("uno", id="1", metadata={"v": 10})]
    assert vs.delete(["2", "missing"]) is True
    assert sorted(vs.store.ids(namespace="default")) == ["1", "3"]
    assert vs.delete() is True
    assert vs.similarity_search("one", k=4) == [] and vs.get_by_ids(["1", "3"]) == []


def test_reserved_prefix_rejected_and_internal_records_hidden(vs) -> None:
    with pytest.raises(t4dm_core.InvalidInputError, match="reserved"):
        vs.add_documents([Document("ok", metadata={"a": 1}), Document("bad", metadata={"_t4dm_kind": "x"})])
    assert _written(vs) == 0
    hidden = stand_in_vector("u", DIM)
    vs.store.put(Memory(text="item", id="u", vector=hidden, metadata={"_t4dm_unembedded": True, "_t4dm_kind": "kv",
                                                                     "k": 1}))
    vs.add_texts(["visible"], ids=["v"])
    assert [doc.id for doc in vs.similarity_search_by_vector(hidden.tolist(), k=5)] == ["v"]
    assert vs.get_by_ids(["u"]) == [Document("item", id="u", metadata={"k": 1})]


# --------------------------------------------------------------------------- persistence, sharing, lifetime
def test_persistence_across_reopen(tmp_path, emb) -> None:
    path = tmp_path / "persist"
    docs = [Document("alpha", id="a", metadata={"n": 1}), Document("beta", id="b", metadata={"n": 2})]
    with T4DMVectorStore(emb, path=path, namespace="docs") as first:
        first.add_documents(docs)
        expected = first.similarity_search("beta", k=2)
    with T4DMVectorStore(emb, path=path, namespace="docs") as second:
        assert second.get_by_ids(["a", "b"]) == docs
        assert second.similarity_search("beta", k=2) == expected
    with pytest.raises(t4dm_core.InvalidInputError, match="no embedder"):
        T4DMVectorStore(path=path)  # a vectors-only store cannot embed text by itself


def test_from_texts_and_from_documents(tmp_path, emb) -> None:
    with T4DMVectorStore.from_texts(["a", "b"], emb, [{"n": 1}, {"n": 2}], ids=["x", "y"],
                                    path=tmp_path / "ft", namespace="texts") as built:
        assert built.namespace == "texts"
        assert built.get_by_ids(["y"]) == [Document("b", id="y", metadata={"n": 2})]
    with t4dm_core.open(tmp_path / "fd", dim=DIM) as shared:
        built = T4DMVectorStore.from_documents([Document("c", id="z")], emb, store=shared)
        assert built.get_by_ids(["z"]) == [Document("c", id="z")]
        built.close()
        assert not shared.closed


async def test_afrom_texts(emb) -> None:
    built = await T4DMVectorStore.afrom_texts(["a", "b"], emb, ids=["1", "2"])
    try:
        assert [doc.id for doc in await built.aget_by_ids(["2", "1"])] == ["2", "1"]
    finally:
        built.close()


def test_shared_store_namespaces_are_isolated(tmp_path, emb) -> None:
    with t4dm_core.open(tmp_path / "shared", dim=DIM) as shared:
        left = T4DMVectorStore(emb, store=shared, namespace="left")
        right = T4DMVectorStore(emb, store=shared, namespace="right")
        left.add_texts(["same id, left"], [{"side": "l"}], ids=["x"])
        right.add_texts(["same id, right", "only right"], [{"side": "r"}, {"side": "r"}], ids=["x", "y"])
        assert left.get_by_ids(["x", "y"]) == [Document("same id, left", id="x", metadata={"side": "l"})]
        assert {doc.metadata["side"] for doc in right.similarity_search("same id", k=5)} == {"r"}
        left.delete()
        assert left.similarity_search("same id", k=5) == []
        assert sorted(doc.id for doc in right.similarity_search("same id", k=5)) == ["x", "y"]
        left.close()
        right.close()
        assert not shared.closed
        with pytest.raises(t4dm_core.DimensionMismatchError):
            T4DMVectorStore(DeterministicFakeEmbedding(size=DIM + 1), store=shared)


def test_close_owned_temporary_store(emb) -> None:
    vs = T4DMVectorStore(emb)
    vs.add_texts(["a"])
    directory = vs.store.path
    vs.close()
    vs.close()
    assert vs.store.closed and not os.path.exists(directory)


# --------------------------------------------------------------------------- time travel
def test_as_of_returns_the_old_version(vs) -> None:
    vs.add_documents([Document("original wording", id="d", metadata={"v": 1}),
                      Document("unrelated", id="e", metadata={"v": 0})])
    before = time.time()
    time.sleep(0.01)
    vs.add_documents([Document("revised wording", id="d", metadata={"v": 2})])
    vs.delete(["e"])
    assert [doc.metadata for doc in vs.similarity_search("original wording", k=2)] == [{"v": 2}]
    past = vs.similarity_search("original wording", k=2, as_of=before)
    assert past[0] == Document("original wording", id="d", metadata={"v": 1})
    assert {doc.id for doc in past} == {"d", "e"}
    assert vs.similarity_search("x", k=2, as_of=before, filter={"v": 1})[0].page_content == "original wording"
    retriever = vs.as_retriever(k=1, as_of=before)
    assert retriever.invoke("original wording")[0].metadata == {"v": 1}
    assert retriever.invoke("original wording", as_of=None)[0].metadata == {"v": 2}


# --------------------------------------------------------------------------- graph retrieval
@pytest.fixture
def graph_vs() -> Iterator[T4DMVectorStore]:
    table = {
        "query": [1.0, 0.0, 0.0, 0.0],
        "alpha": [1.0, 0.1, 0.0, 0.0],  # the best hit
        "gamma": [0.6, 0.8, 0.0, 0.0],  # relevance 0.8
        "beta": [0.0, 0.0, 1.0, 0.0],  # unrelated; linked from alpha
        "delta": [-1.0, 0.0, 0.0, 0.1],  # opposite; links to alpha
    }
    with T4DMVectorStore(TableEmbeddings(table)) as vs:
        kinds = {"delta": "hidden"}
        vs.add_documents([Document(text, id=text, metadata={"name": text, "kind": kinds.get(text, "doc")})
                          for text in ("alpha", "gamma", "beta", "delta")])
        vs.store.link("alpha", "beta", type="cites", weight=0.95)
        vs.store.link("delta", "alpha", type="mentions", weight=0.9)
        vs.store.put(Memory(text="node", id="node", vector=stand_in_vector("node", 4),
                            metadata={"_t4dm_unembedded": True}))
        vs.store.link("alpha", "node", weight=5.0)
        yield vs


def test_graph_search_returns_linked_neighbours(graph_vs) -> None:
    assert [d.id for d in graph_vs.similarity_search("query", k=2)] == ["alpha", "gamma"]
    graph = T4DMRetriever(vectorstore=graph_vs, search_type="graph", k=2)
    assert [d.id for d in graph.invoke("query")] == ["alpha", "beta"]  # 0.998 * 0.95 beats gamma's 0.8
    assert [d.id for d in graph.invoke("query", k=4)] == ["alpha", "beta", "delta", "gamma"]  # incoming edge too
    expanded = graph.invoke("query", k=3)
    assert expanded[1] == Document("beta", id="beta", metadata={"name": "beta", "kind": "doc"})
    filtered = graph.invoke("query", k=4, filter={"kind": "doc"})
    assert [d.id for d in filtered] == ["alpha", "beta", "gamma"]
    by_callable = graph.invoke("query", k=4, filter=lambda d: d.id != "beta")
    assert [d.id for d in by_callable] == ["alpha", "delta", "gamma"]
    via_as_retriever = graph_vs.as_retriever(search_type="graph", search_kwargs={"k": 2})
    assert [d.id for d in via_as_retriever.invoke("query")] == ["alpha", "beta"]
    with pytest.raises(t4dm_core.InvalidInputError, match="as_of"):
        graph.invoke("query", as_of=time.time())


def test_hybrid_search_type_uses_the_engines_lexical_and_vector_ranking() -> None:
    table = {"kubernetes upgrade": [1.0, 0.0, 0.0, 0.0], "cluster maintenance": [0.9, 0.1, 0.0, 0.0],
             "kubernetes": [0.0, 1.0, 0.0, 0.1], "gardening": [0.0, 1.0, 0.0, 0.0]}
    with T4DMVectorStore(TableEmbeddings(table)) as vs:
        vs.add_documents([Document(t, id=t, metadata={"kind": "ops" if t != "gardening" else "home"})
                          for t in ("kubernetes upgrade", "cluster maintenance", "gardening")])
        # the query's vector points away from both ops documents; BM25 still finds the shared word
        assert [d.id for d in vs.similarity_search("kubernetes", k=1)] != ["kubernetes upgrade"]
        plain = t4dm_core.Ranking(vector=1.0, lexical=2.0, graph=0, recency=0, importance=0, kappa=0)
        assert vs.hybrid_search("kubernetes", k=1, ranking=plain)[0].id == "kubernetes upgrade"
        retriever = T4DMRetriever(vectorstore=vs, search_type="hybrid", k=2, filter={"kind": "ops"})
        docs = retriever.invoke("kubernetes")
        assert docs[0].id == "kubernetes upgrade" and {d.metadata["kind"] for d in docs} == {"ops"}
        assert docs[0] == Document("kubernetes upgrade", id="kubernetes upgrade", metadata={"kind": "ops"})
        with pytest.raises(t4dm_core.InvalidInputError):
            vs.hybrid_search("kubernetes", filter=lambda d: True)


# --------------------------------------------------------------------------- retriever options
def test_retriever_options_and_validation(pair) -> None:
    ours, _ = pair
    assert len(T4DMRetriever(vectorstore=ours, k=3).invoke("apple")) == 3
    assert len(T4DMRetriever(vectorstore=ours, search_kwargs={"k": 2}).invoke("apple", k=5)) == 5
    mmr = T4DMRetriever(vectorstore=ours, search_type="mmr", k=4, fetch_k=12, lambda_mult=0.25)
    assert mmr.invoke("tiger") == ours.max_marginal_relevance_search("tiger", k=4, fetch_k=12, lambda_mult=0.25)
    assert [d.metadata["even"] for d in T4DMRetriever(vectorstore=ours, filter={"even": False}).invoke("apple")] == [
        False] * 4
    with pytest.raises(ValueError, match="search_type"):
        T4DMRetriever(vectorstore=ours, search_type="bm25")
    with pytest.raises(ValueError, match="score_threshold"):
        T4DMRetriever(vectorstore=ours, search_type="similarity_score_threshold")
    with pytest.raises(ValueError, match="both as a field"):
        T4DMRetriever(vectorstore=ours, k=2, search_kwargs={"k": 3})
    with pytest.raises(ValueError):
        T4DMRetriever(vectorstore=InMemoryVectorStore(DeterministicFakeEmbedding(size=DIM)))


# --------------------------------------------------------------------------- bad input
def test_bad_vectors_write_nothing(tmp_path) -> None:
    table = {"good": [1.0, 0.0, 0.0], "short": [1.0, 0.0], "nan": [math.nan, 1.0, 0.0], "zero": [0.0, 0.0, 0.0]}
    with T4DMVectorStore(TableEmbeddings(table), path=tmp_path / "bad") as vs:
        for bad, error in (("short", t4dm_core.DimensionMismatchError), ("nan", t4dm_core.InvalidVectorError),
                           ("zero", t4dm_core.InvalidVectorError)):
            with pytest.raises(error):
                vs.add_texts(["good", bad])
        with pytest.raises(t4dm_core.DimensionMismatchError):
            vs.similarity_search_by_vector([1.0, 0.0, 0.0, 0.0])
        with pytest.raises(t4dm_core.InvalidVectorError):
            vs.similarity_search_by_vector([1.0, "x", 0.0])
        assert _written(vs) == 0


@pytest.mark.parametrize(("call", "error"), [
    (lambda vs: vs.add_texts(["a", "b"], ids=["same", "same"]), t4dm_core.DuplicateIdError),
    (lambda vs: vs.add_texts(["a", "b"], ids=["only-one"]), t4dm_core.InvalidInputError),
    (lambda vs: vs.add_texts(["a", "b"], [{"ok": 1}, {"when": dt.datetime(2026, 1, 1)}]), t4dm_core.MetadataError),
    (lambda vs: vs.add_texts(["a", "b"], [{"ok": 1}, {"x": math.nan}]), t4dm_core.MetadataError),
    (lambda vs: vs.add_texts(["a"], ids=[""]), t4dm_core.InvalidInputError),
    (lambda vs: vs.delete("abc"), t4dm_core.InvalidInputError),
    (lambda vs: vs.get_by_ids("abc"), t4dm_core.InvalidInputError),
    (lambda vs: vs.similarity_search("a", k=0), t4dm_core.InvalidInputError),
])
def test_bad_input_raises_typed_errors_and_writes_nothing(vs, call, error) -> None:
    with pytest.raises(error):
        call(vs)
    assert _written(vs) == 0


def test_bad_construction(tmp_path, emb) -> None:
    with t4dm_core.open(tmp_path / "shared", dim=DIM) as shared:
        with pytest.raises(t4dm_core.InvalidInputError):
            T4DMVectorStore(emb, path=tmp_path / "other", store=shared)
        with pytest.raises(t4dm_core.InvalidNamespaceError):
            T4DMVectorStore(emb, store=shared, namespace="")
        with pytest.raises(t4dm_core.InvalidInputError, match="no embedder"):
            T4DMVectorStore(store=shared)
    with pytest.raises(t4dm_core.InvalidInputError):
        T4DMVectorStore(object())
    with pytest.raises(t4dm_core.InvalidNamespaceError):
        T4DMVectorStore(emb, path=tmp_path / "fresh", namespace="bad\nname")
    with T4DMVectorStore(emb, path=tmp_path / "fresh") as reopened:  # the failed attempt released the store
        assert reopened.similarity_search("a") == []


# --------------------------------------------------------------------------- async
async def test_async_methods_run_in_worker_threads(pair, emb) -> None:
    ours, _ = pair
    loop_thread = threading.get_ident()
    seen: set[int] = set()

    def spy(doc: Document) -> bool:
        seen.add(threading.get_ident())
        return True

    assert await ours.asimilarity_search("tiger", k=3, filter=spy) == ours.similarity_search("tiger", k=3)
    assert seen and loop_thread not in seen
    assert await ours.asimilarity_search_with_score("tiger", k=3) == ours.similarity_search_with_score("tiger", k=3)
    vector = emb.embed_query("tiger")
    assert await ours.asimilarity_search_by_vector(vector, k=3) == ours.similarity_search_by_vector(vector, k=3)
    assert await ours.amax_marginal_relevance_search("tiger", k=3, fetch_k=9) == \
        ours.max_marginal_relevance_search("tiger", k=3, fetch_k=9)
    assert await ours.amax_marginal_relevance_search_by_vector(vector, k=3, fetch_k=9) == \
        ours.max_marginal_relevance_search_by_vector(vector, k=3, fetch_k=9)
    relevance = await ours.asimilarity_search_with_relevance_scores("tiger", k=3, score_threshold=0.0)
    assert relevance == ours.similarity_search_with_score("tiger", k=3)
    results = await asyncio.gather(*(ours.asimilarity_search(q, k=2) for q in QUERIES))
    assert results == [ours.similarity_search(q, k=2) for q in QUERIES]
    seen.clear()
    retrieved = await T4DMRetriever(vectorstore=ours, k=2, filter=spy).ainvoke("tiger")
    assert retrieved == ours.similarity_search("tiger", k=2) and loop_thread not in seen
    ids = await ours.aadd_documents([Document("async doc", metadata={"a": 1})])
    assert [doc.page_content for doc in await ours.aget_by_ids(ids)] == ["async doc"]
    assert await ours.adelete(ids) is True
    assert await ours.aget_by_ids(ids) == []
    assert await ours.adelete() is True
    assert await ours.asimilarity_search("tiger") == []


# --------------------------------------------------------------------------- example
@pytest.mark.embedder
def test_langchain_rag_example_runs(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "langchain_rag.py"), "--store",
                          str(tmp_path / "rag")], capture_output=True, text=True, env=env, timeout=600, check=True)
    blocks = out.stdout.split("\nquestion: ")
    assert blocks[0].startswith("indexed 6 documents with MiniLMEmbedder"), out.stdout
    assert len(blocks) == 4, out.stdout
    first_retrieved = [block.splitlines()[1] for block in blocks[1:]]
    assert first_retrieved[0].startswith("  retrieved [csv]"), out.stdout
    assert first_retrieved[1].startswith("  retrieved [timeit]"), out.stdout
    assert first_retrieved[2].startswith("  retrieved [json] (data formats)"), out.stdout
    assert all(line.startswith("  retrieved [") and "(data formats)" in line
               for line in blocks[3].splitlines()[1:3]), out.stdout
    assert out.stdout.count("\nanswer: ") == 3
