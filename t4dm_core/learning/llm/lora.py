"""LoRA and QLoRA on a frozen base LM's attention projections, with the quantization that ran recorded.

:func:`build_lora` loads the base model (:func:`~.models.load_base_model`) and wraps it with
``peft`` LoRA on ``LoraSpec.target_modules`` (default ``q_proj`` and ``v_proj``).
``quantization`` picks the base weights:

* ``"auto"`` (default) — run :func:`~.quantization.probe_nf4`; 4-bit NF4 if it passed, else
  plain fp32 LoRA. Either way :attr:`LoraModel.quantization` says which one ran and
  :attr:`LoraModel.probe` holds the probe's verdict.
* ``"nf4"`` — QLoRA or nothing: raises :class:`~.errors.QuantizationUnavailableError`.
* ``"none"`` — plain LoRA on fp32 weights (the probe is not run).

:func:`train_lora` runs a few AdamW steps on a batch and returns a :class:`LoraTrainResult`
(losses, seconds, parameter counts, quantization). Each :func:`build_lora` call loads its
own copy of the base model (peft changes the model it wraps). Not thread-safe.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from t4dm_core.learning.llm.errors import AdapterError, QuantizationUnavailableError
from t4dm_core.learning.llm.models import TINY, BaseModel, Quantization, load_base_model
from t4dm_core.learning.llm.quantization import QuantProbe, probe_nf4
from t4dm_core.learning.llm.tiny_lm import TinyLMConfig
from t4dm_core.learning.llm.training import Batch, train_steps

__all__ = ["LoraModel", "LoraSpec", "LoraTrainResult", "build_lora", "train_lora"]

QuantRequest = Literal["auto", "nf4", "none"]


@dataclass(frozen=True)
class LoraSpec:
    """LoRA rank, scaling (``alpha / r``), dropout and the module names it adapts."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1 or not 0.0 <= self.dropout < 1.0 or not self.target_modules:
            raise AdapterError(f"invalid LoRA spec {self!r}: need r >= 1, alpha >= 1, 0 <= dropout < 1, "
                               "at least one target module")


@dataclass
class LoraModel:
    """A peft-wrapped base model; ``quantization`` is what actually ran ("nf4" or "none")."""

    model: Any
    tokenizer: Any
    base: BaseModel
    spec: LoraSpec
    requested: QuantRequest
    quantization: Quantization
    probe: QuantProbe | None

    def trainable_parameters(self) -> list[Any]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())


@dataclass(frozen=True)
class LoraTrainResult:
    """What a :func:`train_lora` run did: per-step losses, time, parameter counts, quantization."""

    quantization: Quantization
    probe_detail: str
    losses: list[float] = field(repr=False)
    seconds: float
    trainable_parameters: int
    base_parameters: int

    @property
    def first_loss(self) -> float:
        return self.losses[0]

    @property
    def last_loss(self) -> float:
        return self.losses[-1]


def _choose(requested: QuantRequest) -> tuple[Quantization, QuantProbe | None]:
    if requested == "none":
        return "none", None
    probe = probe_nf4()
    if probe.available:
        return "nf4", probe
    if requested == "nf4":
        raise QuantizationUnavailableError(f"QLoRA needs 4-bit NF4, which is unavailable here: {probe.detail}")
    return "none", probe


def build_lora(spec: str = TINY, lora: LoraSpec | None = None, *, quantization: QuantRequest = "auto",
               tiny_config: TinyLMConfig | None = None,
               cache_dir: str | os.PathLike[str] | None = None) -> LoraModel:
    """Load ``spec`` and wrap it with LoRA (see the module doc for ``quantization``).

    Raises :class:`~.errors.AdapterError` for an unknown ``quantization`` or target modules
    the model does not have, and whatever :func:`~.models.load_base_model` raises.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantization not in ("auto", "nf4", "none"):
        raise AdapterError(f"quantization must be 'auto', 'nf4' or 'none', got {quantization!r}")
    lora = lora or LoraSpec()
    chosen, probe = _choose(quantization)
    base = load_base_model(spec, quantization=chosen, tiny_config=tiny_config, cache_dir=cache_dir)
    model = base.model
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft 0.21 calls a transformers method that v5 deprecates
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        if chosen == "nf4":
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        try:
            wrapped = get_peft_model(model, config)
        except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
            raise AdapterError(f"cannot attach LoRA to {spec!r}: {exc}") from exc
    return LoraModel(wrapped, base.tokenizer, base, lora, quantization, chosen, probe)


def train_lora(lm: LoraModel, batch: Batch, steps: int, lr: float = 1e-2) -> LoraTrainResult:
    """``steps`` AdamW steps of the causal-LM loss on ``batch`` (full batch each step), LoRA weights only."""
    lm.model.train()
    started = time.perf_counter()
    losses = train_steps(lambda _step: lm.model(**batch).loss, lm.trainable_parameters(), steps, lr)
    seconds = time.perf_counter() - started
    lm.model.eval()
    detail = lm.probe.detail if lm.probe is not None else "probe not run (plain LoRA requested)"
    return LoraTrainResult(lm.quantization, detail, losses, seconds, lm.num_trainable(), lm.base.parameter_count)
