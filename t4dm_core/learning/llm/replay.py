"""Replay queue + CA2-style scheduler: which stored memories to consolidate next, as training rows.

:class:`ReplayScheduler` reads the current memories of one namespace (optionally a metadata
filter) from a :class:`~t4dm_core.Store` and picks up to ``k`` of them, best first. Candidates
are the *episodic* memories (``kappa < consolidated_kappa``); the consolidated ones
(``kappa >= consolidated_kappa``) are the reference set of the overlap proxy. Memories without
text are skipped (there is nothing to train on).

Priority (higher = replayed sooner), with the weights of :class:`ReplayWeights`::

    priority = w_salience·salience + w_recency·recency + w_overlap·overlap − w_diversity·redundancy

* **salience** — the write-gate score ``S`` when the memory's metadata holds it under
  ``"gate_score"`` (a finite number; :meth:`Store.offer` does not persist it, so callers that
  want it store ``GateDecision.score`` there), else the memory's ``importance``. Min-max
  rescaled to [0, 1] over the candidates (a constant salience contributes 0).
* **recency** — ``2 ** (-age / half_life_seconds)`` of the transaction time ``recorded_at``;
  ``age`` is measured from ``now`` (default: the newest candidate's ``recorded_at``, so the
  result does not depend on the wall clock). In (0, 1].
* **overlap** — the gradient-overlap proxy. The default, :func:`vector_centroid_overlap`, is
  *not* a gradient: it is ``(1 + cos(v, c)) / 2`` between the memory's stored vector ``v`` and
  the centroid ``c`` of the reference vectors, i.e. how close the item lies to what is already
  consolidated (MIR-style: items whose update would most overlap consolidated knowledge are
  rehearsed first). With no reference it is 0 for every item. Any callable with the
  :data:`OverlapProxy` signature can replace it, and so can a :class:`MemoryOverlap`, which
  reads the memories themselves — :class:`~.gradient_overlap.GradientOverlap` is the
  model-based one (cosine of each memory's loss gradient with the consolidated memories' mean
  gradient); ``w_overlap = 0`` switches the term off.
* **redundancy** — greedy MMR selection: the largest positive cosine between the item's
  vector and the vectors already selected, recomputed after every pick, so near-duplicates
  are spread out instead of replayed back to back.

Exact ties are broken by a permutation drawn from ``seed``: the same store state, arguments
and seed always give the same queue. Rows: every item gives one LM row (its text) and, when it
has a cue, one cue → answer row. The cue and answer are the metadata strings ``"cue"`` and
``"answer"`` when both are non-empty strings; otherwise the text is split deterministically —
the answer is the last whitespace-separated word with trailing punctuation (``.,;:!?``)
stripped, the cue is everything before it; a text of a single word has no cue → answer row.
:meth:`ReplayRows.lm_batch` / :meth:`ReplayRows.answer_batch` feed the rows to
:func:`~.training.lm_batch` / :func:`~.training.answer_batch` (torch is imported only there).

The scheduler reads the store through its public, thread-safe API and holds no state between
calls; it writes nothing (a replay does not count as a retrieval). Pure Python + numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from t4dm_core import InvalidInputError, Memory, Store

if TYPE_CHECKING:
    from t4dm_core.learning.llm.training import Batch

__all__ = [
    "MemoryOverlap",
    "OverlapProxy",
    "ReplayItem",
    "ReplayRows",
    "ReplayScheduler",
    "ReplayWeights",
    "replay_rows",
    "split_cue_answer",
    "vector_centroid_overlap",
]

GATE_SCORE_KEY = "gate_score"
CUE_KEY = "cue"
ANSWER_KEY = "answer"
_TRAILING_PUNCTUATION = ".,;:!?"

OverlapProxy = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``proxy(candidate_vectors (n, d), reference_vectors (m, d)) -> (n,)`` scores in [0, 1]; higher = more overlap."""


class MemoryOverlap:
    """An overlap proxy that reads the memories (text, metadata), not only their vectors.

    Subclasses implement ``__call__(candidates, reference) -> (len(candidates),)`` scores in
    [0, 1] (higher = more overlap; zeros when ``reference`` is empty).
    """

    def __call__(self, candidates: Sequence[Memory], reference: Sequence[Memory]) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class ReplayWeights:
    """Weights of the priority terms (each ``>= 0``; 0 switches a term off) and the recency half-life."""

    salience: float = 1.0
    recency: float = 1.0
    overlap: float = 0.5
    diversity: float = 0.5
    half_life_seconds: float = 86_400.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"ReplayWeights.{f.name} must be a finite number >= 0, got {value!r}")
        if self.half_life_seconds == 0:
            raise InvalidInputError("ReplayWeights.half_life_seconds must be > 0")


