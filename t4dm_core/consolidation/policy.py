"""What a sleep does, and how strongly: :class:`SleepPolicy`.

Every knob has a default chosen so that one sleep is gentle (κ moves by a tenth of the way
to 1, edges by 5 %), and forgetting needs a memory to be unimportant, unused, unpinned *and*
old. All times are in seconds or days as named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from t4dm_core.errors import InvalidInputError
from t4dm_core.types import Memory

__all__ = ["SleepPolicy", "Summarizer", "extractive_summary"]

Summarizer = Callable[[Sequence[Memory]], str]


def extractive_summary(members: Sequence[Memory]) -> str:
    """Default REM summarizer (no LLM): the text of the member nearest the cluster centroid.

    ``members`` arrive ordered nearest-first, so this is the first member with text, with
    the cluster size appended so a reader knows it stands for several memories.
    """
    text = next((m.text for m in members if m.text), "")
    return f"{text} (summary of {len(members)} related memories)"


@dataclass(frozen=True)
class SleepPolicy:
    """Settings of :meth:`t4dm_core.Store.sleep`.

    NREM (replay):
        replay_limit: memories replayed per namespace, chosen by recency of use and importance.
        kappa_step: each replay moves κ a fraction ``kappa_step`` of the way to 1.
        stdp_rate: spike-timing rule on edges of ``stdp_edge_types`` between two replayed
            memories: an edge from the earlier memory to the later one (pre before post)
            gains ``rate * (1 - w)``; an edge from the later to the earlier loses ``rate * w``.
        dedupe_similarity: memories of a namespace whose vectors have at least this cosine
            (or identical text) are merged into one; the survivor records the originals.
    REM (abstraction):
        rem: run REM.
        rem_max_kappa: only memories with κ below this (episodic) are clustered.
        rem_min_cluster_size: smallest HDBSCAN cluster that becomes a prototype.
        summarizer: ``fn(members) -> text`` of a prototype (default :func:`extractive_summary`).
    PRUNE (forgetting):
        prune: run PRUNE.
        half_life_days: a memory's strength halves for every this many idle days.
        forget_below: unpinned memories weaker than this, idle for at least
            ``min_idle_days``, are forgotten (tombstoned; history keeps them).
        min_idle_days: never forget a memory used or written more recently than this.
        edge_decay: weights of ``decaying_edge_types`` edges are multiplied by this.
        edge_forget_below: such edges lighter than this are removed.
    compact: merge all segments afterwards (reclaims overlays and dead files).
    """

    replay_limit: int = 1000
    kappa_step: float = 0.1
    stdp_rate: float = 0.05
    stdp_edge_types: tuple[str, ...] = ("next",)
    dedupe_similarity: float = 0.97
    rem: bool = True
    rem_max_kappa: float = 0.5
    rem_min_cluster_size: int = 5
    summarizer: Summarizer | None = None
    prune: bool = True
    half_life_days: float = 30.0
    forget_below: float = 0.05
    min_idle_days: float = 7.0
    edge_decay: float = 0.9
    edge_forget_below: float = 0.01
    decaying_edge_types: tuple[str, ...] = ("co_retrieved",)
    compact: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not value >= 0:
                raise InvalidInputError(f"SleepPolicy.{f.name} must be >= 0, got {value!r}")
        for name in ("kappa_step", "stdp_rate", "edge_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InvalidInputError(f"SleepPolicy.{name} must be in [0, 1]")
        if self.replay_limit < 0 or self.rem_min_cluster_size < 2:
            raise InvalidInputError("SleepPolicy.replay_limit must be >= 0 and rem_min_cluster_size >= 2")
        if not -1.0 <= self.dedupe_similarity <= 1.0 or self.half_life_days <= 0:
            raise InvalidInputError("SleepPolicy.dedupe_similarity must be a cosine; half_life_days must be > 0")
