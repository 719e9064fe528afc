"""The evaluation report: a JSON document other tools read, and its Markdown rendering.

JSON schema (all scores higher = better; latencies in milliseconds)::

    {"scenario": "A", "model": spec, "model_source": path, "embedder": name, "n": N, "seed": S,
     "k": K, "slot": "where", "n_boot": B,
     "modes": {"B0": {"n": N, "em": {"mean": m, "ci95": [lo, hi]}, "f1": {...},
                      "latency_ms": {"mean": ..., "p50": ..., "p95": ...}},
               "B1": {... same ..., "retrieval": {"p@1": ..., "mrr": ..., "k": K},
                      "memory_tokens": {"mean": ..., "max": ...}},
               "B2": {... as B1 ...}, "B3": {... as B0 ...}},
     "consolidation": {"adapter": "lora", "quantization": "none", "memories": N, "steps": ...,
                       "stop_reason": ..., "rolled_back": ..., "objective": {"initial": ..., "final": ...},
                       "max_loss_drift": ..., "max_em_drop": ...}}

Only modes that ran appear; ``"consolidation"`` only when B2 or B3 ran. :func:`write_report` writes
each file atomically (a temporary sibling renamed into place), so a failed run never leaves a partial report.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t4dm_core.learning.llm.evaluation.metrics import summarize
from t4dm_core.learning.llm.evaluation.runner import ModeResult, RunResult

__all__ = ["latency_summary", "report_dict", "report_markdown", "write_report"]


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, median and nearest-rank 95th percentile of ``values`` (at least one)."""
    ordered = sorted(values)
    rank = -(-95 * len(ordered) // 100)  # ceil(0.95 n), 1-based
    return {"mean": statistics.fmean(ordered), "p50": statistics.median(ordered), "p95": ordered[rank - 1]}


def _mode_dict(result: ModeResult, n_boot: int, seed: int, k: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(result.em), "em": summarize(result.em, n_boot=n_boot, seed=seed).to_json(),
                           "f1": summarize(result.f1, n_boot=n_boot, seed=seed).to_json(),
                           "latency_ms": latency_summary(result.latency_ms)}
    if result.evidence_ranks:
        ranks = result.evidence_ranks
        out["retrieval"] = {"p@1": sum(r == 1 for r in ranks) / len(ranks),
                            "mrr": sum(1.0 / r for r in ranks if r is not None) / len(ranks), "k": k}
        out["memory_tokens"] = {"mean": statistics.fmean(result.memory_tokens), "max": max(result.memory_tokens)}
    return out


def report_dict(run: RunResult) -> dict[str, Any]:
    """The JSON report of ``run`` (schema in the module doc)."""
    c = run.config
    return {"scenario": c.scenario, "model": c.model, "model_source": run.model_source, "embedder": run.embedder_name,
            "n": len(run.questions), "seed": c.seed, "k": c.k, "slot": c.slot, "n_boot": c.n_boot,
            "modes": {mode: _mode_dict(result, c.n_boot, c.seed, c.k) for mode, result in run.modes.items()},
            **({"consolidation": run.consolidation} if run.consolidation is not None else {})}


def _metric(summary: dict[str, Any]) -> str:
    lo, hi = summary["ci95"]
    return f"{summary['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def report_markdown(report: dict[str, Any]) -> str:
    """A Markdown rendering of a :func:`report_dict` document (a header and one table row per mode)."""
    lines = [f"# T4DM eval: scenario {report['scenario']}", "",
             f"model `{report['model']}` ({report['model_source']}), embedder `{report['embedder']}`, "
             f"n = {report['n']}, seed = {report['seed']}, k = {report['k']}, slot = {report['slot']}, "
             f"bootstrap resamples = {report['n_boot']}", "",
             "| mode | EM [95% CI] | F1 [95% CI] | P@1 | MRR | latency ms (mean / p95) |",
             "|---|---|---|---|---|---|"]
    for mode, m in report["modes"].items():
        retrieval = m.get("retrieval")
        p1, mrr = (f"{retrieval['p@1']:.3f}", f"{retrieval['mrr']:.3f}") if retrieval else ("-", "-")
        lines.append(f"| {mode} | {_metric(m['em'])} | {_metric(m['f1'])} | {p1} | {mrr} | "
                     f"{m['latency_ms']['mean']:.1f} / {m['latency_ms']['p95']:.1f} |")
    consolidation = report.get("consolidation")
    if consolidation is not None:
        lines += ["", f"B2/B3 after consolidating {consolidation['memories']} target memories into "
                      f"{consolidation['adapter']} (quantization {consolidation['quantization']}): "
                      f"{consolidation['steps']} steps, stop {consolidation['stop_reason']}, "
                      f"rolled back {consolidation['rolled_back']}, objective "
                      f"{consolidation['objective']['initial']:.3f} -> {consolidation['objective']['final']:.3f}, "
                      f"max base-loss drift {consolidation['max_loss_drift']:+.3f}, "
                      f"max base-EM drop {consolidation['max_em_drop']:.3f}"]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_report(report: dict[str, Any], json_path: str | os.PathLike[str],
                 markdown_path: str | os.PathLike[str] | None = None) -> None:
    """Write ``report`` as JSON (and Markdown if ``markdown_path``), each file atomically."""
    _write_atomic(Path(json_path), json.dumps(report, indent=2, sort_keys=False) + "\n")
    if markdown_path is not None:
        _write_atomic(Path(markdown_path), report_markdown(report))
