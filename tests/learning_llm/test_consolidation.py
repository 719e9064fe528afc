"""Consolidation worker and adapter store on the tiny LM with a real T4DM store (own 8-d vectors)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import t4dm_core
from seeds.lm_corpus import lm_corpus
from t4dm_core.learning.llm.adapter_store import (
    AdapterExistsError,
    AdapterNotFoundError,
    BaseMismatchError,
    CorruptAdapterError,
    list_adapters,
    load_adapter,
    save_adapter,
)
from t4dm_core.learning.llm.consolidation import ConsolidationError, ConsolidationResult, consolidate
from t4dm_core.learning.llm.hygiene import BaseTask, HygienePolicy, batch_loss
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.replay import split_cue_answer
from t4dm_core.learning.llm.spiking import DEFAULT_RATE_BAND
from t4dm_core.learning.llm.tiny_lm import TinyLMConfig
from t4dm_core.learning.llm.training import answer_batch

NAMESPACE = "facts"
GATE = {0: {"gate_score": 0.9}, 1: {"reward": 0.2, "surprise": 0.6}, 2: {}}


@pytest.fixture(scope="module")
def base_task() -> BaseTask:
    cfg = TinyLMConfig()
    facts = lm_corpus(cfg.seed, n_people=cfg.n_people, repeats=cfg.fact_repeats, n_sentences=cfg.n_sentences,
                      n_episodes=cfg.n_episodes).facts[:24]
    return BaseTask(tuple(f.prompt for f in facts), tuple(f.value for f in facts))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, heldout_texts: list[str]) -> Iterator[t4dm_core.Store]:
    """Five held-out sentences as cue → answer facts, plus one fact in another namespace (never trained on)."""
    s = t4dm_core.open(tmp_path_factory.mktemp("store"), dim=8, options=t4dm_core.Options(learn_on_read=False))
    rng = np.random.default_rng(0)
    for i, text in enumerate(heldout_texts[:5]):
        split = split_cue_answer(text)
        assert split is not None
        s.put(t4dm_core.Memory(text=text, id=f"fact-{i}", namespace=NAMESPACE, vector=rng.normal(size=8),
                               metadata={"cue": split[0], "answer": split[1], **GATE.get(i, {})}))
    s.put(t4dm_core.Memory(text=heldout_texts[6], id="elsewhere", namespace="other", vector=rng.normal(size=8)))
    yield s
    s.close()


@pytest.fixture(scope="module")
def lora_run(store: t4dm_core.Store, base_task: BaseTask) -> Iterator[ConsolidationResult]:
    policy = HygienePolicy(max_steps=30, eval_every=10, patience=3, max_loss_drift=math.inf, max_em_drop=math.inf)
    result = consolidate(store, "tiny", base_task=base_task, policy=policy, namespace=NAMESPACE, adapter="lora",
                         quantization="none", lr=1e-2, seed=0)
    yield result
    result.attachment.remove()


def _cue_rows(store: t4dm_core.Store) -> tuple[list[str], list[str]]:
    memories = sorted(store.find(namespace=NAMESPACE), key=lambda m: str(m.id))
    return [m.metadata["cue"] for m in memories], [m.metadata["answer"] for m in memories]


def test_lora_consolidation_lowers_the_loss_of_exactly_the_stored_facts(
        lora_run: ConsolidationResult, store: t4dm_core.Store, tiny: BaseModel) -> None:
    prompts, answers = _cue_rows(store)
    before = batch_loss(tiny.model, answer_batch(tiny.tokenizer, prompts, answers))
    after = batch_loss(lora_run.attachment.model, answer_batch(lora_run.attachment.tokenizer, prompts, answers))
    assert after < 0.7 * before
    assert lora_run.final_loss < lora_run.initial_loss
    assert sorted(m.id for m in lora_run.memories) == [f"fact-{i}" for i in range(5)]
    stored = {str(m.id): m.recorded_at for m in store.find(namespace=NAMESPACE)}
    assert {m.id: m.recorded_at for m in lora_run.memories} == stored
    assert lora_run.quantization == "none" and lora_run.steps == 30 and lora_run.stop_reason == "max_steps"
    assert set(lora_run.drift) == {"max_loss_drift", "max_em_drop"} and not lora_run.rolled_back
    assert all(math.isfinite(v) for v in lora_run.drift.values())
    json.dumps(lora_run.provenance(), allow_nan=False)


def test_save_then_load_by_name_gives_identical_logits_and_the_provenance(
        lora_run: ConsolidationResult, store: t4dm_core.Store, tmp_path: Path) -> None:
    path = save_adapter(tmp_path, "facts-v1", lora_run.attachment, lora_run.provenance())
    assert path == tmp_path / "facts-v1" and (path / "weights.safetensors").is_file()
    [manifest] = list_adapters(tmp_path)
    assert manifest["name"] == "facts-v1" and manifest["kind"] == "lora" and manifest["base"]["spec"] == "tiny"
    assert manifest["quantization"]["ran"] == "none"
    prov = manifest["provenance"]
    assert sorted(m["id"] for m in prov["memories"]) == [f"fact-{i}" for i in range(5)]
    assert prov["store"]["path"] == store.path and prov["store"]["stats"]["next_lsn"] == store.stats()["next_lsn"]
    assert prov["hygiene"]["steps"] == lora_run.steps

    loaded = load_adapter(tmp_path, "facts-v1", "tiny")
    try:
        prompts, answers = _cue_rows(store)
        batch = answer_batch(loaded.tokenizer, prompts, answers)
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            assert torch.equal(loaded.model(**inputs).logits, lora_run.attachment.model(**inputs).logits)
    finally:
        loaded.remove()
    with pytest.raises(AdapterExistsError):
        save_adapter(tmp_path, "facts-v1", lora_run.attachment, {})
    with pytest.raises(AdapterNotFoundError):
        load_adapter(tmp_path, "nope", "tiny")


def test_loading_onto_a_different_base_is_refused(lora_run: ConsolidationResult, tiny: BaseModel,
                                                  tmp_path: Path) -> None:
    save_adapter(tmp_path / "adapters", "a", lora_run.attachment, {})
    other = tmp_path / "other-base"
    tiny.model.save_pretrained(other)
    tiny.tokenizer.save_pretrained(other)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(other / "model.safetensors"))
    key = next(k for k in weights if k.endswith("mlp.up_proj.weight"))
    weights[key] = weights[key] + 1e-3  # same architecture, different weights
    save_file(weights, str(other / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(BaseMismatchError, match="trained on base 'tiny'"):
        load_adapter(tmp_path / "adapters", "a", str(other))


def test_corrupt_manifest_and_weights_raise_a_typed_error(lora_run: ConsolidationResult, tmp_path: Path) -> None:
    path = save_adapter(tmp_path, "a", lora_run.attachment, {})
    weights = (path / "weights.safetensors").read_bytes()
    (path / "weights.safetensors").write_bytes(weights[:-8] + bytes(8))
    with pytest.raises(CorruptAdapterError, match="checksum"):
        load_adapter(tmp_path, "a", "tiny")
    (path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CorruptAdapterError, match="manifest"):
        list_adapters(tmp_path)


def test_three_factor_consolidation_uses_the_write_gate_modulator(store: t4dm_core.Store, base_task: BaseTask,
                                                                  tmp_path: Path) -> None:
    policy = HygienePolicy(max_steps=4, eval_every=2, max_loss_drift=math.inf, max_em_drop=math.inf,
                           restore_best=False)
    result = consolidate(store, "tiny", base_task=base_task, policy=policy, namespace=NAMESPACE, adapter="spiking",
                         learning="three_factor", modulator="gate", spiking_rank=4, seed=1)
    try:
        by_id = {m.id: (m.modulator, m.modulator_source) for m in result.memories}
        assert by_id["fact-0"] == (0.9, "gate_score")
        assert by_id["fact-1"] == (pytest.approx(0.4), "signals")
        assert by_id["fact-2"] == (1.0, "default")
        assert result.steps == 4 and result.learning == "three_factor"
        assert len(result.hygiene.grad_norm_history["spiking"]) == 4
        assert min(result.hygiene.grad_norm_history["spiking"]) > 0  # the rule moved the weights every step
        assert any(float(b.up.weight.detach().abs().sum()) > 0 for b in result.attachment.spiking.blocks)  # type: ignore[union-attr]
        save_adapter(tmp_path, "tf", result.attachment, result.provenance())
        [manifest] = list_adapters(tmp_path)
        assert manifest["kind"] == "spiking" and manifest["provenance"]["modulator"] == "gate"
        assert {m["id"]: m["modulator_source"] for m in manifest["provenance"]["memories"]}["fact-0"] == "gate_score"
    finally:
        result.attachment.remove()


def test_bad_requests_raise_typed_errors(store: t4dm_core.Store, base_task: BaseTask) -> None:
    policy = HygienePolicy(max_steps=1)
    with pytest.raises(ConsolidationError, match="no episodic memory"):
        consolidate(store, "tiny", base_task=base_task, policy=policy, namespace="empty")
    with pytest.raises(ConsolidationError, match="needs a spiking adapter"):
        consolidate(store, "tiny", base_task=base_task, policy=policy, namespace=NAMESPACE, learning="three_factor")


def test_the_drift_guard_rolls_back_a_consolidation_that_harms_the_base_task(store: t4dm_core.Store,
                                                                            base_task: BaseTask) -> None:
    policy = HygienePolicy(max_steps=20, eval_every=2, max_loss_drift=0.01, max_em_drop=math.inf)
    result = consolidate(store, "tiny", base_task=base_task, policy=policy, namespace=NAMESPACE, adapter="both",
                         quantization="none", lr=5e-2, spiking_rank=4, seed=2)
    try:
        assert result.stop_reason == "drift" and result.rolled_back and result.steps < policy.max_steps
        assert result.drift["max_loss_drift"] > 0.01
        assert result.hygiene.final.loss == pytest.approx(result.hygiene.baseline.loss, rel=1e-5)
        assert set(result.hygiene.grad_norm_history) == {"lora", "spiking"}
        assert result.provenance()["hygiene"]["rolled_back"] is True
    finally:
        result.attachment.remove()


def test_the_spike_rate_regulariser_keeps_backprop_consolidation_inside_the_band(store: t4dm_core.Store,
                                                                                base_task: BaseTask) -> None:
    policy = HygienePolicy(max_steps=30, eval_every=30, max_loss_drift=math.inf, max_em_drop=math.inf,
                           restore_best=False)
    rates = {}
    for name, band in (("off", None), ("on", DEFAULT_RATE_BAND)):
        result = consolidate(store, "tiny", base_task=base_task, policy=policy, namespace=NAMESPACE,
                             adapter="spiking", lr=1e-2, seed=0, spike_rate_band=band)
        try:
            assert result.final_loss < 0.5 * result.initial_loss, name  # it still learns the facts
            assert result.spike_rate is not None and result.spike_rate_training is not None
            assert len(result.block_spike_rates) == 5
            assert result.provenance()["spike_rate"]["final"] == result.spike_rate
            rates[name] = (result.spike_rate, result.block_spike_rates)
        finally:
            result.attachment.remove()
    assert rates["off"][0] > DEFAULT_RATE_BAND.high  # unregularised, the adapter fires too often
    assert DEFAULT_RATE_BAND.low <= rates["on"][0] <= DEFAULT_RATE_BAND.high
    assert all(DEFAULT_RATE_BAND.low <= r <= DEFAULT_RATE_BAND.high for r in rates["on"][1]), rates["on"]


def test_shuffled_modulators_are_the_same_values_on_other_memories(store: t4dm_core.Store,
                                                                    base_task: BaseTask) -> None:
    policy = HygienePolicy(max_steps=1, eval_every=1, max_loss_drift=math.inf, max_em_drop=math.inf)
    runs = {}
    for shuffle in (None, 3):
        result = consolidate(store, "tiny", base_task=base_task, policy=policy, namespace=NAMESPACE,
                             adapter="spiking", learning="three_factor", modulator="gate", spiking_rank=4, seed=1,
                             modulator_shuffle_seed=shuffle)
        result.attachment.remove()
        runs[shuffle] = {m.id: (m.modulator, m.modulator_source) for m in result.memories}
    true, shuffled = runs[None], runs[3]
    assert sorted(v for v, _ in true.values()) == sorted(v for v, _ in shuffled.values())
    assert any(true[i][0] != shuffled[i][0] for i in true)
    assert all(source.endswith("+shuffled") for _, source in shuffled.values())
    with pytest.raises(ConsolidationError, match="spike_rate_band"):
        consolidate(store, "tiny", base_task=base_task, policy=policy, namespace=NAMESPACE, adapter="spiking",
                    spike_rate_band=(0.05, 0.2))  # type: ignore[arg-type]
