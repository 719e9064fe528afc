"""The evaluation runner: modes B0 (no memory) and B1 (memory on) over a scenario, measured.

Contract of :func:`run_eval`:

* the request is checked first (:func:`parse_modes` / :meth:`EvalConfig.check`): an unknown mode
  or scenario, a non-positive size, or store sizes that do not fit raise
  :class:`~.errors.EvalConfigError`; B2 and B3 (after replay) in a scenario other than A, or when
  :func:`~.consolidated.require_consolidation` finds the consolidation cannot run, raise
  :class:`~.errors.ModeUnavailableError` — no number is ever produced for a mode that did not
  run. Nothing is loaded before this check;
* the memories of the scenario go into a fresh T4DM store in a temporary directory
  (``t4dm_core.open(path, embedder=...)``), deleted afterwards, **in the scenario's order**: an id
  that comes again is written in a later batch, so it becomes a new version (scenario C); their
  ``role`` metadata (target / negative) is left out, so nothing but the text can single out the evidence;
* prompts come from :func:`~.prompting.build_prompt` with the scenario's answer kind (the model's
  chat template if it has one, else the raw ``Question: ... Answer:`` text); B0 and B1 prompts
  differ only in the memory block;
* **B0** greedy-decodes an answer after the prompt with an empty memory block;
* **B1** searches the store (``store.search(question, k)``, hybrid ranking, ``learn=False`` so
  the evaluation does not change the store), packs the hits with
  :class:`~..packer.MemoryPacker` (default template and redaction) into at most
  ``memory_tokens`` tokens — fewer if the model's context would otherwise overflow — and
  decodes after the prompt with that memory block. Retrieval is scored on the evidence memory:
  P@1 (top hit is the evidence) and MRR (1/rank within the top ``k``, 0 if absent);
  higher is better;
* decoding is greedy (``do_sample=False``), at most ``max_new_tokens`` tokens (the model's
  end-of-sequence token stops earlier); the answer is :func:`~.prompting.extract_answer` of the
  reply with the scenario's answer vocabulary; EM and token F1 (:mod:`.metrics`) with seeded
  bootstrap 95% CIs;
* **B2** / **B3** (scenario A only) run once the scenario's target memories are
  consolidated into LoRA (:mod:`.consolidated`, done once per run before the first of them):
  B2 = B1 and B3 = B0 on the adapted model; the consolidation's steps, stop reason and drift are
  kept in :attr:`RunResult.consolidation`;
* scenario **C** (:mod:`.scenario_c`) writes each fact's changes as versions of one memory; if B1
  runs, the same questions also run as ``"B1-append"`` against a second store holding every
  change as a separate memory (:attr:`RunResult.variants`);
* scenario **D** (:mod:`.scenario_d`) runs B0 once (it reads no memory) and B1 at every store
  size, growing one store (:attr:`RunResult.by_store_size`); ``modes["B1"]`` is the largest size;
* scenario **E** (:mod:`.scenario_e`) also runs ``"full-context"`` (:attr:`RunResult.variants`):
  B0's prompt with the transcript as memory block, cut to the newest exchanges that fit the
  model's context (context length minus prompt minus ``max_new_tokens``; no cut if the model
  states no context length);
* latency is wall time per question in milliseconds (B1/B2 include search and packing, the
  full-context system its transcript rendering; the consolidation and store writes are not in
  any question's latency); prompt tokens are the tokens the model reads per question.

Not thread-safe (it drives one model); torch's thread count is the caller's choice.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import t4dm_core
from t4dm_core import Memory
from t4dm_core.learning.llm.evaluation.consolidated import (
    AFTER_REPLAY,
    adapted_base,
    consolidate_targets,
    consolidation_summary,
    require_consolidation,
)
from t4dm_core.learning.llm.evaluation.embedders import make_embedder
from t4dm_core.learning.llm.evaluation.errors import EvalConfigError, ModeUnavailableError
from t4dm_core.learning.llm.evaluation.items import EvalQuestion, EvalSet, MemoryRecord
from t4dm_core.learning.llm.evaluation.metrics import DEFAULT_N_BOOT, exact_match, token_f1
from t4dm_core.learning.llm.evaluation.prompting import build_prompt, extract_answer
from t4dm_core.learning.llm.evaluation.scenario_a import Slot, scenario_a
from t4dm_core.learning.llm.evaluation.scenario_c import scenario_c
from t4dm_core.learning.llm.evaluation.scenario_d import check_store_sizes, default_store_sizes, scenario_d
from t4dm_core.learning.llm.evaluation.scenario_e import Transcript, scenario_e
from t4dm_core.learning.llm.models import BaseModel, load_base_model
from t4dm_core.learning.llm.packer import MemoryPacker

__all__ = ["APPEND_VARIANT", "FULL_CONTEXT_VARIANT", "MODES", "SCENARIOS", "EvalConfig", "ModeResult", "RunResult",
           "answer_with_memory", "answer_without_memory", "fill_store", "parse_modes", "run_eval"]

MODES: tuple[str, ...] = ("B0", "B1", "B2", "B3")
SCENARIOS: tuple[str, ...] = ("A", "C", "D", "E")
APPEND_VARIANT = "B1-append"
FULL_CONTEXT_VARIANT = "full-context"


def parse_modes(text: str) -> tuple[str, ...]:
    """``"B0,B1"`` → ``("B0", "B1")`` (case-insensitive, order kept, duplicates dropped).

    Raises :class:`~.errors.EvalConfigError` for an empty list or an unknown mode.
    """
    modes: list[str] = []
    for part in text.split(","):
        mode = part.strip().upper()
        if mode not in MODES:
            raise EvalConfigError(f"unknown mode {part.strip()!r}; modes are {', '.join(MODES)}")
        if mode not in modes:
            modes.append(mode)
    return tuple(modes)


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation request (the ``t4dm eval`` flags); ``store_sizes`` is for scenario D only (``None`` = default).

    ``progress`` draws a tqdm bar on stderr per answered question set (``t4dm eval`` turns it on
    when stderr is a terminal, or with ``--progress``); it changes no result.
    """

    modes: tuple[str, ...] = ("B0", "B1")
    scenario: str = "A"
    model: str = "tiny"
    n: int = 100
    seed: int = 0
    k: int = 3
    embedder: str = "minilm"
    slot: Slot = "where"
    memory_tokens: int = 256
    max_new_tokens: int = 32
    n_boot: int = DEFAULT_N_BOOT
    store_sizes: tuple[int, ...] | None = None
    progress: bool = False

    def check(self) -> None:
        """Validate everything that needs no model; raises EvalConfigError or ModeUnavailableError."""
        if not self.modes:
            raise EvalConfigError("at least one mode is needed")
        for mode in self.modes:
            if mode not in MODES:
                raise EvalConfigError(f"unknown mode {mode!r}; modes are {', '.join(MODES)}")
        if self.scenario not in SCENARIOS:
            raise EvalConfigError(f"scenario {self.scenario!r} is not available; scenarios: {', '.join(SCENARIOS)}")
        for name in ("n", "k", "memory_tokens", "max_new_tokens", "n_boot"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise EvalConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.store_sizes is not None:
            if self.scenario != "D":
                raise EvalConfigError(f"store sizes apply to scenario D only, not scenario {self.scenario}")
            check_store_sizes(self.n, self.store_sizes)
        replay = [mode for mode in self.modes if mode in AFTER_REPLAY]
        if replay and self.scenario != "A":
            raise ModeUnavailableError(f"mode {replay[0]} (after replay) is wired for scenario A only, not scenario "
                                       f"{self.scenario}: consolidating its memories is not implemented yet")
        require_consolidation(self.modes, self.model)

    def sizes(self) -> tuple[int, ...]:
        """Scenario D's store sizes, ascending (the given ones, else :func:`~.scenario_d.default_store_sizes`)."""
        return check_store_sizes(self.n, self.store_sizes if self.store_sizes is not None
                                 else default_store_sizes(self.n))


@dataclass
class ModeResult:
    """Per-question scores of one mode: raw replies, extracted predictions, prompt tokens (and for B1 retrieval).

    ``evidence_ranks`` / ``top_stale`` (top hit is one of the question's ``stale_ids``) /
    ``memory_tokens`` are filled by retrieving modes;
    ``exchanges_kept`` by the full-context system (transcript exchanges left after the cut).
    """

    em: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    evidence_ranks: list[int | None] = field(default_factory=list)
    top_stale: list[bool] = field(default_factory=list)
    memory_tokens: list[int] = field(default_factory=list)
    exchanges_kept: list[int] = field(default_factory=list)


@dataclass
class RunResult:
    """What a run measured: the config, model, embedder, questions, per-mode results and scenario extras.

    ``variants``: extra systems on the same questions (C: ``"B1-append"``, E: ``"full-context"``);
    ``by_store_size``: scenario D's B1 per store size; ``facts``: scenario facts for the report
    (E: ``exchanges`` and ``context_limit``); ``consolidation``: the B2/B3 consolidation.
    """

    config: EvalConfig
    model_source: str
    embedder_name: str
    questions: tuple[EvalQuestion, ...]
    modes: dict[str, ModeResult]
    consolidation: dict[str, Any] | None = None
    variants: dict[str, ModeResult] = field(default_factory=dict)
    by_store_size: dict[int, ModeResult] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


def _greedy(base: BaseModel, prompt: str, max_new_tokens: int) -> tuple[str, int]:
    """The greedy reply to ``prompt`` and the number of prompt tokens."""
    import torch

    ids = torch.tensor([base.tokenizer.encode(prompt, add_special_tokens=False)], dtype=torch.long)
    with torch.no_grad():
        out = base.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                  do_sample=False, pad_token_id=base.tokenizer.pad_token_id)
    return str(base.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)), int(ids.shape[1])


