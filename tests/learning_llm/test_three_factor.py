"""Three-factor rule Δw = η·M·e: the trace equations, input checks, and that the modulator matters."""

from __future__ import annotations

import pytest
import torch

from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.spiking import SpikingBottleneck
from t4dm_core.learning.llm.three_factor import ThreeFactorRule, eligibility, presynaptic_trace
from tests.learning_llm.three_factor_task import three_factor_run


def test_presynaptic_trace_is_a_leaky_average() -> None:
    pre = torch.tensor([[[1.0]], [[0.0]], [[1.0]]])  # T=3, N=1, one input
    assert presynaptic_trace(pre, 0.0).flatten().tolist() == [1.0, 0.0, 1.0]
    assert presynaptic_trace(pre, 0.5).flatten().tolist() == [0.5, 0.25, 0.625]


def test_eligibility_matches_the_documented_recurrence_by_hand() -> None:
    pre = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])  # T=2, N=1, 2 pre units
    post = torch.tensor([[[3.0]], [[-1.0]]])  # 1 post unit
    # p(1) = 0.5*[1, 0] = [0.5, 0]; p(2) = 0.5*p(1) + 0.5*[0, 2] = [0.25, 1]
    # e(1) = 3*[0.5, 0] = [1.5, 0]; e(2) = 0.8*e(1) + (-1)*[0.25, 1] = [0.95, -1]
    e = eligibility(pre, post, pre_decay=0.5, trace_decay=0.8)
    assert e.shape == (1, 1, 2)
    assert torch.allclose(e[0, 0], torch.tensor([0.95, -1.0]))


def test_update_is_lr_times_mean_of_modulated_eligibility() -> None:
    torch.manual_seed(0)
    block = SpikingBottleneck(8, 4)
    run = block.explore(torch.randn(5, 8), sigma_hidden=0.2, sigma_out=0.2, generator=torch.Generator().manual_seed(1))
    rule = ThreeFactorRule(lr=0.1, pre_decay=0.3, trace_decay=0.9, max_update_norm=None)  # the raw formula
    m = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0])
    deltas = rule.updates(run, m)
    e_up = eligibility(run.up_pre, run.up_post, pre_decay=0.3, trace_decay=0.9)
    assert torch.allclose(deltas["up"], 0.1 * (m[:, None, None] * e_up).mean(dim=0), atol=1e-6)
    assert deltas["down"].shape == block.down.weight.shape and deltas["up"].shape == block.up.weight.shape
    before = block.up.weight.clone()
    rule.apply(block, run, torch.zeros(5))
    assert torch.equal(block.up.weight, before)  # no modulator, no learning


def test_bad_inputs_raise_typed_errors() -> None:
    block = SpikingBottleneck(8, 4)
    run = block.explore(torch.randn(3, 8), sigma_hidden=0.1, sigma_out=0.1)
    rule = ThreeFactorRule()
    with pytest.raises(AdapterError, match="one value per trial"):
        rule.updates(run, torch.ones(4))
    with pytest.raises(AdapterError, match="NaN"):
        rule.updates(run, torch.tensor([1.0, float("nan"), 0.0]))
    with pytest.raises(AdapterError, match="same T and N"):
        eligibility(torch.zeros(2, 3, 4), torch.zeros(3, 3, 1))
    with pytest.raises(AdapterError, match="invalid three-factor rule"):
        ThreeFactorRule(lr=0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_real_modulator_learns_and_shuffled_modulator_does_not(seed: int) -> None:
    real = three_factor_run(seed, 200)
    shuffled = three_factor_run(seed, 200, shuffle=True)
    assert real.initial_loss == shuffled.initial_loss
    assert real.final_loss < 0.5 * real.initial_loss, real.losses
    assert shuffled.final_loss > 2.0 * real.final_loss, (real.losses, shuffled.losses)
    assert 0.01 < real.mean_spike_rate < 0.5


def test_update_norm_clip_bounds_every_step_and_keeps_its_direction() -> None:
    torch.manual_seed(0)
    block = SpikingBottleneck(8, 4)
    run = block.explore(torch.randn(6, 8), sigma_hidden=0.2, sigma_out=0.2, generator=torch.Generator().manual_seed(2))
    huge = torch.full((6,), 1e4)
    raw = ThreeFactorRule(lr=1.0, max_update_norm=None).updates(run, huge)
    clipped = ThreeFactorRule(lr=1.0, max_update_norm=0.5).updates(run, huge)
    for name in ("down", "up"):
        assert float(raw[name].norm()) > 10.0  # unbounded, this step would be enormous
        assert float(clipped[name].norm()) == pytest.approx(0.5, rel=1e-5)
        assert torch.allclose(clipped[name], raw[name] * (0.5 / raw[name].norm()), atol=1e-6)
    small = ThreeFactorRule(lr=1e-6, max_update_norm=0.5).updates(run, torch.ones(6))
    unclipped = ThreeFactorRule(lr=1e-6, max_update_norm=None).updates(run, torch.ones(6))
    assert torch.equal(small["up"], unclipped["up"])  # below the bound nothing changes


def test_weight_norm_bound_holds_after_many_large_updates() -> None:
    torch.manual_seed(0)
    block = SpikingBottleneck(8, 4)
    rule = ThreeFactorRule(lr=1.0, max_update_norm=1.0, max_weight_norm=2.0)
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        run = block.explore(torch.randn(6, 8, generator=gen), sigma_hidden=0.2, sigma_out=0.2, generator=gen)
        rule.apply(block, run, torch.full((6,), 100.0))
        assert float(block.down.weight.norm()) <= 2.0 + 1e-5 and float(block.up.weight.norm()) <= 2.0 + 1e-5
    assert float(block.up.weight.norm()) == pytest.approx(2.0, rel=1e-4)  # it did reach the bound
    for bad in ({"max_update_norm": 0.0}, {"max_weight_norm": -1.0}, {"max_update_norm": float("inf")}):
        with pytest.raises(AdapterError, match="invalid three-factor rule"):
            ThreeFactorRule(**bad)
