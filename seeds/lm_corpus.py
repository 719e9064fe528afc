"""Seeded synthetic text corpus for the in-project tiny causal LM (issue 6): no network, no model.

The tiny model that CI uses as the frozen base LLM is trained on this corpus, so that its
behaviour means something: it has *base knowledge* to keep (so base-task drift can be
measured) and it has seen the *memory-reading format* (so feeding it memories can help).
The corpus has three parts, drawn from the vocabulary and sentence templates of
:mod:`seeds.scenarios` but from their own random streams (no sentence here is a scenario
item, so evaluation scenarios are not leaked into the base model):

* :class:`BaseFact` — a fixed "world" of people, each with a home city and a job, stated
  several times in a few phrasings (``repeats`` copies per phrasing) and probed by a cloze
  prompt (``"Maria Lopez lives in"`` → ``"Porto"``).
* background sentences — slot stories, meetings, preferences and service settings.
* :class:`ReadingEpisode` — a handful of memories (one answers the question, the others are
  hard negatives that share most slots), a question and its answer, copied from the
  memory. How an episode is rendered as text is up to the caller (the tiny-LM trainer uses
  the memory packer's template).

Everything is a pure function of the arguments (numpy PCG64 streams keyed by the seed and
a part number); the held-out sentences and episodes come from streams the training part
never uses. Thread-safe (no shared mutable state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from seeds.scenarios import (
    CITIES,
    COLOURS,
    DAY_PARTS,
    FIRST_NAMES,
    JOBS,
    LAST_NAMES,
    MEETING_TEXTS,
    MONTHS,
    OBJECTS,
    PLACES,
    PREFERENCE_TEXTS,
    PREFERENCES,
    SERVICE_KINDS,
    SERVICE_PARTS,
    SETTING_TEXTS,
    SETTINGS,
    STORY_TEMPLATES,
    TOPICS,
    VERBS,
    WEEKDAYS,
)

__all__ = ["CORPUS_VERSION", "BaseFact", "LMCorpus", "ReadingEpisode", "lm_corpus"]

CORPUS_VERSION = 1  # bump when the generated text changes (the tiny-LM cache is keyed by it)

T = TypeVar("T")
Rng = np.random.Generator

# Streams of np.random.default_rng([seed, CORPUS_STREAM, part]); part numbers never change meaning.
CORPUS_STREAM = 61
PART_FACTS, PART_SENTENCES, PART_EPISODES, PART_HELDOUT_SENTENCES, PART_HELDOUT_EPISODES, PART_ORDER = range(6)

HOME_TEXTS = ("{who} lives in {value}.", "{who} has a flat in {value}.", "The home town of {who} is {value}.")
JOB_TEXTS = ("{who} works as a {value}.", "By profession, {who} is a {value}.", "{who} earns a living as a {value}.")
RELATIONS: dict[str, tuple[str, Sequence[str], tuple[str, ...]]] = {
    # relation: (cloze prompt, values, phrasings; the first phrasing is the cloze prompt plus the value)
    "home": ("{who} lives in", CITIES, HOME_TEXTS),
    "job": ("{who} works as a", JOBS, JOB_TEXTS),
}


@dataclass(frozen=True)
class BaseFact:
    """A fact of the base model's world: ``prompt`` + ``" " + value`` is its first statement."""

    subject: str
    relation: str
    value: str
    prompt: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class ReadingEpisode:
    """Memories (``memories[target]`` answers ``question``), the question, and its answer."""

    kind: str
    memories: tuple[str, ...]
    question: str
    answer: str
    target: int


@dataclass(frozen=True)
class LMCorpus:
    """The corpus: base facts, training text and held-out text (never seen in training)."""

    seed: int
    facts: tuple[BaseFact, ...]
    train_sentences: tuple[str, ...]
    train_episodes: tuple[ReadingEpisode, ...]
    heldout_sentences: tuple[str, ...]
    heldout_episodes: tuple[ReadingEpisode, ...]


def _rng(seed: int, part: int) -> Rng:
    return np.random.default_rng([seed, CORPUS_STREAM, part])


def _pick(rng: Rng, seq: Sequence[T]) -> T:
    return seq[int(rng.integers(len(seq)))]


def _other(rng: Rng, seq: Sequence[T], avoid: T) -> T:
    return _pick(rng, [x for x in seq if x != avoid])


def _person(rng: Rng) -> str:
    return f"{_pick(rng, FIRST_NAMES)} {_pick(rng, LAST_NAMES)}"


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


