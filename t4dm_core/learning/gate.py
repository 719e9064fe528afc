"""The write gate (HEI-NW): decide whether an offered memory is worth storing, with no LLM.

``S = α·surprise + β·novelty + γ·reward + δ·pin``; the memory is written when ``S ≥ τ``
(a pinned memory is always written). *Novelty* comes from the store itself — one minus the
best cosine similarity to what the namespace already holds (1 for an empty namespace) —
while *surprise* and *reward* are signals the caller supplies (for instance a model's
token surprisal and a task reward), each expected in [0, 1].

:class:`GateStats` keeps telemetry: offers, writes, writes per 1,000 offered tokens
(whitespace tokens), and — for offers that carried a ``label`` saying whether the memory
*should* be kept — precision and recall of the gate. Thread-safe (a lock guards the counters).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, fields

from t4dm_core.errors import InvalidInputError

__all__ = ["GateDecision", "GateStats", "WriteGate"]


@dataclass(frozen=True)
class WriteGate:
    """Weights and threshold of the write gate (defaults: novelty alone can pass τ)."""

    alpha: float = 0.5  # surprise
    beta: float = 1.0  # novelty
    gamma: float = 0.5  # reward
    delta: float = 1.0  # pin
    tau: float = 0.35

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidInputError(f"WriteGate.{f.name} must be a number, got {value!r}")

    def score(self, *, surprise: float, novelty: float, reward: float, pinned: bool) -> float:
        return self.alpha * surprise + self.beta * novelty + self.gamma * reward + self.delta * float(pinned)


@dataclass(frozen=True)
class GateDecision:
    """One gate verdict: whether the memory was written (and its id), and the terms of ``S``."""

    written: bool
    score: float
    novelty: float
    surprise: float
    reward: float
    pinned: bool
    id: str | None


class GateStats:
    """Running telemetry of a store's write gate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offered = 0
        self.written = 0
        self.tokens = 0
        self.true_pos = self.false_pos = self.false_neg = self.true_neg = 0

    def record(self, decision: GateDecision, tokens: int, label: bool | None) -> None:
        with self._lock:
            self.offered += 1
            self.written += decision.written
            self.tokens += tokens
            if label is not None:
                if decision.written and label:
                    self.true_pos += 1
                elif decision.written:
                    self.false_pos += 1
                elif label:
                    self.false_neg += 1
                else:
                    self.true_neg += 1

    def snapshot(self) -> dict[str, float | int | None]:
        """Counters plus ``writes_per_1k_tokens``, ``precision`` and ``recall`` (None when undefined)."""
        with self._lock:
            kept = self.true_pos + self.false_pos
            relevant = self.true_pos + self.false_neg
            return {
                "offered": self.offered, "written": self.written, "tokens": self.tokens,
                "writes_per_1k_tokens": 1000.0 * self.written / self.tokens if self.tokens else None,
                "precision": self.true_pos / kept if kept else None,
                "recall": self.true_pos / relevant if relevant else None,
            }
