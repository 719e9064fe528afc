"""What consolidation must not damage: base facts the model knows and held-out text it models.

A :class:`GuardTask` is built per run from the frozen base model (:func:`build_guard_task`):

* **facts** — cloze rows ``prompt + " " + answer`` (e.g. ``"The capital of France is" → "Paris"``).
  Only the candidates the base model already gets right (teacher-forced greedy exact match,
  :func:`~..training.answer_exact_match`) are kept, so the base task starts at EM 1.0 and
  any forgotten fact is visible. None kept raises :class:`BaseTaskError`;
* **held-out text** — generic prose that is *not* among the memories, split into its first
  :data:`PREFIX_WORDS` words (prompt) and the rest (continuation). Held-out perplexity is
  ``exp`` of the mean next-token loss over the continuation tokens (lower is better).

For a pretrained model the candidates are :data:`GENERAL_FACTS` and :data:`HELD_OUT_TEXTS`
(written for this project, general knowledge and everyday prose); for the in-project tiny LM
they come from its own training corpus (:func:`tiny_candidates`). :meth:`GuardTask.base_task`
is the drift guard's :class:`~..hygiene.BaseTask`: the kept facts followed by the held-out rows,
so the guard's loss is dominated by the held-out continuation tokens and its EM counts facts.

Pure data plus measurements on a model given by the caller; the measurements run without
gradients and do not change the model. Not thread-safe against concurrent use of that model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from t4dm_core.learning.llm.evaluation.errors import ModeUnavailableError
from t4dm_core.learning.llm.hygiene import BaseTask

__all__ = ["GENERAL_FACTS", "HELD_OUT_TEXTS", "PREFIX_WORDS", "BaseTaskError", "GuardScore", "GuardTask",
           "build_guard_task", "measure_guard", "tiny_candidates"]

PREFIX_WORDS = 4

GENERAL_FACTS: tuple[tuple[str, str], ...] = (
    ("The capital of France is", "Paris"),
    ("The capital of Japan is", "Tokyo"),
    ("The capital of Italy is", "Rome"),
    ("The capital of Germany is", "Berlin"),
    ("The capital of Spain is", "Madrid"),
    ("The capital of Russia is", "Moscow"),
    ("The capital of Egypt is", "Cairo"),
    ("The capital of England is", "London"),
    ("The capital of China is", "Beijing"),
    ("The capital of Greece is", "Athens"),
    ("The largest planet in our solar system is", "Jupiter"),
    ("The planet closest to the Sun is", "Mercury"),
    ("The Red Planet is another name for", "Mars"),
    ("Water is made of hydrogen and", "oxygen"),
    ("The chemical symbol for gold is", "Au"),
    ("The chemical symbol for iron is", "Fe"),
    ("Plants take in carbon dioxide and release", "oxygen"),
    ("The freezing point of water in degrees Celsius is", "0"),
    ("The boiling point of water in degrees Celsius is", "100"),
    ("A week has seven", "days"),
    ("A year has twelve", "months"),
    ("The day after Monday is", "Tuesday"),
    ("The day after Friday is", "Saturday"),
    ("The month after January is", "February"),
    ("The opposite of hot is", "cold"),
    ("The opposite of up is", "down"),
    ("The opposite of day is", "night"),
    ("Two plus two equals", "four"),
    ("The color of the clear daytime sky is", "blue"),
    ("The color of fresh grass is", "green"),
    ("Romeo and Juliet was written by William", "Shakespeare"),
    ("The theory of relativity was developed by Albert", "Einstein"),
    ("The first person to walk on the Moon was Neil", "Armstrong"),
    ("The Great Wall is located in", "China"),
    ("The Eiffel Tower is located in", "Paris"),
    ("The longest river in Africa is the", "Nile"),
    ("The largest ocean on Earth is the", "Pacific"),
    ("The official language of Brazil is", "Portuguese"),
    ("Bees make", "honey"),
    ("The young of a cat is called a", "kitten"),
    ("The young of a dog is called a", "puppy"),
    ("Ice is the solid form of", "water"),
    ("The hardest natural substance is", "diamond"),
    ("The human heart pumps", "blood"),
    ("The currency of Japan is the", "yen"),
    ("The currency of the United Kingdom is the pound", "sterling"),
)
"""Candidate general-knowledge cloze facts (prompt, answer) for a pretrained model's base task."""

