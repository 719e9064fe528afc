"""``t4dm eval``: run the evaluation harness (:mod:`.evaluation`) and write its JSON (+ Markdown) report.

Scenarios: A (slot stories with hard negatives), C (preferences / settings changing over time,
versioned memories vs an append-only store), D (scenario A's questions in stores of growing size,
``--store-sizes``), E (a long chat transcript: full context vs retrieval, tokens and latency).

Exit codes: 0 = the run finished and the report was written; 1 = a report file could not be
written (the JSON is written before the Markdown, each atomically); 2 = bad arguments, an unknown
or not-yet-available mode (B2/B3 in a scenario other than A, or without what they need), store
sizes that do not fit, or a model that cannot be loaded —
the message on stderr names the problem and no report file is written. The Markdown table is also printed to stdout.
"""

from __future__ import annotations

import argparse
import sys

from t4dm_core import T4DMError
from t4dm_core.learning.llm.evaluation.embedders import EMBEDDERS
from t4dm_core.learning.llm.evaluation.metrics import DEFAULT_N_BOOT
from t4dm_core.learning.llm.evaluation.scenario_a import SLOTS

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``t4dm eval``."""
    parser.add_argument("--scenario", default="A",
                        help="scenario: A (slot stories), C (changing preferences/config), D (interference vs store "
                             "size), E (long transcript vs recall); default A")
    parser.add_argument("--modes", default="B0,B1",
                        help="comma-separated modes among B0,B1,B2,B3 "
                             "(default B0,B1; B2/B3 on scenario A only)")
    parser.add_argument("--model", default="tiny", help="'tiny', 'smollm2', or a local model directory / .gguf file")
    parser.add_argument("--n", type=int, default=100, help="number of questions (default 100)")
    parser.add_argument("--json", required=True, metavar="OUT", help="path of the JSON report")
    parser.add_argument("--markdown", default=None, metavar="OUT", help="also write a Markdown report here")
    parser.add_argument("--seed", type=int, default=0, help="scenario and bootstrap seed (default 0)")
    parser.add_argument("--k", type=int, default=3, help="memories retrieved per question in B1 (default 3)")
    parser.add_argument("--embedder", choices=EMBEDDERS, default="minilm",
                        help="store embedder: the real MiniLM (default) or a deterministic hashing one (tests)")
    parser.add_argument("--slot", choices=SLOTS, default="where",
                        help="slot the questions ask for in scenarios A, D, E (default where)")
    parser.add_argument("--store-sizes", default=None, metavar="N,N,...",
                        help="scenario D: store sizes in memories, each >= 5 x n (default: 5 x n, 1000, 2500)")
    parser.add_argument("--memory-tokens", type=int, default=256, help="token budget of the memory prefix (B1)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="decoding limit per answer (default 32)")
    parser.add_argument("--n-boot", type=int, default=DEFAULT_N_BOOT, help="bootstrap resamples for the CIs")


def run(args: argparse.Namespace) -> int:
    """Run ``t4dm eval`` with parsed ``args``; returns the exit code (see the module doc)."""
    try:
        from t4dm_core.learning.llm.evaluation.report import report_dict, report_markdown, write_report
        from t4dm_core.learning.llm.evaluation.runner import EvalConfig, parse_modes, run_eval
        from t4dm_core.learning.llm.evaluation.scenario_d import parse_store_sizes

        sizes = parse_store_sizes(args.store_sizes) if args.store_sizes is not None else None
        config = EvalConfig(modes=parse_modes(args.modes), scenario=args.scenario.upper(), model=args.model, n=args.n,
                            seed=args.seed, k=args.k, embedder=args.embedder, slot=args.slot,
                            memory_tokens=args.memory_tokens, max_new_tokens=args.max_new_tokens, n_boot=args.n_boot,
                            store_sizes=sizes)
        report = report_dict(run_eval(config))
    except T4DMError as exc:
        print(f"t4dm eval: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        write_report(report, args.json, args.markdown)
    except OSError as exc:
        print(f"t4dm eval: cannot write the report: {exc}", file=sys.stderr)
        return 1
    print(report_markdown(report), end="")
    return 0
