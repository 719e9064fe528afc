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
                       "adapter_parameters": {"trainable": ..., "base": ..., "share": ...},
                       "spike_rate": ... or null, "max_loss_drift": ..., "max_em_drop": ...}}

Only modes that ran appear; ``"consolidation"`` only when B2 or B3 ran. Scenario sections
(``{"mean", "ci95"}`` objects are bootstrap summaries; a ``*_minus_*`` summary is the mean of
per-question differences on the same questions, so its CI is paired):

* B — a different document, :func:`~.editing.run_editing`'s (schema in :mod:`.editing`);
  :func:`report_markdown` renders it too;
* C — ``"stale_rate"``: per mode and ``"B1-append"``, the share of answers that give a
  superseded value (lower is better); ``"append_store"`` (when B1 ran): ``"B1-append"``'s mode
  object plus ``"stale_top1"`` (share of questions whose top hit is a superseded change) and
  ``"b1_minus_append_em"``;
* D — ``"by_store_size"``: ``{"<size>": {"memories": size, "B1": mode object, "b1_minus_b0_em": ...}}``
  (B0 reads no memory: measured once, in ``"modes"``; ``modes.B1`` is the largest size);
* E — ``"full_context"``: the full-context system's mode object plus ``"prompt_tokens"``
  (mean / max), ``"context_limit"``, ``"exchanges_total"``, ``"exchanges_kept"`` (mean / min) and
  ``"truncated_share"`` (questions whose transcript was cut); ``"full_vs_b1"`` (when B1 ran):
  mean prompt tokens of both, ``"tokens_ratio"`` and ``"latency_ratio"`` (mean and p50;
  full / B1), ``"em_full_minus_b1"`` and ``"quality_matched"`` — true only when that paired
  CI contains 0 (no difference detected at this n; not a proof of equality).

:func:`write_report` writes each file atomically (a temporary sibling renamed into place), so a
failed run never leaves a partial report.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t4dm_core.learning.llm.evaluation.metrics import MetricSummary, exact_match, summarize
from t4dm_core.learning.llm.evaluation.runner import APPEND_VARIANT, FULL_CONTEXT_VARIANT, ModeResult, RunResult

__all__ = ["EDIT_TARGETS", "latency_summary", "mode_summary", "report_dict", "report_markdown", "write_report"]


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, median and nearest-rank 95th percentile of ``values`` (at least one)."""
    ordered = sorted(values)
    rank = -(-95 * len(ordered) // 100)  # ceil(0.95 n), 1-based
    return {"mean": statistics.fmean(ordered), "p50": statistics.median(ordered), "p95": ordered[rank - 1]}


def mode_summary(result: ModeResult, n_boot: int, seed: int, k: int) -> dict[str, Any]:
    """One mode's JSON entry: n, EM and F1 with bootstrap CIs, latency, and retrieval P@1/MRR if it retrieved."""
    out: dict[str, Any] = {"n": len(result.em), "em": summarize(result.em, n_boot=n_boot, seed=seed).to_json(),
                           "f1": summarize(result.f1, n_boot=n_boot, seed=seed).to_json(),
                           "latency_ms": latency_summary(result.latency_ms)}
    if result.evidence_ranks:
        ranks = result.evidence_ranks
        out["retrieval"] = {"p@1": sum(r == 1 for r in ranks) / len(ranks),
                            "mrr": sum(1.0 / r for r in ranks if r is not None) / len(ranks), "k": k}
        out["memory_tokens"] = {"mean": statistics.fmean(result.memory_tokens), "max": max(result.memory_tokens)}
    return out


def _paired_diff(a: Sequence[float], b: Sequence[float], n_boot: int, seed: int) -> MetricSummary:
    return summarize([x - y for x, y in zip(a, b, strict=True)], n_boot=n_boot, seed=seed)


def _stale_flags(run: RunResult, result: ModeResult) -> list[float]:
    return [float(any(exact_match(p, s) for s in q.stale_answers)) for p, q in zip(result.predictions, run.questions,
                                                                                 strict=True)]


def _scenario_c(run: RunResult, n_boot: int, seed: int) -> dict[str, Any]:
    systems = {**run.modes, **run.variants}
    out: dict[str, Any] = {"stale_rate": {name: summarize(_stale_flags(run, r), n_boot=n_boot, seed=seed).to_json()
                                          for name, r in systems.items()}}
    appended = run.variants.get(APPEND_VARIANT)
    if appended is not None:
        diff = _paired_diff(run.modes["B1"].em, appended.em, n_boot, seed)
        out["append_store"] = {**mode_summary(appended, n_boot, seed, run.config.k),
                               "stale_top1": sum(appended.top_stale) / len(appended.top_stale),
                               "b1_minus_append_em": diff.to_json()}
    return out


