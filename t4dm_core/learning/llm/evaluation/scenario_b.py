"""Scenario B (hot-patch facts) as a sequence of edits plus reliability, paraphrase and locality questions.

How the items are made (:func:`scenario_b`, ``n`` facts, ``seed``, ``patch_fraction``):

* every fact is about its own **fictional subject** (a common first name and a surname made
  of two invented syllables, so no base model can know the person) and one of the relations in
  :data:`RELATIONS` (lives in / works in / was born in / keeps a boat in / studied in); its
  value is a **fictional town** (two invented syllables plus an optional suffix such as ``"Bay"``).
  Subjects and towns are distinct within a scenario;
* each fact has a *question* (the form written in the edit), a *paraphrased question*
  (another wording of the same relation, never written anywhere) and a *statement* (the
  text of the edit, e.g. ``"Orla Venmarsh lives in Port Quillan."``);
* the **edit sequence** writes the ``n`` facts in order; ``round(patch_fraction · n)`` of them
  (chosen by the seed) are **patched** later: a second edit of the same fact, with a new
  town, placed at a seeded position after the fact's first edit. Hot-patch semantics: the
  gold answer of a fact is the value of its **latest** edit; :attr:`EditFact.stale` keeps the
  value the patch replaced;
* **locality probes** (questions no edit may change): ``max(1, n // 2)`` questions in the
  same templates about *other* fictional subjects that no edit mentions, and the fixed
  :data:`GENERAL_PROMPTS` about real-world places (the base model's own knowledge). They
  have no gold answer here — locality compares a system's answer with the unedited base
  model's answer (see :mod:`.editing`);
* the answer vocabulary (for :func:`~.prompting.extract_answer`) is every town of the
  scenario, current and stale, the same for every question.

All questions are "where" questions (the ``"where"`` slot of :func:`~.prompting.build_prompt`).
Pure, deterministic for a given ``(n, seed, patch_fraction)`` across processes, and thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from t4dm_core.learning.llm.evaluation.errors import EvalConfigError

__all__ = ["GENERAL_PROMPTS", "RELATIONS", "Edit", "EditFact", "EditScenario", "Relation", "scenario_b"]


@dataclass(frozen=True)
class Relation:
    """A relation's templates; ``{s}`` is the subject and ``{v}`` the town."""

    name: str
    question: str
    paraphrase: str
    statement: str


RELATIONS: tuple[Relation, ...] = (
    Relation("home", "Where does {s} live?", "In which town is the home of {s}?", "{s} lives in {v}."),
    Relation("work", "Where does {s} work?", "In which town is the workplace of {s}?", "{s} works in {v}."),
    Relation("birth", "Where was {s} born?", "What is the birthplace of {s}?", "{s} was born in {v}."),
    Relation("boat", "Where does {s} keep a boat?", "In which harbour town is the boat of {s} moored?",
             "{s} keeps a boat in {v}."),
    Relation("study", "Where did {s} study?", "In which town did {s} go to university?", "{s} studied in {v}."),
)

GENERAL_PROMPTS: tuple[str, ...] = (
    "Where is the Eiffel Tower?",
    "Where is the Colosseum?",
    "Where is the Statue of Liberty?",
    "Where is Big Ben?",
    "Where is the Sydney Opera House?",
    "Where is the Great Wall?",
    "Where is the Taj Mahal?",
    "Where is Mount Fuji?",
    "Where is the Golden Gate Bridge?",
    "Where is the Brandenburg Gate?",
    "Where is the Acropolis?",
    "Where is the Kremlin?",
)

_FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Leo",
                "Maya", "Nils", "Olga", "Paul", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Yara", "Zoe")
_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "", "l", "n", "r", "s", "m")
_SURNAME_ENDINGS = ("", "ton", "berg", "ley", "wick", "dale")
_TOWN_SUFFIXES = ("", "", "", " Bay", " Falls", " Ford", " Point")

_STREAM = 0x5CE7B  # the random stream of scenario B: np.random.default_rng([seed, _STREAM])


