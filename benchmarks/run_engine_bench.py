"""Engine benchmark: T4DM vs raw hnswlib vs chromadb, side by side in one run.

Legs:

* ``corpus``: ``--n`` real texts (docstring paragraphs, MiniLM embeddings; see
  ``benchmarks/corpus.py``) with held-out real queries.
* ``random-1m`` (``--scale-1m``): ``--scale-n`` random unit vectors (no texts), T4DM vs
  hnswlib only.

Per leg: ingest throughput (T4DM with WAL durability ``sync=normal`` and ``sync=full``,
hnswlib ``add_items``, chroma ``add``), an ef sweep of single-query k=10 latency and
recall@10 against exact brute force (T4DM measured after ``flush()`` + ``compact(full=True)``,
and once before compaction), filtered search at fixed selectivities, overlay (learning)
write latency, reopen time and disk use. Results go to
``benchmarks/results/engine-<date>.json`` and are printed as Markdown.

chromadb is used when importable (run with ``.venv-bench``, see BENCHMARKS.md); otherwise
that peer is skipped with a message.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from corpus import DEFAULT_DOCS, DEFAULT_QUERIES, DEFAULT_SEED, build_corpus, load_corpus
from engines import ChromaEngine, HnswlibEngine, Rows, T4DMEngine, chroma_available
from measure import (
    SearchFn,
    disk_usage,
    exact_top_k,
    latency_summary,
    log,
    machine_info,
    recall_at_k,
    run_queries,
    save_results,
    time_calls,
    unit_rows,
    versions,
)
from report import render

from t4dm_core import Options

HERE = Path(__file__).resolve().parent
K = 10
BUCKETS = 100
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
CORPUS_EFS = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256)
SCALE_EFS = (64, 128, 256, 512, 1024)
HNSWLIB_FILTER_EFS = (64, 256)
CHROMA_OVERLAY_CALLS = 300


def make_buckets(n: int, seed: int) -> np.ndarray:
    """Bucket 0..99 per row, each bucket exactly ``n / 100`` rows (a seeded permutation)."""
    return (np.random.default_rng(seed).permutation(n) % BUCKETS).astype(np.int64)


def sweep_point(search: Any, queries: np.ndarray, truth: np.ndarray, ef: int | None) -> dict[str, Any]:
    """Recall@10 and latency of one engine at one ef."""
    found, times = run_queries(search, queries)
    return {"ef": ef, "recall": recall_at_k(found, truth), **latency_summary(times)}


def ingest_t4dm(work: Path, rows: Rows, mode: str, keep_open: bool,
                options: dict[str, Any]) -> tuple[dict[str, Any], T4DMEngine]:
    """Ingest into a fresh store with ``sync=mode``; closes and deletes it unless ``keep_open``."""
    path = work / f"t4dm-{mode}"
    engine = T4DMEngine(str(path), rows.vectors.shape[1], mode, **options)
    result = engine.ingest(rows)
    log(f"T4DM sync={mode}: {result.records} records in {result.seconds:.1f}s ({result.rate:,.0f}/s)")
    batches = np.array(result.batch_seconds)
    flush_s = result.extra["flush_seconds"]
    entry = {"records": result.records, "seconds": result.seconds, "rate": result.rate,
             "note": f"put_many x {len(batches)} batches of <= 1000, WAL sync={mode}; incl. "
                     f"{int(result.extra['flushing_batches'])} in-line memtable flushes + final flush() "
                     f"(segment write + HNSW build: {flush_s:.1f} s)",
             "flush_seconds": flush_s, "settle_seconds": result.extra["settle_seconds"],
             "options": options, "batch_p50_ms": float(np.percentile(batches, 50) * 1e3),
             "rate_excluding_flushes": result.records / max(1e-9, result.seconds - flush_s)}
    if not keep_open:
        engine.close()
        shutil.rmtree(path)
    return entry, engine


def run_leg(label: str, rows: Rows, queries: np.ndarray, args: argparse.Namespace, *, efs: tuple[int, ...],
            sync_modes: tuple[str, ...], filter_limits: tuple[int, ...], use_chroma: bool,
            t4dm_options: dict[str, Any]) -> dict[str, Any]:
    """One full leg (ingest, sweep, filtered, overlay, reopen, disk) over ``rows``."""
    n, dim = len(rows), rows.vectors.shape[1]
    work = Path(args.workdir) / label
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    threads = os.cpu_count() or 1
    log(f"[{label}] exact ground truth for {len(queries)} queries over {n:,} rows")
    truth = exact_top_k(rows.vectors, queries, K)
    leg: dict[str, Any] = {"n": n, "dim": dim, "queries": len(queries), "k": K, "efs": list(efs),
                           "hnsw": {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "threads": threads},
                           "ingest": {}, "search_sweep": {}, "filtered": [], "overlay": [], "reopen": [], "disk": {}}
    sweeps: dict[str, list[dict[str, Any]]] = {"T4DM": [], "hnswlib": []}
    if use_chroma:
        sweeps["chromadb"] = []
    sweeps["T4DM (hits materialised)"] = []
    sweeps["T4DM (before compaction)"] = []
    leg["search_sweep"] = sweeps

    log(f"[{label}] hnswlib add_items")
    hnsw = HnswlibEngine(dim, HNSW_M, HNSW_EF_CONSTRUCTION, threads)
    res = hnsw.ingest(rows)
    index_file = work / "hnswlib.bin"
    save_s = hnsw.save(str(index_file))
    leg["ingest"]["hnswlib"] = {"records": n, "seconds": res.seconds, "rate": res.rate, "save_seconds": save_s,
                                "note": f"one add_items call, {threads} threads, in memory (not durable); "
                                        f"save_index + fsync afterwards: {save_s:.1f} s"}
    leg["disk"]["hnswlib index file"] = disk_usage(index_file)

    t4: T4DMEngine | None = None
    for mode in sync_modes:
        entry, engine = ingest_t4dm(work, rows, mode, mode == "normal", t4dm_options)
        leg["ingest"][f"T4DM sync={mode}"] = entry
        if mode == "normal":
            t4 = engine
    assert t4 is not None, "sync_modes must include 'normal'"

    chroma: ChromaEngine | None = None
    if use_chroma:
        log(f"[{label}] chromadb add")
        chroma = ChromaEngine(str(work / "chroma"), HNSW_M, HNSW_EF_CONSTRUCTION, ef_search=64)
        res = chroma.ingest(rows)
        start = time.perf_counter()
        chroma.search(queries[0])
        first = time.perf_counter() - start
        leg["ingest"]["chromadb"] = {"records": n, "seconds": res.seconds, "rate": res.rate,
                                     "first_query_seconds": first,
                                     "note": f"collection.add in batches of <= 5000 (ids, embeddings, documents, "
                                             f"metadatas); first query afterwards took {first:.2f} s"}
        log(f"[{label}] chromadb: {res.rate:,.0f}/s, first query {first:.2f}s")

    log(f"[{label}] T4DM sweep before compaction ({t4.stats()['segments']} segments)")
    for ef in efs:
        t4.set_ef(ef)
        sweeps["T4DM (before compaction)"].append(sweep_point(t4.search, queries, truth, ef))
    leg["disk"]["T4DM store before compaction"] = disk_usage(t4.path)
    leg["compaction_seconds"] = t4.compact()
    leg["disk"]["T4DM store right after compaction (pre-compaction segments still retained)"] = disk_usage(t4.path)
    log(f"[{label}] compaction {leg['compaction_seconds']:.1f}s; interleaved ef sweep")

    interleaved_sweep(label, sweeps, efs, queries, truth, t4, hnsw, chroma)

    leg["filtered"] = filtered_leg(label, rows, queries[: args.filter_queries], t4, hnsw, chroma, filter_limits)
    leg["overlay"] = overlay_leg(rows, t4, chroma, args)
    leg["reopen"] = reopen_leg(t4, queries, args.reopen_trials) + peer_reopen(index_file, n, dim, chroma, queries,
                                                                             args.reopen_trials)
    leg["disk"]["T4DM store final (compacted + overlay segment, after GC)"] = disk_usage(t4.path)
    leg["t4dm_stats"] = {k: v for k, v in t4.stats().items() if k != "path"}
    t4.close()
    if chroma is not None:
        leg["disk"]["chromadb directory"] = disk_usage(chroma.path)
    if not args.keep_stores:
        shutil.rmtree(work, ignore_errors=True)
    return leg


def interleaved_sweep(label: str, sweeps: dict[str, list[dict[str, Any]]], efs: tuple[int, ...],
                      queries: np.ndarray, truth: np.ndarray, t4: T4DMEngine, hnsw: HnswlibEngine,
                      chroma: ChromaEngine | None) -> None:
    """The ef sweep of the compacted store, engines interleaved per ef (shared background load)."""
    for ef in efs:
        t4.set_ef(ef)
        sweeps["T4DM"].append(sweep_point(t4.search, queries, truth, ef))
        sweeps["T4DM (hits materialised)"].append(sweep_point(t4.search_materialized, queries, truth, ef))
        hnsw.set_ef(ef)
        sweeps["hnswlib"].append(sweep_point(hnsw.search, queries, truth, ef))
        if chroma is not None:
            chroma.set_ef(ef)
            sweeps["chromadb"].append(sweep_point(chroma.search, queries, truth, ef))
        log(f"[{label}]   ef={ef}: " + ", ".join(f"{name} r={s[-1]['recall']:.3f} p50={s[-1]['p50_us']:.0f}us"
                                                  for name, s in sweeps.items() if s and s[-1]["ef"] == ef))


def peer_reopen(index_file: Path, n: int, dim: int, chroma: ChromaEngine | None, queries: np.ndarray,
                trials: int) -> list[dict[str, Any]]:
    """The peers' equivalent of reopening: hnswlib ``load_index``; chroma new client + first query."""
    start = time.perf_counter()
    loaded = HnswlibEngine(dim, HNSW_M, HNSW_EF_CONSTRUCTION, os.cpu_count() or 1)
    loaded.index.load_index(str(index_file), max_elements=n)
    out = [{"state": "peer: hnswlib load_index of its saved file", "seconds": [time.perf_counter() - start]}]
    if chroma is not None:
        seconds = []
        for _ in range(trials):
            took = chroma.reopen()
            start = time.perf_counter()
            chroma.search(queries[0])
            seconds.append(took + time.perf_counter() - start)
        out.append({"state": "peer: chromadb new PersistentClient + get_collection + first query "
                             "(its index loads lazily)", "seconds": seconds})
    return out