@dataclass(frozen=True)
class ReplayItem:
    """One scheduled memory: its id, namespace, text, cue/answer (``None`` if it has none) and priority terms.

    ``priority`` is the score at which the item was picked (redundancy already subtracted);
    the queue is in the order of picking, which is non-increasing in ``priority`` only when
    ``diversity`` is 0 (a pick can raise the redundancy of the remaining items, never lower it).
    """

    memory_id: str
    namespace: str
    text: str
    cue: str | None
    answer: str | None
    salience: float
    recency: float
    overlap: float
    redundancy: float
    priority: float


@dataclass(frozen=True)
class ReplayRows:
    """Training rows of a replay batch: LM texts and (prompt, answer) pairs, with the ids they came from."""

    memory_ids: tuple[str, ...]
    lm_texts: tuple[str, ...]
    prompts: tuple[str, ...]
    answers: tuple[str, ...]

    def lm_batch(self, tokenizer: Any, max_len: int) -> Batch:
        """The LM rows as a batch of :func:`~.training.lm_batch` (imports torch)."""
        from t4dm_core.learning.llm.training import lm_batch

        return lm_batch(tokenizer, list(self.lm_texts), max_len)

    def answer_batch(self, tokenizer: Any) -> Batch:
        """The cue → answer rows as a batch of :func:`~.training.answer_batch` (imports torch).

        Raises :class:`~t4dm_core.InvalidInputError` if no item had a cue.
        """
        from t4dm_core.learning.llm.training import answer_batch

        return answer_batch(tokenizer, list(self.prompts), list(self.answers))


def split_cue_answer(text: str) -> tuple[str, str] | None:
    """Deterministic cloze split: (everything before the last word, the last word without trailing punctuation).

    ``None`` when the text has fewer than two words or the last word is only punctuation.
    """
    head, _, last = text.strip().rpartition(" ")
    answer = last.rstrip(_TRAILING_PUNCTUATION)
    cue = head.strip()
    if not cue or not answer:
        return None
    return cue, answer


def _cue_answer(memory: Memory, text: str) -> tuple[str, str] | None:
    cue, answer = memory.metadata.get(CUE_KEY), memory.metadata.get(ANSWER_KEY)
    if isinstance(cue, str) and isinstance(answer, str) and cue.strip() and answer.strip():
        return cue, answer
    return split_cue_answer(text)