def _scenario_d(run: RunResult, n_boot: int, seed: int) -> dict[str, Any]:
    b0 = run.modes.get("B0")
    sizes: dict[str, Any] = {}
    for size, result in run.by_store_size.items():
        entry: dict[str, Any] = {"memories": size, "B1": mode_summary(result, n_boot, seed, run.config.k)}
        if b0 is not None:
            entry["b1_minus_b0_em"] = _paired_diff(result.em, b0.em, n_boot, seed).to_json()
        sizes[str(size)] = entry
    return {"store_sizes": run.facts["store_sizes"], "by_store_size": sizes}


def _scenario_e(run: RunResult, n_boot: int, seed: int) -> dict[str, Any]:
    full = run.variants[FULL_CONTEXT_VARIANT]
    total = run.facts["exchanges"]
    out: dict[str, Any] = {"full_context": {
        **mode_summary(full, n_boot, seed, run.config.k),
        "prompt_tokens": {"mean": statistics.fmean(full.prompt_tokens), "max": max(full.prompt_tokens)},
        "context_limit": run.facts["context_limit"], "exchanges_total": total,
        "exchanges_kept": {"mean": statistics.fmean(full.exchanges_kept), "min": min(full.exchanges_kept)},
        "truncated_share": sum(kept < total for kept in full.exchanges_kept) / len(full.exchanges_kept)}}
    b1 = run.modes.get("B1")
    if b1 is not None:
        diff = _paired_diff(full.em, b1.em, n_boot, seed)
        full_latency, b1_latency = latency_summary(full.latency_ms), latency_summary(b1.latency_ms)
        out["full_vs_b1"] = {
            "prompt_tokens": {"full": statistics.fmean(full.prompt_tokens), "B1": statistics.fmean(b1.prompt_tokens)},
            "tokens_ratio": statistics.fmean(full.prompt_tokens) / statistics.fmean(b1.prompt_tokens),
            "latency_ratio": {"mean": full_latency["mean"] / b1_latency["mean"],
                              "p50": full_latency["p50"] / b1_latency["p50"]},
            "em_full_minus_b1": diff.to_json(), "quality_matched": diff.ci95[0] <= 0.0 <= diff.ci95[1]}
    return out


_SECTIONS = {"C": _scenario_c, "D": _scenario_d, "E": _scenario_e}


def report_dict(run: RunResult) -> dict[str, Any]:
    """The JSON report of ``run`` (schema in the module doc)."""
    c = run.config
    section = _SECTIONS.get(c.scenario)
    return {"scenario": c.scenario, "model": c.model, "model_source": run.model_source, "embedder": run.embedder_name,
            "n": len(run.questions), "seed": c.seed, "k": c.k, "slot": c.slot, "n_boot": c.n_boot,
            "modes": {mode: mode_summary(result, c.n_boot, c.seed, c.k) for mode, result in run.modes.items()},
            **({"consolidation": run.consolidation} if run.consolidation is not None else {}),
            **(section(run, c.n_boot, c.seed) if section is not None else {})}


def _metric(summary: dict[str, Any]) -> str:
    lo, hi = summary["ci95"]
    return f"{summary['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _row(name: str, m: dict[str, Any]) -> str:
    retrieval = m.get("retrieval")
    p1, mrr = (f"{retrieval['p@1']:.3f}", f"{retrieval['mrr']:.3f}") if retrieval else ("-", "-")
    return (f"| {name} | {_metric(m['em'])} | {_metric(m['f1'])} | {p1} | {mrr} | "
            f"{m['latency_ms']['mean']:.1f} / {m['latency_ms']['p95']:.1f} |")


_TABLE_HEAD = ["| mode | EM [95% CI] | F1 [95% CI] | P@1 | MRR | latency ms (mean / p95) |",
               "|---|---|---|---|---|---|"]


def _markdown_c(report: dict[str, Any]) -> list[str]:
    lines = ["", "Stale answers (a superseded value; lower is better): " +
             ", ".join(f"{name} {_metric(v)}" for name, v in report["stale_rate"].items())]
    appended = report.get("append_store")
    if appended is not None:
        lines += ["", "Append-only comparison (every change a separate memory):", "", *_TABLE_HEAD,
                  _row("B1-append", appended), "",
                  f"Top hit superseded in the append store: {appended['stale_top1']:.3f}; "
                  f"EM B1 (versioned) - B1-append: {_metric(appended['b1_minus_append_em'])}"]
    return lines


def _markdown_d(report: dict[str, Any]) -> list[str]:
    lines = ["", "B1 by store size (B0 reads no memory: measured once, above):", "",
             "| memories | EM [95% CI] | F1 [95% CI] | P@1 | MRR | latency ms (mean / p95) | B1 - B0 EM |",
             "|---|---|---|---|---|---|---|"]
    for entry in report["by_store_size"].values():
        diff = entry.get("b1_minus_b0_em")
        lines.append(_row(str(entry["memories"]), entry["B1"]) + f" {_metric(diff) if diff else '-'} |")
    return lines


