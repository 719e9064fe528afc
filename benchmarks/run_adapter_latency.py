"""Inference latency with the adapter stack vs the frozen base model, in one run (issue 6 target: ≤ 1.2×).

Configurations (each on its own copy of the base model, all loaded before timing):

* ``base`` — the frozen model, no adapter;
* ``lora`` — peft LoRA (r 8, ``q_proj``/``v_proj``, plain fp32), unmerged: the adapter
  matmuls run on every forward;
* ``lora_merged`` — the same LoRA after ``merge_and_unload()`` (how a consolidated adapter is
  served when it is not swapped per request);
* ``spiking_all`` / ``spiking_third`` — the spiking bottleneck (rank 8, 8 Leaky steps) on
  every decoder layer / on every third layer;
* ``episodic`` — the HEI-NW cross-attention block at 60 % depth reading the memory tokens of
  the question's packed memory (the memory is encoded once per question, inside the timing);
* ``stack`` — LoRA (unmerged) + spiking on every third layer + episodic, together.

Workload: ``--prompts`` scenario-A questions with their evidence memory in the chat prompt
(the B1 prompt), greedy decoding of ``--new-tokens`` tokens with ``min_new_tokens`` equal to
it (every configuration produces exactly the same number of tokens). Repeats are interleaved
(``rep → prompt → configuration``) so load changes on the machine hit every configuration
alike. Reported: median and p90 per-call milliseconds, and the ratio of medians to ``base``
(lower is better; 1.0 = no overhead). Adapter weights are freshly initialised; latency does
not depend on their values.

Run from the repository root:
``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run_adapter_latency.py --model smollm2 --json OUT``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from t4dm_core import Memory
from t4dm_core.learning.llm.diagnostics import parameter_share
from t4dm_core.learning.llm.episodic import EpisodicAdapter
from t4dm_core.learning.llm.evaluation.prompting import build_prompt
from t4dm_core.learning.llm.evaluation.scenario_a import scenario_a
from t4dm_core.learning.llm.lora import build_lora
from t4dm_core.learning.llm.models import BaseModel, load_base_model
from t4dm_core.learning.llm.packer import MemoryPacker
from t4dm_core.learning.llm.spiking import SpikingAdapter

Runner = Callable[[str, str], None]


def _generate(model: Any, tokenizer: Any, prompt: str, new_tokens: int) -> None:
    ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)], dtype=torch.long)
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)


def _plain(model: Any, tokenizer: Any, new_tokens: int) -> Runner:
    return lambda prompt, _memory: _generate(model, tokenizer, prompt, new_tokens)


def _with_episodic(model: Any, tokenizer: Any, adapter: EpisodicAdapter, new_tokens: int) -> Runner:
    packer = MemoryPacker(tokenizer, 64)

    def run(prompt: str, memory: str) -> None:
        states = adapter.encode([packer.pack([Memory(memory, id="m")])])
        with adapter.memory(states):
            _generate(model, tokenizer, prompt, new_tokens)
    return run


def _every_third(model: Any) -> list[int]:
    return list(range(0, int(model.config.num_hidden_layers), 3))


def build_runners(spec: str, new_tokens: int) -> tuple[dict[str, Runner], dict[str, float], BaseModel]:
    """Every configuration's runner and its adapter parameter share of the base model."""
    torch.manual_seed(0)
    base = load_base_model(spec)
    tok = base.tokenizer
    count = base.parameter_count
    runners: dict[str, Runner] = {"base": _plain(base.model, tok, new_tokens)}
    shares: dict[str, float] = {"base": 0.0}

    lora = build_lora(spec, quantization="none")
    runners["lora"] = _plain(lora.model, tok, new_tokens)
    shares["lora"] = lora.num_trainable() / count
    merged = build_lora(spec, quantization="none")
    shares["lora_merged"] = 0.0
    runners["lora_merged"] = _plain(merged.model.merge_and_unload(), tok, new_tokens)

    spiking_model = load_base_model(spec).model
    spiking = SpikingAdapter(spiking_model, rank=8)
    runners["spiking_all"] = _plain(spiking_model, tok, new_tokens)
    shares["spiking_all"] = parameter_share(spiking.parameters(), count).share
    third_model = load_base_model(spec).model
    third = SpikingAdapter(third_model, layers=_every_third(third_model), rank=8)
    runners["spiking_third"] = _plain(third_model, tok, new_tokens)
    shares["spiking_third"] = parameter_share(third.parameters(), count).share

    episodic_model = load_base_model(spec).model
    episodic = EpisodicAdapter(episodic_model)
    runners["episodic"] = _with_episodic(episodic_model, tok, episodic, new_tokens)
    shares["episodic"] = parameter_share(episodic.parameters(), count).share

    stack = build_lora(spec, quantization="none")
    stack_spiking = SpikingAdapter(stack.model, layers=_every_third(stack.model), rank=8)
    stack_episodic = EpisodicAdapter(stack.model)
    runners["stack"] = _with_episodic(stack.model, tok, stack_episodic, new_tokens)
    shares["stack"] = parameter_share([*stack.trainable_parameters(), *stack_spiking.parameters(),
                                       *stack_episodic.parameters()], count).share
    return runners, shares, base


def measure(runners: dict[str, Runner], prompts: list[tuple[str, str]], repeats: int) -> dict[str, list[float]]:
    """Per-call milliseconds of every runner, interleaved; one untimed warm-up call each first."""
    for run in runners.values():
        run(*prompts[0])
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _rep in range(repeats):
        for prompt, memory in prompts:
            for name, run in runners.items():
                started = time.perf_counter()
                run(prompt, memory)
                times[name].append((time.perf_counter() - started) * 1000.0)
    return times


def summarize(times: dict[str, list[float]], shares: dict[str, float]) -> dict[str, dict[str, float]]:
    """Median / p90 ms, ratio of medians to ``base`` and the adapter parameter share, per configuration."""
    base_median = statistics.median(times["base"])
    out: dict[str, dict[str, float]] = {}
    for name, values in times.items():
        ordered = sorted(values)
        median = statistics.median(ordered)
        out[name] = {"median_ms": round(median, 2), "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
                     "ratio_to_base": round(median / base_median, 3), "parameter_share": round(shares[name], 5),
                     "calls": len(values)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="'tiny', 'smollm2' or a local model path")
    parser.add_argument("--prompts", type=int, default=8, help="distinct questions (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the questions (default 3)")
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens generated per call (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runners, shares, base = build_runners(args.model, args.new_tokens)
    data = scenario_a(args.prompts, seed=0)
    texts = {mid: text for mid, text, _meta in data.memories}
    prompts = [(build_prompt(base.tokenizer, q.question, MemoryPacker(base.tokenizer, 64).pack(
        [Memory(texts[q.evidence_id], id=q.evidence_id)]).text, "where"), texts[q.evidence_id])
        for q in data.questions]
    results = summarize(measure(runners, prompts, args.repeats), shares)
    report = {"model": args.model, "model_source": base.source, "parameters": base.parameter_count,
              "prompts": args.prompts, "repeats": args.repeats, "new_tokens": args.new_tokens,
              "threads": args.threads, "date": time.strftime("%Y-%m-%d"), "configurations": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    print("| configuration | median ms | p90 ms | × base | adapter params / base |")
    print("|---|---|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['median_ms']} | {row['p90_ms']} | {row['ratio_to_base']} | "
              f"{100 * row['parameter_share']:.2f}% |")


if __name__ == "__main__":
    main()