@dataclass(frozen=True)
class EditFact:
    """One fact: id, subject, relation, current (latest) value, the value a patch replaced (``None`` if unpatched)."""

    id: str
    subject: str
    relation: Relation
    value: str
    stale: str | None

    @property
    def question(self) -> str:
        return self.relation.question.format(s=self.subject)

    @property
    def paraphrase(self) -> str:
        return self.relation.paraphrase.format(s=self.subject)


@dataclass(frozen=True)
class Edit:
    """One step of the edit sequence: which fact, the value it sets, its statement, and whether it is a patch."""

    fact_id: str
    question: str
    value: str
    statement: str
    is_patch: bool


@dataclass(frozen=True)
class EditScenario:
    """The edit sequence, the facts (with their latest values), locality probes, and the answer vocabulary."""

    edits: tuple[Edit, ...]
    facts: tuple[EditFact, ...]
    other_subject_probes: tuple[str, ...]
    general_probes: tuple[str, ...]
    vocabulary: tuple[str, ...]

    @property
    def patched(self) -> tuple[EditFact, ...]:
        return tuple(f for f in self.facts if f.stale is not None)


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _word(rng: np.random.Generator, syllables: int) -> str:
    return "".join(_pick(rng, _ONSETS) + _pick(rng, _VOWELS) + _pick(rng, _CODAS)
                   for _ in range(syllables)).capitalize()


def _distinct(rng: np.random.Generator, count: int, make: Callable[[np.random.Generator], str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        candidate = make(rng)
        if candidate.lower() not in seen:
            seen.add(candidate.lower())
            out.append(candidate)
    return out


def _person(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _FIRST_NAMES)} {_word(rng, 2)}{_pick(rng, _SURNAME_ENDINGS)}"


def _town(rng: np.random.Generator) -> str:
    return _word(rng, 2) + _pick(rng, _TOWN_SUFFIXES)


def _edit(fact_id: str, subject: str, relation: Relation, value: str, is_patch: bool) -> Edit:
    return Edit(fact_id, relation.question.format(s=subject), value, relation.statement.format(s=subject, v=value),
                is_patch)


def scenario_b(n: int, *, seed: int = 0, patch_fraction: float = 0.2) -> EditScenario:
    """``n`` facts, their edit sequence with ``round(patch_fraction · n)`` later patches, and locality probes.

    See the module doc. Raises :class:`~.errors.EvalConfigError` for ``n < 1``, a negative
    ``seed`` or a ``patch_fraction`` outside [0, 1].
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise EvalConfigError(f"n must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise EvalConfigError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(patch_fraction, bool) or not isinstance(patch_fraction, (int, float)) \
            or not 0.0 <= patch_fraction <= 1.0:
        raise EvalConfigError(f"patch_fraction must be a number in [0, 1], got {patch_fraction!r}")
    rng = np.random.default_rng([seed, _STREAM])
    n_other = max(1, n // 2)
    n_patch = round(patch_fraction * n)
    people = _distinct(rng, n + n_other, _person)
    towns = _distinct(rng, n + n_patch, _town)
    order = rng.permutation(n + n_other)
    relations = [RELATIONS[int(i) % len(RELATIONS)] for i in order]
    ids = [f"fact-{i:04d}" for i in range(n)]
    first = [_edit(ids[i], people[i], relations[i], towns[i], False) for i in range(n)]
    patched = sorted(int(i) for i in rng.choice(n, size=n_patch, replace=False))
    # each patch goes after its fact's first edit: slot p means "right after first edit p" (p >= the fact's index)
    slots = {i: int(rng.integers(i, n)) for i in patched}
    new_value = dict(zip(patched, towns[n:], strict=True))
    edits: list[Edit] = []
    for position in range(n):
        edits.append(first[position])
        for i in patched:
            if slots[i] == position:
                edits.append(_edit(ids[i], people[i], relations[i], new_value[i], True))
    facts = tuple(EditFact(ids[i], people[i], relations[i], new_value.get(i, towns[i]),
                           towns[i] if i in new_value else None) for i in range(n))
    others = tuple(relations[n + j].question.format(s=people[n + j]) for j in range(n_other))
    return EditScenario(tuple(edits), facts, others, GENERAL_PROMPTS, tuple(towns))