def _context_limit(base: BaseModel) -> int | None:
    limit = getattr(base.model.config, "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) else None


def _room(base: BaseModel, config: EvalConfig, data: EvalSet, q: EvalQuestion) -> int | None:
    """Tokens left for a memory block before the context overflows (``None`` = the model states no limit)."""
    limit = _context_limit(base)
    if limit is None:
        return None
    prompt = build_prompt(base.tokenizer, q.question, "", data.answer_kind)
    return limit - len(base.tokenizer.encode(prompt, add_special_tokens=False)) - config.max_new_tokens


def _answer(result: ModeResult, base: BaseModel, config: EvalConfig, data: EvalSet, q: EvalQuestion,
            block: str, started: float) -> None:
    """Decode after the prompt with memory ``block`` and score the reply into ``result``."""
    reply, prompt_tokens = _greedy(base, build_prompt(base.tokenizer, q.question, block, data.answer_kind),
                                   config.max_new_tokens)
    prediction = extract_answer(reply, data.vocabulary)
    result.latency_ms.append((time.perf_counter() - started) * 1000.0)
    result.replies.append(reply)
    result.predictions.append(prediction)
    result.prompt_tokens.append(prompt_tokens)
    result.em.append(exact_match(prediction, q.answer))
    result.f1.append(token_f1(prediction, q.answer))


def _questions(config: EvalConfig, data: EvalSet, what: str) -> Iterable[EvalQuestion]:
    if not config.progress:
        return data.questions
    from tqdm import tqdm

    return tqdm(data.questions, desc=f"{data.scenario} {what}", unit="q", leave=False)


def answer_without_memory(base: BaseModel, config: EvalConfig, data: EvalSet, _store: Any) -> ModeResult:
    """B0 on ``data``: every question answered with an empty memory block (``_store`` is ignored)."""
    result = ModeResult()
    for q in _questions(config, data, "no memory"):
        _answer(result, base, config, data, q, "", time.perf_counter())
    return result


def answer_with_memory(base: BaseModel, config: EvalConfig, data: EvalSet, store: Any) -> ModeResult:
    """B1 on ``data``: ``store.search`` (``learn=False``), packed into the memory block, then decoded."""
    result = ModeResult()
    for q in _questions(config, data, "memory on"):
        started = time.perf_counter()
        hits = store.search(q.question, k=config.k, learn=False)
        room = _room(base, config, data, q)
        budget = config.memory_tokens if room is None else min(config.memory_tokens, room)
        prefix = MemoryPacker(base.tokenizer, budget).pack(hits).text if budget >= 1 else ""
        _answer(result, base, config, data, q, prefix, started)
        ids = [h.id for h in hits]
        result.evidence_ranks.append(ids.index(q.evidence_id) + 1 if q.evidence_id in ids else None)
        result.top_stale.append(bool(ids) and ids[0] in q.stale_ids)
        result.memory_tokens.append(len(base.tokenizer.encode(prefix, add_special_tokens=False)))
    return result


def _run_full_context(base: BaseModel, config: EvalConfig, data: EvalSet, transcript: Transcript) -> ModeResult:
    result = ModeResult()
    for q in _questions(config, data, "full context"):
        started = time.perf_counter()
        block, kept = transcript.block(_room(base, config, data, q))
        _answer(result, base, config, data, q, block, started)
        result.exchanges_kept.append(kept)
    return result


_RUNNERS: dict[str, Callable[[BaseModel, EvalConfig, EvalSet, Any], ModeResult]] = {
    "B0": answer_without_memory, "B1": answer_with_memory, "B2": answer_with_memory, "B3": answer_without_memory}


def fill_store(store: Any, memories: Sequence[MemoryRecord]) -> None:
    """Write ``memories`` into ``store``'s default namespace in order, without their ``role`` metadata.

    Consecutive memories go in one atomic ``put_many`` batch; an id already in the current batch
    starts a new one, so a repeated id becomes a new *version* of that memory (written later).
    """
    batch: list[Memory] = []
    in_batch: set[str] = set()
    for mid, text, metadata in memories:
        if mid in in_batch:
            store.put_many(batch)
            batch, in_batch = [], set()
        batch.append(Memory(id=mid, text=text, metadata={k: v for k, v in metadata.items() if k != "role"}))
        in_batch.add(mid)
    if batch:
        store.put_many(batch)


@contextmanager
def _fresh_store(embedder: Any, memories: Sequence[MemoryRecord]) -> Iterator[Any]:
    """A store in a temporary directory holding ``memories`` (written by :func:`fill_store`); deleted on exit."""
    with tempfile.TemporaryDirectory(prefix="t4dm-eval-") as directory, \
            t4dm_core.open(directory, embedder=embedder) as store:
        fill_store(store, memories)
        yield store


def _plain_modes(model: BaseModel, config: EvalConfig, data: EvalSet, store: Any) -> dict[str, ModeResult]:
    return {mode: _RUNNERS[mode](model, config, data, store) for mode in config.modes}


def _scenario_a(config: EvalConfig, model: BaseModel, embedder: Any) -> RunResult:
    data = scenario_a(config.n, seed=config.seed, slot=config.slot)
    results: dict[str, ModeResult] = {}
    consolidated = None
    with _fresh_store(embedder, data.memories) as store:
        try:
            for mode in config.modes:
                runner_model = model
                if mode in AFTER_REPLAY:
                    if consolidated is None:
                        consolidated = consolidate_targets(store, data, model, config.slot, seed=config.seed)
                    runner_model = adapted_base(model, consolidated)
                results[mode] = _RUNNERS[mode](runner_model, config, data, store)
        finally:
            if consolidated is not None:
                consolidated.attachment.remove()
    summary = consolidation_summary(consolidated) if consolidated is not None else None
    return RunResult(config, model.source, embedder.name, data.questions, results, summary)


def _scenario_c(config: EvalConfig, model: BaseModel, embedder: Any) -> RunResult:
    data = scenario_c(config.n, seed=config.seed, layout="versioned")
    with _fresh_store(embedder, data.memories) as store:
        results = _plain_modes(model, config, data, store)
    variants: dict[str, ModeResult] = {}
    if "B1" in config.modes:
        appended = scenario_c(config.n, seed=config.seed, layout="append")
        with _fresh_store(embedder, appended.memories) as store:
            variants[APPEND_VARIANT] = answer_with_memory(model, config, appended, store)
    return RunResult(config, model.source, embedder.name, data.questions, results, variants=variants)


def _scenario_d(config: EvalConfig, model: BaseModel, embedder: Any) -> RunResult:
    items = scenario_d(config.n, config.sizes(), seed=config.seed, slot=config.slot)
    data = items.data
    results: dict[str, ModeResult] = {}
    by_size: dict[int, ModeResult] = {}
    if "B0" in config.modes:
        results["B0"] = answer_without_memory(model, config, data, None)
    if "B1" in config.modes:
        with _fresh_store(embedder, ()) as store:
            written = 0
            for size in items.sizes:
                fill_store(store, data.memories[written:size])
                written = size
                by_size[size] = answer_with_memory(model, config, data, store)
    if by_size:
        results["B1"] = by_size[items.sizes[-1]]
    ordered = {mode: results[mode] for mode in config.modes}
    return RunResult(config, model.source, embedder.name, data.questions, ordered, by_store_size=by_size,
                     facts={"store_sizes": list(items.sizes)})


def _scenario_e(config: EvalConfig, model: BaseModel, embedder: Any) -> RunResult:
    data = scenario_e(config.n, seed=config.seed, slot=config.slot)
    with _fresh_store(embedder, data.memories) as store:
        results = _plain_modes(model, config, data, store)
    transcript = Transcript(model.tokenizer, data)
    variants = {FULL_CONTEXT_VARIANT: _run_full_context(model, config, data, transcript)}
    facts = {"exchanges": len(transcript.exchanges), "context_limit": _context_limit(model)}
    return RunResult(config, model.source, embedder.name, data.questions, results, variants=variants, facts=facts)


_SCENARIO_RUNS: dict[str, Callable[[EvalConfig, BaseModel, Any], RunResult]] = {
    "A": _scenario_a, "C": _scenario_c, "D": _scenario_d, "E": _scenario_e}


def run_eval(config: EvalConfig, *, base: BaseModel | None = None) -> RunResult:
    """Run ``config`` (see the module doc); ``base`` reuses an already loaded model of ``config.model``.

    Raises EvalConfigError / ModeUnavailableError before loading anything, and the model
    loader's errors (:class:`~..errors.ModelSpecError`, :class:`~..errors.ModelUnavailableError`).
    """
    config.check()
    embedder = make_embedder(config.embedder)
    model = base if base is not None else load_base_model(config.model)
    return _SCENARIO_RUNS[config.scenario](config, model, embedder)
