"""Lexical (BM25) and hybrid (vector + lexical, score- or reciprocal-rank fused) search through the store."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import pytest

import t4dm_core
from t4dm_core import Memory, Ranking
from t4dm_core.index.lexical import tokenize

DIM = 32

TEXTS = [
    "the user prefers dark mode in the editor",
    "deploy the service with kubernetes on friday",
    "dark chocolate is the user's favourite snack",
    "kubernetes cluster upgrade scheduled",
    "the editor font is fira code",
    "user timezone is CET",
    "friday standup moved to thursday",
    "mode of transport: bicycle",
]


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A deterministic toy embedder: hashed bag of words (so text queries need no model)."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for token in tokenize(text):
            out[i, int(hashlib.md5(token.encode()).hexdigest(), 16) % DIM] += 1.0
        out[i, -1] += 0.01  # never all-zero
    return out


def reference_bm25(docs: list[str], query: str, k1: float = 1.2, b: float = 0.75) -> dict[int, float]:
    toks = [tokenize(d) for d in docs]
    avg = sum(map(len, toks)) / len(toks)
    out = {}
    for i, doc in enumerate(toks):
        tf = Counter(doc)
        score = 0.0
        for term in dict.fromkeys(tokenize(query)):
            if tf[term]:
                df = sum(term in d for d in toks)
                idf = math.log(1 + (len(toks) - df + 0.5) / (df + 0.5))
                score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(doc) / avg))
        if score:
            out[i] = score
    return out


@pytest.fixture
def store(tmp_path):
    with t4dm_core.open(tmp_path / "s", embedder=bag_of_words) as s:
        s.put_many([Memory(text=t, id=f"t{i}", metadata={"i": i, "even": i % 2 == 0}) for i, t in enumerate(TEXTS)])
        s.put(Memory(text="dark dark dark mode", id="other", namespace="elsewhere"))
        yield s


@pytest.mark.parametrize("flush", [False, True])
def test_lexical_scores_equal_reference_bm25(store, flush) -> None:
    if flush:
        store.put_many([Memory(text="kubernetes dark mode", id="late")])
        store.flush()
        store.put(Memory(text="editor mode", id="later"))
    docs = {m.id: m.text for m in store.find()}
    ids = list(docs)
    want = reference_bm25([docs[i] for i in ids], "dark mode kubernetes")
    hits = store.search("dark mode kubernetes", k=20, mode="lexical")
    assert {h.id: h.score for h in hits} == {ids[i]: pytest.approx(s, rel=1e-5) for i, s in want.items()}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.explain["lexical"] == h.score and "vector" not in h.explain for h in hits)


def test_filter_narrows_results_without_changing_term_weights(store) -> None:
    unfiltered = {h.id: h.score for h in store.search("dark mode", k=20, mode="lexical")}
    filtered = store.search("dark mode", k=20, mode="lexical", filter={"even": True})
    assert filtered and {h.id for h in filtered} <= {f"t{i}" for i in range(0, 8, 2)}
    assert all(h.score == pytest.approx(unfiltered[h.id]) for h in filtered)


def test_hybrid_score_fusion_scores_every_candidate_by_both_signals(store) -> None:
    query = "kubernetes friday cluster outage"  # "outage" is in no memory: it weakens every match
    cosine = {h.id: h.score for h in store.search(query, k=20, mode="vector")}
    bm25 = {f"t{i}": score for i, score in reference_bm25(TEXTS, query).items()}
    docs = [set(tokenize(t)) for t in TEXTS]
    reference = sum(math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                    for df in (sum(term in d for d in docs) for term in set(tokenize(query))))
    hybrid = store.search(query, k=8, ranking=Ranking(lexical=0.5, graph=0, recency=0, importance=0, kappa=0))
    assert [h.id for h in hybrid] == sorted(cosine, key=lambda i: -(cosine[i] + 0.5 * bm25.get(i, 0) / reference))
    for h in hybrid:
        assert h.score == pytest.approx(cosine[h.id] + 0.5 * bm25.get(h.id, 0.0) / reference, abs=1e-5)
        assert h.explain["vector"] == pytest.approx(cosine[h.id], abs=1e-6)
        assert h.explain["lexical"] == pytest.approx(bm25.get(h.id, 0.0), abs=1e-5)  # exact even past BM25's list


def test_score_fusion_keeps_the_best_vector_match_that_bm25_cannot_see(tmp_path) -> None:
    """Rank fusion's failure on paraphrase: memories that BM25 ranks at all (here on one
    common word) overtake the vector's clear best match, which shares no word with the
    question; score fusion weighs that weak lexical match by how little of the query it covers."""
    memories = [Memory(text="I am allergic to sesame", id="answer", vector=[1.0, 0.0, 0.0]),
                Memory(text="any plans for the weekend", id="near-a", vector=[0.75, 0.66, 0.0]),
                Memory(text="any news from the office", id="near-b", vector=[0.72, 0.0, 0.69])]
    memories += [Memory(text=f"any update number {i}", id=f"filler-{i}", vector=[0.0, 0.1, 1.0]) for i in range(20)]
    query, query_vector = "do I have any allergies", [0.95, 0.2, 0.2]
    off = {"graph": 0, "recency": 0, "importance": 0, "kappa": 0}
    with t4dm_core.open(tmp_path / "s", dim=3) as s:
        s.put_many(memories)
        rrf = s.search(query, k=3, query_vector=query_vector, ranking=Ranking(fusion="rrf", lexical=0.5, **off))
        score = s.search(query, k=3, query_vector=query_vector, ranking=Ranking(**off))
    assert rrf[0].id != "answer"
    assert score[0].id == "answer"
    assert score[0].explain["lexical"] == 0.0


def test_hybrid_rrf_fuses_vector_and_lexical_ranks(store) -> None:
    query = "kubernetes friday"
    vector = store.search(query, k=20, mode="vector")
    lexical = store.search(query, k=20, mode="lexical")
    hybrid = store.search(query, k=5, ranking=Ranking(fusion="rrf", lexical=1.0, graph=0, recency=0, importance=0,
                                                      kappa=0))
    v_rank = {h.id: r for r, h in enumerate(vector, start=1)}
    l_rank = {h.id: r for r, h in enumerate(lexical, start=1)}
    for h in hybrid:
        expected = sum(1 / (60 + ranks[h.id]) for ranks in (v_rank, l_rank) if h.id in ranks)
        assert h.score == pytest.approx(expected)
        assert h.explain["vector_rank"] == v_rank[h.id]
        assert h.explain.get("lexical_rank") == l_rank.get(h.id)
        assert h.explain["vector"] == pytest.approx(next(v.score for v in vector if v.id == h.id), abs=1e-6)
    assert hybrid[0].id == "t1"  # both words, in both rankings
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)


def test_vector_mode_explains_cosine(store) -> None:
    hits = store.search(bag_of_words(["dark mode"])[0], k=3)
    assert all(h.explain == {"vector": h.score, "vector_rank": r} for r, h in enumerate(hits, start=1))


def test_lexical_search_needs_no_embedder_and_respects_namespaces(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "v", dim=4) as s:
        s.put(Memory(text="alpha beta", id="a", vector=[1, 0, 0, 0]))
        s.put(Memory(text="gamma", id="g", vector=[0, 1, 0, 0], namespace="n2"))
        assert [h.id for h in s.search("alpha", mode="lexical")] == ["a"]
        assert s.search("gamma", mode="lexical") == []
        assert [h.id for h in s.search("gamma", mode="lexical", namespace="n2")] == ["g"]
        assert s.search("the of and", mode="lexical") == []  # only stop words
        with pytest.raises(t4dm_core.EmbedderMismatchError):
            s.search("alpha")  # hybrid needs the embedder


def test_lexical_as_of_sees_old_text(store) -> None:
    before = store.get("t5").recorded_at
    store.put(Memory(text="user timezone is PST", id="t5"))
    assert [h.id for h in store.search("cet", mode="lexical")] == []
    old = store.search("cet", mode="lexical", as_of=before)
    assert [h.id for h in old] == ["t5"] and old[0].memory.text == "user timezone is CET"


def test_lexicon_survives_reopen_and_compaction(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", embedder=bag_of_words) as s:
        s.put_many([Memory(text=t, id=f"t{i}") for i, t in enumerate(TEXTS)])
        s.flush()
        s.put_many([Memory(text=t + " again", id=f"u{i}") for i, t in enumerate(TEXTS)])
        s.flush()
        before = [(h.id, h.score) for h in s.search("editor mode", k=10, mode="lexical")]
    with t4dm_core.open(tmp_path / "s", embedder=bag_of_words) as s:
        assert [(h.id, pytest.approx(sc)) for h, sc in zip(s.search("editor mode", k=10, mode="lexical"),
                                                           [b for _, b in before], strict=True)] == \
            [(i, pytest.approx(sc)) for i, sc in before]
        s.compact(full=True)
        assert [h.id for h in s.search("editor mode", k=10, mode="lexical")] == [i for i, _ in before]


@pytest.mark.parametrize(("query", "mode"), [([1.0] * DIM, "lexical"), ([1.0] * DIM, "hybrid"), ("x", "bm25")])
def test_bad_modes_are_typed_errors(store, query, mode) -> None:
    with pytest.raises(t4dm_core.InvalidInputError):
        store.search(query, mode=mode)


def test_default_text_search_is_hybrid_with_value_priors(store) -> None:
    hits = store.search("kubernetes friday", k=3)
    expected = {"vector", "lexical", "vector_rank", "recency", "importance", "kappa"}
    assert expected <= hits[0].explain.keys()
    assert hits[0].explain["importance"] == pytest.approx(0.5 / 1.5) and hits[0].explain["kappa"] == 0.0
    plain = store.search("kubernetes friday", k=3, ranking=Ranking(graph=0, recency=0, importance=0, kappa=0))
    assert [h.id for h in hits] == [h.id for h in plain]  # equal priors re-order nothing
    boost = 0.1 * hits[0].explain["recency"] + 0.1 * hits[0].explain["importance"]  # score fusion: weight x value
    assert hits[0].score == pytest.approx(plain[0].score + boost)
    rrf = store.search("kubernetes friday", k=3, ranking=Ranking(fusion="rrf"))
    rrf_plain = store.search("kubernetes friday", k=3, ranking=Ranking(fusion="rrf", graph=0, recency=0, importance=0,
                                                                      kappa=0))
    assert rrf[0].score == pytest.approx(rrf_plain[0].score + boost / 61)  # rank fusion: a value of 1 = rank 1


def test_importance_prior_breaks_near_ties(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", embedder=bag_of_words) as s:
        s.put_many([Memory(text="project deadline is monday", id="low", importance=0.1),
                    Memory(text="project deadline is monday", id="high", importance=0.9)])
        only_importance = Ranking(lexical=0, graph=0, recency=0, kappa=0, importance=2.0)  # outweighs the tie
        assert [h.id for h in s.search("project deadline", k=2, ranking=only_importance)] == ["high", "low"]
        s.bump("low", "importance", 5.0)  # learning writes feed the prior at once
        assert [h.id for h in s.search("project deadline", k=2, ranking=only_importance)] == ["low", "high"]


def test_graph_expansion_brings_linked_memories_and_explains_them(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", embedder=bag_of_words) as s:
        s.put_many([Memory(text="alice manages the payments team", id="a"),
                    Memory(text="quarterly budget spreadsheet", id="b", metadata={"kind": "doc"}),
                    Memory(text="unrelated gardening notes", id="c", metadata={"kind": "doc"})])
        s.link("a", "b", weight=2.0)
        graph_only = Ranking(lexical=1.0, vector=0, graph=1.0, recency=0, importance=0, kappa=0)
        hits = s.search("alice payments", k=3, ranking=graph_only)
        assert [h.id for h in hits] == ["a", "b"]  # b shares no word: it came through the edge
        assert hits[1].explain["graph"] > 0 and hits[1].explain["graph_rank"] == 1
        assert hits[1].explain["lexical"] == 0 and "lexical_rank" not in hits[1].explain
        assert [h.id for h in s.search("alice payments", k=3, ranking=graph_only, filter={"kind": "doc"})] == []
        no_graph = Ranking(lexical=1.0, vector=0, graph=0, recency=0, importance=0, kappa=0)
        assert [h.id for h in s.search("alice payments", k=3, ranking=no_graph)] == ["a"]
        s.delete("b")
        assert [h.id for h in s.search("alice payments", k=3, ranking=graph_only)] == ["a"]


@pytest.mark.parametrize("bad", [{"vector": -1}, {"vector": 0, "lexical": 0}, {"graph": "x"}, {"kappa": True},
                                 {"fusion": "max"}, {"fusion": 1}])
def test_bad_rankings_are_rejected(bad) -> None:
    with pytest.raises(ValueError):
        Ranking(**bad)


def test_mode_and_ranking_are_exclusive(store) -> None:
    with pytest.raises(t4dm_core.InvalidInputError):
        store.search("x", mode="hybrid", ranking=Ranking())
    with pytest.raises(t4dm_core.InvalidInputError):
        store.search([1.0] * DIM, ranking=Ranking())  # lexical needs text
    assert store.search([1.0] * DIM, ranking=Ranking(lexical=0), k=2)


def test_text_query_with_caller_computed_vector_runs_hybrid_without_an_embedder(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "v", dim=DIM, options=t4dm_core.Options(learn_on_read=False)) as s:
        s.put_many([Memory(text=t, id=f"t{i}", vector=bag_of_words([t])[0]) for i, t in enumerate(TEXTS)])
        with pytest.raises(t4dm_core.EmbedderMismatchError):
            s.search("kubernetes friday")
        q = bag_of_words(["kubernetes friday"])[0]
        hits = s.search("kubernetes friday", k=3, query_vector=q)
        assert hits[0].id == "t1" and {"vector_rank", "lexical_rank"} <= hits[0].explain.keys()
        with pytest.raises(t4dm_core.InvalidInputError):
            s.search(q, query_vector=q)
