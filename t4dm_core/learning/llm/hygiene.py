"""Training hygiene for adapter consolidation: validation tracking, early stopping, plateaus, drift guard.

* :class:`HygienePolicy` — the frozen rules: step budget, evaluation interval, early-stopping
  patience and ``min_delta``, plateau window and tolerance, the allowed base-task drift
  (relative rise of the base-task loss, absolute drop of its exact match) and what to do
  when drift exceeds it (``"rollback"`` or ``"stop"``).
* :class:`TrainingMonitor` — pure bookkeeping and decisions (no tensors): per-step training
  loss and per-component gradient norms, per-evaluation validation loss and base-task
  score; :meth:`TrainingMonitor.record_eval` returns the stop reason, if any, checked in the
  order ``"drift"``, ``"early_stop"``, ``"plateau"``. The first evaluation is the baseline
  (drift is measured against it) and never stops. Validation loss: lower is better.
* :class:`DriftGuard` — measures a :class:`BaseTask` (teacher-forced loss and exact match of
  base-knowledge cloze rows, via :func:`~.training.answer_batch` /
  :func:`~.training.answer_exact_match`) on the model *with* its adapters, and snapshots /
  restores the adapter parameters (the base weights are frozen and never copied).
* :func:`backprop_step` — one AdamW step per call that also records the gradient norm of
  each named component (:func:`~.diagnostics.grad_norms`, before clipping).
* :func:`train_with_hygiene` — the loop that composes them and returns a :class:`HygieneResult`.

Crash semantics: the adapter is changed in place; a snapshot lives in memory only, so a crash
mid-run leaves the adapter at its last optimiser step. Nothing here is thread-safe; do not
train or evaluate the same model from two threads. Measurements run under ``torch.no_grad``
and leave the model's train/eval mode as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from t4dm_core import InvalidInputError
from t4dm_core.learning.llm.diagnostics import grad_norms
from t4dm_core.learning.llm.training import Batch, answer_batch, answer_exact_match, optimizer_step

__all__ = [
    "BaseScore",
    "BaseTask",
    "DriftGuard",
    "HygieneError",
    "HygienePolicy",
    "HygieneResult",
    "Snapshot",
    "StepReport",
    "StopReason",
    "TrainingMonitor",
    "backprop_step",
    "batch_loss",
    "train_with_hygiene",
]

StopReason = Literal["early_stop", "plateau", "drift", "max_steps"]
DriftAction = Literal["rollback", "stop"]


class HygieneError(InvalidInputError):
    """A hygiene policy, base task or training input is invalid (the message names the field)."""


def _at_least(name: str, value: float, low: float) -> None:
    if not value >= low:  # also rejects NaN
        raise HygieneError(f"{name} must be >= {low}, got {value!r}")


@dataclass(frozen=True)
class HygienePolicy:
    """When to evaluate, when to stop, and how much base-task drift a consolidation may cause.

    ``eval_every`` steps between evaluations (one more runs after the last step).
    ``patience``: stop (``"early_stop"``) after this many evaluations in a row whose
    validation loss is not below the best so far minus ``min_delta``.
    ``plateau_window`` evaluations with a relative validation-loss gain (first of the window
    minus the best of the rest, over the first) below ``plateau_tolerance`` → ``"plateau"``.
    ``max_loss_drift``: allowed relative rise of the base-task loss over the baseline
    (0.05 = +5 %); ``max_em_drop``: allowed absolute drop of base-task exact match
    (0.01 = one EM point); either may be ``math.inf``. ``on_drift``: ``"rollback"`` restores
    the best snapshot, ``"stop"`` keeps the current weights. ``restore_best``: after any
    other stop, restore the snapshot with the best validation loss.
    """

    max_steps: int = 200
    eval_every: int = 10
    patience: int = 3
    min_delta: float = 0.0
    plateau_window: int = 5
    plateau_tolerance: float = 1e-3
    max_loss_drift: float = 0.05
    max_em_drop: float = 0.01
    on_drift: DriftAction = "rollback"
    restore_best: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "eval_every", "patience", "plateau_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise HygieneError(f"{name} must be an int, got {value!r}")
        _at_least("max_steps", self.max_steps, 1)
        _at_least("eval_every", self.eval_every, 1)
        _at_least("patience", self.patience, 1)
        _at_least("plateau_window", self.plateau_window, 2)
        for name in ("min_delta", "plateau_tolerance", "max_loss_drift", "max_em_drop"):
            _at_least(name, getattr(self, name), 0.0)
        if self.on_drift not in ("rollback", "stop"):
            raise HygieneError(f"on_drift must be 'rollback' or 'stop', got {self.on_drift!r}")


@dataclass(frozen=True)
class BaseTask:
    """Cloze rows of base knowledge the model must keep: ``prompt + " " + answer`` (e.g. the corpus's base facts).

    Measured in one batch, so keep it to a few dozen rows.
    """

    prompts: tuple[str, ...]
    answers: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.prompts or len(self.prompts) != len(self.answers):
            raise HygieneError(f"a base task needs as many answers as prompts (>= 1), got {len(self.prompts)} "
                               f"and {len(self.answers)}")


@dataclass(frozen=True)
class BaseScore:
    """Base-task teacher-forced ``loss`` (lower is better) and exact match ``em`` in [0, 1] (higher is better)."""

    loss: float
    em: float


@dataclass(frozen=True)
class StepReport:
    """One optimisation step: its loss (before the update) and the gradient norm of each component."""

    loss: float
    grad_norms: dict[str, float]


@dataclass(frozen=True)
class _Eval:
    step: int
    val_loss: float
    base_loss: float
    base_em: float
    loss_drift: float
    em_drop: float


class TrainingMonitor:
    """Records a run and decides when it must stop (see the module doc); holds no tensors."""

    def __init__(self, policy: HygienePolicy) -> None:
        self.policy = policy
        self.stop_reason: StopReason | None = None
        self.last_improved = False
        self._steps: list[dict[str, Any]] = []
        self._evals: list[_Eval] = []
        self._baseline: BaseScore | None = None
        self._best: _Eval | None = None
        self._bad_evals = 0

    @property
    def baseline(self) -> BaseScore | None:
        """The base-task score of the first evaluation (None before it)."""
        return self._baseline

    @property
    def best_val_loss(self) -> float:
        """Lowest validation loss seen (``inf`` before any evaluation)."""
        return self._best.val_loss if self._best is not None else math.inf

    @property
    def best_step(self) -> int | None:
        """Step of the evaluation with the lowest validation loss."""
        return self._best.step if self._best is not None else None

    def record_step(self, step: int, loss: float, norms: Mapping[str, float]) -> None:
        """Log a training step's loss and per-component gradient norms."""
        self._steps.append({"step": step, "loss": loss, "grad_norms": dict(norms)})

    def record_eval(self, step: int, val_loss: float, base: BaseScore) -> StopReason | None:
        """Log an evaluation; returns ``"drift"``, ``"early_stop"``, ``"plateau"`` or None (keep training).

        A non-finite validation loss never counts as an improvement; a NaN base-task loss is drift.
        """
        if self.stop_reason is not None:
            raise HygieneError(f"the run already stopped ({self.stop_reason}); record_eval after a stop")
        if self._baseline is None:
            self._baseline = base
        entry = _Eval(step, val_loss, base.loss, base.em,
                      loss_drift=(base.loss - self._baseline.loss) / max(abs(self._baseline.loss), 1e-12),
                      em_drop=self._baseline.em - base.em)
        self._evals.append(entry)
        self.last_improved = False
        if not (entry.loss_drift <= self.policy.max_loss_drift and entry.em_drop <= self.policy.max_em_drop):
            self.stop_reason = "drift"  # also for a NaN base loss; a drifted state never becomes the best one
            return self.stop_reason
        self.last_improved = math.isfinite(val_loss) and (
            self._best is None or val_loss < self._best.val_loss - self.policy.min_delta)
        if self.last_improved:
            self._best, self._bad_evals = entry, 0
        else:
            self._bad_evals += 1
        self.stop_reason = self._no_progress()
        return self.stop_reason

    def _no_progress(self) -> StopReason | None:
        p = self.policy
        if self._bad_evals >= p.patience:
            return "early_stop"
        if len(self._evals) >= p.plateau_window:
            window = [e.val_loss for e in self._evals[-p.plateau_window:]]
            gain = (window[0] - min(window[1:])) / max(abs(window[0]), 1e-12)
            if not gain >= p.plateau_tolerance:
                return "plateau"
        return None

    def finish(self) -> StopReason:
        """The run's stop reason; ``"max_steps"`` if no evaluation stopped it (the budget ran out)."""
        if self.stop_reason is None:
            self.stop_reason = "max_steps"
        return self.stop_reason

    @property
    def max_loss_drift(self) -> float:
        """Largest relative base-task loss rise measured (0.0 before any evaluation)."""
        return max((e.loss_drift for e in self._evals), default=0.0)

    @property
    def max_em_drop(self) -> float:
        """Largest base-task exact-match drop measured (0.0 before any evaluation)."""
        return max((e.em_drop for e in self._evals), default=0.0)

    def grad_norm_history(self) -> dict[str, list[float]]:
        """Per component, its gradient norm at every recorded step (in step order)."""
        out: dict[str, list[float]] = {}
        for entry in self._steps:
            for name, value in entry["grad_norms"].items():
                out.setdefault(name, []).append(value)
        return out

    def history(self) -> dict[str, Any]:
        """A JSON-serialisable record: policy, train steps, evaluations, baseline, best and stop reason."""
        return {
            "policy": asdict(self.policy),
            "train": [dict(s) for s in self._steps],
            "evals": [asdict(e) for e in self._evals],
            "baseline": asdict(self._baseline) if self._baseline is not None else None,
            "best_step": self.best_step,
            "best_val_loss": self.best_val_loss if self._best is not None else None,
            "stop_reason": self.stop_reason,
        }


@dataclass(frozen=True)
class Snapshot:
    """Copies of the guarded adapter parameters taken after ``step`` optimiser steps."""

    step: int
    tensors: tuple[Tensor, ...] = field(repr=False)


@torch.no_grad()
def batch_loss(model: Any, batch: Batch) -> float:
    """The model's mean causal-LM loss on ``batch`` (e.g. from :func:`~.training.lm_batch`), without gradients."""
    return float(model(**batch).loss)


class DriftGuard:
    """Measures the base task on ``model`` (with its adapters) and snapshots / restores ``params``.

    ``params`` are the trainable adapter parameters (de-duplicated by identity); restoring
    copies the snapshot into them in place, so optimisers and hooks keep working.
    """

    def __init__(self, model: Any, tokenizer: Any, task: BaseTask, params: Iterable[nn.Parameter]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.task = task
        self.params = list({id(p): p for p in params}.values())
        if not self.params:
            raise HygieneError("DriftGuard needs at least one adapter parameter to guard")
        self._batch = answer_batch(tokenizer, task.prompts, task.answers)

    def measure(self) -> BaseScore:
        """Base-task loss and exact match of the model as it is now."""
        loss = batch_loss(self.model, self._batch)
        hits = answer_exact_match(self.model, self.tokenizer, self.task.prompts, self.task.answers)
        return BaseScore(loss, sum(hits) / len(hits))

    def snapshot(self, step: int) -> Snapshot:
        """Copy the guarded parameters as they are after ``step`` steps."""
        return Snapshot(step, tuple(p.detach().clone() for p in self.params))

    @torch.no_grad()
    def restore(self, snapshot: Snapshot) -> None:
        """Write ``snapshot`` back into the guarded parameters (in place)."""
        if len(snapshot.tensors) != len(self.params):
            raise HygieneError(f"snapshot holds {len(snapshot.tensors)} tensors, the guard {len(self.params)}")
        for param, saved in zip(self.params, snapshot.tensors, strict=True):
            param.copy_(saved)


StepFn = Callable[[int], StepReport]


def backprop_step(loss_fn: Callable[[int], Tensor], components: Mapping[str, Sequence[nn.Parameter]], lr: float, *,
                  weight_decay: float = 0.0, clip: float | None = 1.0) -> StepFn:
    """A step function: AdamW on the trainable parameters of all ``components``, logging their gradient norms.

    Each call ``step(i)`` computes ``loss_fn(i)``, backpropagates, records
    :func:`~.diagnostics.grad_norms` of each component (before clipping to ``clip``) and
    updates. Raises :class:`HygieneError` if no component has a trainable parameter.
    """
    trainable = list({id(p): p for ps in components.values() for p in ps if p.requires_grad}.values())
    if not trainable:
        raise HygieneError("backprop_step: no trainable parameters in any component")
    _at_least("lr", lr, 0.0)
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)

    def step(index: int) -> StepReport:
        norms: dict[str, float] = {}
        loss = optimizer_step(opt, trainable, loss_fn(index), clip,
                              before_clip=lambda: norms.update(grad_norms(components)))
        return StepReport(loss, norms)

    return step


@dataclass(frozen=True)
class HygieneResult:
    """What :func:`train_with_hygiene` did.

    ``baseline`` is the base-task score before training, ``final`` after the run (and after
    any rollback / restore). ``restored_step`` is the snapshot the adapter was reset to (None
    if it kept its last weights); ``rolled_back`` says a drift rollback happened.
    """

    steps_run: int
    stop_reason: StopReason
    best_val_loss: float
    best_step: int
    baseline: BaseScore
    final: BaseScore
    max_loss_drift: float
    max_em_drop: float
    rolled_back: bool
    restored_step: int | None
    grad_norm_history: dict[str, list[float]] = field(repr=False)
    history: dict[str, Any] = field(repr=False)


def train_with_hygiene(step: StepFn, validate: Callable[[], float], guard: DriftGuard,
                       policy: HygienePolicy) -> HygieneResult:
    """Train with ``step`` under ``policy``: evaluate every ``eval_every`` steps, stop, roll back or restore.

    ``validate()`` returns the validation loss (lower is better), e.g. :func:`batch_loss` on
    held-out rows. Before the first step the baseline (validation loss, base task, snapshot)
    is taken. After each evaluation that improves validation loss the adapter is snapshotted;
    on drift the best snapshot is restored (``on_drift="rollback"``) and training stops.
    """
    monitor = TrainingMonitor(policy)
    baseline = guard.measure()
    monitor.record_eval(0, validate(), baseline)
    best = guard.snapshot(0)
    steps_run = 0
    for steps_run in range(1, policy.max_steps + 1):
        report = step(steps_run - 1)
        monitor.record_step(steps_run, report.loss, report.grad_norms)
        if steps_run % policy.eval_every and steps_run != policy.max_steps:
            continue
        reason = monitor.record_eval(steps_run, validate(), guard.measure())
        if monitor.last_improved:
            best = guard.snapshot(steps_run)
        if reason is not None:
            break
    stop_reason = monitor.finish()
    rolled_back = stop_reason == "drift" and policy.on_drift == "rollback"
    restore = rolled_back or (stop_reason != "drift" and policy.restore_best)
    if restore:
        guard.restore(best)
    return HygieneResult(
        steps_run=steps_run, stop_reason=stop_reason, best_val_loss=monitor.best_val_loss, best_step=best.step,
        baseline=baseline, final=guard.measure(), max_loss_drift=monitor.max_loss_drift,
        max_em_drop=monitor.max_em_drop, rolled_back=rolled_back, restored_step=best.step if restore else None,
        grad_norm_history=monitor.grad_norm_history(), history=monitor.history())
