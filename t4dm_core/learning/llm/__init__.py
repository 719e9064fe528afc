"""Adapter stack (issue 6): retrieved T4DM memories into a frozen causal LM.

Modules, one job each (torch and transformers are imported only when a name that needs
them is first used; ``import t4dm_core`` and ``import t4dm_core.learning.llm`` import neither):

* :mod:`.models` — load a frozen base LM + tokenizer from a spec (``"tiny"``, ``"smollm2"``, a path);
* :mod:`.tiny_lm` — the in-project tiny Llama, trained on :mod:`seeds.lm_corpus` and cached;
* :mod:`.redaction` / :mod:`.packer` — PII redaction and the memory token packer (B1 read path);
* :mod:`.episodic` — the HEI-NW episodic cross-attention adapter (zero-gated);
* :mod:`.quantization` / :mod:`.lora` — the NF4 start-up probe, LoRA and QLoRA;
* :mod:`.spiking` / :mod:`.three_factor` — the spiking bottleneck adapter and its three-factor rule;
* :mod:`.diagnostics` — adapter parameter share and per-component gradient norms;
* :mod:`.replay` — the replay queue and CA2-style scheduler (store memories → LM and cue → answer rows);
  :mod:`.gradient_overlap` — its model-based gradient-overlap proxy;
* :mod:`.consolidation` / :mod:`.adapter_store` — the consolidation worker; adapters saved with
  provenance, loaded by name;
* :mod:`.evaluation` / :mod:`.eval_cli` — the B0–B3 evaluation harness (scenarios A–E) and ``t4dm eval``;
* :mod:`.hygiene` — validation tracking, early stopping, plateau detection, the base-task drift guard;
* :mod:`.training` / :mod:`.hooks` / :mod:`.errors` — shared helpers and typed errors.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DEFAULT_RATE_BAND",
    "AdapterError",
    "AdapterExistsError",
    "AdapterKind",
    "AdapterNotFoundError",
    "Attachment",
    "BaseMismatchError",
    "BaseModel",
    "BaseScore",
    "BaseTask",
    "ConsolidationError",
    "ConsolidationResult",
    "CorruptAdapterError",
    "DriftGuard",
    "EpisodicAdapter",
    "EpisodicCrossAttention",
    "EvalConfig",
    "EvalConfigError",
    "EvalQuestion",
    "EvalSet",
    "Exploration",
    "GradientOverlap",
    "HygieneError",
    "HygienePolicy",
    "HygieneResult",
    "LoraModel",
    "LoraSpec",
    "LoraTrainResult",
    "MemoryOverlap",
    "MemoryPacker",
    "MemoryStates",
    "MemoryTemplate",
    "MetricSummary",
    "ModeUnavailableError",
    "ModelSpecError",
    "ModelUnavailableError",
    "OverlapProxy",
    "PackedMemories",
    "ParameterShare",
    "QuantProbe",
    "QuantizationUnavailableError",
    "Redaction",
    "RedactionPolicy",
    "ReplayItem",
    "ReplayRows",
    "ReplayScheduler",
    "ReplayWeights",
    "Snapshot",
    "SpikeRateBand",
    "SpikingAdapter",
    "SpikingBottleneck",
    "StepReport",
    "StopReason",
    "ThreeFactorRule",
    "TinyLMConfig",
    "TrainedMemory",
    "TrainingMonitor",
    "attach_adapters",
    "backprop_step",
    "base_fingerprint",
    "batch_loss",
    "block_parameter_count",
    "bootstrap_ci",
    "build_lora",
    "consolidate",
    "eligibility",
    "exact_match",
    "grad_norms",
    "item_modulator",
    "list_adapters",
    "load_adapter",
    "load_base_model",
    "normalize_answer",
    "parameter_share",
    "probe_nf4",
    "question_prompt",
    "rank_for_budget",
    "read_manifest",
    "redact",
    "render_memory_block",
    "replay_rows",
    "row_losses",
    "run_eval",
    "save_adapter",
    "scenario_a",
    "split_cue_answer",
    "summarize",
    "tiny_lm_path",
    "token_f1",
    "token_losses",
    "train_lora",
    "train_with_hygiene",
    "vector_centroid_overlap",
]

_HOMES = {
    "errors": ("AdapterError", "ModelSpecError", "ModelUnavailableError", "QuantizationUnavailableError"),
    "models": ("BaseModel", "load_base_model"),
    "tiny_lm": ("TinyLMConfig", "tiny_lm_path"),
    "redaction": ("Redaction", "RedactionPolicy", "redact"),
    "packer": ("MemoryPacker", "MemoryTemplate", "PackedMemories", "question_prompt", "render_memory_block"),
    "episodic": ("EpisodicAdapter", "EpisodicCrossAttention", "MemoryStates"),
    "quantization": ("QuantProbe", "probe_nf4"),
    "lora": ("LoraModel", "LoraSpec", "LoraTrainResult", "build_lora", "train_lora"),
    "spiking": ("DEFAULT_RATE_BAND", "Exploration", "SpikeRateBand", "SpikingAdapter", "SpikingBottleneck",
                "block_parameter_count"),
    "three_factor": ("ThreeFactorRule", "eligibility"),
    "diagnostics": ("ParameterShare", "grad_norms", "parameter_share", "rank_for_budget"),
    "consolidation": ("ConsolidationError", "ConsolidationResult", "TrainedMemory", "consolidate", "item_modulator",
                      "row_losses", "token_losses"),
    "adapter_store": ("AdapterExistsError", "AdapterKind", "AdapterNotFoundError", "Attachment", "BaseMismatchError",
                      "CorruptAdapterError", "attach_adapters", "base_fingerprint", "list_adapters", "load_adapter",
                      "read_manifest", "save_adapter"),
    "evaluation": ("EvalConfigError", "ModeUnavailableError", "EvalQuestion", "EvalSet", "scenario_a", "exact_match",
                   "token_f1", "normalize_answer", "bootstrap_ci", "summarize", "MetricSummary"),
    "evaluation.runner": ("EvalConfig", "run_eval"),
    "hygiene": ("BaseScore", "BaseTask", "DriftGuard", "HygieneError", "HygienePolicy", "HygieneResult", "Snapshot",
                "StepReport", "StopReason", "TrainingMonitor", "backprop_step", "batch_loss", "train_with_hygiene"),
    "gradient_overlap": ("GradientOverlap",),
    "replay": ("MemoryOverlap", "OverlapProxy", "ReplayItem", "ReplayRows", "ReplayScheduler", "ReplayWeights",
               "replay_rows", "split_cue_answer", "vector_centroid_overlap"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