def filtered_leg(label: str, rows: Rows, queries: np.ndarray, t4: T4DMEngine, hnsw: HnswlibEngine,
                 chroma: ChromaEngine | None, limits: tuple[int, ...]) -> list[dict[str, Any]]:
    """Filtered top-10 (``bucket < limit``) against exact filtered brute force."""
    out: list[dict[str, Any]] = []
    opts = Options()
    for limit in limits:
        allowed = np.flatnonzero(rows.buckets < limit)
        truth = exact_top_k(rows.vectors, queries, K, allowed)
        sel = allowed.size / len(rows)
        exact = allowed.size <= opts.exact_search_max_rows or allowed.size <= opts.exact_search_max_fraction * len(rows)
        path = "exact scan of qualifying rows" if exact else "widened HNSW + post-filter"
        runs: list[tuple[str, str, Callable[[], None], SearchFn]] = [
            ("T4DM", f"default ef={opts.hnsw_ef_search}; engine path: {path}", functools.partial(t4.set_ef, None),
             functools.partial(t4.search_filtered, limit=limit))]
        runs += [("hnswlib", f"ef={ef}, filter callback", functools.partial(hnsw.set_ef, ef),
                  hnsw.filtered_searcher(rows.buckets, limit)) for ef in HNSWLIB_FILTER_EFS]
        if chroma is not None:
            runs.append(("chromadb", "ef_search=64, where={bucket: {$lt: ...}}", functools.partial(chroma.set_ef, 64),
                         functools.partial(chroma.search_filtered, limit=limit)))
        for engine, setting, prepare, search in runs:
            prepare()
            found, times = run_queries(search, queries, warmup=10)
            out.append({"selectivity": sel, "engine": engine, "setting": setting,
                        "recall": recall_at_k(found, truth), **latency_summary(times)})
            log(f"[{label}] filtered {sel:.0%} {engine} ({setting}): recall {out[-1]['recall']:.3f} "
                f"p50 {out[-1]['p50_us']:.0f}us")
    return out


