"""Measurements behind the issue-6 foundation report (not a test; timings never go into tests).

Run from the repository root::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run_llm_foundation.py [--smollm2] [--json OUT]

Prints one JSON document: the tiny LM's build record, the NF4 probe, LoRA vs QLoRA loss
curves and times on the same batch, the episodic adapter's exactness and training curve,
the spiking adapter's spike rates / loss curve / parameter share, and the three-factor
rule against its shuffled-modulator ablation and backprop on the regression task of
``three_factor_task.py``. ``--smollm2`` adds SmolLM2-135M load times (fp32 GGUF and NF4).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seeds.lm_corpus import lm_corpus
from t4dm_core import Memory
from t4dm_core.learning.llm.diagnostics import parameter_share
from t4dm_core.learning.llm.episodic import EpisodicAdapter
from t4dm_core.learning.llm.lora import build_lora, train_lora
from t4dm_core.learning.llm.models import load_base_model
from t4dm_core.learning.llm.packer import MemoryPacker, question_prompt
from t4dm_core.learning.llm.quantization import probe_nf4
from t4dm_core.learning.llm.spiking import SpikingAdapter
from t4dm_core.learning.llm.tiny_lm import PROVENANCE_FILE
from t4dm_core.learning.llm.training import answer_batch, lm_batch, train_steps
from tests.learning_llm.three_factor_task import backprop_run, three_factor_run


def rounded(values: list[float], every: int = 1) -> list[float]:
    return [round(v, 4) for v in values[::every]]


def tiny_record() -> dict[str, Any]:
    started = time.perf_counter()
    tiny = load_base_model("tiny")
    record = json.loads((Path(tiny.source) / PROVENANCE_FILE).read_text())
    record["losses"] = rounded(record["losses"], 25)
    record["load_seconds_cached"] = round(time.perf_counter() - started, 2)
    return record


def lora_record(texts: list[str], steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    warm = build_lora("tiny", quantization="none")  # first-call costs (imports, kernels) out of the timings
    train_lora(warm, lm_batch(warm.tokenizer, texts, 64), steps=2)
    for request in ("none", "auto"):
        torch.manual_seed(0)
        lm = build_lora("tiny", quantization=request)  # type: ignore[arg-type]
        result = train_lora(lm, lm_batch(lm.tokenizer, texts, 64), steps=steps, lr=1e-2)
        out[request] = {"ran": result.quantization, "probe": result.probe_detail, "seconds": round(result.seconds, 2),
                        "losses": rounded(result.losses, 5), "trainable": result.trainable_parameters,
                        "share": round(result.trainable_parameters / result.base_parameters, 4)}
    return out


def episodic_record(steps: int) -> dict[str, Any]:
    tiny = load_base_model("tiny")
    torch.manual_seed(0)
    adapter = EpisodicAdapter(tiny.model)
    episodes = lm_corpus(0).heldout_episodes[:16]
    packer = MemoryPacker(tiny.tokenizer, 96)
    memory = adapter.encode([packer.pack([Memory(t, id=str(i)) for i, t in enumerate(e.memories)]) for e in episodes])
    rows = answer_batch(tiny.tokenizer, [question_prompt(e.question) for e in episodes], [e.answer for e in episodes])
    with torch.no_grad():
        exact = torch.equal(adapter.run(memory, **rows).logits, tiny.model(**rows).logits)
    losses = train_steps(lambda _s: adapter.run(memory, **rows).loss, list(adapter.parameters()), steps, 1e-2)
    return {"layer_index": adapter.layer_index, "exact_at_init": exact, "losses": rounded(losses, 5),
            "share": round(parameter_share(adapter.parameters(), tiny.parameter_count).share, 4)}


def spiking_record(texts: list[str], steps: int) -> dict[str, Any]:
    tiny = load_base_model("tiny")
    batch = lm_batch(tiny.tokenizer, texts, 64)
    torch.manual_seed(0)
    adapter = SpikingAdapter(tiny.model, rank=8)
    with torch.no_grad():
        tiny.model(**batch)
    init_rate = adapter.spike_rate()
    adapter.reset_stats()
    started = time.perf_counter()
    losses = train_steps(lambda _s: tiny.model(**batch).loss, list(adapter.parameters()), steps, 1e-2)
    return {"layers": adapter.layers, "spike_rate_init": round(init_rate, 4),
            "spike_rate_training": round(adapter.spike_rate(), 4), "losses": rounded(losses, 5),
            "seconds": round(time.perf_counter() - started, 2),
            "share": round(parameter_share(adapter.parameters(), tiny.parameter_count).share, 4)}


def three_factor_record(updates: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in updates:
        rows = []
        for seed in range(3):
            real, shuffled = three_factor_run(seed, n), three_factor_run(seed, n, shuffle=True)
            bp = backprop_run(seed, n)
            rows.append({"seed": seed, "initial": round(real.initial_loss, 4), "real": round(real.final_loss, 4),
                         "real_diverged_at": real.diverged_at,
                         "shuffled": round(shuffled.final_loss, 4) if shuffled.diverged_at is None else None,
                         "shuffled_diverged_at": shuffled.diverged_at, "backprop": round(bp.final_loss, 4),
                         "spike_rate_real": round(real.mean_spike_rate, 4),
                         "spike_rate_backprop": round(bp.mean_spike_rate, 4),
                         "reduction_ratio_real_vs_backprop": round((real.initial_loss - real.final_loss)
                                                                   / (bp.initial_loss - bp.final_loss), 4)})
        out[str(n)] = rows
    return out


def smollm2_record() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for quant in ("none", "nf4"):
        smol = load_base_model("smollm2", quantization=quant)  # type: ignore[arg-type]
        out[quant] = {"load_seconds": round(smol.load_seconds, 2), "parameters": smol.parameter_count}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smollm2", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    texts = list(lm_corpus(0).heldout_sentences[:8])
    report: dict[str, Any] = {"tiny": tiny_record(), "nf4_probe": probe_nf4().__dict__,
                              "lora": lora_record(texts, 30), "episodic": episodic_record(40),
                              "spiking": spiking_record(texts, 30), "three_factor": three_factor_record((200, 1000))}
    if args.smollm2:
        report["smollm2"] = smollm2_record()
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
