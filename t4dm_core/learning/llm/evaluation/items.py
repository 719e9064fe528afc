"""The item types every scenario produces: :class:`EvalQuestion` and :class:`EvalSet` (shared by all scenarios).

An :class:`EvalSet` lists the memories to write **in order** — an id that occurs again is a
new *version* of that memory (the store keeps the old one in its history; search sees only
the current one) — the questions to ask once all are written, the answer vocabulary used by
:func:`~.prompting.extract_answer`, and the answer kind that selects the system instruction of
:func:`~.prompting.build_prompt`. Frozen dataclasses: immutable and thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ANSWER_KINDS", "AnswerKind", "EvalQuestion", "EvalSet", "MemoryRecord"]

AnswerKind = Literal["where", "when", "value"]
ANSWER_KINDS: tuple[str, ...] = ("where", "when", "value")
MemoryRecord = tuple[str, str, dict[str, object]]  # (id, text, metadata)


@dataclass(frozen=True)
class EvalQuestion:
    """A question, its gold answer, the id of the memory that holds it, the cue kind and the own-verb form.

    ``stale_answers`` are values that held earlier but were superseded (scenario C; they never
    equal ``answer``) and ``stale_ids`` the ids of memories holding only such values in the store.
    """

    question: str
    answer: str
    evidence_id: str
    cue: str
    direct_question: str
    stale_answers: tuple[str, ...] = ()
    stale_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalSet:
    """Memories to store in order (id, text, metadata), the questions to ask about them, every possible answer."""

    scenario: str
    memories: tuple[MemoryRecord, ...]
    questions: tuple[EvalQuestion, ...]
    vocabulary: tuple[str, ...] = ()
    answer_kind: AnswerKind = "where"
