"""The evaluation runner: modes B0 (no memory) and B1 (memory on) over a scenario, measured.

Contract of :func:`run_eval`:

* modes are checked first (:func:`parse_modes` / :meth:`EvalConfig.check`): an unknown mode
  raises :class:`~.errors.EvalConfigError`; B2 and B3 (after replay) with a model other than
  the tiny one raise :class:`~.errors.ModeUnavailableError` — no number is ever produced for
  a mode that did not run. Nothing is loaded before this check;
* the memories of the scenario go into a fresh T4DM store in a temporary directory
  (``t4dm_core.open(path, embedder=...)``), deleted afterwards; their ``role`` metadata
  (target / negative) is left out, so nothing but the text can single out the evidence;
* prompts come from :func:`~.prompting.build_prompt` (the model's chat template if it has one,
  else the raw ``Question: ... Answer:`` text); B0 and B1 prompts differ only in the memory block;
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
* **B2** / **B3** (tiny model only) run once the scenario's target memories are consolidated
  into LoRA (:mod:`.consolidated`, done once per run before the first of them): B2 = B1 and
  B3 = B0 on the adapted model; the consolidation's steps, stop reason and drift are kept in
  :attr:`RunResult.consolidation`;
* latency is wall time per question in milliseconds (B1/B2 include search and packing; the
  consolidation itself is not in any question's latency).

Not thread-safe (it drives one model); torch's thread count is the caller's choice.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
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
from t4dm_core.learning.llm.evaluation.errors import EvalConfigError
from t4dm_core.learning.llm.evaluation.metrics import DEFAULT_N_BOOT, exact_match, token_f1
from t4dm_core.learning.llm.evaluation.prompting import build_prompt, extract_answer
from t4dm_core.learning.llm.evaluation.scenario_a import EvalQuestion, EvalSet, Slot, scenario_a
from t4dm_core.learning.llm.models import BaseModel, load_base_model
from t4dm_core.learning.llm.packer import MemoryPacker

__all__ = ["MODES", "SCENARIOS", "EvalConfig", "ModeResult", "RunResult", "parse_modes", "run_eval"]

MODES: tuple[str, ...] = ("B0", "B1", "B2", "B3")
SCENARIOS: tuple[str, ...] = ("A",)


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
    """One evaluation request (the ``t4dm eval`` flags)."""

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
        require_consolidation(self.modes, self.model)


@dataclass
class ModeResult:
    """Per-question scores of one mode: raw replies, extracted predictions (and, for B1, evidence rank and tokens)."""

    em: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    evidence_ranks: list[int | None] = field(default_factory=list)
    memory_tokens: list[int] = field(default_factory=list)


@dataclass
class RunResult:
    """What a run measured: the config, the model and embedder used, per-mode results, the B2/B3 consolidation."""

    config: EvalConfig
    model_source: str
    embedder_name: str
    questions: tuple[EvalQuestion, ...]
    modes: dict[str, ModeResult]
    consolidation: dict[str, Any] | None = None


def _greedy(base: BaseModel, prompt: str, max_new_tokens: int) -> str:
    import torch

    ids = torch.tensor([base.tokenizer.encode(prompt, add_special_tokens=False)], dtype=torch.long)
    with torch.no_grad():
        out = base.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                  do_sample=False, pad_token_id=base.tokenizer.pad_token_id)
    return str(base.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))


def _context_limit(base: BaseModel) -> int | None:
    limit = getattr(base.model.config, "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) else None


def _memory_budget(base: BaseModel, config: EvalConfig, prompt: str) -> int:
    limit = _context_limit(base)
    if limit is None:
        return config.memory_tokens
    used = len(base.tokenizer.encode(prompt, add_special_tokens=False)) + config.max_new_tokens
    return min(config.memory_tokens, limit - used)


def _score(result: ModeResult, q: EvalQuestion, reply: str, vocabulary: Sequence[str], started: float) -> None:
    prediction = extract_answer(reply, vocabulary)
    result.latency_ms.append((time.perf_counter() - started) * 1000.0)
    result.replies.append(reply)
    result.predictions.append(prediction)
    result.em.append(exact_match(prediction, q.answer))
    result.f1.append(token_f1(prediction, q.answer))


def _run_b0(base: BaseModel, config: EvalConfig, data: EvalSet, _store: Any) -> ModeResult:
    result = ModeResult()
    for q in data.questions:
        started = time.perf_counter()
        prompt = build_prompt(base.tokenizer, q.question, "", config.slot)
        _score(result, q, _greedy(base, prompt, config.max_new_tokens), data.vocabulary, started)
    return result


def _run_b1(base: BaseModel, config: EvalConfig, data: EvalSet, store: Any) -> ModeResult:
    result = ModeResult()
    for q in data.questions:
        started = time.perf_counter()
        hits = store.search(q.question, k=config.k, learn=False)
        budget = _memory_budget(base, config, build_prompt(base.tokenizer, q.question, "", config.slot))
        prefix = MemoryPacker(base.tokenizer, budget).pack(hits).text if budget >= 1 else ""
        prompt = build_prompt(base.tokenizer, q.question, prefix, config.slot)
        _score(result, q, _greedy(base, prompt, config.max_new_tokens), data.vocabulary, started)
        ids = [h.id for h in hits]
        result.evidence_ranks.append(ids.index(q.evidence_id) + 1 if q.evidence_id in ids else None)
        result.memory_tokens.append(len(base.tokenizer.encode(prefix, add_special_tokens=False)))
    return result


_RUNNERS: dict[str, Callable[[BaseModel, EvalConfig, EvalSet, Any], ModeResult]] = {
    "B0": _run_b0, "B1": _run_b1, "B2": _run_b1, "B3": _run_b0}


def _fill_store(store: Any, data: EvalSet) -> None:
    store.put_many([Memory(id=mid, text=text, metadata={k: v for k, v in metadata.items() if k != "role"})
                    for mid, text, metadata in data.memories])


def run_eval(config: EvalConfig, *, base: BaseModel | None = None) -> RunResult:
    """Run ``config`` (see the module doc); ``base`` reuses an already loaded model of ``config.model``.

    Raises EvalConfigError / ModeUnavailableError before loading anything, and the model
    loader's errors (:class:`~..errors.ModelSpecError`, :class:`~..errors.ModelUnavailableError`).
    """
    config.check()
    data = scenario_a(config.n, seed=config.seed, slot=config.slot)
    embedder = make_embedder(config.embedder)
    model = base if base is not None else load_base_model(config.model)
    results: dict[str, ModeResult] = {}
    consolidated = None
    with tempfile.TemporaryDirectory(prefix="t4dm-eval-") as directory, \
            t4dm_core.open(directory, embedder=embedder) as store:
        _fill_store(store, data)
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