# ----------------------------------------------------------------------------- base facts
def _base_facts(rng: Rng, n_people: int) -> list[BaseFact]:
    if n_people > len(FIRST_NAMES) * len(LAST_NAMES):
        raise ValueError(f"n_people must be at most {len(FIRST_NAMES) * len(LAST_NAMES)}, got {n_people}")
    people: list[str] = []
    while len(people) < n_people:
        who = _person(rng)
        if who not in people:
            people.append(who)
    facts: list[BaseFact] = []
    for who in people:
        for relation, (prompt, values, texts) in RELATIONS.items():
            value = _pick(rng, values)
            facts.append(BaseFact(who, relation, value, prompt.format(who=who),
                                  tuple(t.format(who=who, value=value) for t in texts)))
    return facts


# ----------------------------------------------------------------------------- background sentences
def _story(rng: Rng, who: str, verb: int, colour: str, obj: str, place: str) -> str:
    day = f"{_pick(rng, WEEKDAYS)} {_pick(rng, DAY_PARTS)}"
    return _pick(rng, STORY_TEMPLATES).format(day=day, who=who, verb=VERBS[verb][0], obj=f"{colour} {obj}",
                                              place=place)


def _story_sentence(rng: Rng) -> str:
    return _story(rng, _person(rng), int(rng.integers(len(VERBS))), _pick(rng, COLOURS), _pick(rng, OBJECTS),
                  _pick(rng, PLACES))


def _meeting_sentence(rng: Rng) -> str:
    slots = _meeting_slots(rng)
    return _pick(rng, MEETING_TEXTS).format(**slots)


def _meeting_slots(rng: Rng) -> dict[str, str]:
    return {"a": _person(rng), "b": _person(rng), "place": _pick(rng, PLACES), "topic": _pick(rng, TOPICS),
            "date": f"{_pick(rng, MONTHS)} {int(rng.integers(1, 29))}"}


def _service(rng: Rng) -> str:
    return f"{_pick(rng, SERVICE_PARTS)}-{_pick(rng, SERVICE_KINDS)}"


def _preference_sentence(rng: Rng) -> str:
    attr, values = _pick(rng, PREFERENCES)
    return _pick(rng, PREFERENCE_TEXTS).format(who=_person(rng), attr=attr, value=_pick(rng, values))


def _setting_sentence(rng: Rng) -> str:
    attr, values = _pick(rng, SETTINGS)
    return _pick(rng, SETTING_TEXTS).format(who=_service(rng), attr=attr, value=_pick(rng, values))


SENTENCE_MAKERS: tuple[Callable[[Rng], str], ...] = (_story_sentence, _story_sentence, _meeting_sentence,
                                                    _preference_sentence, _setting_sentence)


