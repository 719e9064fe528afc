"""Lexical (BM25) indexes: an immutable one per segment, an append-only one for the memtable.

Tokens are lower-cased Unicode word runs (``\\w+``) minus a short English stop-word list.
Both index kinds expose the same read interface, :class:`TermSource`: document frequency of
a term, the rows holding it with their term frequencies, and per-row document lengths.
:func:`bm25_scores` combines per-source postings with corpus-wide statistics, so a term's
weight does not depend on which segment a memory happens to live in.

Score direction: higher = more relevant; a row that shares no query term scores 0 and is
not returned. Thread-safety: :class:`SegmentLexicon` is immutable; :class:`MemtableLexicon`
is appended to under the store's write lock and read under its read lock.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np
import pyarrow as pa

__all__ = ["BM25", "MemtableLexicon", "SegmentLexicon", "TermSource", "bm25_scores", "idf", "tokenize"]

_WORD = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "he", "her", "his",
    "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "she", "so",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to", "was", "we",
    "were", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
})


def tokenize(text: str | None) -> list[str]:
    """Lower-cased word tokens of ``text`` without stop words (``None`` gives none)."""
    if not text:
        return []
    return [t for t in _WORD.findall(text.lower()) if t not in STOP_WORDS]


class BM25:
    """BM25 parameters: ``k1`` saturates term frequency, ``b`` normalises by document length."""

    __slots__ = ("b", "k1")

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b


class TermSource(Protocol):
    """Read interface shared by segment and memtable lexicons."""

    @property
    def n_rows(self) -> int: ...

    @property
    def total_length(self) -> float: ...

    def doc_freq(self, term: str) -> int: ...

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]: ...

    def doc_lengths(self) -> np.ndarray: ...


class SegmentLexicon:
    """Immutable postings for a segment's rows, stored CSR-style (one run of rows per term)."""

    def __init__(self, terms: Sequence[str], indptr: np.ndarray, rows: np.ndarray, tfs: np.ndarray,
                 lengths: np.ndarray) -> None:
        self._term_ids = {t: i for i, t in enumerate(terms)}
        self._terms = list(terms)
        self._indptr = indptr
        self._rows = rows
        self._tfs = tfs
        self._lengths = lengths

    @classmethod
    def build(cls, texts: Iterable[str | None]) -> SegmentLexicon:
        """Index ``texts``; row ``i`` is the ``i``-th text."""
        per_term: dict[str, list[tuple[int, int]]] = {}
        lengths: list[int] = []
        for row, text in enumerate(texts):
            tokens = tokenize(text)
            lengths.append(len(tokens))
            for term, tf in Counter(tokens).items():
                per_term.setdefault(term, []).append((row, tf))
        terms = sorted(per_term)
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        for i, term in enumerate(terms):
            indptr[i + 1] = indptr[i] + len(per_term[term])
        flat = [p for term in terms for p in per_term[term]]
        rows = np.fromiter((r for r, _ in flat), dtype=np.int32, count=len(flat))
        tfs = np.fromiter((tf for _, tf in flat), dtype=np.float32, count=len(flat))
        return cls(terms, indptr, rows, tfs, np.asarray(lengths, dtype=np.float32))

    @property
    def n_rows(self) -> int:
        return int(self._lengths.size)

    @property
    def total_length(self) -> float:
        return float(self._lengths.sum())

    def doc_freq(self, term: str) -> int:
        i = self._term_ids.get(term)
        return 0 if i is None else int(self._indptr[i + 1] - self._indptr[i])

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        i = self._term_ids.get(term)
        if i is None:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        lo, hi = int(self._indptr[i]), int(self._indptr[i + 1])
        return self._rows[lo:hi], self._tfs[lo:hi]

    def doc_lengths(self) -> np.ndarray:
        return self._lengths

    def to_table(self) -> pa.Table:
        """One row per term: the term, its rows and their term frequencies (document lengths
        are not stored: they are the per-row sums of term frequencies)."""
        offsets = pa.array(self._indptr.astype(np.int32))
        return pa.table({
            "term": pa.array(self._terms, type=pa.string()),
            "rows": pa.ListArray.from_arrays(offsets, pa.array(self._rows, type=pa.int32())),
            "tfs": pa.ListArray.from_arrays(offsets, pa.array(self._tfs, type=pa.float32())),
        })

    @classmethod
    def from_table(cls, table: pa.Table, n_rows: int) -> SegmentLexicon:
        """Inverse of :meth:`to_table` for a segment of ``n_rows`` rows.

        Raises:
            ValueError: the table names a row outside the segment or is malformed.
        """
        rows_col = table.column("rows").combine_chunks()
        tfs_col = table.column("tfs").combine_chunks()
        if len(rows_col):
            indptr = rows_col.offsets.to_numpy().astype(np.int64)
            rows = rows_col.values.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
            tfs = tfs_col.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        else:
            indptr, rows, tfs = np.zeros(1, np.int64), np.empty(0, np.int32), np.empty(0, np.float32)
        if rows.size != tfs.size or (rows.size and (rows.min() < 0 or rows.max() >= n_rows)):
            raise ValueError("lexicon postings do not fit the segment")
        lengths = np.bincount(rows, weights=tfs, minlength=n_rows).astype(np.float32)
        return cls(table.column("term").to_pylist(), indptr, rows, tfs, lengths)


