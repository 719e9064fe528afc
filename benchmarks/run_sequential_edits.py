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

Prints a Markdown table and writes the JSON report (atomically) if ``--json`` is given; the same
run, without the machine facts, is ``t4dm eval --scenario B``. Targets of issue 6 (100 facts):
reliability >= 0.90, generalization >= 0.80, locality >= 0.95.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import machine_info

from t4dm_core.learning.llm.evaluation.editing import SYSTEMS, EditingConfig, run_editing
from t4dm_core.learning.llm.evaluation.embedders import EMBEDDERS
from t4dm_core.learning.llm.evaluation.report import report_markdown, write_report


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
    print(report_markdown(report), end="")


if __name__ == "__main__":
    main()
