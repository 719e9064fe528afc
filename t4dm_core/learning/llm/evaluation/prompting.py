"""Prompt formatting and answer extraction of the evaluation harness (one rule for every mode and model).

Prompt (:func:`build_prompt`): a model whose tokenizer has a chat template (e.g.
SmolLM2-Instruct) gets it — a *system* message with a fixed instruction (answer with only the
asked slot — the place, the day, or a setting's current value; use the memories if any are
given) and a *user* message holding the memory block (possibly empty; retrieved memories, or
the transcript of scenario E's full-context system) followed by ``Question: ...``, then the
template's generation prompt. A model without a chat template (the in-project tiny LM) gets
the raw ``memory block + Question: ... Answer:`` text of :func:`~..packer.question_prompt`.
In both formats B0 and B1 differ only in the memory block, so the comparison is fair.

Answer extraction (:func:`extract_answer`) is deterministic and applied to every reply:

1. the first non-empty line, skipping lead-in lines that end with ``:`` (``"The answer is:"``)
   when a later non-empty line follows; leading list markers (``-``, ``*``, ``•``) and spaces
   are stripped;
2. that line is cut at its first sentence end (a ``.``, ``!`` or ``?`` followed by a space or
   the end of the line);
3. if an answer vocabulary is given (scenario A: its places or weekday + part-of-day phrases),
   the vocabulary entry found earliest in the sentence is the answer — matched on
   :func:`~.metrics.normalize_answer` tokens at token boundaries, the longest entry on a tie —
   else the sentence itself. So a sentence reply ("Kenji dropped it off at the airport lounge")
   is scored on the slot it names, and a reply naming none keeps its text (and scores 0 EM).

Pure functions; thread-safe if the tokenizer is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from t4dm_core.learning.llm.evaluation.items import AnswerKind
from t4dm_core.learning.llm.evaluation.metrics import normalize_answer
from t4dm_core.learning.llm.packer import question_prompt

__all__ = ["SLOT_WORDING", "build_prompt", "extract_answer", "system_instruction", "uses_chat_template"]

SLOT_WORDING: dict[str, str] = {"where": "the place", "when": "the day and the time of day",
                                "value": "the current value"}
_LIST_MARKERS = "-*• \t"
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def uses_chat_template(tokenizer: Any) -> bool:
    """True if ``tokenizer`` carries a chat template (then :func:`build_prompt` uses it)."""
    return bool(getattr(tokenizer, "chat_template", None))


def system_instruction(slot: AnswerKind) -> str:
    """The fixed system message for questions whose answer is ``slot`` (identical in every mode)."""
    return (f"Answer the user's question. If memories are given, use them. "
            f"Reply with only {SLOT_WORDING[slot]}, nothing else.")


def build_prompt(tokenizer: Any, question: str, memory_block: str, slot: AnswerKind) -> str:
    """The text to decode after (see the module doc); ``memory_block`` is ``""`` for no memory (B0)."""
    if not uses_chat_template(tokenizer):
        return memory_block + question_prompt(question)
    messages = [{"role": "system", "content": system_instruction(slot)},
                {"role": "user", "content": f"{memory_block}Question: {question}"}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def _first_sentence(reply: str) -> str:
    lines = [line.strip().lstrip(_LIST_MARKERS).strip() for line in reply.splitlines()]
    lines = [line for line in lines if line]
    while len(lines) > 1 and lines[0].endswith(":"):
        lines.pop(0)
    if not lines:
        return ""
    end = _SENTENCE_END.search(lines[0])
    return lines[0][:end.start()] if end else lines[0]


def extract_answer(reply: str, vocabulary: Sequence[str] = ()) -> str:
    """The answer in a generated ``reply``: first sentence, then the earliest vocabulary entry in it (module doc)."""
    sentence = _first_sentence(reply)
    padded = f" {normalize_answer(sentence)} "
    best: tuple[int, int, str] | None = None
    for entry in vocabulary:
        norm = normalize_answer(entry)
        position = padded.find(f" {norm} ") if norm else -1
        if position >= 0 and (best is None or (position, -len(norm)) < best[:2]):
            best = (position, -len(norm), entry)
    return best[2] if best is not None else sentence
