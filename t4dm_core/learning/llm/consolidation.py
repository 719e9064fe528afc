"""The consolidation worker: replay a store's episodic memories into adapters on a frozen base LM.

:func:`consolidate` (1) asks a :class:`~.replay.ReplayScheduler` for up to ``k`` items of one
namespace, (2) re-reads those memories (``Store.get_many``) for their ``recorded_at`` version
stamp and write-gate signals, (3) attaches fresh adapters (:func:`~.adapter_store.attach_adapters`:
LoRA — with the NF4 start-up probe deciding QLoRA vs plain LoRA —, the spiking adapter, or
both) to a fresh load of the base model, and (4) trains them under
:func:`~.hygiene.train_with_hygiene` (validation tracking, early stopping, plateaus, the
base-task drift guard with rollback).

Objective (lower is better): every item gives one LM row (its text) and, when it has a cue,
one cue → answer row (:func:`~.replay.replay_rows`); the per-row mean token loss is averaged
with the item's modulator ``M`` as weight. The validation loss is the same objective on the
same rows without gradients — consolidation memorises these items; what must *not* change
(base knowledge) is measured by the drift guard's ``base_task``.

Modulator ``M`` per item (``modulator="gate"``), read from the stored memory's metadata:

1. ``metadata["gate_score"]`` — the write gate's score ``S`` (:class:`~t4dm_core.learning.gate.GateDecision`
   ``.score``; the store does not persist it, so writers put it there), if a finite number >= 0;
2. else the mean of those of ``metadata["reward"]``, ``metadata["surprise"]`` and
   ``metadata["novelty"]`` that are finite numbers >= 0 (the gate's input signals);
3. else ``1.0`` (recorded as source ``"default"``).

``modulator=None`` gives every item ``M = 1.0`` (source ``"none"``). ``importance`` is not
read here (the scheduler already uses it for priority). ``modulator_shuffle_seed`` (ablation):
the items' modulators are permuted across the items with that seed — the same values, given
to the wrong memories; the recorded source then ends in ``"+shuffled"``.

Spike-rate regulariser: when the spiking adapter learns by backprop and ``spike_rate_band``
is set (default :data:`~.spiking.DEFAULT_RATE_BAND`, 5–20 %), the training loss is the
objective plus :meth:`~.spiking.SpikeRateBand.penalty` of each forward pass of the step (the
validation loss stays the plain objective). ``spike_rate_band=None`` switches it off; the
three-factor path never uses it. The result records the spiking adapter's firing rate over
all passes during training (``spike_rate_training``) and over one clean pass of the replay
rows after training (``spike_rate``), and each block's rate of that last pass.

Learning rules: ``learning="backprop"`` trains every attached adapter with AdamW
(:func:`~.hygiene.backprop_step`). ``learning="three_factor"`` trains the *spiking* adapter by
:class:`~.three_factor.ThreeFactorRule` (node perturbation): each step runs the rows once
clean and once with exploratory noise in every spiking block (:meth:`~.spiking.SpikingBottleneck.explore`,
one trial per token); the per-token third factor is ``M_item · (loss_clean − loss_noisy)`` of its
row (0 on padding). With ``adapter="both"`` LoRA still learns by backprop in the same step.
For three-factor steps the logged "gradient norm" of ``"spiking"`` is the norm of the rule's
weight change. Not thread-safe; the store is only read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from t4dm_core import InvalidInputError, Memory, Store
from t4dm_core.learning.llm.adapter_store import AdapterKind, Attachment, attach_adapters
from t4dm_core.learning.llm.gradient_overlap import GradientOverlap
from t4dm_core.learning.llm.hygiene import (
    BaseTask,
    DriftGuard,
    HygienePolicy,
    HygieneResult,
    StepFn,
    StepReport,
    backprop_step,
    train_with_hygiene,
)
from t4dm_core.learning.llm.lora import LoraSpec, QuantRequest
from t4dm_core.learning.llm.replay import (
    ReplayItem,
    ReplayScheduler,
    ReplayWeights,
    replay_rows,
    vector_centroid_overlap,
)
from t4dm_core.learning.llm.spiking import DEFAULT_RATE_BAND, Exploration, SpikeRateBand, SpikingBottleneck
from t4dm_core.learning.llm.three_factor import ThreeFactorRule
from t4dm_core.learning.llm.training import IGNORE_INDEX, Batch

__all__ = ["ConsolidationError", "ConsolidationResult", "TrainedMemory", "consolidate", "item_modulator",
           "row_losses", "token_losses"]

Learning = Literal["backprop", "three_factor"]
GATE_SIGNALS = ("reward", "surprise", "novelty")


class ConsolidationError(InvalidInputError):
    """Consolidation cannot run with these inputs (nothing to replay, bad option, store changed mid-run)."""


@dataclass(frozen=True)
class TrainedMemory:
    """One memory a consolidation trained on: id, namespace, version stamp, its modulator and where M came from."""

    id: str
    namespace: str
    recorded_at: float | None
    modulator: float
    modulator_source: str


@dataclass(frozen=True)
class ConsolidationResult:
    """What :func:`consolidate` did; ``attachment`` holds the trained model (call ``attachment.remove()``)."""

    attachment: Attachment = field(repr=False)
    adapter: AdapterKind
    learning: Learning
    modulator: str | None
    memories: tuple[TrainedMemory, ...]
    hygiene: HygieneResult
    initial_loss: float
    final_loss: float
    store_path: str
    store_stats: dict[str, Any] = field(repr=False)
    spike_rate: float | None = None
    spike_rate_training: float | None = None
    block_spike_rates: tuple[float, ...] = ()

    @property
    def steps(self) -> int:
        return self.hygiene.steps_run

    @property
    def stop_reason(self) -> str:
        return self.hygiene.stop_reason

    @property
    def rolled_back(self) -> bool:
        return self.hygiene.rolled_back

    @property
    def drift(self) -> dict[str, float]:
        """Largest relative base-task loss rise and largest base-task EM drop seen during the run."""
        return {"max_loss_drift": self.hygiene.max_loss_drift, "max_em_drop": self.hygiene.max_em_drop}

    @property
    def quantization(self) -> str:
        return self.attachment.quantization

    def provenance(self) -> dict[str, Any]:
        """JSON-ready provenance for :func:`~.adapter_store.save_adapter`."""
        h = self.hygiene
        return {
            "store": {"path": self.store_path, "stats": self.store_stats},
            "memories": [asdict(m) for m in self.memories],
            "learning": self.learning, "modulator": self.modulator,
            "hygiene": {"steps": h.steps_run, "stop_reason": h.stop_reason, "best_step": h.best_step,
                        "best_val_loss": h.best_val_loss, "rolled_back": h.rolled_back,
                        "restored_step": h.restored_step, **self.drift,
                        "baseline": asdict(h.baseline), "final": asdict(h.final)},
            "objective": {"initial": self.initial_loss, "final": self.final_loss},
            "quantization": {"ran": self.quantization, "detail": self.attachment.quant_detail},
            "spike_rate": {"final": self.spike_rate, "training": self.spike_rate_training,
                           "blocks": list(self.block_spike_rates)},
        }


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def item_modulator(memory: Memory) -> tuple[float, str]:
    """``(M, source)`` from the memory's write-gate metadata (see the module doc for the order)."""
    gate = _number(memory.metadata.get("gate_score"))
    if gate is not None:
        return gate, "gate_score"
    signals = [v for v in (_number(memory.metadata.get(k)) for k in GATE_SIGNALS) if v is not None]
    if signals:
        return sum(signals) / len(signals), "signals"
    return 1.0, "default"