def _markdown_e(report: dict[str, Any]) -> list[str]:
    full = report["full_context"]
    lines = ["", f"Full context (the transcript in the prompt, {full['exchanges_total']} exchanges; context limit "
                 f"{full['context_limit']} tokens; the newest exchanges that fit are kept — cut for "
                 f"{full['truncated_share']:.1%} of the questions, {full['exchanges_kept']['mean']:.1f} kept on "
                 f"average, at least {full['exchanges_kept']['min']}):", "", *_TABLE_HEAD, _row("full-context", full)]
    versus = report.get("full_vs_b1")
    if versus is not None:
        matched = ("yes (the paired CI contains 0: no difference detected at this n)" if versus["quality_matched"]
                   else "no (the paired CI excludes 0)")
        lines += ["", f"Prompt tokens (mean): full {versus['prompt_tokens']['full']:.0f}, "
                      f"B1 {versus['prompt_tokens']['B1']:.0f} — ratio {versus['tokens_ratio']:.2f}; latency ratio "
                      f"full / B1: mean {versus['latency_ratio']['mean']:.2f}, "
                      f"p50 {versus['latency_ratio']['p50']:.2f}; "
                      f"EM full - B1: {_metric(versus['em_full_minus_b1'])}; quality matched: {matched}"]
    return lines


_MARKDOWN_SECTIONS = {"C": _markdown_c, "D": _markdown_d, "E": _markdown_e}


EDIT_TARGETS = {"reliability": 0.90, "generalization": 0.80, "locality": 0.95}
"""Issue 6's targets for 100 sequential facts (scenario B), shown under the scenario-B table."""


def _markdown_b(report: dict[str, Any]) -> str:
    """Scenario B (:func:`~.editing.run_editing`'s report): one row per system, then B0/B1 on the edit questions."""
    lines = [f"# T4DM eval: scenario B, {report['n']} sequential facts ({report['edits']} edits, "
             f"{report['patched']} patches)", "",
             f"model `{report['model']}` ({report['model_source']}), embedder `{report['embedder']}`, "
             f"seed = {report['seed']}, k = {report['k']}, naive LoRA: {report['steps_per_edit']} steps/edit, "
             f"lr {report['lr']}, rank {report['lora_rank']}", "",
             "| system | reliability | generalization | locality (other subjects / general) | patched: right / stale "
             "| latency ms (p50 / p95) | write or train s |", "|---|---|---|---|---|---|---|"]
    for name, s in report["systems"].items():
        patched = s["patched"]
        right = "-" if patched["reliability"] is None else f"{patched['reliability']:.2f} / {patched['stale']:.2f}"
        seconds = s.get("write_seconds", s.get("train_seconds"))
        lines.append(f"| {name} | {_metric(s['reliability'])} | {_metric(s['generalization'])} | "
                     f"{_metric(s['locality'])} ({s['locality_other_subjects']['mean']:.2f} / "
                     f"{s['locality_general']['mean']:.2f}) | {right} | {s['latency_ms']['p50']:.0f} / "
                     f"{s['latency_ms']['p95']:.0f} | {seconds:.1f} |")
    lines += ["", "Edit questions, plain read path:", "", *_TABLE_HEAD]
    lines += [_row(mode, m) for mode, m in report["modes"].items()]
    lines += ["", "Targets: " + ", ".join(f"{k} >= {v}" for k, v in EDIT_TARGETS.items())]
    return "\n".join(lines) + "\n"


def report_markdown(report: dict[str, Any]) -> str:
    """A Markdown rendering of a :func:`report_dict` (or scenario B) document: header, mode rows, scenario sections."""
    if report["scenario"] == "B":
        return _markdown_b(report)
    lines = [f"# T4DM eval: scenario {report['scenario']}", "",
             f"model `{report['model']}` ({report['model_source']}), embedder `{report['embedder']}`, "
             f"n = {report['n']}, seed = {report['seed']}, k = {report['k']}, slot = {report['slot']}, "
             f"bootstrap resamples = {report['n_boot']}", "", *_TABLE_HEAD]
    lines += [_row(mode, m) for mode, m in report["modes"].items()]
    consolidation = report.get("consolidation")
    if consolidation is not None:
        lines += ["", f"B2/B3 after consolidating {consolidation['memories']} target memories into "
                      f"{consolidation['adapter']} (quantization {consolidation['quantization']}): "
                      f"{consolidation['steps']} steps, stop {consolidation['stop_reason']}, "
                      f"rolled back {consolidation['rolled_back']}, objective "
                      f"{consolidation['objective']['initial']:.3f} -> {consolidation['objective']['final']:.3f}, "
                      f"max base-loss drift {consolidation['max_loss_drift']:+.3f}, "
                      f"max base-EM drop {consolidation['max_em_drop']:.3f}, adapter parameters "
                      f"{consolidation['adapter_parameters']['share']:.2%} of base"]
    section = _MARKDOWN_SECTIONS.get(report["scenario"])
    if section is not None:
        lines += section(report)
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
