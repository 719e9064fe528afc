"""Memory token packer (B1 read path): retrieved memories → a prompt prefix of at most N tokens.

The prefix follows a fixed template (:class:`MemoryTemplate`; by default a ``Memories:``
header, one ``- text`` line per memory and a blank line), so the same memories always give
the same text and the same token ids. Token counts are those of the model's own tokenizer
on the whole rendered prefix (no special tokens), so the budget holds exactly.

Contract of :meth:`MemoryPacker.pack`:

* **Redaction** — every memory's text passes through :func:`~.redaction.redact` first
  (PII redaction is on by default; pass ``redaction=None`` to turn it off).
* **Order** — ``"score"`` (default): hits by descending score, ties by namespace then id,
  then plain memories (no score) in the order given; ``"time"``: by valid-from time
  (recorded time if unset), then id; ``"given"``: as passed. The same (namespace, id)
  twice keeps its first place only. Memories without text (or deleted) are skipped.
* **Budget** — memories are added in order while the whole prefix fits ``max_tokens``. The
  first memory that does not fit is *cut at a word boundary and marked* with
  ``template.marker`` if at least ``min_cut_words`` words of it fit; it and every later
  memory are otherwise dropped (a lower-ranked memory never displaces a higher one).
  Every memory in the prefix is therefore whole, or cut and marked.
* An empty input, or a budget too small for even the header, gives an empty prefix.

Packers are immutable after construction; ``pack`` is thread-safe if the tokenizer is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from t4dm_core import Hit, InvalidInputError, Memory
from t4dm_core.learning.llm.redaction import DEFAULT_POLICY, RedactionPolicy, redact

__all__ = ["MemoryPacker", "MemoryTemplate", "PackedMemories", "question_prompt", "render_memory_block"]

Order = Literal["score", "time", "given"]
ORDERS: tuple[str, ...] = ("score", "time", "given")


@dataclass(frozen=True)
class MemoryTemplate:
    """How memories are laid out: ``header``, ``entry`` per memory (``{text}`` slot), ``footer``."""

    header: str = "Memories:\n"
    entry: str = "- {text}\n"
    footer: str = "\n"
    marker: str = " [...]"

    def __post_init__(self) -> None:
        if "{text}" not in self.entry:
            raise InvalidInputError(f"MemoryTemplate.entry must contain '{{text}}', got {self.entry!r}")


DEFAULT_TEMPLATE = MemoryTemplate()


def render_memory_block(texts: Sequence[str], template: MemoryTemplate = DEFAULT_TEMPLATE) -> str:
    """The prefix for ``texts`` as given (no redaction, no budget); ``""`` for no texts."""
    if not texts:
        return ""
    return template.header + "".join(template.entry.replace("{text}", t) for t in texts) + template.footer


def question_prompt(question: str) -> str:
    """The question part that follows a memory prefix; the answer is generated after it (``" " + answer``)."""
    return f"Question: {question}\nAnswer:"


@dataclass(frozen=True)
class PackedMemories:
    """A packed prefix: its text and token ids, and which memories went in, were cut or left out.

    ``memory_ids`` are the included memories in prefix order (``truncated_id``, if any, is
    the last of them); ``dropped_ids`` did not fit; ``skipped_ids`` had no text.
    ``redactions`` counts replaced PII spans per label over the included memories (a cut
    memory counts its whole text).
    """

    text: str
    input_ids: tuple[int, ...]
    memory_ids: tuple[str, ...]
    truncated_id: str | None
    dropped_ids: tuple[str, ...]
    skipped_ids: tuple[str, ...]
    redactions: dict[str, int]

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class _Candidate:
    key: str
    memory: Memory
    score: float | None
    position: int


def _candidates(items: Sequence[Memory | Hit]) -> list[_Candidate]:
    out: list[_Candidate] = []
    for position, item in enumerate(items):
        if isinstance(item, Hit):
            out.append(_Candidate(f"{item.namespace}/{item.id}", item.memory, item.score, position))
        elif isinstance(item, Memory):
            key = f"{item.namespace}/{item.id}" if item.id is not None else f"#{position}"
            out.append(_Candidate(key, item, None, position))
        else:
            raise InvalidInputError(f"pack() takes Memory or Hit objects, got {type(item).__name__} at {position}")
    return out


def _sorted(candidates: list[_Candidate], order: Order) -> list[_Candidate]:
    if order == "score":
        return sorted(candidates, key=lambda c: (c.score is None, -(c.score or 0.0),
                                                 c.key if c.score is not None else "", c.position))
    if order == "time":
        def when(c: _Candidate) -> float:
            t = c.memory.valid_from if c.memory.valid_from is not None else c.memory.recorded_at
            return t if t is not None else math.inf
        return sorted(candidates, key=lambda c: (when(c), c.key, c.position))
    return candidates


class MemoryPacker:
    """Packs memories into a prefix of at most ``max_tokens`` tokens of ``tokenizer``.

    ``tokenizer`` needs ``encode(text, add_special_tokens=False) -> list[int]`` (any
    Hugging Face tokenizer). Raises :class:`~t4dm_core.InvalidInputError` for a budget below
    1, an unknown order or ``min_cut_words`` below 1.
    """

    def __init__(self, tokenizer: Any, max_tokens: int, *, template: MemoryTemplate = DEFAULT_TEMPLATE,
                 redaction: RedactionPolicy | None = DEFAULT_POLICY, order: Order = "score",
                 min_cut_words: int = 3) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if order not in ORDERS:
            raise InvalidInputError(f"order must be one of {list(ORDERS)}, got {order!r}")
        if isinstance(min_cut_words, bool) or not isinstance(min_cut_words, int) or min_cut_words < 1:
            raise InvalidInputError(f"min_cut_words must be a positive integer, got {min_cut_words!r}")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.template = template
        self.redaction = redaction
        self.order: Order = order
        self.min_cut_words = min_cut_words

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def _fits(self, texts: list[str]) -> bool:
        return len(self.encode(render_memory_block(texts, self.template))) <= self.max_tokens

    def _cut(self, kept: list[str], text: str) -> str | None:
        """The longest word-boundary prefix of ``text`` (one line, single spaces) plus marker that fits, or None."""
        words = [text[:i] for i, ch in enumerate(text) if ch == " "]  # prefixes of 1, 2, ... words
        lo, hi, best = self.min_cut_words, len(words), None
        while lo <= hi:  # token count grows with the number of words kept
            mid = (lo + hi) // 2
            candidate = words[mid - 1] + self.template.marker
            if self._fits([*kept, candidate]):
                best, lo = candidate, mid + 1
            else:
                hi = mid - 1
        return best

    def pack(self, items: Sequence[Memory | Hit]) -> PackedMemories:
        """Pack ``items`` (Memory or Hit, e.g. ``store.search(...)``) under the budget; see the module doc."""
        kept: list[str] = []
        ids: list[str] = []
        skipped: list[str] = []
        dropped: list[str] = []
        truncated: str | None = None
        counts: dict[str, int] = {}
        seen: set[str] = set()
        for c in _sorted(_candidates(items), self.order):
            if c.key in seen:
                continue
            seen.add(c.key)
            label = c.memory.id if c.memory.id is not None else c.key
            if not c.memory.text or c.memory.deleted:
                skipped.append(label)
                continue
            if dropped or truncated is not None:
                dropped.append(label)
                continue
            red = redact(c.memory.text, self.redaction) if self.redaction is not None else None
            text = " ".join((red.text if red else c.memory.text).split())  # one line per memory
            entry = text if self._fits([*kept, text]) else self._cut(kept, text)
            if entry is None:
                dropped.append(label)
                continue
            if entry != text:
                truncated = label
            kept.append(entry)
            ids.append(label)
            for kind, n in (red.counts.items() if red else ()):
                counts[kind] = counts.get(kind, 0) + n
        prefix = render_memory_block(kept, self.template)
        return PackedMemories(prefix, tuple(self.encode(prefix)), tuple(ids), truncated, tuple(dropped),
                              tuple(skipped), counts)
