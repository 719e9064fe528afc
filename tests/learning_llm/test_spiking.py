"""Spiking bottleneck adapter on the tiny LM: identity at init, spike rates, surrogate-gradient training."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.spiking import SpikingAdapter, SpikingBottleneck
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
