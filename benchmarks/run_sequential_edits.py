"""Scenario B benchmark: N sequential fact edits (with hot patches) — T4DM memory vs a naive LoRA fine-tune.

Both systems get the same edit sequence of :func:`t4dm_core.learning.llm.evaluation.scenario_b.scenario_b`
and are asked the same questions after the last edit (contract and metric definitions in
:mod:`t4dm_core.learning.llm.evaluation.editing`): reliability (edit question, latest value),
generalization (paraphrased question) and locality (other fictional subjects + fixed
real-world questions answered as before any edit), each with a bootstrap 95% CI; B0 / B1 EM
on the reliability questions; latency per answer; write or training seconds.

Run from the repository root::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run_sequential_edits.py --model smollm2 --n 100 --seed 0 \\
        --json OUT.json

Prints a Markdown table and writes the JSON report (atomically) if ``--json`` is given.
Targets of issue 6 (100 facts): reliability >= 0.90, generalization >= 0.80, locality >= 0.95.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import machine_info

from t4dm_core.learning.llm.evaluation.editing import SYSTEMS, EditingConfig, run_editing
from t4dm_core.learning.llm.evaluation.embedders import EMBEDDERS
from t4dm_core.learning.llm.evaluation.report import write_report

TARGETS = {"reliability": 0.90, "generalization": 0.80, "locality": 0.95}


def _metric(summary: dict[str, Any]) -> str:
    lo, hi = summary["ci95"]
    return f"{summary['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def render(report: dict[str, Any]) -> str:
    """The Markdown table of a :func:`run_editing` report."""
    lines = [f"# Scenario B: {report['n']} sequential facts ({report['edits']} edits, {report['patched']} patches)",
             "", f"model `{report['model']}`, embedder `{report['embedder']}`, seed {report['seed']}, k {report['k']}, "
                 f"naive LoRA: {report['steps_per_edit']} steps/edit, lr {report['lr']}, rank {report['lora_rank']}",
             "", "| system | reliability | generalization | locality (other / general) | patched: right / stale "
                 "| latency ms (p50 / p95) | write or train s |", "|---|---|---|---|---|---|---|"]
    for name, s in report["systems"].items():
        patched = s["patched"]
        right = "-" if patched["reliability"] is None else f"{patched['reliability']:.2f} / {patched['stale']:.2f}"
        seconds = s.get("write_seconds", s.get("train_seconds"))
        lines.append(f"| {name} | {_metric(s['reliability'])} | {_metric(s['generalization'])} | "
                     f"{_metric(s['locality'])} ({s['locality_other_subjects']['mean']:.2f} / "
                     f"{s['locality_general']['mean']:.2f}) | {right} | {s['latency_ms']['p50']:.0f} / "
                     f"{s['latency_ms']['p95']:.0f} | {seconds:.1f} |")
    lines += ["", "| mode (reliability questions) | EM | F1 |", "|---|---|---|"]
    lines += [f"| {mode} | {_metric(m['em'])} | {_metric(m['f1'])} |" for mode, m in report["modes"].items()]
    lines += ["", "targets: " + ", ".join(f"{k} >= {v}" for k, v in TARGETS.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny, smollm2 or a local model path")
    parser.add_argument("--n", type=int, default=100, help="number of facts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the JSON report here")
    parser.add_argument("--embedder", choices=EMBEDDERS, default="minilm")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS))
    parser.add_argument("--k", type=int, default=3, help="memories retrieved per question (T4DM memory)")
    parser.add_argument("--patch-fraction", type=float, default=0.2)
    parser.add_argument("--steps-per-edit", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = EditingConfig(model=args.model, n=args.n, seed=args.seed, embedder=args.embedder, k=args.k,
                           systems=tuple(s.strip() for s in args.systems.split(",")),
                           patch_fraction=args.patch_fraction, steps_per_edit=args.steps_per_edit, lr=args.lr,
                           n_boot=args.n_boot)
    started = time.perf_counter()
    report = run_editing(config)
    report["wall_seconds"] = time.perf_counter() - started
    report["machine"] = {**machine_info(), "torch_threads": args.threads}
    report["command"] = " ".join(sys.argv)
    if args.json is not None:
        write_report(report, args.json)
    print(render(report))


if __name__ == "__main__":
    main()
