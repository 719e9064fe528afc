"""Spiking bottleneck adapter on the tiny LM: identity at init, spike rates, the rate regulariser, training."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from t4dm_core.learning.llm.diagnostics import rank_for_budget
from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.spiking import (
    DEFAULT_RATE_BAND,
    SpikeRateBand,
    SpikingAdapter,
    SpikingBottleneck,
    block_parameter_count,
)
from t4dm_core.learning.llm.training import lm_batch, train_steps


@pytest.fixture
def adapter(tiny: BaseModel) -> Iterator[SpikingAdapter]:
    torch.manual_seed(0)
    ad = SpikingAdapter(tiny.model, rank=8)
    yield ad
    ad.remove()


@torch.no_grad()
def test_untrained_adapter_is_exactly_the_identity(tiny: BaseModel, heldout_texts: list[str]) -> None:
    batch = lm_batch(tiny.tokenizer, heldout_texts, 64)
    reference = tiny.model(**batch).logits
    torch.manual_seed(0)
    ad = SpikingAdapter(tiny.model, rank=8)
    try:
        assert ad.layers == [0, 1, 2, 3, 4]
        assert torch.equal(tiny.model(**batch).logits, reference)
        assert ad.spike_rate() > 0  # the neurons did run
    finally:
        ad.remove()


@torch.no_grad()
def test_spike_rate_is_measured_and_reset(adapter: SpikingAdapter, tiny: BaseModel, heldout_texts: list[str]) -> None:
    assert adapter.spike_rate() == 0.0
    tiny.model(**lm_batch(tiny.tokenizer, heldout_texts, 64))
    rate = adapter.spike_rate()
    assert 0.01 < rate < 0.5
    spikes = sum(b.spikes_seen for b in adapter.blocks)
    assert spikes == int(spikes) and rate == spikes / sum(b.neuron_steps_seen for b in adapter.blocks)
    adapter.reset_stats()
    assert adapter.spike_rate() == 0.0


def test_backprop_through_surrogate_lowers_loss_and_keeps_base_frozen(adapter: SpikingAdapter, tiny: BaseModel,
                                                                      heldout_texts: list[str]) -> None:
    batch = lm_batch(tiny.tokenizer, heldout_texts, 64)
    before = {n: p.detach().clone() for n, p in tiny.model.named_parameters()}
    losses = train_steps(lambda _step: tiny.model(**batch).loss, list(adapter.parameters()), 15, 1e-2)
    assert losses[-1] < 0.75 * losses[0], losses
    for block in adapter.blocks:  # the surrogate gradient reached the input side of the spikes too
        assert block.down.weight.grad is not None and float(block.down.weight.grad.abs().sum()) > 0
        assert float(block.up.weight.abs().sum()) > 0
    for n, p in tiny.model.named_parameters():
        assert p.grad is None and torch.equal(p, before[n]), n


def test_bad_spiking_options_raise(tiny: BaseModel) -> None:
    with pytest.raises(AdapterError, match="layers"):
        SpikingAdapter(tiny.model, layers=[7])
    with pytest.raises(AdapterError, match="layers"):
        SpikingAdapter(tiny.model, layers=[1, 1])
    with pytest.raises(AdapterError, match="invalid spiking bottleneck"):
        SpikingBottleneck(16, rank=0)
    with pytest.raises(AdapterError, match="trials as rows"):
        SpikingBottleneck(16).explore(torch.zeros(2, 3, 16), sigma_hidden=0.1, sigma_out=0.1)


def test_rate_band_penalty_is_zero_inside_and_quadratic_outside() -> None:
    torch.manual_seed(0)
    blocks = [SpikingBottleneck(8, 4), SpikingBottleneck(8, 4)]
    band = SpikeRateBand(low=0.05, high=0.20, weight=2.0)
    with pytest.raises(AdapterError, match="forward pass"):
        band.penalty(blocks)
    blocks[0].last_rate, blocks[1].last_rate = torch.tensor(0.10), torch.tensor(0.30)
    assert float(band.penalty(blocks)) == pytest.approx(2.0 * 0.10**2)
    blocks[1].last_rate = torch.tensor(0.01)
    assert float(band.penalty(blocks)) == pytest.approx(2.0 * 0.04**2)
    for bad in ({"low": 0.3, "high": 0.2}, {"weight": 0.0}, {"high": 1.5}):
        with pytest.raises(AdapterError, match="invalid spike-rate band"):
            SpikeRateBand(**bad)


def test_rate_penalty_gradient_moves_the_firing_rate_into_the_band(tiny: BaseModel, heldout_texts: list[str]) -> None:
    torch.manual_seed(0)
    ad = SpikingAdapter(tiny.model, rank=8, init_bias=0.5)  # a strong positive drive: far above the band
    try:
        batch = lm_batch(tiny.tokenizer, heldout_texts, 64)
        with torch.no_grad():
            tiny.model(**batch)
        assert min(ad.block_rates()) > DEFAULT_RATE_BAND.high

        def penalty_only(_step: int) -> torch.Tensor:
            tiny.model(**batch)
            return DEFAULT_RATE_BAND.penalty(ad.blocks)

        # 80 steps: by 40 a block pushed below the band can still be on its way back (0.0498 seen)
        train_steps(penalty_only, list(ad.parameters()), 80, 1e-2)
        with torch.no_grad():
            tiny.model(**batch)
        assert all(DEFAULT_RATE_BAND.low <= r <= DEFAULT_RATE_BAND.high for r in ad.block_rates()), ad.block_rates()
    finally:
        ad.remove()


def test_rank_for_budget_matches_the_real_parameter_count(tiny: BaseModel) -> None:
    hidden, layers = int(tiny.model.config.hidden_size), int(tiny.model.config.num_hidden_layers)
    rank = rank_for_budget(8960, lambda r: layers * block_parameter_count(hidden, r))
    counts = {r: layers * block_parameter_count(hidden, r) for r in (rank - 1, rank, rank + 1)}
    assert abs(counts[rank] - 8960) <= min(abs(counts[rank - 1] - 8960), abs(counts[rank + 1] - 8960))
    ad = SpikingAdapter(tiny.model, rank=rank)
    try:
        assert sum(p.numel() for p in ad.parameters()) == counts[rank]
    finally:
        ad.remove()
    assert rank_for_budget(1, lambda r: 100 * r) == 1
    with pytest.raises(AdapterError, match="budget"):
        rank_for_budget(0, lambda r: r)


@pytest.mark.parametrize("shape", [(3, 11, 8), (1, 1, 8), (40, 8)])
def test_inference_recurrence_gives_the_snntorch_spikes_bit_for_bit(shape: tuple[int, ...]) -> None:
    torch.manual_seed(1)
    block = SpikingBottleneck(16, 8, init_bias=0.3)
    current = torch.randn(*shape) * 2
    noise = torch.randn(block.num_steps, *shape) * 0.5
    for extra in (None, noise):
        reference = block._run_autograd(current, extra)  # the snntorch module
        with torch.no_grad():
            assert torch.equal(block._run_inference(current, extra), reference.detach())
            assert torch.equal(block._run(current, extra), reference.detach())  # no grad: the written-out path
    assert 0.0 < float(reference.mean()) < 1.0  # some neurons spike, some do not: the comparison is not vacuous
