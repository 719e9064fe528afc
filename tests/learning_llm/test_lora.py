"""LoRA and QLoRA (bitsandbytes NF4 on CPU) on the tiny LM: the probe, the fallback, loss goes down."""

from __future__ import annotations

import pytest
import torch

from t4dm_core.learning.llm import lora as lora_module
from t4dm_core.learning.llm.errors import AdapterError, QuantizationUnavailableError
from t4dm_core.learning.llm.lora import LoraSpec, build_lora, train_lora
from t4dm_core.learning.llm.quantization import QuantProbe, probe_nf4
from t4dm_core.learning.llm.training import lm_batch

PROBE = probe_nf4()
needs_nf4 = pytest.mark.skipif(not PROBE.available, reason=f"4-bit NF4 probe failed: {PROBE.detail}")
UNAVAILABLE = QuantProbe(False, "simulated: no 4-bit kernels", None)


def test_probe_reports_a_verdict_with_a_reason() -> None:
    assert isinstance(PROBE.available, bool) and PROBE.detail
    assert probe_nf4() is PROBE  # run once per process


def test_plain_lora_trains_only_adapter_weights_and_lowers_loss(heldout_texts: list[str]) -> None:
    torch.manual_seed(0)
    lm = build_lora("tiny", quantization="none")
    assert lm.quantization == "none" and lm.probe is None
    frozen = {n: p.detach().clone() for n, p in lm.model.named_parameters() if not p.requires_grad}
    trainable = [n for n, p in lm.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ("q_proj" in n or "v_proj" in n) for n in trainable)
    result = train_lora(lm, lm_batch(lm.tokenizer, heldout_texts, 64), steps=12, lr=1e-2)
    assert result.quantization == "none" and result.probe_detail.startswith("probe not run")
    assert result.last_loss < 0.8 * result.first_loss, result.losses
    assert 0 < result.trainable_parameters < 0.05 * result.base_parameters
    for n, p in lm.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


@needs_nf4
def test_qlora_nf4_trains_and_records_that_it_ran(heldout_texts: list[str]) -> None:
    import bitsandbytes as bnb

    torch.manual_seed(0)
    lm = build_lora("tiny", LoraSpec(target_modules=("q_proj", "k_proj", "v_proj", "o_proj")), quantization="nf4")
    assert lm.quantization == "nf4" and lm.probe is PROBE
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in lm.model.modules())
    result = train_lora(lm, lm_batch(lm.tokenizer, heldout_texts, 64), steps=8, lr=1e-2)
    assert result.quantization == "nf4" and "NF4" in result.probe_detail
    assert result.last_loss < 0.85 * result.first_loss, result.losses


def test_auto_uses_nf4_when_the_probe_passes_and_falls_back_when_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    auto = build_lora("tiny", quantization="auto")
    assert auto.quantization == ("nf4" if PROBE.available else "none") and auto.probe is PROBE
    monkeypatch.setattr(lora_module, "probe_nf4", lambda: UNAVAILABLE)
    fallback = build_lora("tiny", quantization="auto")
    assert fallback.requested == "auto" and fallback.quantization == "none" and fallback.probe is UNAVAILABLE
    with pytest.raises(QuantizationUnavailableError, match="simulated: no 4-bit kernels"):
        build_lora("tiny", quantization="nf4")


def test_bad_lora_requests_raise_typed_errors() -> None:
    with pytest.raises(AdapterError, match="quantization"):
        build_lora("tiny", quantization="int3")  # type: ignore[arg-type]
    with pytest.raises(AdapterError, match="cannot attach LoRA"):
        build_lora("tiny", LoraSpec(target_modules=("no_such_proj",)), quantization="none")
    with pytest.raises(AdapterError, match="invalid LoRA spec"):
        LoraSpec(r=0)
