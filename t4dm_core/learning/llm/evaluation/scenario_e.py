"""Scenario E: one long chat transcript, then questions about it — the whole transcript in the prompt vs retrieval.

How the items are made (``n`` questions, ``seed``, ``slot``):

* the memories and questions are exactly scenario A's (:func:`~.scenario_a.scenario_a`): ``5 n``
  stories (``n`` targets + hard negatives) and one question per target;
* the *transcript* is those stories told by the user one per exchange, in the scenario's
  (shuffled) order: ``"User: {story}\\nAssistant: {ACKNOWLEDGEMENT}\\n"`` per exchange;
  retrieval (B1) stores each story as one memory, the *full-context* system gets the
  transcript itself in the prompt;
* :class:`Transcript` renders the block for a token budget: ``"Conversation so far:\\n"`` and
  the **newest** exchanges that fit (older ones are dropped whole), then a blank line. The
  number of exchanges kept is returned so the report can say how often and how much was cut.

Requires the repository's ``seeds`` package. Pure; a :class:`Transcript` is immutable after
construction and thread-safe if the tokenizer is.
"""

from __future__ import annotations

from typing import Any

from t4dm_core.learning.llm.evaluation.items import EvalSet
from t4dm_core.learning.llm.evaluation.scenario_a import Slot, scenario_a

__all__ = ["ACKNOWLEDGEMENT", "HEADER", "Transcript", "scenario_e"]

ACKNOWLEDGEMENT = "Got it, I'll remember that."
HEADER = "Conversation so far:\n"


def scenario_e(n: int, *, seed: int = 0, slot: Slot = "where") -> EvalSet:
    """Scenario A's items labelled ``"E"`` (the transcript is built from ``memories`` by :class:`Transcript`).

    Raises :class:`~.errors.EvalConfigError` for ``n < 1`` or an unknown slot.
    """
    data = scenario_a(n, seed=seed, slot=slot)
    return EvalSet("E", data.memories, data.questions, data.vocabulary, data.answer_kind)


class Transcript:
    """The chat transcript of an :class:`~.items.EvalSet` (module doc), with per-exchange token counts."""

    def __init__(self, tokenizer: Any, data: EvalSet) -> None:
        self._tokenizer = tokenizer
        self.exchanges: tuple[str, ...] = tuple(f"User: {text}\nAssistant: {ACKNOWLEDGEMENT}\n"
                                                for _mid, text, _meta in data.memories)
        self._costs = [self._count(line) for line in self.exchanges]

    def _count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _render(self, kept: int) -> str:
        return HEADER + "".join(self.exchanges[len(self.exchanges) - kept:]) + "\n" if kept else ""

    def block(self, budget: int | None) -> tuple[str, int]:
        """The transcript block within ``budget`` tokens (``None`` = no limit) and how many exchanges it keeps."""
        if budget is None:
            return self._render(len(self.exchanges)), len(self.exchanges)
        kept, used = 0, self._count(HEADER + "\n")
        for cost in reversed(self._costs):
            if used + cost > budget:
                break
            kept, used = kept + 1, used + cost
        while kept and self._count(self._render(kept)) > budget:  # joint tokenisation may differ slightly
            kept -= 1
        return self._render(kept), kept