class MemtableLexicon:
    """Append-only postings for the memtable (one :meth:`add` per new row, in row order)."""

    def __init__(self) -> None:
        self._postings: dict[str, tuple[list[int], list[float]]] = {}
        self._lengths: list[float] = []
        self._total = 0.0

    def add(self, row: int, text: str | None) -> None:
        """Index ``text`` as row ``row``; rows must arrive as 0, 1, 2, ..."""
        if row != len(self._lengths):
            raise ValueError(f"memtable lexicon expects row {len(self._lengths)}, got {row}")
        tokens = tokenize(text)
        self._lengths.append(float(len(tokens)))
        self._total += len(tokens)
        for term, tf in Counter(tokens).items():
            rows, tfs = self._postings.setdefault(term, ([], []))
            rows.append(row)
            tfs.append(float(tf))

    @property
    def n_rows(self) -> int:
        return len(self._lengths)

    @property
    def total_length(self) -> float:
        return self._total

    def doc_freq(self, term: str) -> int:
        entry = self._postings.get(term)
        return 0 if entry is None else len(entry[0])

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        entry = self._postings.get(term)
        if entry is None:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        n = len(entry[0])  # a concurrent append may extend the lists; read a consistent prefix
        return np.asarray(entry[0][:n], dtype=np.int32), np.asarray(entry[1][:n], dtype=np.float32)

    def doc_lengths(self) -> np.ndarray:
        return np.asarray(self._lengths, dtype=np.float32)


def idf(n_docs: int, doc_freq: int) -> float:
    """BM25's inverse document frequency (always positive): ln(1 + (N − df + 0.5) / (df + 0.5))."""
    return float(np.log1p((n_docs - doc_freq + 0.5) / (doc_freq + 0.5)))


def bm25_scores(source: TermSource, terms: Sequence[str], *, n_docs: int, avg_length: float,
                doc_freqs: dict[str, int], params: BM25 | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BM25 of ``source``'s rows for the query ``terms`` under corpus-wide statistics.

    ``n_docs``, ``avg_length`` and ``doc_freqs`` describe the whole searched corpus (all
    sources), so scores from different sources are comparable. Returns (rows, scores) for
    rows with a positive score, unsorted. Repeated query terms count once.
    """
    p = params or BM25()
    lengths = source.doc_lengths()
    if lengths.size == 0 or not terms:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    norm = p.k1 * (1.0 - p.b + p.b * lengths / max(avg_length, 1e-9))
    scores = np.zeros(lengths.size, dtype=np.float32)
    for term in dict.fromkeys(terms):
        rows, tfs = source.postings(term)
        if rows.size == 0:
            continue
        weight = idf(n_docs, doc_freqs.get(term, 0))
        np.add.at(scores, rows, weight * tfs * (p.k1 + 1.0) / (tfs + norm[rows]))
    hit_rows = np.flatnonzero(scores > 0)
    return hit_rows.astype(np.int64), scores[hit_rows]
