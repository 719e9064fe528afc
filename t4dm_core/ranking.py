"""Ranking building blocks for search: lexical candidates over row sources and rank fusion.

A *candidate set* is, per row source (memtable or segment), a boolean mask of the rows a
query may return (live or visible at ``as_of``, in the namespace, matching the filter).
:func:`lexical_matches` scores those rows with BM25 under statistics computed over the
namespace's searchable rows (not the filter), so a filter narrows results without changing
term weights. :func:`reciprocal_rank_fusion` merges ranked lists: a candidate's fused score
is ``Σ weight_c / (RRF_K + rank_c)`` over the components that ranked it (rank 1 = best);
score fusion, the default (see :class:`Ranking`), lives with the store's search.

Score direction everywhere: higher = more relevant. Pure functions; thread-safe given
sources that are not mutated meanwhile (the store calls them under its read lock).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, TypeVar

import numpy as np

from t4dm_core.index.lexical import BM25, TermSource, bm25_scores, idf

__all__ = ["RRF_K", "LexicalMatches", "LexicalSource", "Ranking", "lexical_matches", "reciprocal_rank_fusion"]

RRF_K = 60
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Ranking:
    """Which signals rank a search, and how much each counts (0 switches a signal off).

    Retrieval signals find candidates: ``vector`` (cosine over the embedding) and
    ``lexical`` (BM25 over the text). ``fusion`` says how they combine:

    * ``"score"`` (default): ``vector · cosine + lexical · BM25 / reference``, every
      candidate scored by both signals exactly; ``reference`` is the BM25 of an
      average-length memory holding each query term once, so the lexical term is about 1
      when all query words occur. Measured on the seeded scenarios it beats both plain
      vector search and rank fusion (BENCHMARKS.md, memory dynamics run 4), because rank
      fusion lets moderately ranked memories that BM25 also found overtake the best vector
      match of a paraphrased question, which BM25 scores 0.
    * ``"rrf"``: weighted reciprocal rank, each signal contributing ``weight / (60 + rank)``.

    ``graph`` then adds context the query alone did not find: neighbours
    (either direction) of the best ``graph_seeds`` candidates, each scored ``graph ×`` its
    seed's fused score ``×`` the edge weight (capped at 1), so it ranks below the seed that
    led to it; candidates the query already found are not re-ranked by the graph.

    Priors only re-order the candidates found, by *value*, so memories that do not differ
    in a prior are not re-ordered by it: each adds ``weight · value`` (score fusion) or
    ``weight · value / 61`` (rank fusion) — a value of 1 counts as much as a perfect score
    (rank 1) of a retrieval signal of the same weight — with values in
    [0, 1]: ``recency`` = 2^(−age / ``recency_half_life_days``), the age of the version's
    transaction time (what the store learned lately ranks higher; memories written at about
    the same time are not re-ordered), ``importance`` = i / (1 + i), ``kappa`` = κ. A
    valid-time-relative recency was measured too and rejected: it promoted recently changed
    but unrelated facts (BENCHMARKS.md, memory dynamics).

    With a single retrieval signal and no graph or priors, the hit score is that signal's
    own score (cosine or BM25) instead of the fused one. Graph expansion is skipped for
    ``as_of`` searches (edges are not bitemporal).
    """

    vector: float = 1.0
    lexical: float = 0.4
    graph: float = 0.5
    recency: float = 0.1
    importance: float = 0.1
    kappa: float = 0.05
    graph_seeds: int = 5
    recency_half_life_days: float = 30.0
    fusion: str = "score"

    def __post_init__(self) -> None:
        if self.fusion not in ("score", "rrf"):
            raise ValueError(f"Ranking.fusion must be 'score' or 'rrf', got {self.fusion!r}")
        for f in fields(self):
            if f.name == "fusion":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"Ranking.{f.name} must be a non-negative number, got {value!r}")
        if self.vector == 0 and self.lexical == 0:
            raise ValueError("Ranking needs vector > 0 or lexical > 0 to find candidates")
        if self.recency_half_life_days <= 0:
            raise ValueError("Ranking.recency_half_life_days must be > 0")

    @property
    def weights(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SIGNALS}

    @property
    def single_signal(self) -> str | None:
        """The only active signal when exactly one retrieval signal and nothing else is on."""
        active = [name for name in SIGNALS if getattr(self, name) > 0]
        return active[0] if len(active) == 1 else None


SIGNALS = ("vector", "lexical", "graph", "recency", "importance", "kappa")
PRIORS = ("recency", "importance", "kappa")
VECTOR_ONLY = Ranking(lexical=0, graph=0, recency=0, importance=0, kappa=0)
LEXICAL_ONLY = Ranking(vector=0, graph=0, recency=0, importance=0, kappa=0)


class LexicalSource(Protocol):
    """A row source with a lexicon (memtable or segment)."""

    @property
    def lexicon(self) -> TermSource: ...


@dataclass
class LexicalMatches:
    """Every candidate row that shares a query term, with its BM25 score (higher = better).

    ``per_source`` holds (source, rows ascending, scores) triples. ``reference`` is the BM25
    of a document of average length that holds each query term once, i.e. the sum of the
    query terms' idf (terms no memory contains included): score fusion divides by it, so a
    memory holding every query word scores about 1 whatever the query's length, and a
    match on a few common words counts little.
    """

    per_source: list[tuple[Any, np.ndarray, np.ndarray]]
    reference: float

    def top_k(self, k: int) -> list[tuple[float, Any, int]]:
        """Best ``k`` rows as [(score, source, row)], best first."""
        if not self.per_source:
            return []
        all_scores = np.concatenate([scores for _, _, scores in self.per_source])
        owner = np.concatenate([np.full(rows.size, i) for i, (_, rows, _) in enumerate(self.per_source)])
        all_rows = np.concatenate([rows for _, rows, _ in self.per_source])
        best = np.argpartition(-all_scores, k - 1)[:k] if all_scores.size > k else np.arange(all_scores.size)
        best = best[np.argsort(-all_scores[best], kind="stable")]
        return [(float(all_scores[i]), self.per_source[owner[i]][0], int(all_rows[i])) for i in best]

    def score_of(self, source: Any, row: int) -> float:
        """BM25 of one row (0 when it shares no query term or is not a candidate)."""
        for src, rows, scores in self.per_source:
            if src is source:
                at = int(np.searchsorted(rows, row))
                return float(scores[at]) if at < rows.size and rows[at] == row else 0.0
        return 0.0


def lexical_matches(candidates: Sequence[tuple[Any, np.ndarray, np.ndarray]], terms: Sequence[str],
                    params: BM25 | None = None) -> LexicalMatches:
    """BM25 over ``candidates`` = [(source, searchable_mask, result_mask)].

    ``searchable_mask`` selects the rows that define corpus statistics (document count,
    average length, document frequencies); ``result_mask`` (a subset) selects the rows that
    may be returned. Rows sharing no query term are absent.
    """
    unique_terms = list(dict.fromkeys(terms))
    if not unique_terms:
        return LexicalMatches([], 0.0)
    n_docs = 0
    total_length = 0.0
    doc_freqs = dict.fromkeys(unique_terms, 0)
    for src, searchable, _ in candidates:
        lex = src.lexicon
        n_docs += int(np.count_nonzero(searchable))
        total_length += float(lex.doc_lengths()[searchable].sum())
        for term in unique_terms:
            rows, _tfs = lex.postings(term)
            if rows.size:
                doc_freqs[term] += int(np.count_nonzero(searchable[rows]))
    if n_docs == 0:
        return LexicalMatches([], 0.0)
    avg_length = total_length / n_docs
    per_source = []
    for src, _, allowed in candidates:
        rows, scores = bm25_scores(src.lexicon, unique_terms, n_docs=n_docs, avg_length=avg_length,
                                   doc_freqs=doc_freqs, params=params)
        keep = allowed[rows]
        if keep.any():
            per_source.append((src, rows[keep], scores[keep]))
    reference = sum(idf(n_docs, df) for df in doc_freqs.values())  # absent terms count: they weaken the match
    return LexicalMatches(per_source, reference)


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[K]], weights: Mapping[str, float] | None = None,
                           k0: int = RRF_K) -> list[tuple[K, float, dict[str, int]]]:
    """Fuse ranked lists of keys. Returns [(key, fused score, {component: rank})], best first.

    Ties in fused score keep the order in which keys were first seen across components
    (in the mapping's order), so results are deterministic.
    """
    fused: dict[K, float] = {}
    ranks: dict[K, dict[str, int]] = {}
    for component, keys in rankings.items():
        weight = 1.0 if weights is None else float(weights.get(component, 1.0))
        for rank, key in enumerate(keys, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k0 + rank)
            ranks.setdefault(key, {})[component] = rank
    order = sorted(fused, key=lambda key: -fused[key])  # sorted() is stable: first-seen order breaks ties
    return [(key, fused[key], ranks[key]) for key in order]
