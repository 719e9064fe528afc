"""Modes B2 / B3 of the harness: the scenario's target memories consolidated into LoRA, then asked again.

Contract of :func:`consolidate_targets` (any model spec: ``"tiny"``, ``"smollm2"`` or a local path):

* :func:`require_consolidation` raises :class:`~.errors.ModeUnavailableError` for B2/B3 only when
  ``peft`` (the LoRA library) is not installed; it loads nothing;
* every question's evidence memory (its target story) is written once more into namespace
  :data:`REPLAY_NAMESPACE` of the run's store, with metadata ``cue`` = the prompt of
  :func:`~.prompting.build_prompt` for the question in the story's *own* verb
  (:attr:`~.scenario_a.EvalQuestion.direct_question`, built from the story's who / verb /
  object triple) without memories, and ``answer`` = the slot. Retrieval (B1, B2) searches the
  default namespace, so it does not see these copies. Odd groups are asked with the verb's
  synonym, so on them B2/B3 measure recall beyond the trained cue;
* the drift guard's task is built on the frozen base model first (:mod:`.base_task`): the
  candidate base facts it gets right plus held-out text (for the tiny LM from its corpus, for
  any other model general-knowledge facts and generic prose). The guard rolls back to the
  best snapshot when the base facts' exact match drops by more than one point
  (``max_em_drop = 0.01``) or the guard loss rises by more than ``ln(1 + MAX_PERPLEXITY_RISE)``
  nats over its baseline (the loss is mostly held-out continuation tokens, so this bounds the
  held-out perplexity rise to about :data:`MAX_PERPLEXITY_RISE`);
* :func:`~..consolidation.consolidate` replays all targets (LM rows of the story text +
  cue → answer rows) into plain LoRA (``quantization="none"``) with the model's
  :class:`ConsolidationBudget` (:data:`TINY_BUDGET` or :data:`PRETRAINED_BUDGET`: steps,
  learning rate, LoRA rank and target modules);
* the result is a :class:`EvalConsolidation` — a :class:`~..consolidation.ConsolidationResult`
  that also holds the guard task and its score (facts EM, held-out perplexity) before and after;
  :func:`consolidation_summary` reports them. :func:`adapted_base` gives the trained model as a
  :class:`~..models.BaseModel` for B2 (memory on, like B1) and B3 (memory off, like B0).
  Call ``result.attachment.remove()`` when done.

Deterministic for a given seed; not thread-safe; reads and writes only the run's own store.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass
from typing import Any

from t4dm_core import Memory
from t4dm_core.learning.llm.consolidation import ConsolidationResult, consolidate
from t4dm_core.learning.llm.evaluation.base_task import (
    GuardScore,
    GuardTask,
    build_guard_task,
    measure_guard,
    tiny_candidates,
)
from t4dm_core.learning.llm.evaluation.errors import ModeUnavailableError
from t4dm_core.learning.llm.evaluation.prompting import build_prompt
from t4dm_core.learning.llm.evaluation.scenario_a import EvalSet, Slot
from t4dm_core.learning.llm.hygiene import HygienePolicy
from t4dm_core.learning.llm.lora import LoraSpec
from t4dm_core.learning.llm.models import TINY, BaseModel

__all__ = ["AFTER_REPLAY", "MAX_PERPLEXITY_RISE", "PRETRAINED_BUDGET", "REPLAY_NAMESPACE", "TINY_BUDGET",
           "ConsolidationBudget", "EvalConsolidation", "adapted_base", "budget_for", "consolidate_targets",
           "consolidation_summary", "require_consolidation"]

AFTER_REPLAY: tuple[str, ...] = ("B2", "B3")
REPLAY_NAMESPACE = "eval-replay"
MAX_PERPLEXITY_RISE = 0.05


@dataclass(frozen=True)
class ConsolidationBudget:
    """How much training a consolidation gets: hygiene policy (steps, evaluations), learning rate, LoRA shape."""

    policy: HygienePolicy
    lr: float
    lora: LoraSpec
    max_len: int = 64


TINY_BUDGET = ConsolidationBudget(HygienePolicy(max_steps=60, eval_every=10, patience=3), lr=1e-3, lora=LoraSpec())
PRETRAINED_BUDGET = ConsolidationBudget(
    HygienePolicy(max_steps=30, eval_every=5, patience=3), lr=2e-3,
    lora=LoraSpec(r=16, alpha=32, target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                  "down_proj")))


def budget_for(model: str) -> ConsolidationBudget:
    """:data:`TINY_BUDGET` for the tiny LM, :data:`PRETRAINED_BUDGET` for any other model spec."""
    return TINY_BUDGET if model == TINY else PRETRAINED_BUDGET


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # a module blocked in sys.modules (set to None) has no spec
        return False


def require_consolidation(modes: tuple[str, ...], model: str) -> None:
    """Raise :class:`~.errors.ModeUnavailableError` if ``modes`` ask for B2/B3 and ``peft`` is not installed.

    Any ``model`` spec is accepted here (a bad spec is the loader's error); nothing is loaded.
    """
    for mode in modes:
        if mode in AFTER_REPLAY and not _installed("peft"):
            raise ModeUnavailableError(f"mode {mode} (after replay) needs the 'peft' package for LoRA, which is not "
                                       f"installed (model {model!r})")


@dataclass(frozen=True, kw_only=True)
class EvalConsolidation(ConsolidationResult):
    """A consolidation of the harness, with its guard task, the guard score before / after and the budget used."""

    guard_task: GuardTask
    before: GuardScore
    after: GuardScore
    budget: ConsolidationBudget


def _guard_task(base: BaseModel) -> GuardTask:
    if base.spec == TINY:
        facts, texts = tiny_candidates()
        return build_guard_task(base.model, base.tokenizer, facts, texts)
    return build_guard_task(base.model, base.tokenizer)


def _guarded_policy(policy: HygienePolicy, base: BaseModel, task: GuardTask) -> HygienePolicy:
    from t4dm_core.learning.llm.hygiene import batch_loss
    from t4dm_core.learning.llm.training import answer_batch

    rows = task.base_task()
    baseline = batch_loss(base.model, answer_batch(base.tokenizer, rows.prompts, rows.answers))
    return dataclasses.replace(policy, max_em_drop=0.01,
                               max_loss_drift=math.log1p(MAX_PERPLEXITY_RISE) / max(baseline, 1e-12))


def consolidate_targets(store: Any, data: EvalSet, base: BaseModel, slot: Slot, *,
                        seed: int = 0) -> ConsolidationResult:
    """Write the targets with cue/answer into :data:`REPLAY_NAMESPACE` and consolidate them (module doc).

    Returns an :class:`EvalConsolidation`. Raises :class:`~.base_task.BaseTaskError` if the
    base model knows none of the candidate base facts, and the consolidation's own errors.
    """
    texts = {mid: text for mid, text, _meta in data.memories}
    task = _guard_task(base)
    before = measure_guard(base.model, base.tokenizer, task)
    budget = budget_for(base.spec)
    store.put_many([Memory(id=q.evidence_id, namespace=REPLAY_NAMESPACE, text=texts[q.evidence_id],
                           metadata={"cue": build_prompt(base.tokenizer, q.direct_question, "", slot),
                                     "answer": q.answer})
                    for q in data.questions])
    result = consolidate(store, base.spec, base_task=task.base_task(),
                         policy=_guarded_policy(budget.policy, base, task), namespace=REPLAY_NAMESPACE,
                         adapter="lora", quantization="none", k=len(data.questions), lr=budget.lr,
                         lora_spec=budget.lora, max_len=budget.max_len, seed=seed)
    try:
        after = measure_guard(result.attachment.model, result.attachment.tokenizer, task)
    except BaseException:
        result.attachment.remove()
        raise
    inherited = {f.name: getattr(result, f.name) for f in dataclasses.fields(ConsolidationResult)}
    return EvalConsolidation(**inherited, guard_task=task, before=before, after=after, budget=budget)


def adapted_base(base: BaseModel, result: ConsolidationResult) -> BaseModel:
    """``base`` with the consolidated model in place of the frozen one (same tokenizer and spec)."""
    return BaseModel(model=result.attachment.model, tokenizer=result.attachment.tokenizer, spec=base.spec,
                     source=f"{base.source} + LoRA ({len(result.memories)} memories)",
                     quantization=base.quantization, load_seconds=base.load_seconds,
                     parameter_count=base.parameter_count)


def _guard_summary(result: EvalConsolidation) -> dict[str, Any]:
    task, before, after = result.guard_task, result.before, result.after
    budget = result.budget
    return {
        "base_task": {"facts_kept": len(task.facts), "fact_candidates": task.candidates,
                      "held_out_texts": len(task.held_out)},
        "base_task_em": {"before": before.fact_em, "after": after.fact_em, "drift": after.fact_em - before.fact_em},
        "held_out_perplexity": {"before": before.held_out_perplexity, "after": after.held_out_perplexity,
                                "rise": after.held_out_perplexity / before.held_out_perplexity - 1.0},
        "guard": {"baseline": dataclasses.asdict(result.hygiene.baseline),
                  "final": dataclasses.asdict(result.hygiene.final)},
        "budget": {"max_steps": budget.policy.max_steps, "eval_every": budget.policy.eval_every, "lr": budget.lr,
                   "lora_r": budget.lora.r, "lora_alpha": budget.lora.alpha,
                   "lora_targets": list(budget.lora.target_modules), "max_len": budget.max_len},
    }


def consolidation_summary(result: ConsolidationResult) -> dict[str, Any]:
    """JSON-ready facts about the consolidation behind B2/B3.

    Losses and perplexities: lower is better; EM: higher is better. ``adapter_parameters`` is the
    adapters' trainable parameter count over the base model's (the "< 5 % of base" figure);
    ``spike_rate`` the spiking adapter's firing rate after training (``None`` without one).
    An :class:`EvalConsolidation` adds the guard task's size, base-task EM and held-out
    perplexity before / after, and the budget.
    """
    from t4dm_core.learning.llm.diagnostics import parameter_share

    share = parameter_share(result.attachment.parameters(), result.attachment.base.parameter_count)
    summary = {"adapter": result.adapter, "quantization": result.quantization, "memories": len(result.memories),
               "steps": result.steps, "stop_reason": result.stop_reason, "rolled_back": result.rolled_back,
               "objective": {"initial": result.initial_loss, "final": result.final_loss},
               "adapter_parameters": {"trainable": share.adapter, "base": share.base, "share": share.share},
               "spike_rate": result.spike_rate, **result.drift}
    if isinstance(result, EvalConsolidation):
        summary.update(_guard_summary(result))
    return summary