def _sentences(rng: Rng, n: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """``n`` sentences; none of them in ``exclude`` (held-out text excludes the training text, and repeats)."""
    out: list[str] = []
    taken = set(exclude)
    while len(out) < n:
        sentence = _pick(rng, SENTENCE_MAKERS)(rng)
        if exclude and sentence in taken:
            continue
        out.append(sentence)
        taken.add(sentence)
    return out


# ----------------------------------------------------------------------------- reading episodes
def _story_episode(rng: Rng, n_distractors: int) -> ReadingEpisode:
    who, verb, colour, obj = _person(rng), int(rng.integers(len(VERBS))), _pick(rng, COLOURS), _pick(rng, OBJECTS)
    place = _pick(rng, PLACES)
    target = _story(rng, who, verb, colour, obj, place)

    def negative() -> str:  # same person, one identifying slot changed, another place
        variant = int(rng.integers(3))
        v = (verb + 1 + int(rng.integers(len(VERBS) - 1))) % len(VERBS) if variant == 0 else verb
        c = _other(rng, COLOURS, colour) if variant == 1 else colour
        o = _other(rng, OBJECTS, obj) if variant == 2 else obj
        return _story(rng, who, v, c, o, _other(rng, PLACES, place))

    others = _distinct(rng, n_distractors, target, negative)
    question = f"Where did {who} {VERBS[verb][1]} the {colour} {obj}?"
    return _assemble(rng, "story", target, others, question, place)


def _preference_episode(rng: Rng, n_distractors: int) -> ReadingEpisode:
    who = _person(rng)
    attr, values = _pick(rng, PREFERENCES)
    value = _pick(rng, values)
    target = _pick(rng, PREFERENCE_TEXTS).format(who=who, attr=attr, value=value)
    def negative() -> str:  # another person, same attribute, another value
        other = _person(rng)
        while other == who:
            other = _person(rng)
        return _pick(rng, PREFERENCE_TEXTS).format(who=other, attr=attr, value=_other(rng, values, value))

    others = _distinct(rng, n_distractors, target, negative)
    return _assemble(rng, "preference", target, others, f"Which {attr} does {who} prefer?", value)


def _setting_episode(rng: Rng, n_distractors: int) -> ReadingEpisode:
    who = _service(rng)
    attr, values = _pick(rng, SETTINGS)
    value = _pick(rng, values)
    target = _pick(rng, SETTING_TEXTS).format(who=who, attr=attr, value=value)
    def negative() -> str:  # another service with the same setting, or another setting of this one
        other_attr, other_values = _pick(rng, SETTINGS)
        other_who = _other(rng, [_service(rng), f"{who}-staging"], who) if other_attr == attr else who
        return _pick(rng, SETTING_TEXTS).format(who=other_who, attr=other_attr, value=_pick(rng, other_values))

    others = _distinct(rng, n_distractors, target, negative)
    return _assemble(rng, "setting", target, others, f"What is the {attr} of {who}?", value)


def _meeting_episode(rng: Rng, n_distractors: int) -> ReadingEpisode:
    slots = _meeting_slots(rng)
    target = _pick(rng, MEETING_TEXTS).format(**slots)
    others = _distinct(rng, n_distractors, target, lambda: _pick(rng, MEETING_TEXTS).format(
        **{**slots, "place": _other(rng, PLACES, slots["place"]),
           "date": f"{_pick(rng, MONTHS)} {int(rng.integers(1, 29))}"}))
    question = f"When did {slots['a']} meet {slots['b']} at {slots['place']}?"
    return _assemble(rng, "meeting", target, others, question, slots["date"])


def _distinct(rng: Rng, n: int, target: str, make: Callable[[], str]) -> list[str]:
    """``n`` distractor texts from ``make()``, all different from each other and from ``target``."""
    out: list[str] = []
    while len(out) < n:
        text = make()
        if text != target and text not in out:
            out.append(text)
    return out


def _assemble(rng: Rng, kind: str, target: str, others: list[str], question: str, answer: str) -> ReadingEpisode:
    memories = [target, *others]
    order = [int(i) for i in rng.permutation(len(memories))]
    return ReadingEpisode(kind, tuple(memories[i] for i in order), question, answer, order.index(0))


EPISODE_MAKERS: tuple[Callable[[Rng, int], ReadingEpisode], ...] = (_story_episode, _preference_episode,
                                                                   _setting_episode, _meeting_episode)


def _episodes(rng: Rng, n: int, max_distractors: int, exclude: frozenset[str] = frozenset()) -> list[ReadingEpisode]:
    """``n`` episodes; with ``exclude``, none whose question is in it or repeats (held-out episodes)."""
    out: list[ReadingEpisode] = []
    taken = set(exclude)
    while len(out) < n:
        episode = _pick(rng, EPISODE_MAKERS)(rng, int(rng.integers(1, max_distractors + 1)))
        if exclude and episode.question in taken:
            continue
        out.append(episode)
        taken.add(episode.question)
    return out


# ----------------------------------------------------------------------------- public
def lm_corpus(seed: int = 0, *, n_people: int = 40, repeats: int = 4, n_sentences: int = 3000,
              n_episodes: int = 1500, n_heldout: int = 200, max_distractors: int = 3) -> LMCorpus:
    """The corpus for ``seed``: ``n_people`` x 2 base facts, background text and reading episodes.

    ``train_sentences`` holds every base-fact phrasing ``repeats`` times plus ``n_sentences``
    background sentences, shuffled. ``train_episodes`` has ``n_episodes`` episodes with 1 to
    ``max_distractors`` hard negatives each; the held-out sets have ``n_heldout`` sentences
    and ``n_heldout`` episodes from separate streams, none of them (nor their questions) in the
training part. Every distractor differs from the other memories of its episode and
does not answer the question. Raises ``ValueError`` on a size that is
    not a positive integer.
    """
    _check_sizes(n_people=n_people, repeats=repeats, n_sentences=n_sentences, n_episodes=n_episodes,
                 n_heldout=n_heldout, max_distractors=max_distractors)
    facts = _base_facts(_rng(seed, PART_FACTS), n_people)
    sentences = [s for f in facts for s in f.statements] * repeats + _sentences(_rng(seed, PART_SENTENCES), n_sentences)
    order = _rng(seed, PART_ORDER).permutation(len(sentences))
    episodes = _episodes(_rng(seed, PART_EPISODES), n_episodes, max_distractors)
    return LMCorpus(
        seed=seed,
        facts=tuple(facts),
        train_sentences=tuple(sentences[int(i)] for i in order),
        train_episodes=tuple(episodes),
        heldout_sentences=tuple(_sentences(_rng(seed, PART_HELDOUT_SENTENCES), n_heldout, frozenset(sentences))),
        heldout_episodes=tuple(_episodes(_rng(seed, PART_HELDOUT_EPISODES), n_heldout, max_distractors,
                                         frozenset(e.question for e in episodes))),
    )
