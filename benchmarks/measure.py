"""Measurement helpers shared by the benchmark legs: exact ground truth, recall, latency, disk use,
progress logging and writing a results file."""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SearchFn = Callable[[np.ndarray], Sequence[int]]


def exact_top_k(base: np.ndarray, queries: np.ndarray, k: int, rows: np.ndarray | None = None,
                block: int = 65_536) -> np.ndarray:
    """Exact top-``k`` row numbers of ``base`` by inner product for each query (ties: lower row first).

    ``rows`` restricts the candidates (filtered ground truth). Works block-wise, so a 1M-row
    base never materialises a full score matrix.
    """
    candidates = np.arange(base.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    best_rows = np.full((len(q), 0), -1, dtype=np.int64)
    best_scores = np.full((len(q), 0), -np.inf, dtype=np.float32)
    for start in range(0, candidates.size, block):
        ids = candidates[start:start + block]
        scores = q @ np.ascontiguousarray(base[ids], dtype=np.float32).T
        take = min(k, ids.size)
        part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        best_rows = np.concatenate([best_rows, ids[part]], axis=1)
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        order = np.lexsort((best_rows, -best_scores), axis=1)[:, :k]
        best_rows = np.take_along_axis(best_rows, order, axis=1)
        best_scores = np.take_along_axis(best_scores, order, axis=1)
    return best_rows


def recall_at_k(found: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    """Mean fraction of each query's true top-k present in the returned ids."""
    k = truth.shape[1]
    hits = sum(len(set(got[:k]) & set(want.tolist())) for got, want in zip(found, truth, strict=True))
    return hits / (k * len(truth))


def latency_summary(samples_ns: np.ndarray) -> dict[str, float]:
    """p50 / p99 / mean of per-call latencies, in microseconds."""
    us = samples_ns / 1e3
    return {"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean()), "n": int(us.size)}


def timed_searches(search: Callable[[Any], Any], queries: Sequence[Any],
                   warmup: int = 50) -> tuple[list[Any], np.ndarray]:
    """Call ``search`` once per query (after ``warmup`` untimed calls). Returns (results, ns per call)."""
    for q in queries[:warmup]:
        search(q)
    gc.collect()
    results: list[Any] = []
    times = np.empty(len(queries), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, q in enumerate(queries):
        start = clock()
        results.append(search(q))
        times[i] = clock() - start
    return results, times


def run_queries(search: SearchFn, queries: np.ndarray, warmup: int = 50) -> tuple[list[list[int]], np.ndarray]:
    """Time ``search`` once per query (after ``warmup`` untimed calls). Returns (ids per query, ns per query)."""
    results, times = timed_searches(search, queries, warmup)  # type: ignore[arg-type]
    return [list(ids) for ids in results], times


def versions(packages: Sequence[str], repo: Path) -> dict[str, str]:
    """The T4DM version, the repo commit measured (``git describe``) and the versions of ``packages``."""
    import subprocess
    from importlib import metadata

    import t4dm_core

    try:
        commit = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    out = {"t4dm": t4dm_core.__version__, "git": commit}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "?"
    return out


def time_calls(calls: Sequence[Callable[[], object]]) -> np.ndarray:
    """Nanoseconds taken by each of ``calls``, run in order."""
    gc.collect()
    times = np.empty(len(calls), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, call in enumerate(calls):
        start = clock()
        call()
        times[i] = clock() - start
    return times


def disk_usage(path: str | os.PathLike[str]) -> int:
    """Allocated bytes of a file or directory tree (like ``du -s --block-size=1``)."""
    target = Path(path)
    if target.is_file():
        return target.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in target.rglob("*") if p.is_file())


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``n`` random unit vectors (normal, then L2-normalised) as float32."""
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory and load average of this machine."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    mem_gib = 0.0
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kib = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal"))
            mem_gib = round(kib / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return {"cpu_model": model, "nproc": os.cpu_count(), "mem_gib": mem_gib, "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def log(message: str) -> None:
    """Progress line on stderr with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def save_results(results: dict[str, Any], out: Path, rendered: str) -> None:
    """Write ``results`` as JSON atomically (temp file + rename), print ``rendered``, log where it went."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
    os.replace(tmp, out)
    print(rendered)
    log(f"results written to {out} ({results['total_seconds']:.0f} s)")
