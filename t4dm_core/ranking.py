"""Ranking building blocks for search: lexical candidates over row sources and rank fusion.

A *candidate set* is, per row source (memtable or segment), a boolean mask of the rows a
query may return (live or visible at ``as_of``, in the namespace, matching the filter).
:func:`lexical_top_k` scores those rows with BM25 under statistics computed over the
namespace's searchable rows (not the filter), so a filter narrows results without changing
term weights. :func:`reciprocal_rank_fusion` merges ranked lists: a candidate's fused score
is ``Σ weight_c / (RRF_K + rank_c)`` over the components that ranked it (rank 1 = best).

Score direction everywhere: higher = more relevant. Pure functions; thread-safe given
sources that are not mutated meanwhile (the store calls them under its read lock).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, TypeVar

import numpy as np

from t4dm_core.index.lexical import BM25, TermSource, bm25_scores

__all__ = ["RRF_K", "LexicalSource", "Ranking", "lexical_top_k", "reciprocal_rank_fusion"]

RRF_K = 60
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Ranking:
    """Which signals rank a search, and how much each counts (0 switches a signal off).

    Retrieval signals find candidates: ``vector`` (cosine over the embedding), ``lexical``
    (BM25 over the text) and ``graph`` (neighbours, either direction, of the best
    ``graph_seeds`` vector/lexical candidates, scored by the seed's fused score times the
    edge weight). Priors only re-order the candidates found: ``recency`` (newer transaction
    time first), ``importance`` and ``kappa`` (higher first). Each signal contributes
    ``weight / (60 + rank)`` to a candidate's fused score.

    With a single retrieval signal and no graph or priors, the hit score is that signal's
    own score (cosine or BM25) instead of the fused one. Graph expansion is skipped for
    ``as_of`` searches (edges are not bitemporal).
    """

    vector: float = 1.0
    lexical: float = 1.0
    graph: float = 0.5
    recency: float = 0.2
    importance: float = 0.1
    kappa: float = 0.1
    graph_seeds: int = 5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"Ranking.{f.name} must be a non-negative number, got {value!r}")
        if self.vector == 0 and self.lexical == 0:
            raise ValueError("Ranking needs vector > 0 or lexical > 0 to find candidates")

    @property
    def weights(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SIGNALS}

    @property
    def single_signal(self) -> str | None:
        """The only active signal when exactly one retrieval signal and nothing else is on."""
        active = [name for name in SIGNALS if getattr(self, name) > 0]
        return active[0] if len(active) == 1 else None


SIGNALS = ("vector", "lexical", "graph", "recency", "importance", "kappa")
VECTOR_ONLY = Ranking(lexical=0, graph=0, recency=0, importance=0, kappa=0)
LEXICAL_ONLY = Ranking(vector=0, graph=0, recency=0, importance=0, kappa=0)


class LexicalSource(Protocol):
    """A row source with a lexicon (memtable or segment)."""

    @property
    def lexicon(self) -> TermSource: ...


def lexical_top_k(candidates: Sequence[tuple[Any, np.ndarray, np.ndarray]], terms: Sequence[str], k: int,
                  params: BM25 | None = None) -> list[tuple[float, Any, int]]:
    """Best ``k`` rows by BM25 over ``candidates`` = [(source, searchable_mask, result_mask)].

    ``searchable_mask`` selects the rows that define corpus statistics (document count,
    average length, document frequencies); ``result_mask`` (a subset) selects the rows that
    may be returned. Returns [(score, source, row)], best first; rows sharing no query term
    are absent.
    """
    unique_terms = list(dict.fromkeys(terms))
    if not unique_terms:
        return []
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
        return []
    avg_length = total_length / n_docs
    found: list[tuple[float, Any, int]] = []
    for src, _, allowed in candidates:
        rows, scores = bm25_scores(src.lexicon, unique_terms, n_docs=n_docs, avg_length=avg_length,
                                   doc_freqs=doc_freqs, params=params)
        keep = allowed[rows]
        found.extend((float(s), src, int(r)) for r, s in zip(rows[keep], scores[keep], strict=True))
    found.sort(key=lambda c: -c[0])
    return found[:k]


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
