"""Scenario C: preferences and service settings that change over time (:func:`seeds.scenarios.changing_facts`).

How the items are made (``n`` questions, ``seed``, ``eras``):

* the facts are the first ``ceil(n / 2)`` preferences and ``n - ceil(n / 2)`` settings of
  ``changing_facts(seed, ...)``; every fact has a value at era 0 and at least one later change;
* **layout** ``"versioned"`` (T4DM's bitemporal store): every change of a fact is written as a
  new *version of the same memory id* (the fact's key), era by era (all era-0 values first,
  then the era-1 changes, ...). Search sees only the current version; the old ones stay in
  the history. **Layout** ``"append"`` (what append-only memory stores do): every change is a
  separate memory ``{key}-v{i}``, written in the same order — all values stay searchable;
* one question per fact (the scenario's own wording, e.g. ``"Which editor theme does Ana
  Silva prefer?"``); the gold answer is the fact's *current* (latest) value; the evidence is the
  memory holding it (``key`` when versioned, the latest ``{key}-v{i}`` when appended);
  ``stale_answers`` are the earlier values that differ from the current one (the answers an
  outdated memory gives) and ``stale_ids`` the appended memories holding only such a value
  (empty when versioned: superseded versions are not searchable);
* the answer vocabulary is every value of every preference and setting (the same for every
  question); the answer kind is ``"value"``.

Requires the repository's ``seeds`` package. Pure and thread-safe.
"""

from __future__ import annotations

from typing import Literal

from t4dm_core.learning.llm.evaluation.errors import EvalConfigError
from t4dm_core.learning.llm.evaluation.items import EvalQuestion, EvalSet, MemoryRecord

__all__ = ["DEFAULT_ERAS", "LAYOUTS", "Layout", "scenario_c"]

Layout = Literal["versioned", "append"]
LAYOUTS: tuple[str, ...] = ("versioned", "append")
DEFAULT_ERAS = 4


def _vocabulary() -> tuple[str, ...]:
    from seeds.scenarios import PREFERENCES, SETTINGS

    return tuple(dict.fromkeys(value for _attr, values in (*PREFERENCES, *SETTINGS) for value in values))


def scenario_c(n: int, *, seed: int = 0, eras: int = DEFAULT_ERAS, layout: Layout = "versioned") -> EvalSet:
    """``n`` scenario-C questions and the memory writes of ``layout``; see the module doc.

    Raises :class:`~.errors.EvalConfigError` for ``n < 1``, ``eras < 2`` or an unknown layout.
    """
    from seeds.scenarios import changing_facts

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise EvalConfigError(f"n must be a positive integer, got {n!r}")
    if isinstance(eras, bool) or not isinstance(eras, int) or eras < 2:
        raise EvalConfigError(f"eras must be an integer >= 2 (a fact must be able to change), got {eras!r}")
    if layout not in LAYOUTS:
        raise EvalConfigError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
    n_preferences = -(-n // 2)
    facts = changing_facts(seed, n_preferences=n_preferences, n_settings=max(1, n - n_preferences), eras=eras)
    chosen = [f for f in facts if f.kind == "preference"][:n_preferences] + \
        [f for f in facts if f.kind == "setting"][:n - n_preferences]
    writes: list[tuple[int, MemoryRecord]] = []
    questions: list[EvalQuestion] = []
    for fact in chosen:
        ids = [fact.key if layout == "versioned" else f"{fact.key}-v{i}" for i in range(len(fact.changes))]
        writes.extend((change.era, (mid, change.text, {"key": fact.key, "era": change.era}))
                      for mid, change in zip(ids, fact.changes, strict=True))
        current = fact.changes[-1].value
        stale = tuple(dict.fromkeys(c.value for c in fact.changes[:-1] if c.value != current))
        stale_ids = () if layout == "versioned" else \
            tuple(mid for mid, c in zip(ids[:-1], fact.changes[:-1], strict=True) if c.value != current)
        questions.append(EvalQuestion(fact.question, current, ids[-1], "current", fact.question, stale, stale_ids))
    writes.sort(key=lambda write: write[0])  # stable: era by era, facts in order within an era
    return EvalSet("C", tuple(record for _era, record in writes), tuple(questions), _vocabulary(), "value")