HELD_OUT_TEXTS: tuple[str, ...] = (
    "The town library opens at nine in the morning and closes at six in the evening. On weekends it keeps "
    "shorter hours, and a small reading room on the second floor stays quiet for students preparing exams.",
    "To make a simple tomato sauce, warm some olive oil in a pan, add chopped garlic, and cook it gently. "
    "Then pour in crushed tomatoes, season with salt, and let the sauce simmer for about twenty minutes.",
    "Rain fell steadily through the night, and by morning the river had risen close to the top of its "
    "banks. Farmers moved their animals to higher fields while the village prepared sandbags near the bridge.",
    "Regular exercise strengthens the heart and lungs, improves sleep, and helps people manage stress. "
    "Even a short daily walk can make a noticeable difference over a few months.",
    "The committee met on Tuesday to discuss the new budget. After a long debate, members agreed to spend "
    "more on road repairs and to delay the plan for a second swimming pool until next year.",
    "Most birds build nests in spring, using twigs, grass and feathers. The parents take turns keeping the "
    "eggs warm, and after the chicks hatch they spend much of the day searching for food.",
    "A good night of sleep begins with a regular schedule. Going to bed at the same time each evening and "
    "keeping the bedroom dark and cool can help the body rest more deeply.",
    "The museum's new exhibition shows tools and pottery from ancient farming villages. Visitors can see "
    "how people stored grain, cooked their meals and traded goods with their neighbours.",
)
"""Generic prose for held-out perplexity of a pretrained model (nothing in it is a scenario memory)."""


class BaseTaskError(ModeUnavailableError):
    """No guard task can be built: the base model answers none of the candidate facts (or none were given)."""


@dataclass(frozen=True)
class GuardScore:
    """The guard task measured on one model: facts EM in [0, 1] (higher is better) and held-out perplexity (lower)."""

    fact_em: float
    held_out_perplexity: float


@dataclass(frozen=True)
class GuardTask:
    """The kept facts (prompt, answer), the held-out rows (prefix, continuation) and how many candidates there were."""

    facts: tuple[tuple[str, str], ...]
    held_out: tuple[tuple[str, str], ...]
    candidates: int

    def base_task(self) -> BaseTask:
        """The drift guard's rows: the kept facts, then the held-out rows (module doc)."""
        rows = self.facts + self.held_out
        return BaseTask(tuple(p for p, _ in rows), tuple(a for _, a in rows))


def _split(text: str) -> tuple[str, str]:
    words = text.split()
    if len(words) <= PREFIX_WORDS:
        raise BaseTaskError(f"held-out text {text!r} needs more than {PREFIX_WORDS} words")
    return " ".join(words[:PREFIX_WORDS]), " ".join(words[PREFIX_WORDS:])


def tiny_candidates(n_facts: int = 24, n_texts: int = 8) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Candidate facts and held-out texts for the tiny LM: its corpus's first base facts and held-out sentences."""
    from seeds.lm_corpus import lm_corpus
    from t4dm_core.learning.llm.tiny_lm import TinyLMConfig

    cfg = TinyLMConfig()
    corpus = lm_corpus(cfg.seed, n_people=cfg.n_people, repeats=cfg.fact_repeats, n_sentences=cfg.n_sentences,
                       n_episodes=cfg.n_episodes)
    return tuple((f.prompt, f.value) for f in corpus.facts[:n_facts]), corpus.heldout_sentences[:n_texts]


def build_guard_task(model: Any, tokenizer: Any, facts: tuple[tuple[str, str], ...] = GENERAL_FACTS,
                     texts: tuple[str, ...] = HELD_OUT_TEXTS) -> GuardTask:
    """Keep the ``facts`` that ``model`` gets right and split ``texts`` into held-out rows (module doc).

    Raises :class:`BaseTaskError` if no fact is kept (or none is given), if ``texts`` is empty or
    a text has too few words.
    """
    from t4dm_core.learning.llm.training import answer_exact_match

    if not texts:
        raise BaseTaskError("the guard task needs at least one held-out text")
    held_out = tuple(_split(t) for t in texts)
    hits = answer_exact_match(model, tokenizer, [p for p, _ in facts], [a for _, a in facts]) if facts else []
    kept = tuple(fact for fact, hit in zip(facts, hits, strict=True) if hit)
    if not kept:
        raise BaseTaskError(f"the base model answers none of the {len(facts)} candidate base facts, so base-task "
                            "drift cannot be measured on it")
    return GuardTask(kept, held_out, len(facts))


def measure_guard(model: Any, tokenizer: Any, task: GuardTask) -> GuardScore:
    """Facts EM and held-out perplexity of ``model`` as it is now (no gradients, model unchanged)."""
    from t4dm_core.learning.llm.hygiene import batch_loss
    from t4dm_core.learning.llm.training import answer_batch, answer_exact_match

    hits = answer_exact_match(model, tokenizer, [p for p, _ in task.facts], [a for _, a in task.facts])
    rows = answer_batch(tokenizer, [p for p, _ in task.held_out], [c for _, c in task.held_out])
    return GuardScore(sum(hits) / len(hits), math.exp(batch_loss(model, rows)))
