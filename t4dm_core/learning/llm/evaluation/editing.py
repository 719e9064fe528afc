"""Scenario B of the harness: sequential fact edits (hot patches) into T4DM memory vs a naive LoRA fine-tune.

Contract of :func:`run_editing` (``config`` = :class:`EditingConfig`, data = :func:`~.scenario_b.scenario_b`):

* every question is answered with the harness's own read path (:mod:`.runner`'s B0 / B1
  answerers): prompt of :func:`~.prompting.build_prompt` (slot ``"where"``), greedy decoding of
  at most ``max_new_tokens`` tokens, :func:`~.prompting.extract_answer` with the scenario's
  town vocabulary, :mod:`.metrics` EM / F1;
* **before any edit** the frozen base model answers every locality probe without memory;
  those answers are the locality references. ``modes["B0"]`` is the same unedited model on
  the reliability questions (no memory);
* **t4dm_memory** — each edit, in sequence order, is one ``store.put`` of its statement with
  the fact's id (a patch = a new version of the same id) into a fresh store; then every
  question, *locality probes included*, goes through B1 (``store.search(question, k)``,
  :class:`~..packer.MemoryPacker`, prompt with the memory block): the model sees whatever
  the store returns, which is the honest locality of a retrieval memory. ``modes["B1"]`` is
  this system on the reliability questions (with retrieval P@1 / MRR of the fact's memory);
* **naive_lora** — a fresh LoRA adapter (:func:`~..lora.build_lora`, plain fp32, rank
  ``lora_rank`` on ``q_proj`` / ``v_proj``) is fine-tuned on each edit in turn:
  ``steps_per_edit`` AdamW steps (learning rate ``lr``, a fresh optimiser per edit) on the
  single row "edit question prompt → edit value" (:func:`~..training.answer_batch`); no
  replay of earlier edits, no drift guard. Then every question is asked without memory (B0
  on the adapted model).

Metrics per system (all in [0, 1], higher is better, each with a seeded bootstrap 95% CI):

* **reliability** — EM of the answer to each fact's edit question against the fact's
  *latest* value (a patched fact counts as right only with the patched value);
* **generalization** — the same on the paraphrased question (never trained on, never stored);
* **locality** — share of locality probes (other fictional subjects + fixed real-world
  questions) whose extracted answer, normalised, equals the unedited base model's answer to
  the same probe (i.e. EM against the pre-edit answer); ``locality_other_subjects`` and
  ``locality_general`` split it by probe kind;
* ``patched`` — over patched facts only: reliability, and the share still answered with the
  replaced (stale) value (lower is better);
* latency per answer in ms (t4dm_memory includes search and packing), seconds spent writing
  (t4dm_memory) or training (naive_lora).

The JSON report (:func:`run_editing`'s return value) is::

    {"scenario": "B", "model": ..., "model_source": ..., "embedder": ..., "n": N, "edits": E, "patched": P,
     "seed": S, "k": K, "n_boot": B, "steps_per_edit": ..., "lr": ..., "lora_rank": ...,
     "modes": {"B0": {"n", "em": {"mean", "ci95"}, "f1", "latency_ms"},
               "B1": {... same ..., "retrieval": {"p@1", "mrr", "k"}, "memory_tokens"}},
     "systems": {"t4dm_memory": {"reliability": {"mean", "ci95"}, "generalization": ..., "locality": ...,
                                 "locality_other_subjects": ..., "locality_general": ...,
                                 "patched": {"n", "reliability", "stale"}, "latency_ms": {...},
                                 "write_seconds": ...},
                 "naive_lora": {... same keys, "train_seconds" instead of "write_seconds" ...}}}

Only the systems in ``config.systems`` appear. Deterministic for a given config on one
machine (greedy decoding; LoRA init and training seeded with ``seed``). Not thread-safe (it
drives one model); torch's thread count is the caller's choice.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import t4dm_core
from t4dm_core import Memory
from t4dm_core.learning.llm.evaluation.embedders import EMBEDDERS, make_embedder
from t4dm_core.learning.llm.evaluation.errors import EvalConfigError
from t4dm_core.learning.llm.evaluation.items import EvalQuestion, EvalSet
from t4dm_core.learning.llm.evaluation.metrics import DEFAULT_N_BOOT, exact_match, summarize
from t4dm_core.learning.llm.evaluation.prompting import build_prompt
from t4dm_core.learning.llm.evaluation.report import latency_summary, mode_summary
from t4dm_core.learning.llm.evaluation.runner import EvalConfig, ModeResult, answer_with_memory, answer_without_memory
from t4dm_core.learning.llm.evaluation.scenario_b import EditFact, EditScenario, scenario_b
from t4dm_core.learning.llm.models import BaseModel, load_base_model

__all__ = ["SYSTEMS", "EditingConfig", "locality_scores", "run_editing", "stale_scores", "write_edits"]

SYSTEMS: tuple[str, ...] = ("t4dm_memory", "naive_lora")
_SLOT: Literal["where"] = "where"
Answerer = Callable[[EvalSet], ModeResult]


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EvalConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class EditingConfig:
    """One scenario-B run (see the module doc); validated on construction (:class:`~.errors.EvalConfigError`)."""

    model: str = "tiny"
    n: int = 100
    seed: int = 0
    patch_fraction: float = 0.2
    systems: tuple[str, ...] = SYSTEMS
    k: int = 3
    embedder: str = "minilm"
    memory_tokens: int = 256
    max_new_tokens: int = 16
    n_boot: int = DEFAULT_N_BOOT
    steps_per_edit: int = 5
    lr: float = 1e-3
    lora_rank: int = 8
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("n", "k", "memory_tokens", "max_new_tokens", "n_boot", "steps_per_edit", "lora_rank"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise EvalConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.model, str) or not self.model:
            raise EvalConfigError(f"model must be a non-empty model spec, got {self.model!r}")
        if self.embedder not in EMBEDDERS:
            raise EvalConfigError(f"embedder must be one of {list(EMBEDDERS)}, got {self.embedder!r}")
        if not isinstance(self.systems, tuple) or not self.systems:
            raise EvalConfigError(f"systems must be a non-empty tuple, got {self.systems!r}")
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown or len(set(self.systems)) != len(self.systems):
            raise EvalConfigError(f"systems must be distinct names from {list(SYSTEMS)}, got {list(self.systems)}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) \
                or self.lr <= 0:
            raise EvalConfigError(f"lr must be a finite number > 0, got {self.lr!r}")
        if isinstance(self.patch_fraction, bool) or not isinstance(self.patch_fraction, (int, float)) \
                or not 0.0 <= self.patch_fraction <= 1.0:
            raise EvalConfigError(f"patch_fraction must be a number in [0, 1], got {self.patch_fraction!r}")

    def read_path(self) -> EvalConfig:
        """The harness settings of the read path (decoding, retrieval, packing) for this run."""
        return EvalConfig(modes=("B0", "B1"), model=self.model, n=self.n, seed=self.seed, k=self.k,
                          embedder=self.embedder, slot=_SLOT, memory_tokens=self.memory_tokens,
                          max_new_tokens=self.max_new_tokens, n_boot=self.n_boot, progress=self.progress)


@dataclass(frozen=True)
class _QuestionSets:
    reliability: EvalSet
    generalization: EvalSet
    locality: EvalSet
    n_other: int


def _question_sets(data: EditScenario) -> _QuestionSets:
    def ask(f: EditFact, question: str, cue: str) -> EvalQuestion:
        return EvalQuestion(question, f.value, f.id, cue, f.question, stale_answers=(f.stale,) if f.stale else ())

    reliability = tuple(ask(f, f.question, "direct") for f in data.facts)
    paraphrases = tuple(ask(f, f.paraphrase, "paraphrase") for f in data.facts)
    # locality probes have no gold answer: they are scored against the pre-edit answers (locality_scores)
    probes = tuple(EvalQuestion(p, "", "", "locality", p) for p in (*data.other_subject_probes, *data.general_probes))
    return _QuestionSets(EvalSet("B", (), reliability, data.vocabulary), EvalSet("B", (), paraphrases, data.vocabulary),
                         EvalSet("B", (), probes, data.vocabulary), len(data.other_subject_probes))


def locality_scores(references: Sequence[str], predictions: Sequence[str]) -> list[float]:
    """Per probe: 1.0 if the prediction equals the pre-edit reference answer after normalisation, else 0.0."""
    if len(references) != len(predictions):
        raise EvalConfigError(f"need one prediction per reference, got {len(predictions)} and {len(references)}")
    return [exact_match(p, r) for p, r in zip(predictions, references, strict=True)]


def stale_scores(data: EditScenario, predictions: Sequence[str]) -> list[float]:
    """Per patched fact (``predictions`` aligned with ``data.facts``): 1.0 if answered with the replaced value."""
    if len(predictions) != len(data.facts):
        raise EvalConfigError(f"need one prediction per fact, got {len(predictions)} for {len(data.facts)} facts")
    return [exact_match(p, f.stale) for f, p in zip(data.facts, predictions, strict=True) if f.stale is not None]


def _summary(values: Sequence[float], config: EditingConfig) -> dict[str, object]:
    return summarize(values, n_boot=config.n_boot, seed=config.seed).to_json()


def _system_report(config: EditingConfig, data: EditScenario, sets: _QuestionSets, references: Sequence[str],
                   answer: Answerer) -> tuple[dict[str, Any], ModeResult]:
    reliability, generalization, probes = (answer(s) for s in (sets.reliability, sets.generalization, sets.locality))
    locality = locality_scores(references, probes.predictions)
    patched = [r for r, f in zip(reliability.em, data.facts, strict=True) if f.stale is not None]
    stale = stale_scores(data, reliability.predictions)
    out: dict[str, Any] = {
        "reliability": _summary(reliability.em, config), "generalization": _summary(generalization.em, config),
        "locality": _summary(locality, config),
        "locality_other_subjects": _summary(locality[:sets.n_other], config),
        "locality_general": _summary(locality[sets.n_other:], config),
        "patched": {"n": len(patched), "reliability": sum(patched) / len(patched) if patched else None,
                    "stale": sum(stale) / len(stale) if stale else None},
        "latency_ms": latency_summary([*reliability.latency_ms, *generalization.latency_ms, *probes.latency_ms]),
    }
    return out, reliability


def write_edits(store: Any, data: EditScenario) -> float:
    """Apply ``data.edits`` in order, one ``store.put`` each (a patch = new version of the fact's id); seconds taken."""
    started = time.perf_counter()
    for edit in data.edits:
        store.put(Memory(id=edit.fact_id, text=edit.statement, metadata={"patch": edit.is_patch}))
    return time.perf_counter() - started


def _naive_lora(base: BaseModel, config: EditingConfig, data: EditScenario) -> tuple[BaseModel, float]:
    """A LoRA model fine-tuned on each edit in turn (module doc) and its training seconds."""
    import torch
    from torch import Tensor

    from t4dm_core.learning.llm.lora import LoraSpec, build_lora
    from t4dm_core.learning.llm.training import Batch, answer_batch, train_steps

    torch.manual_seed(config.seed)
    lm = build_lora(config.model, LoraSpec(r=config.lora_rank, alpha=2 * config.lora_rank), quantization="none")
    started = time.perf_counter()

    def edit_loss(batch: Batch) -> Callable[[int], Tensor]:
        return lambda _step: lm.model(**batch).loss

    lm.model.train()
    for edit in data.edits:
        batch = answer_batch(lm.tokenizer, [build_prompt(lm.tokenizer, edit.question, "", _SLOT)], [edit.value])
        train_steps(edit_loss(batch), lm.trainable_parameters(), config.steps_per_edit, config.lr)
    lm.model.eval()
    seconds = time.perf_counter() - started
    adapted = BaseModel(model=lm.model, tokenizer=lm.tokenizer, spec=base.spec,
                        source=f"{base.source} + naive LoRA ({len(data.edits)} edits)", quantization="none",
                        load_seconds=lm.base.load_seconds, parameter_count=lm.base.parameter_count)
    return adapted, seconds


def run_editing(config: EditingConfig, *, base: BaseModel | None = None) -> dict[str, Any]:
    """Run scenario B for ``config`` and return the JSON-ready report (module doc).

    ``base`` reuses an already loaded model of ``config.model`` (the naive LoRA system loads
    its own copy, since LoRA changes the model it wraps). Raises the model loader's errors.
    """
    read = config.read_path()
    data = scenario_b(config.n, seed=config.seed, patch_fraction=config.patch_fraction)
    embedder = make_embedder(config.embedder)
    model = base if base is not None else load_base_model(config.model)
    sets = _question_sets(data)
    references = answer_without_memory(model, read, sets.locality, None).predictions
    unedited = answer_without_memory(model, read, sets.reliability, None)
    modes: dict[str, Any] = {"B0": mode_summary(unedited, config.n_boot, config.seed, config.k)}
    systems: dict[str, Any] = {}
    if "t4dm_memory" in config.systems:
        with tempfile.TemporaryDirectory(prefix="t4dm-edit-") as directory, \
                t4dm_core.open(directory, embedder=embedder) as store:
            write_seconds = write_edits(store, data)
            report, b1 = _system_report(config, data, sets, references,
                                        lambda s: answer_with_memory(model, read, s, store))
        systems["t4dm_memory"] = {**report, "write_seconds": write_seconds}
        modes["B1"] = mode_summary(b1, config.n_boot, config.seed, config.k)
    if "naive_lora" in config.systems:
        adapted, train_seconds = _naive_lora(model, config, data)
        report, _ = _system_report(config, data, sets, references,
                                   lambda s: answer_without_memory(adapted, read, s, None))
        systems["naive_lora"] = {**report, "train_seconds": train_seconds}
    return {"scenario": "B", "model": config.model, "model_source": model.source, "embedder": embedder.name,
            "n": config.n, "edits": len(data.edits), "patched": len(data.patched), "seed": config.seed, "k": config.k,
            "n_boot": config.n_boot, "steps_per_edit": config.steps_per_edit, "lr": config.lr,
            "lora_rank": config.lora_rank, "modes": modes, "systems": systems}