def overlay_leg(rows: Rows, t4: T4DMEngine, chroma: ChromaEngine | None,
                args: argparse.Namespace) -> list[dict[str, Any]]:
    """Learning writes on the compacted store: bump and strengthen on random memories."""
    rng = np.random.default_rng(args.seed + 1)
    n, calls = len(rows), args.overlay_calls
    targets = rng.integers(0, n, calls)
    src = rng.integers(0, n, calls)
    dst = (src + 1 + rng.integers(0, n - 1, calls)) % n
    out = []
    times = time_calls([functools.partial(t4.bump, int(i)) for i in targets])
    out.append({"op": "bump(id, 'access_count', 1)", "engine": "T4DM", **latency_summary(times)})
    times = time_calls([functools.partial(t4.strengthen, int(a), int(b)) for a, b in zip(src, dst, strict=True)])
    out.append({"op": "strengthen(src, dst, 0.1)", "engine": "T4DM", **latency_summary(times)})
    if chroma is not None:
        calls_c = [functools.partial(chroma.update_metadata, int(i), c + 1)
                   for c, i in enumerate(targets[:CHROMA_OVERLAY_CALLS])]
        out.append({"op": "update(ids=[id], metadatas=[{access_count: n}])", "engine": "chromadb",
                    **latency_summary(time_calls(calls_c))})
    for r in out:
        log(f"overlay {r['engine']} {r['op']}: p50 {r['p50_us']:.1f}us p99 {r['p99_us']:.1f}us")
    return out


