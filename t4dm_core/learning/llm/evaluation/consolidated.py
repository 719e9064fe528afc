"""Modes B2 / B3 of the harness: the scenario's target memories consolidated into LoRA, then asked again.

Contract of :func:`consolidate_targets`:

* only the in-project tiny model (``model == "tiny"``) — :func:`require_consolidation` raises
  :class:`~.errors.ModeUnavailableError` for any other model (consolidating SmolLM2 inside
  the harness is not wired: its cost has not been measured);
* every question's evidence memory (its target story) is written once more into namespace
  :data:`REPLAY_NAMESPACE` of the run's store, with metadata ``cue`` = the prompt of
  :func:`~.prompting.build_prompt` for the question in the story's *own* verb
  (:attr:`~.scenario_a.EvalQuestion.direct_question`, built from the story's who / verb /
  object triple) without memories, and ``answer`` = the slot. Retrieval (B1, B2) searches the
  default namespace, so it does not see these copies. Odd groups are asked with the verb's
  synonym, so on them B2/B3 measure recall beyond the trained cue;
* :func:`~..consolidation.consolidate` trains plain LoRA (``quantization="none"``, learning
  rate :data:`LEARNING_RATE`) on those memories (LM rows of the story text + cue → answer
  rows) under :data:`POLICY`, whose drift guard watches the tiny LM's base facts
  (:func:`tiny_base_task`) and rolls back a consolidation that raises their loss by more
  than 5 % or drops their EM by more than one point;
* the trained model is returned as a :class:`~..models.BaseModel` view (:func:`adapted_base`)
  for B2 (memory on, like B1) and B3 (memory off, like B0). Call
  ``result.attachment.remove()`` when done.

Deterministic for a given seed; not thread-safe; reads and writes only the run's own store.
"""

from __future__ import annotations

from typing import Any

from t4dm_core import Memory
from t4dm_core.learning.llm.consolidation import ConsolidationResult, consolidate
from t4dm_core.learning.llm.evaluation.errors import ModeUnavailableError
from t4dm_core.learning.llm.evaluation.prompting import build_prompt
from t4dm_core.learning.llm.evaluation.scenario_a import EvalSet, Slot
from t4dm_core.learning.llm.hygiene import BaseTask, HygienePolicy
from t4dm_core.learning.llm.models import TINY, BaseModel

__all__ = ["AFTER_REPLAY", "LEARNING_RATE", "POLICY", "REPLAY_NAMESPACE", "adapted_base", "consolidate_targets",
           "consolidation_summary", "require_consolidation", "tiny_base_task"]

AFTER_REPLAY: tuple[str, ...] = ("B2", "B3")
REPLAY_NAMESPACE = "eval-replay"
POLICY = HygienePolicy(max_steps=60, eval_every=10, patience=3)
LEARNING_RATE = 1e-3  # 1e-2 and 3e-3 tripped the drift guard at the first evaluation (adapter rolled back to zero)
_BASE_FACTS = 24


def require_consolidation(modes: tuple[str, ...], model: str) -> None:
    """Raise :class:`~.errors.ModeUnavailableError` if ``modes`` ask for B2/B3 with a model other than tiny."""
    for mode in modes:
        if mode in AFTER_REPLAY and model != TINY:
            raise ModeUnavailableError(f"mode {mode} (after replay) is wired for the tiny model only, not {model!r}: "
                                       "consolidating this model inside the harness is not implemented yet")


def tiny_base_task() -> BaseTask:
    """The drift guard's base knowledge: the first facts of the tiny LM's training corpus (cloze rows)."""
    from seeds.lm_corpus import lm_corpus
    from t4dm_core.learning.llm.tiny_lm import TinyLMConfig

    cfg = TinyLMConfig()
    facts = lm_corpus(cfg.seed, n_people=cfg.n_people, repeats=cfg.fact_repeats, n_sentences=cfg.n_sentences,
                      n_episodes=cfg.n_episodes).facts[:_BASE_FACTS]
    return BaseTask(tuple(f.prompt for f in facts), tuple(f.value for f in facts))


def consolidate_targets(store: Any, data: EvalSet, base: BaseModel, slot: Slot, *,
                        seed: int = 0) -> ConsolidationResult:
    """Write the targets with cue/answer into :data:`REPLAY_NAMESPACE` and consolidate them (module doc)."""
    texts = {mid: text for mid, text, _meta in data.memories}
    store.put_many([Memory(id=q.evidence_id, namespace=REPLAY_NAMESPACE, text=texts[q.evidence_id],
                           metadata={"cue": build_prompt(base.tokenizer, q.direct_question, "", slot),
                                     "answer": q.answer})
                    for q in data.questions])
    return consolidate(store, base.spec, base_task=tiny_base_task(), policy=POLICY, namespace=REPLAY_NAMESPACE,
                       adapter="lora", quantization="none", k=len(data.questions), lr=LEARNING_RATE, seed=seed)


def adapted_base(base: BaseModel, result: ConsolidationResult) -> BaseModel:
    """``base`` with the consolidated model in place of the frozen one (same tokenizer and spec)."""
    return BaseModel(model=result.attachment.model, tokenizer=result.attachment.tokenizer, spec=base.spec,
                     source=f"{base.source} + LoRA ({len(result.memories)} memories)",
                     quantization=base.quantization, load_seconds=base.load_seconds,
                     parameter_count=base.parameter_count)


def consolidation_summary(result: ConsolidationResult) -> dict[str, Any]:
    """JSON-ready facts about the consolidation behind B2/B3 (losses: lower is better)."""
    return {"adapter": result.adapter, "quantization": result.quantization, "memories": len(result.memories),
            "steps": result.steps, "stop_reason": result.stop_reason, "rolled_back": result.rolled_back,
            "objective": {"initial": result.initial_loss, "final": result.final_loss}, **result.drift}
