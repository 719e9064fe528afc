"""BM25 lexical indexes against a plain-Python BM25 reference."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from t4dm_core.index.lexical import MemtableLexicon, SegmentLexicon, bm25_scores, tokenize

WORDS = ["apple", "banana", "cherry", "date", "elder", "fig", "grape", "the", "of"]


def reference_bm25(docs: list[list[str]], query: list[str], k1: float = 1.2, b: float = 0.75) -> dict[int, float]:
    n = len(docs)
    avg = sum(len(d) for d in docs) / n
    out: dict[int, float] = {}
    for i, doc in enumerate(docs):
        tf = Counter(doc)
        score = 0.0
        for term in dict.fromkeys(query):
            if tf[term] == 0:
                continue
            df = sum(1 for d in docs if term in d)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(doc) / avg))
        if score > 0:
            out[i] = score
    return out


def test_tokenize_lowercases_and_drops_stop_words() -> None:
    assert tokenize("The Dark-Mode of the UI, v2!") == ["dark", "mode", "ui", "v2"]
    assert tokenize(None) == [] and tokenize("") == []
    assert tokenize("Größe café") == ["größe", "café"]


texts_strategy = st.lists(st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join), min_size=1, max_size=20)


@given(texts=texts_strategy, split=st.integers(0, 20), query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
def test_split_sources_score_like_one_corpus(texts, split, query) -> None:
    """A corpus split between a segment and the memtable scores exactly as the reference."""
    split = min(split, len(texts))
    seg = SegmentLexicon.build(texts[:split])
    mem = MemtableLexicon()
    for row, text in enumerate(texts[split:]):
        mem.add(row, text)
    sources = [seg, mem]
    terms = tokenize(" ".join(query))
    n_docs = sum(s.n_rows for s in sources)
    avg = sum(s.total_length for s in sources) / n_docs
    dfs = {t: sum(s.doc_freq(t) for s in sources) for t in terms}
    got: dict[int, float] = {}
    for offset, src in ((0, seg), (split, mem)):
        rows, scores = bm25_scores(src, terms, n_docs=n_docs, avg_length=avg, doc_freqs=dfs)
        got.update({offset + int(r): float(s) for r, s in zip(rows, scores, strict=True)})
    want = reference_bm25([tokenize(t) for t in texts], terms)
    assert got.keys() == want.keys()
    for row, score in want.items():
        assert got[row] == pytest.approx(score, rel=1e-5)


def test_segment_lexicon_round_trips_through_arrow() -> None:
    lex = SegmentLexicon.build(["apple banana", None, "banana banana cherry", ""])
    back = SegmentLexicon.from_table(lex.to_table(), 4)
    assert back.n_rows == 4 and back.total_length == lex.total_length
    for term in ("apple", "banana", "cherry", "missing"):
        assert back.doc_freq(term) == lex.doc_freq(term)
        for a, b in zip(back.postings(term), lex.postings(term), strict=True):
            np.testing.assert_array_equal(a, b)
    empty = SegmentLexicon.from_table(SegmentLexicon.build([None]).to_table(), 1)
    assert empty.doc_freq("apple") == 0 and empty.n_rows == 1
    np.testing.assert_array_equal(back.doc_lengths(), lex.doc_lengths())
    with pytest.raises(ValueError, match="do not fit"):
        SegmentLexicon.from_table(lex.to_table(), 2)


def test_memtable_lexicon_rejects_out_of_order_rows() -> None:
    lex = MemtableLexicon()
    lex.add(0, "a b")
    with pytest.raises(ValueError, match="expects row 1"):
        lex.add(5, "c")