def reopen_leg(t4: T4DMEngine, queries: np.ndarray, trials: int) -> list[dict[str, Any]]:
    """Close + open wall time, first with the overlay writes only in the WAL, then after a flush."""
    out = []
    pending = t4.stats()["next_lsn"]
    for flush_first in (False, True):
        state = "overlay writes only in the WAL (replayed at open)"
        if flush_first:
            start = time.perf_counter()
            t4.store.flush()
            took = time.perf_counter() - start
            state = f"flushed (memtable empty; that flush of the overlay writes took {took:.2f} s)"
        seconds, first_q = [], []
        t4.set_ef(None)
        for _ in range(trials):
            seconds.append(t4.reopen(open_only=True))
            assert t4.stats()["next_lsn"] == pending, "reopen lost or invented writes"
            start = time.perf_counter_ns()
            t4.search(queries[0])
            first_q.append((time.perf_counter_ns() - start) / 1e3)
            pending = t4.stats()["next_lsn"]  # the search's learning writes (learn_on_read) count from here
        out.append({"state": state, "seconds": seconds, "first_query_us": float(np.median(first_q))})
        log(f"reopen [{state}]: {', '.join(f'{s:.3f}' for s in seconds)} s")
    return out





def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="T4DM engine benchmark (see BENCHMARKS.md)")
    parser.add_argument("--n", type=int, default=DEFAULT_DOCS, help="corpus records to ingest")
    parser.add_argument("--queries", type=int, default=1000, help="latency/recall queries (held-out texts)")
    parser.add_argument("--filter-queries", type=int, default=500, help="queries per filtered-search setting")
    parser.add_argument("--overlay-calls", type=int, default=10_000, help="bump and strengthen calls each")
    parser.add_argument("--reopen-trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--skip-chroma", action="store_true", help="leave chromadb out even if importable")
    parser.add_argument("--scale-1m", action="store_true", help="add the random-vector scale leg")
    parser.add_argument("--scale-only", action="store_true", help="run only the random-vector scale leg")
    parser.add_argument("--scale-n", type=int, default=1_000_000)
    parser.add_argument("--scale-dim", type=int, default=128,
                        help="128 by default: at 384-d one hnswlib build of 1M took > 17 min on 2 cores")
    parser.add_argument("--scale-queries", type=int, default=200)
    parser.add_argument("--workdir", default=str(HERE / ".cache" / "run"), help="where the stores are built")
    parser.add_argument("--keep-stores", action="store_true", help="do not delete the stores afterwards")
    parser.add_argument("--out", default=None, help="results JSON (default benchmarks/results/engine-DATE.json, "
                                                    "engine-DATE-random.json with --scale-only)")
    return parser.parse_args()