def token_losses(model: Any, batch: Batch) -> Tensor:
    """Next-token loss at every position, shape (B, L): column ``t`` is the loss of predicting token ``t + 1``
    from position ``t``; 0 where that token is unlabelled and in the last column."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX,
                                           reduction="none")
    return torch.nn.functional.pad(ce * (labels != IGNORE_INDEX).to(ce.dtype), (0, 1))


def _row_means(per_token: Tensor, batch: Batch) -> Tensor:
    counts = (batch["labels"][:, 1:] != IGNORE_INDEX).sum(dim=1).to(per_token.dtype)
    return per_token.sum(dim=1) / counts.clamp(min=1.0)


def row_losses(model: Any, batch: Batch) -> Tensor:
    """Mean next-token loss of each row over its labelled tokens, shape (B,) (0 for a row without labels)."""
    return _row_means(token_losses(model, batch), batch)


@dataclass(frozen=True)
class _Rows:
    """The training batches, and for each batch the modulator of each of its rows."""

    batches: tuple[Batch, ...]
    weights: tuple[Tensor, ...]

    def objective(self, model: Any, penalty: Callable[[], Tensor] | None = None) -> Tensor:
        """Modulator-weighted mean row loss, plus ``penalty()`` taken after each batch's forward pass."""
        losses: list[Tensor] = []
        extra = torch.zeros(())
        for batch in self.batches:
            losses.append(row_losses(model, batch))
            if penalty is not None:
                extra = extra + penalty()
        weights = torch.cat(self.weights)
        return (torch.cat(losses) * weights).sum() / weights.sum() + extra


