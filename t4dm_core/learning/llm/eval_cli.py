"""``t4dm eval``: run the evaluation harness (:mod:`.evaluation`) and write its JSON (+ Markdown) report.

Scenarios: A (slot stories with hard negatives), B (sequential fact edits with hot patches: T4DM
memory vs a naive LoRA fine-tune, reliability / generalization / locality; :mod:`.evaluation.editing`),
C (preferences / settings changing over time, versioned memories vs an append-only store),
D (scenario A's questions in stores of growing size, ``--store-sizes``), E (a long chat
transcript: full context vs retrieval, tokens and latency).

Exit codes: 0 = the run finished and the report was written; 1 = a report file could not be
written (the JSON is written before the Markdown, each atomically); 2 = bad arguments, an unknown
or not-yet-available mode (B2/B3 in a scenario other than A, or without what they need; scenario B
always reports B0 and B1 and takes no other mode), store
sizes that do not fit, or a model that cannot be loaded —
the message on stderr names the problem and no report file is written. The Markdown table is also printed to stdout.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from t4dm_core import T4DMError
from t4dm_core.learning.llm.evaluation.embedders import EMBEDDERS
from t4dm_core.learning.llm.evaluation.metrics import DEFAULT_N_BOOT
from t4dm_core.learning.llm.evaluation.scenario_a import SLOTS

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``t4dm eval``."""
    parser.add_argument("--scenario", default="A",
                        help="scenario: A (slot stories), B (sequential fact edits vs naive LoRA), C (changing "
                             "preferences/config), D (interference vs store size), E (long transcript vs recall); "
                             "default A")
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
    parser.add_argument("--systems", default=None, metavar="S,S",
                        help="scenario B: systems among t4dm_memory,naive_lora (default both)")
    parser.add_argument("--patch-fraction", type=float, default=None,
                        help="scenario B: share of facts patched later with a new value (default 0.2)")
    parser.add_argument("--memory-tokens", type=int, default=256, help="token budget of the memory prefix (B1)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="decoding limit per answer (default 32)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars on stderr (default: on when stderr is a terminal)")
    parser.add_argument("--n-boot", type=int, default=DEFAULT_N_BOOT, help="bootstrap resamples for the CIs")


def _progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)


def _editing_report(args: argparse.Namespace) -> dict[str, Any]:
    from t4dm_core.learning.llm.evaluation.editing import SYSTEMS, EditingConfig, run_editing
    from t4dm_core.learning.llm.evaluation.errors import EvalConfigError, ModeUnavailableError
    from t4dm_core.learning.llm.evaluation.runner import parse_modes

    extra = [m for m in parse_modes(args.modes) if m not in ("B0", "B1")]
    if extra:
        raise ModeUnavailableError(f"scenario B reports B0 and B1 on the edit questions; mode {extra[0]} "
                                   "does not apply")
    if args.store_sizes is not None:
        raise EvalConfigError("store sizes apply to scenario D only, not scenario B")
    systems = SYSTEMS if args.systems is None else tuple(s.strip() for s in args.systems.split(",") if s.strip())
    config = EditingConfig(model=args.model, n=args.n, seed=args.seed, k=args.k, embedder=args.embedder,
                           memory_tokens=args.memory_tokens, max_new_tokens=args.max_new_tokens, n_boot=args.n_boot,
                           systems=systems, patch_fraction=0.2 if args.patch_fraction is None else args.patch_fraction,
                           progress=_progress(args))
    return run_editing(config)


def _scenario_report(args: argparse.Namespace) -> dict[str, Any]:
    from t4dm_core.learning.llm.evaluation.errors import EvalConfigError
    from t4dm_core.learning.llm.evaluation.report import report_dict
    from t4dm_core.learning.llm.evaluation.runner import EvalConfig, parse_modes, run_eval
    from t4dm_core.learning.llm.evaluation.scenario_d import parse_store_sizes

    if args.systems is not None or args.patch_fraction is not None:
        raise EvalConfigError("--systems and --patch-fraction apply to scenario B only")
    sizes = parse_store_sizes(args.store_sizes) if args.store_sizes is not None else None
    config = EvalConfig(modes=parse_modes(args.modes), scenario=args.scenario.upper(), model=args.model, n=args.n,
                        seed=args.seed, k=args.k, embedder=args.embedder, slot=args.slot,
                        memory_tokens=args.memory_tokens, max_new_tokens=args.max_new_tokens, n_boot=args.n_boot,
                        store_sizes=sizes, progress=_progress(args))
    return report_dict(run_eval(config))


def run(args: argparse.Namespace) -> int:
    """Run ``t4dm eval`` with parsed ``args``; returns the exit code (see the module doc)."""
    try:
        report = _editing_report(args) if args.scenario.upper() == "B" else _scenario_report(args)
    except T4DMError as exc:
        print(f"t4dm eval: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    from t4dm_core.learning.llm.evaluation.report import report_markdown, write_report

    try:
        write_report(report, args.json, args.markdown)
    except OSError as exc:
        print(f"t4dm eval: cannot write the report: {exc}", file=sys.stderr)
        return 1
    print(report_markdown(report), end="")
    return 0
