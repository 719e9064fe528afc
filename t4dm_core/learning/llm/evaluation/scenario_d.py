"""Scenario D: scenario-A questions asked while the store holds growing numbers of distractor memories.

How the items are made (``n`` questions, store ``sizes`` in memories, ``seed``, ``slot``):

* the stories are ``slot_stories(seed, n_groups=ceil(max(sizes) / 5))``; its first ``n`` groups
  are exactly the groups of :func:`~.scenario_a.scenario_a` for the same ``seed`` and ``n``, so
  the ``n`` questions (built by :func:`~.scenario_a.slot_story_questions`) are scenario A's;
* the memories are ordered: first the ``5 n`` stories of the asked groups (targets and their hard
  negatives), then the stories of the other groups (*distractors*: same templates and
  vocabulary, never asked about), each part in the scenario's shuffled order. The store at size
  ``s`` holds the first ``s`` memories, so a larger store contains every smaller one;
* sizes are strictly increasing after sorting and each is at least ``5 n`` (a store must hold
  every question's evidence); :func:`default_store_sizes` gives ``5 n``, 1000 and 2500 (those
  above ``5 n``).

Requires the repository's ``seeds`` package. Pure and thread-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from t4dm_core.learning.llm.evaluation.errors import EvalConfigError
from t4dm_core.learning.llm.evaluation.items import EvalSet
from t4dm_core.learning.llm.evaluation.scenario_a import Slot, check_slot, slot_story_questions, slot_vocabulary

__all__ = ["DEFAULT_LARGER_SIZES", "StoreSizeSet", "check_store_sizes", "default_store_sizes", "parse_store_sizes",
           "scenario_d"]

DEFAULT_LARGER_SIZES: tuple[int, ...] = (1_000, 2_500)
_STORIES_PER_GROUP = 5


@dataclass(frozen=True)
class StoreSizeSet:
    """The scenario-D items: ``data.memories`` in write order (size ``s`` = the first ``s``) and the sizes."""

    data: EvalSet
    sizes: tuple[int, ...]


def default_store_sizes(n: int) -> tuple[int, ...]:
    """``5 n`` (the asked groups only) followed by the :data:`DEFAULT_LARGER_SIZES` above it."""
    base = _STORIES_PER_GROUP * n
    return (base, *(s for s in DEFAULT_LARGER_SIZES if s > base))


def parse_store_sizes(text: str) -> tuple[int, ...]:
    """``"250,2500"`` → ``(250, 2500)``; raises :class:`~.errors.EvalConfigError` for a non-integer entry."""
    sizes: list[int] = []
    for part in text.split(","):
        try:
            sizes.append(int(part.strip()))
        except ValueError:
            raise EvalConfigError(f"store sizes must be comma-separated integers, got {part.strip()!r}") from None
    return tuple(sizes)


def check_store_sizes(n: int, sizes: Sequence[int]) -> tuple[int, ...]:
    """``sizes`` sorted; raises :class:`~.errors.EvalConfigError` if empty, repeated, or one is below ``5 n``."""
    if not sizes:
        raise EvalConfigError("at least one store size is needed")
    ordered = tuple(sorted(sizes))
    if len(set(ordered)) != len(ordered):
        raise EvalConfigError(f"store sizes must be distinct, got {list(sizes)}")
    minimum = _STORIES_PER_GROUP * n
    for size in ordered:
        if isinstance(size, bool) or not isinstance(size, int) or size < minimum:
            raise EvalConfigError(f"store size {size!r} is below {minimum} = 5 x n (the memories of the asked "
                                  "groups must fit); raise the size or lower --n")
    return ordered


def scenario_d(n: int, sizes: Sequence[int], *, seed: int = 0, slot: Slot = "where") -> StoreSizeSet:
    """The ``n`` questions and the memories of the largest store, in write order; see the module doc.

    Raises :class:`~.errors.EvalConfigError` for a bad ``n``, slot or size list.
    """
    from seeds.scenarios import slot_stories

    check_slot(n, slot)
    ordered = check_store_sizes(n, sizes)
    scenario = slot_stories(seed, n_groups=-(-ordered[-1] // _STORIES_PER_GROUP))
    asked = [item for item in scenario.items if int(item.metadata["group"]) < n]
    distractors = [item for item in scenario.items if int(item.metadata["group"]) >= n]
    memories = tuple((item.id, item.text, dict(item.metadata)) for item in (asked + distractors)[:ordered[-1]])
    data = EvalSet("D", memories, slot_story_questions(scenario.items, n, slot), slot_vocabulary(slot), slot)
    return StoreSizeSet(data, ordered)
