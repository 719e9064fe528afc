"""Answer metrics of the evaluation harness: normalised exact match, token F1, bootstrap 95% CIs.

Normalisation (applied to prediction and gold alike): lower-case, every character that is
not a letter, digit or whitespace becomes a space, the articles ``a``/``an``/``the`` are
dropped, and whitespace is collapsed. Exact match is 1.0 when the normalised strings are
equal; token F1 is the harmonic mean of precision and recall of the normalised tokens
counted as a multiset (1.0 when both are empty, 0.0 when only one is). Higher is better for
both. All functions are pure and thread-safe; :func:`bootstrap_ci` is deterministic for a
given seed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from t4dm_core import InvalidInputError

__all__ = ["DEFAULT_N_BOOT", "MetricSummary", "bootstrap_ci", "exact_match", "normalize_answer", "summarize",
           "token_f1"]

DEFAULT_N_BOOT = 1_000
_NON_WORD = re.compile(r"[^\w\s]|_")
_ARTICLES = frozenset({"a", "an", "the"})


def _tokens(text: str) -> list[str]:
    return [t for t in _NON_WORD.sub(" ", text.lower()).split() if t not in _ARTICLES]


def normalize_answer(text: str) -> str:
    """``text`` normalised as described in the module doc (e.g. ``"The Cafe, Lumen!"`` -> ``"cafe lumen"``)."""
    return " ".join(_tokens(text))


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalised prediction equals the normalised gold answer, else 0.0."""
    return 1.0 if normalize_answer(prediction) == normalize_answer(gold) else 0.0


def token_f1(prediction: str, gold: str) -> float:
    """Token-level F1 in [0, 1] between the normalised prediction and gold answer (see the module doc)."""
    pred, ref = _tokens(prediction), _tokens(gold)
    if not pred or not ref:
        return 1.0 if pred == ref else 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def bootstrap_ci(values: Sequence[float], *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (``n_boot`` resamples, seeded).

    Raises :class:`~t4dm_core.InvalidInputError` for no values, ``n_boot < 1`` or a level
    outside (0, 1).
    """
    if len(values) == 0:
        raise InvalidInputError("bootstrap_ci needs at least one value")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise InvalidInputError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must be in (0, 1), got {level!r}")
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(n_boot, len(data)))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True)
class MetricSummary:
    """Mean of per-question scores and its bootstrap 95% interval."""

    mean: float
    ci95: tuple[float, float]

    def to_json(self) -> dict[str, object]:
        return {"mean": self.mean, "ci95": [self.ci95[0], self.ci95[1]]}


def summarize(values: Sequence[float], *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> MetricSummary:
    """The mean of ``values`` with its seeded bootstrap 95% CI."""
    ci = bootstrap_ci(values, n_boot=n_boot, seed=seed)
    return MetricSummary(float(np.mean(np.asarray(values, dtype=np.float64))), ci)