def replay_rows(items: Sequence[ReplayItem]) -> ReplayRows:
    """LM rows for every item and cue → answer rows for the items that have a cue, in queue order."""
    with_cue = [item for item in items if item.cue is not None and item.answer is not None]
    return ReplayRows(
        memory_ids=tuple(item.memory_id for item in items),
        lm_texts=tuple(item.text for item in items),
        prompts=tuple(item.cue for item in with_cue if item.cue is not None),
        answers=tuple(item.answer for item in with_cue if item.answer is not None),
    )


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def vector_centroid_overlap(candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(1 + cos(candidate, centroid(reference))) / 2`` per candidate; zeros if there is no reference.

    A vector-space stand-in for gradient overlap (items near consolidated knowledge share
    most of their update direction with it); it reads no model.
    """
    if reference.shape[0] == 0 or candidates.shape[0] == 0:
        return np.zeros(candidates.shape[0])
    centroid = _unit_rows(reference.mean(axis=0, keepdims=True))[0]
    return (1.0 + _unit_rows(candidates) @ centroid) / 2.0


def _min_max(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min()) if values.size else 0.0
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def _salience(memory: Memory) -> float:
    gate = memory.metadata.get(GATE_SCORE_KEY)
    if isinstance(gate, (int, float)) and not isinstance(gate, bool) and math.isfinite(gate):
        return float(gate)
    return float(memory.importance if memory.importance is not None else 0.0)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class ReplayScheduler:
    """Scores and orders a store's episodic memories for replay (see the module docstring for the terms).

    Args:
        store: an open store (read through ``find``; nothing is written).
        weights: the priority weights.
        overlap: the gradient-overlap proxy (default :func:`vector_centroid_overlap`), or a
            :class:`MemoryOverlap` called with the candidate and reference memories.
        consolidated_kappa: memories with ``kappa >= consolidated_kappa`` are the reference set,
            the others the candidates; in (0, 1].
        seed: tie-breaking seed.

    Thread-safe as far as the store is (it keeps no mutable state).
    """

    def __init__(self, store: Store, *, weights: ReplayWeights | None = None,
                 overlap: OverlapProxy | MemoryOverlap = vector_centroid_overlap, consolidated_kappa: float = 0.5,
                 seed: int = 0) -> None:
        if not isinstance(store, Store):
            raise InvalidInputError(f"expected a t4dm_core.Store, got {type(store).__name__}")
        if weights is not None and not isinstance(weights, ReplayWeights):
            raise InvalidInputError(f"weights must be a ReplayWeights, got {type(weights).__name__}")
        if (isinstance(consolidated_kappa, bool) or not isinstance(consolidated_kappa, (int, float))
                or not 0.0 < consolidated_kappa <= 1.0):
            raise InvalidInputError(f"consolidated_kappa must be a number in (0, 1], got {consolidated_kappa!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidInputError(f"seed must be an integer, got {seed!r}")
        if not callable(overlap):
            raise InvalidInputError("overlap must be a callable (candidates, reference) -> scores")
        self.store = store
        self.weights = weights or ReplayWeights()
        self.overlap = overlap
        self.consolidated_kappa = float(consolidated_kappa)
        self.seed = seed

    def schedule(self, k: int, *, namespace: str = "default", filter: Mapping[str, Any] | None = None,
                 now: float | None = None) -> list[ReplayItem]:
        """Up to ``k`` items in replay order (fewer if the namespace has fewer candidates; ``[]`` if none).

        Raises :class:`~t4dm_core.InvalidInputError` for ``k < 1`` or a non-finite ``now``;
        the store's own errors for a bad namespace name or filter.
        """
        k = _positive_int("k", k)
        if now is not None and (isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now)):
            raise InvalidInputError(f"now must be a finite POSIX time or None, got {now!r}")
        memories = [m for m in self.store.find(dict(filter) if filter is not None else None, namespace=namespace)
                    if m.text]
        candidates = [m for m in memories if (m.kappa or 0.0) < self.consolidated_kappa]
        if not candidates:
            return []
        reference = [m for m in memories if (m.kappa or 0.0) >= self.consolidated_kappa]
        cand_vectors = _unit_rows(self._vectors(candidates))
        ref_vectors = self._vectors(reference) if reference else np.zeros((0, cand_vectors.shape[1]))
        salience = _min_max(np.array([_salience(m) for m in candidates]))
        recorded = np.array([m.recorded_at or 0.0 for m in candidates])
        age = np.maximum(0.0, (recorded.max() if now is None else float(now)) - recorded)
        recency = np.exp2(-age / self.weights.half_life_seconds)
        scores = (self.overlap(candidates, reference) if isinstance(self.overlap, MemoryOverlap)
                  else self.overlap(cand_vectors, ref_vectors))
        overlap = np.asarray(scores, dtype=np.float64)
        if overlap.shape != (len(candidates),) or not np.all(np.isfinite(overlap)):
            raise InvalidInputError(f"overlap proxy returned shape {overlap.shape} or non-finite values; "
                                    f"expected {len(candidates)} finite scores")
        w = self.weights
        base = w.salience * salience + w.recency * recency + w.overlap * overlap
        tie_rank = np.random.default_rng(self.seed).permutation(len(candidates))
        return self._pick(candidates, cand_vectors, base, tie_rank, min(k, len(candidates)),
                          salience, recency, overlap)

    def batches(self, k: int, batch_size: int, *, namespace: str = "default",
                filter: Mapping[str, Any] | None = None, now: float | None = None) -> list[list[ReplayItem]]:
        """:meth:`schedule` cut into consecutive batches of ``batch_size`` (the last may be shorter)."""
        batch_size = _positive_int("batch_size", batch_size)
        items = self.schedule(k, namespace=namespace, filter=filter, now=now)
        return [items[i:i + batch_size] for i in range(0, len(items), batch_size)]

    @staticmethod
    def _vectors(memories: Sequence[Memory]) -> np.ndarray:
        dims = {m.vector.shape[0] for m in memories if m.vector is not None}
        dim = dims.pop() if dims else 1
        return np.stack([np.asarray(m.vector, dtype=np.float64) if m.vector is not None else np.zeros(dim)
                         for m in memories])

    def _pick(self, candidates: list[Memory], vectors: np.ndarray, base: np.ndarray, tie_rank: np.ndarray,
              k: int, salience: np.ndarray, recency: np.ndarray, overlap: np.ndarray) -> list[ReplayItem]:
        redundancy = np.zeros(len(candidates))
        remaining = set(range(len(candidates)))
        picked: list[ReplayItem] = []
        for _ in range(k):
            score = base - self.weights.diversity * redundancy
            best = max(remaining, key=lambda i: (score[i], -tie_rank[i]))
            remaining.discard(best)
            memory = candidates[best]
            text = memory.text or ""
            cue_answer = _cue_answer(memory, text)
            picked.append(ReplayItem(
                memory_id=str(memory.id), namespace=memory.namespace, text=text,
                cue=cue_answer[0] if cue_answer else None, answer=cue_answer[1] if cue_answer else None,
                salience=float(salience[best]), recency=float(recency[best]), overlap=float(overlap[best]),
                redundancy=float(redundancy[best]), priority=float(score[best])))
            redundancy = np.maximum(redundancy, np.clip(vectors @ vectors[best], 0.0, None))
        return picked
