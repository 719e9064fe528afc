"""Scenario A as question/answer items: :func:`seeds.scenarios.slot_stories` → memories, questions, answers.

How the items are made (``n`` questions, ``seed``):

* the scenario is ``slot_stories(seed, n_groups=n)``: per group one *target* story and four
  hard negatives (same person, one identifying slot changed, or same slots and another
  surname); **all** ``5 n`` stories are the memories to store, in the scenario's order;
* one question per group, about its target. The question names the identifying slots
  (who, verb, object) and asks for a slot the cue leaves out: ``"where"`` (default) asks
  ``"Where did {who} {verb} the {object}?"`` and the answer is the place text (e.g.
  ``"the old train station"``); ``"when"`` asks ``"When did ...?"`` and the answer is the
  day (e.g. ``"Friday evening"``). The verb is the story's own verb (base form) in even
  groups and its synonym in odd groups (the scenario's ``direct`` and ``paraphrase`` cues);
  ``direct_question`` is always the form with the story's own verb (what consolidation trains on);
* the evidence of a question is the target's memory id;
* the answer vocabulary (for :func:`~.prompting.extract_answer`) is every answer the slot can
  have: all places of the scenario vocabulary (``"where"``) or every weekday + part of day
  (``"when"``) — the same for every question, so it never hints at the gold answer.

The place/day are recovered from the story text (every story names exactly one place of
the scenario vocabulary and one weekday + part of day). Requires the repository's
``seeds`` package. Pure and thread-safe.
"""

from __future__ import annotations

from typing import Any, Literal

from t4dm_core.learning.llm.evaluation.errors import EvalConfigError
from t4dm_core.learning.llm.evaluation.items import EvalQuestion, EvalSet

__all__ = ["SLOTS", "EvalQuestion", "EvalSet", "Slot", "check_slot", "scenario_a", "slot_story_questions",
           "slot_vocabulary"]

Slot = Literal["where", "when"]
SLOTS: tuple[str, ...] = ("where", "when")


def _only(found: list[str], what: str, text: str) -> str:
    if len(found) != 1:
        raise EvalConfigError(f"story {text!r} names {len(found)} {what} (expected exactly one)")
    return found[0]


def slot_vocabulary(slot: Slot) -> tuple[str, ...]:
    """Every answer ``slot`` can have (module doc): the scenario's places, or every weekday + part of day."""
    from seeds.scenarios import DAY_PARTS, PLACES, WEEKDAYS

    if slot == "where":
        return tuple(PLACES)
    return tuple(f"{d} {p}" for d in WEEKDAYS for p in DAY_PARTS)


def _answer(slot: Slot, text: str) -> str:
    if slot == "where":
        return _only([p for p in slot_vocabulary(slot) if f" at {p}" in text], "places", text)
    return _only([day for day in slot_vocabulary(slot) if day in text], "days", text)


def check_slot(n: int, slot: str) -> None:
    """Raise :class:`~.errors.EvalConfigError` unless ``n`` is a positive integer and ``slot`` one of :data:`SLOTS`."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise EvalConfigError(f"n must be a positive integer, got {n!r}")
    if slot not in SLOTS:
        raise EvalConfigError(f"slot must be one of {list(SLOTS)}, got {slot!r}")


def slot_story_questions(items: Any, n_groups: int, slot: Slot) -> tuple[EvalQuestion, ...]:
    """One question per target story of ``items`` (slot-story :class:`~seeds.scenarios.Item`) in groups ``< n_groups``.

    Ordered by target id (= group order); the wording follows the module doc.
    """
    from seeds.scenarios import VERBS

    targets = sorted((item for item in items if item.metadata["role"] == "target"
                      and int(item.metadata["group"]) < n_groups), key=lambda i: i.id)
    verb_forms = {past: (base, synonym) for past, base, _syn_past, synonym in VERBS}
    questions: list[EvalQuestion] = []
    for item in targets:
        group = int(item.metadata["group"])
        base, synonym = verb_forms[str(item.metadata["verb"])]
        cue, verb = ("direct", base) if group % 2 == 0 else ("paraphrase", synonym)
        ask = f"{slot.capitalize()} did {item.metadata['who']} {{}} the {item.metadata['object']}?"
        questions.append(EvalQuestion(ask.format(verb), _answer(slot, item.text), item.id, cue, ask.format(base)))
    return tuple(questions)


def scenario_a(n: int, *, seed: int = 0, slot: Slot = "where") -> EvalSet:
    """``n`` scenario-A questions (one per story group) and the ``5 n`` memories to store; see the module doc.

    Raises :class:`~.errors.EvalConfigError` for ``n < 1`` or an unknown slot.
    """
    from seeds.scenarios import slot_stories

    check_slot(n, slot)
    scenario = slot_stories(seed, n_groups=n)
    memories = tuple((item.id, item.text, dict(item.metadata)) for item in scenario.items)
    return EvalSet("A", memories, slot_story_questions(scenario.items, n, slot), slot_vocabulary(slot), slot)
