"""Parameter share and per-component gradient norms on a LoRA + spiking stack over the tiny LM."""

from __future__ import annotations

import pytest
import torch

from t4dm_core.learning.llm.diagnostics import grad_norms, parameter_share
from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.lora import build_lora
from t4dm_core.learning.llm.spiking import SpikingAdapter
from t4dm_core.learning.llm.training import lm_batch


def test_share_and_grad_norms_of_a_lora_plus_spiking_stack(heldout_texts: list[str]) -> None:
    torch.manual_seed(0)
    lm = build_lora("tiny", quantization="none")
    spiking = SpikingAdapter(lm.model, rank=8)
    lora_params, spiking_params = lm.trainable_parameters(), list(spiking.parameters())
    share = parameter_share([*lora_params, *spiking_params, *lora_params], lm.base.parameter_count)
    assert share.adapter == sum(p.numel() for p in lora_params) + sum(p.numel() for p in spiking_params)
    assert share.share == share.adapter / lm.base.parameter_count and share.share < 0.05

    components = {"lora": lora_params, "spiking": spiking_params, "frozen": list(lm.base.model.lm_head.parameters())}
    assert grad_norms(components) == {"lora": 0.0, "spiking": 0.0, "frozen": 0.0}
    lm.model(**lm_batch(lm.tokenizer, heldout_texts, 64)).loss.backward()
    norms = grad_norms(components)
    assert norms["lora"] > 0 and norms["spiking"] > 0 and norms["frozen"] == 0.0
    expected = torch.cat([p.grad.flatten() for p in lora_params if p.grad is not None]).norm()
    assert norms["lora"] == pytest.approx(float(expected))
    spiking.remove()


def test_share_needs_a_positive_base() -> None:
    with pytest.raises(AdapterError, match="base_parameters"):
        parameter_share([], 0)