def _rows(items: Sequence[ReplayItem], modulators: Sequence[float], tokenizer: Any, max_len: int) -> _Rows:
    rows = replay_rows(items)
    m = torch.tensor(modulators, dtype=torch.float32)
    batches, weights = [rows.lm_batch(tokenizer, max_len)], [m]
    if rows.prompts:
        batches.append(rows.answer_batch(tokenizer))
        weights.append(m[[i for i, item in enumerate(items) if item.cue is not None and item.answer is not None]])
    return _Rows(tuple(batches), tuple(weights))


@contextmanager
def _exploring(blocks: Sequence[SpikingBottleneck], sigma: float, generator: torch.Generator,
               runs: list[tuple[SpikingBottleneck, Exploration]]) -> Iterator[None]:
    """While active, each block's output is a noisy :meth:`explore` pass over its tokens (recorded in ``runs``)."""
    def hook(block: torch.nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor:
        assert isinstance(block, SpikingBottleneck)
        hidden = args[0]
        run = block.explore(hidden.reshape(-1, hidden.shape[-1]), sigma_hidden=sigma, sigma_out=sigma,
                            generator=generator)
        runs.append((block, run))
        return run.output.reshape(output.shape).to(output.dtype)

    handles = [b.register_forward_hook(hook) for b in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _three_factor_step(attachment: Attachment, rows: _Rows, rule: ThreeFactorRule, sigma: float,
                       seed: int) -> StepFn:
    """A step function applying ``rule`` to every spiking block, modulated per token (see the module doc)."""
    assert attachment.spiking is not None
    blocks = attachment.spiking.blocks
    model = attachment.model
    generator = torch.Generator().manual_seed(seed)
    weights = torch.cat(rows.weights)

    @torch.no_grad()
    def step(_index: int) -> StepReport:
        clean = [token_losses(model, b) for b in rows.batches]
        total = float((torch.cat([_row_means(c, b) for c, b in zip(clean, rows.batches, strict=True)]) * weights).sum()
                      / weights.sum())
        norm_sq = 0.0
        for batch, clean_tokens, row_m in zip(rows.batches, clean, rows.weights, strict=True):
            runs: list[tuple[SpikingBottleneck, Exploration]] = []
            with _exploring(blocks, sigma, generator, runs):
                noisy_tokens = token_losses(model, batch)
            per_token = (row_m[:, None] * (clean_tokens - noisy_tokens)).reshape(-1)  # M · the token's advantage
            for block, run in runs:
                norms = rule.apply(block, run, per_token)
                norm_sq += norms["down"] ** 2 + norms["up"] ** 2
        return StepReport(total, {"spiking": math.sqrt(norm_sq)})

    return step


def _combined(steps: Sequence[StepFn]) -> StepFn:
    def step(index: int) -> StepReport:
        reports = [s(index) for s in steps]
        return StepReport(reports[0].loss, {k: v for r in reports for k, v in r.grad_norms.items()})
    return step


def _signals(memories: Sequence[Memory], modulator: str | None, shuffle_seed: int | None) -> list[tuple[float, str]]:
    signals = [item_modulator(m) if modulator == "gate" else (1.0, "none") for m in memories]
    if shuffle_seed is None:
        return signals
    order = torch.randperm(len(signals), generator=torch.Generator().manual_seed(shuffle_seed)).tolist()
    return [(signals[j][0], signals[j][1] + "+shuffled") for j in order]


def _memories(store: Store, items: Sequence[ReplayItem], namespace: str) -> list[Memory]:
    fetched = store.get_many([item.memory_id for item in items], namespace=namespace)
    out: list[Memory] = []
    for item, memory in zip(items, fetched, strict=True):
        if memory is None or memory.text != item.text:
            raise ConsolidationError(f"memory {item.memory_id!r} changed or vanished while scheduling; retry")
        out.append(memory)
    return out


def consolidate(store: Store, base_model: str, *, base_task: BaseTask, policy: HygienePolicy,
                namespace: str = "default", adapter: AdapterKind = "lora", learning: Learning = "backprop",
                modulator: Literal["gate"] | None = None, weights: ReplayWeights | None = None, k: int = 32,
                filter: Mapping[str, Any] | None = None, lr: float = 1e-2, lora_spec: LoraSpec | None = None,
                quantization: QuantRequest = "auto", spiking_rank: int = 8, spiking_layers: Sequence[int] | None = None,
                rule: ThreeFactorRule | None = None, exploration_sigma: float = 0.1, max_len: int = 64,
                seed: int = 0, cache_dir: str | os.PathLike[str] | None = None,
                spike_rate_band: SpikeRateBand | None = DEFAULT_RATE_BAND,
                modulator_shuffle_seed: int | None = None,
                overlap: Literal["vector", "gradient"] = "vector") -> ConsolidationResult:
    """Replay up to ``k`` memories of ``namespace`` into fresh adapters on ``base_model`` (a model spec).

    ``base_task`` is the drift guard's base knowledge; ``policy`` the hygiene rules. The store is
    read only. Returns the trained :class:`~.adapter_store.Attachment` with steps, stop reason,
    drift, rollback and the ids / ``recorded_at`` of the memories trained on.

    ``spike_rate_band`` and ``modulator_shuffle_seed``: see the module doc. ``overlap`` picks
    the scheduler's overlap proxy: ``"vector"`` (:func:`~.replay.vector_centroid_overlap`, no
    model) or ``"gradient"`` (:class:`~.gradient_overlap.GradientOverlap` over the freshly
    attached adapters' parameters: the adapters are attached first, and every candidate and
    reference memory costs one forward and backward pass).

    Raises :class:`ConsolidationError` when nothing is replayable, for ``learning="three_factor"``
    without a spiking adapter, an unknown ``learning`` / ``modulator``, a ``spike_rate_band``
    that is not a :class:`~.spiking.SpikeRateBand`, or a store that changed mid-run; the
    scheduler's, loader's and hygiene's typed errors otherwise.
    """
    if learning not in ("backprop", "three_factor"):
        raise ConsolidationError(f"learning must be 'backprop' or 'three_factor', got {learning!r}")
    if modulator not in (None, "gate"):
        raise ConsolidationError(f"modulator must be None or 'gate', got {modulator!r}")
    if learning == "three_factor" and adapter == "lora":
        raise ConsolidationError("learning='three_factor' needs a spiking adapter (adapter='spiking' or 'both')")
    if spike_rate_band is not None and not isinstance(spike_rate_band, SpikeRateBand):
        raise ConsolidationError(f"spike_rate_band must be a SpikeRateBand or None, got {spike_rate_band!r}")
    if overlap not in ("vector", "gradient"):
        raise ConsolidationError(f"overlap must be 'vector' or 'gradient', got {overlap!r}")

    def attach() -> Attachment:
        return attach_adapters(base_model, adapter, lora_spec=lora_spec, quantization=quantization,
                               spiking_rank=spiking_rank, spiking_layers=spiking_layers, seed=seed,
                               cache_dir=cache_dir)

    def schedule(attachment: Attachment | None) -> tuple[list[ReplayItem], list[Memory]]:
        proxy = (GradientOverlap(attachment.model, attachment.tokenizer, attachment.parameters(), max_len=max_len)
                 if attachment is not None else vector_centroid_overlap)
        items = ReplayScheduler(store, weights=weights, overlap=proxy, seed=seed).schedule(
            k, namespace=namespace, filter=filter)
        if not items:
            raise ConsolidationError(f"namespace {namespace!r} holds no episodic memory with text to replay")
        return items, _memories(store, items, namespace)

    if overlap == "vector":
        items, memories = schedule(None)
        attachment = attach()
    else:
        attachment = attach()
        try:
            items, memories = schedule(attachment)
        except BaseException:
            attachment.remove()
            raise
    signals = _signals(memories, modulator, modulator_shuffle_seed)
    try:
        rows = _rows(items, [m for m, _ in signals], attachment.tokenizer, max_len)
        band = spike_rate_band if learning == "backprop" else None
        hygiene, initial, final, training_rate = _train(attachment, rows, base_task, policy, learning, lr,
                                                        rule or ThreeFactorRule(), exploration_sigma, seed, band)
        rate, block_rates = _spike_rates(attachment, rows)
    except BaseException:
        attachment.remove()
        raise
    trained = tuple(TrainedMemory(str(m.id), m.namespace, m.recorded_at, value, source)
                    for m, (value, source) in zip(memories, signals, strict=True))
    return ConsolidationResult(attachment, adapter, learning, modulator, trained, hygiene, initial, final,
                               store_path=store.path, store_stats=store.stats(), spike_rate=rate,
                               spike_rate_training=training_rate, block_spike_rates=block_rates)


@torch.no_grad()
def _spike_rates(attachment: Attachment, rows: _Rows) -> tuple[float | None, tuple[float, ...]]:
    """Firing rate of one clean pass over the replay rows (overall, and per block for the last batch)."""
    if attachment.spiking is None:
        return None, ()
    attachment.spiking.reset_stats()
    rows.objective(attachment.model)
    rate = attachment.spiking.spike_rate()
    attachment.spiking.reset_stats()
    return rate, tuple(attachment.spiking.block_rates())


def _train(attachment: Attachment, rows: _Rows, base_task: BaseTask, policy: HygienePolicy, learning: Learning,
           lr: float, rule: ThreeFactorRule, sigma: float, seed: int,
           band: SpikeRateBand | None) -> tuple[HygieneResult, float, float, float | None]:
    model = attachment.model
    components = attachment.components()
    validate: Callable[[], float] = lambda: float(torch.no_grad()(rows.objective)(model))  # noqa: E731
    initial = validate()
    steps: list[StepFn] = []
    backprop = {name: ps for name, ps in components.items() if learning == "backprop" or name == "lora"}
    spiking = attachment.spiking
    penalty = (lambda: band.penalty(spiking.blocks)) if band is not None and spiking is not None else None
    if backprop:
        steps.append(backprop_step(lambda _i: rows.objective(model, penalty), backprop, lr))
    if learning == "three_factor":
        steps.append(_three_factor_step(attachment, rows, rule, sigma, seed))
    guard = DriftGuard(model, attachment.tokenizer, base_task, attachment.parameters())
    if spiking is not None:
        spiking.reset_stats()
    model.train()
    try:
        hygiene = train_with_hygiene(_combined(steps), validate, guard, policy)
    finally:
        model.eval()
    training_rate = spiking.spike_rate() if spiking is not None else None
    return hygiene, initial, validate(), training_rate