def corpus_rows(args: argparse.Namespace) -> tuple[Rows, np.ndarray, dict[str, Any]]:
    """The cached corpus (built on first use), cut to ``--n`` documents and ``--queries`` queries."""
    docs = max(args.n, DEFAULT_DOCS)
    queries = max(args.queries, DEFAULT_QUERIES)
    try:
        corpus = load_corpus(docs, queries, args.seed)
    except FileNotFoundError:
        log("no cached corpus: building it (needs the project .venv with torch; takes a while)")
        build_corpus(docs, queries, args.seed)
        corpus = load_corpus(docs, queries, args.seed)
    rows = Rows(corpus.vectors[: args.n], corpus.texts[: args.n], make_buckets(args.n, args.seed),
                [s.split("/")[1].removesuffix(".py") for s in corpus.sources[: args.n]])
    info = {k: v for k, v in corpus.info.items() if k != "roots"} | {"used_docs": args.n,
                                                                      "used_queries": args.queries}
    return rows, corpus.query_vectors[: args.queries], info


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ok, why = chroma_available()
    use_chroma = ok and not args.skip_chroma
    if not use_chroma:
        log(f"chromadb peer skipped: {'--skip-chroma' if args.skip_chroma else why}. "
            "Run with .venv-bench/bin/python to include it (see BENCHMARKS.md).")
    started = time.time()
    packages = ["numpy", "hnswlib", "pyarrow", "xxhash"] + (["chromadb"] if use_chroma else [])
    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "machine": machine_info(),
                               "versions": versions(packages, HERE.parent), "argv": sys.argv[1:],
                               "chromadb": why if use_chroma else f"skipped: {why}", "legs": {}}
    if not args.scale_only:
        rows, queries, info = corpus_rows(args)
        results["corpus"] = info
        results["legs"]["corpus"] = run_leg("corpus", rows, queries, args, efs=CORPUS_EFS,
                                            sync_modes=("full", "normal"), filter_limits=(1, 10, 30),
                                            use_chroma=use_chroma, t4dm_options={})
    if args.scale_1m or args.scale_only:
        rng = np.random.default_rng(args.seed + 2)
        log(f"generating {args.scale_n:,} random {args.scale_dim}-d unit vectors")
        vectors = unit_rows(rng, args.scale_n, args.scale_dim)
        queries = unit_rows(rng, args.scale_queries, args.scale_dim)
        rows = Rows(vectors, None, make_buckets(args.scale_n, args.seed), None)
        results["legs"]["random-1m"] = run_leg("random-1m", rows, queries, args, efs=SCALE_EFS,
                                               sync_modes=("normal",), filter_limits=(1, 10), use_chroma=False,
                                               t4dm_options={"auto_compact": False})
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.time() - started, 1)
    suffix = "-random" if args.scale_only else ""
    out = Path(args.out) if args.out else HERE / "results" / f"engine-{results['date']}{suffix}.json"
    save_results(results, out, render(results))


if __name__ == "__main__":
    main()
