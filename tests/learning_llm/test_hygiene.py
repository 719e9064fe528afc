"""Training hygiene: monitor decisions on synthetic curves, and the drift guard / early stop on the tiny LM."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch

from seeds.lm_corpus import lm_corpus
from t4dm_core import InvalidInputError
from t4dm_core.learning.llm.hygiene import (
    BaseScore,
    BaseTask,
    DriftGuard,
    HygieneError,
    HygienePolicy,
    TrainingMonitor,
    backprop_step,
    batch_loss,
    train_with_hygiene,
)
from t4dm_core.learning.llm.lora import LoraModel, build_lora
from t4dm_core.learning.llm.spiking import SpikingAdapter
from t4dm_core.learning.llm.tiny_lm import TinyLMConfig
from t4dm_core.learning.llm.training import lm_batch

STEADY = BaseScore(loss=1.0, em=0.8)


def _feed(monitor: TrainingMonitor, val_losses: list[float]) -> list[str | None]:
    return [monitor.record_eval(i, v, STEADY) for i, v in enumerate(val_losses)]


# ----------------------------------------------------------------------------- monitor on synthetic curves
def test_early_stop_fires_after_exactly_patience_non_improving_evals() -> None:
    monitor = TrainingMonitor(HygienePolicy(patience=3, min_delta=0.05, plateau_window=100))
    # 1.19 beats the best (1.2) by less than min_delta, so it does not count as an improvement
    reasons = _feed(monitor, [2.0, 1.5, 1.2, 1.25, 1.19, 1.3])
    assert reasons == [None, None, None, None, None, "early_stop"]
    assert monitor.best_val_loss == 1.2 and monitor.best_step == 2 and monitor.stop_reason == "early_stop"
    with pytest.raises(HygieneError, match="already stopped"):
        monitor.record_eval(6, 1.0, STEADY)


def test_an_improvement_resets_patience() -> None:
    monitor = TrainingMonitor(HygienePolicy(patience=2, plateau_window=100))
    assert _feed(monitor, [2.0, 2.1, 1.9, 2.0, 2.2]) == [None, None, None, None, "early_stop"]
    assert monitor.best_step == 2


def test_plateau_fires_on_a_flat_curve_and_not_on_a_decreasing_one() -> None:
    policy = HygienePolicy(patience=100, plateau_window=4, plateau_tolerance=1e-3)
    creeping = [1.0 - 1e-5 * i for i in range(4)]  # improves every time, so patience never runs out
    assert _feed(TrainingMonitor(policy), creeping) == [None, None, None, "plateau"]
    decreasing = [2.0 * 0.9**i for i in range(30)]
    assert _feed(TrainingMonitor(policy), decreasing) == [None] * 30


def test_drift_is_measured_against_the_first_evaluation() -> None:
    policy = HygienePolicy(max_loss_drift=0.05, max_em_drop=0.01, plateau_window=100)
    within = TrainingMonitor(policy)
    assert within.record_eval(0, 3.0, BaseScore(2.0, 0.5)) is None
    assert within.record_eval(5, 2.0, BaseScore(2.09, 0.5)) is None  # +4.5 %
    loss_drift = TrainingMonitor(policy)
    loss_drift.record_eval(0, 3.0, BaseScore(2.0, 0.5))
    assert loss_drift.record_eval(5, 1.0, BaseScore(2.2, 0.5)) == "drift"  # +10 %
    assert loss_drift.max_loss_drift == pytest.approx(0.1)
    assert loss_drift.best_step == 0  # the drifted evaluation never becomes the best one
    em_drift = TrainingMonitor(policy)
    em_drift.record_eval(0, 3.0, BaseScore(2.0, 0.5))
    assert em_drift.record_eval(5, 1.0, BaseScore(1.9, 0.48)) == "drift"
    assert em_drift.max_em_drop == pytest.approx(0.02)
    diverged = TrainingMonitor(policy)
    diverged.record_eval(0, 3.0, BaseScore(2.0, 0.5))
    assert diverged.record_eval(5, math.nan, BaseScore(math.nan, 0.5)) == "drift"


def test_a_non_finite_validation_loss_is_never_an_improvement() -> None:
    monitor = TrainingMonitor(HygienePolicy(patience=2, plateau_window=100))
    assert _feed(monitor, [math.nan, 5.0, math.inf, 6.0]) == [None, None, None, "early_stop"]
    assert monitor.best_step == 1 and monitor.best_val_loss == 5.0


def test_history_is_json_and_holds_grad_norms_per_component() -> None:
    monitor = TrainingMonitor(HygienePolicy(plateau_window=100))
    monitor.record_eval(0, 2.0, STEADY)
    monitor.record_step(1, 1.9, {"lora": 0.5, "spiking": 0.25})
    monitor.record_step(2, 1.8, {"lora": 0.4, "spiking": 0.125})
    monitor.record_eval(2, 1.7, STEADY)
    assert monitor.finish() == "max_steps"
    assert monitor.grad_norm_history() == {"lora": [0.5, 0.4], "spiking": [0.25, 0.125]}
    history = json.loads(json.dumps(monitor.history()))
    assert history["stop_reason"] == "max_steps" and history["best_step"] == 2
    assert [e["val_loss"] for e in history["evals"]] == [2.0, 1.7]
    assert history["train"][1] == {"step": 2, "loss": 1.8, "grad_norms": {"lora": 0.4, "spiking": 0.125}}
    assert history["policy"]["patience"] == HygienePolicy().patience


@pytest.mark.parametrize(("field", "value"), [
    ("max_steps", 0), ("eval_every", 0), ("patience", 0), ("plateau_window", 1), ("patience", 2.5),
    ("min_delta", -0.1), ("plateau_tolerance", math.nan), ("max_loss_drift", -1.0), ("max_em_drop", -0.01),
    ("on_drift", "ignore"),
])
def test_bad_policy_values_raise_a_typed_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(HygieneError, match=field) as caught:
        HygienePolicy(**{field: value})  # type: ignore[arg-type]
    assert isinstance(caught.value, InvalidInputError)


def test_bad_base_task_and_empty_components_raise() -> None:
    with pytest.raises(HygieneError, match="as many answers as prompts"):
        BaseTask(("a prompt",), ())
    with pytest.raises(HygieneError, match="as many answers as prompts"):
        BaseTask((), ())
    with pytest.raises(HygieneError, match="no trainable parameters"):
        backprop_step(lambda _i: torch.zeros(()), {"lora": [torch.nn.Parameter(torch.zeros(2), requires_grad=False)]},
                      1e-3)


# ----------------------------------------------------------------------------- on the tiny LM
@dataclass
class Stack:
    lm: LoraModel
    spiking: SpikingAdapter

    @property
    def components(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"lora": self.lm.trainable_parameters(), "spiking": list(self.spiking.parameters())}


@pytest.fixture(scope="module")
def base_task() -> BaseTask:
    """The tiny LM's base facts (it learned them in pre-training; 79 % cloze EM)."""
    cfg = TinyLMConfig()
    corpus = lm_corpus(cfg.seed, n_people=cfg.n_people, repeats=cfg.fact_repeats, n_sentences=cfg.n_sentences,
                       n_episodes=cfg.n_episodes)
    return BaseTask(tuple(f.prompt for f in corpus.facts), tuple(f.value for f in corpus.facts))


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A fresh LoRA model (its own copy of the tiny LM) with a spiking adapter on every layer."""
    torch.manual_seed(0)
    lm = build_lora("tiny", quantization="none")
    spiking = SpikingAdapter(lm.model, rank=8)
    yield Stack(lm, spiking)
    spiking.remove()


def _garbage(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join("".join(rng.choice("qxzjkvw") for _ in range(rng.randint(2, 6))) for _ in range(12))
            for _ in range(n)]


def test_drift_guard_rolls_back_a_consolidation_that_harms_the_base_task(stack: Stack, base_task: BaseTask) -> None:
    tok, model, components = stack.lm.tokenizer, stack.lm.model, stack.components
    train, val = lm_batch(tok, _garbage(6, 1), 48), lm_batch(tok, _garbage(2, 2), 48)
    guard = DriftGuard(model, tok, base_task, [*components["lora"], *components["spiking"]])
    before = guard.snapshot(0)
    policy = HygienePolicy(max_steps=20, eval_every=2, max_loss_drift=0.05, max_em_drop=0.01)
    harmful = backprop_step(lambda _i: model(**train).loss, components, lr=5e-2)  # high LR on garbage rows

    result = train_with_hygiene(harmful, lambda: batch_loss(model, val), guard, policy)

    assert result.stop_reason == "drift" and result.rolled_back and result.restored_step == 0
    harmed = result.history["evals"][-1]
    assert harmed["base_loss"] > 1.05 * result.baseline.loss and harmed["val_loss"] < result.history["evals"][0][
        "val_loss"]  # it was learning the garbage while forgetting the base task
    assert result.max_loss_drift > 0.05 and result.steps_run < policy.max_steps
    after = guard.measure()
    assert after.loss == pytest.approx(result.baseline.loss, rel=1e-6, abs=1e-6)
    assert after.em == result.baseline.em and result.final == after
    for param, saved in zip(guard.params, before.tensors, strict=True):
        assert torch.equal(param, saved)
    # gradient norms were logged for both components of the composed stack at every step
    assert set(result.grad_norm_history) == {"lora", "spiking"}
    assert all(len(v) == result.steps_run and min(v) > 0 for v in result.grad_norm_history.values())
    json.dumps(result.history)

    # on_drift="stop": training stops at the same harm but the harmed weights are kept
    kept = train_with_hygiene(backprop_step(lambda _i: model(**train).loss, components, lr=5e-2),
                              lambda: batch_loss(model, val), guard, HygienePolicy(
                                  max_steps=20, eval_every=2, on_drift="stop"))
    assert kept.stop_reason == "drift" and not kept.rolled_back and kept.restored_step is None
    assert kept.final.loss > 1.05 * kept.baseline.loss


def test_early_stop_restores_the_best_validation_snapshot(stack: Stack, base_task: BaseTask,
                                                          heldout_texts: list[str]) -> None:
    tok, model = stack.lm.tokenizer, stack.lm.model
    components = {"lora": stack.lm.trainable_parameters()}
    corpus_val = list(lm_corpus(TinyLMConfig().seed).heldout_sentences[8:24])
    train, val = lm_batch(tok, heldout_texts[:4], 64), lm_batch(tok, corpus_val, 64)  # overfits 4 sentences
    guard = DriftGuard(model, tok, base_task, components["lora"])
    policy = HygienePolicy(max_steps=40, eval_every=2, patience=2, plateau_window=100, max_loss_drift=math.inf,
                           max_em_drop=math.inf)

    result = train_with_hygiene(backprop_step(lambda _i: model(**train).loss, components, lr=3e-3),
                                lambda: batch_loss(model, val), guard, policy)

    assert result.stop_reason == "early_stop" and not result.rolled_back
    assert result.steps_run == result.best_step + policy.patience * policy.eval_every
    assert result.restored_step == result.best_step
    assert batch_loss(model, val) == pytest.approx(result.best_val_loss, rel=1e-6)
    best_eval = next(e for e in result.history["evals"] if e["step"] == result.best_step)
    assert result.final.loss == pytest.approx(best_eval["base_loss"], rel=1e-6)
    assert len(result.grad_norm_history["lora"]) == result.steps_run
