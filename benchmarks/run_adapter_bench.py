"""Adapter benchmark: T4DM's framework adapters vs the frameworks' own in-memory stores, in one run.

Pairs (same documents, same precomputed vectors, same calls):

* LangChain: ``protocol_adapters.langchain.T4DMVectorStore`` vs
  ``langchain_core.vectorstores.InMemoryVectorStore``; ``--langchain-n`` documents, and a
  second leg at ``--langchain-large-n`` (0 skips it).
* LangGraph: ``protocol_adapters.langgraph.T4DMStore`` vs
  ``langgraph.store.memory.InMemoryStore``, both with the same ``index`` config.
* LlamaIndex: ``protocol_adapters.llama_index.T4DMVectorStore`` vs
  ``llama_index.core.vector_stores.SimpleVectorStore``.

Data: the cached MiniLM corpus of ``benchmarks/corpus.py`` (real docstring paragraphs,
384-d, held-out real queries). The embedder is not run: both sides of every pair get the
same :class:`LookupEmbeddings`, which returns each text's cached vector, so its (small,
equal) cost is the only embedding cost in the numbers. Every record carries metadata
``{"bucket": 0..99, "source": package}``; the filtered queries use ``bucket < 10`` (about 10%
of the rows). T4DM runs with default ``Options`` (WAL ``sync="normal"``, ``learn_on_read=True``)
in stores under ``--workdir``. Results go to ``benchmarks/results/adapters-<date>.json``
and are printed as Markdown.

Run from the repository root: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run_adapter_bench.py``
(``--report RESULTS.json`` prints the tables of an earlier run again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from corpus import DEFAULT_DOCS, DEFAULT_QUERIES, DEFAULT_SEED, load_corpus
from langchain_core.embeddings import Embeddings
from measure import exact_top_k, latency_summary, log, machine_info, recall_at_k, save_results, time_calls, versions
from report import _table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
K = 10
BATCH = 1_000
BUCKETS = 100
FILTER_LIMIT = 10  # bucket < 10: about 10% of the rows
WARMUP = 5
MIN_SAMPLES = 20
LANGGRAPH_USERS = 10
PACKAGES = ("langchain-core", "langgraph", "langgraph-checkpoint", "llama-index-core", "numpy", "hnswlib",
            "pyarrow")

__all__ = ["LookupEmbeddings", "main", "render"]


class LookupEmbeddings(Embeddings):
    """LangChain ``Embeddings`` returning precomputed vectors by exact text lookup.

    A text that is not in the table (the adapters' one-off dimension probes) gets row 0's
    vector and is counted in ``unknown`` (a plain counter: use it from one thread).
    """

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._row = {text: i for i, text in enumerate(texts)}
        self._vectors = vectors
        self.unknown = 0

    def _rows(self, texts: Sequence[str]) -> list[int]:
        rows = [self._row.get(t, -1) for t in texts]
        self.unknown += rows.count(-1)
        return [max(r, 0) for r in rows]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._vectors[self._rows(texts)].tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._vectors[self._rows([text])[0]].tolist()


@dataclass
class Data:
    """The documents and queries every pair is run on (row ``i`` has id ``str(i)``)."""

    texts: list[str]
    sources: list[str]
    vectors: np.ndarray
    buckets: np.ndarray
    query_texts: list[str]
    query_vectors: np.ndarray
    embeddings: LookupEmbeddings

    def meta(self, i: int) -> dict[str, Any]:
        return {"bucket": int(self.buckets[i]), "source": self.sources[i]}


# ---------------------------------------------------------------------------- measuring helpers
def latency(times_ns: np.ndarray, found: list[list[int]] | None = None,
            truth: np.ndarray | None = None) -> dict[str, Any]:
    """p50/p95/p99/mean in µs, plus recall@10 against ``truth`` when given."""
    out: dict[str, Any] = {**latency_summary(times_ns), "p95_us": float(np.percentile(times_ns / 1e3, 95))}
    if found is not None and truth is not None:
        out["recall"] = recall_at_k(found, truth)
    return out


def throughput(batch_ns: np.ndarray, records: int, unit: str) -> dict[str, Any]:
    """Records per second over the summed call times, with the slowest call."""
    seconds = float(batch_ns.sum() / 1e9)
    return {"records": records, "seconds": seconds, "rate": records / seconds, "unit": unit,
            "calls": int(batch_ns.size), "slowest_call_s": float(batch_ns.max() / 1e9)}


def series(fn: Callable[[int], Any], n: int, budget_s: float, truth: np.ndarray | None = None) -> dict[str, Any]:
    """Time ``fn`` on call numbers ``0..n-1`` (after :data:`WARMUP` untimed calls) and summarise.

    Stops early once at least :data:`MIN_SAMPLES` calls ran and ``budget_s`` seconds have
    passed; ``n`` in the summary says how many ran. With ``truth``, ``fn`` returns row
    numbers and recall@10 over the calls that ran is added.
    """
    for i in range(min(WARMUP, n)):
        fn(i)
    gc.collect()
    clock = time.perf_counter_ns
    times: list[int] = []
    found: list[list[int]] = []
    deadline = time.perf_counter() + budget_s
    for i in range(n):
        start = clock()
        out = fn(i)
        times.append(clock() - start)
        if truth is not None:
            found.append(list(out))
        if i + 1 >= MIN_SAMPLES and time.perf_counter() > deadline:
            break
    if truth is None:
        return latency(np.array(times))
    return latency(np.array(times), found, truth[:len(times)])


def pair(op: str, t4dm: dict[str, Any] | None, reference: dict[str, Any] | None, note: str = "") -> dict[str, Any]:
    """One row of a side-by-side table."""
    return {"op": op, "t4dm": t4dm, "reference": reference, "note": note}


@dataclass
class Runner:
    """Latency rows of one leg: ``queries`` calls per measurement, at most ~``budget_s`` seconds each."""

    label: str
    queries: int
    budget_s: float

    def __post_init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        log_row(self.label, row)

    def both(self, op: str, t4dm: Callable[[int], Any], reference: Callable[[int], Any],
             truth: np.ndarray | None = None, note: str = "") -> None:
        """T4DM's series, then the reference's on the same inputs.

        Not interleaved call by call: the references allocate an N x dim float64 matrix per
        query, which evicts the CPU caches the next T4DM call would use (a trial run that
        interleaved measured T4DM up to 10x slower at 50,000 documents).
        """
        self.add(pair(op, series(t4dm, self.queries, self.budget_s, truth),
                      series(reference, self.queries, self.budget_s, truth), note))

    def t4dm_only(self, op: str, fn: Callable[[int], Any], truth: np.ndarray | None = None, note: str = "") -> None:
        self.add(pair(op, series(fn, self.queries, self.budget_s, truth), None, note))


def log_row(leg: str, row: dict[str, Any]) -> None:
    """Progress line for one finished row."""
    log(f"[{leg}] {row['op']}: T4DM {_cell(row['t4dm'])} | reference {_cell(row['reference'])}")


def id_rows(ids: Sequence[str | None]) -> list[int]:
    return [int(i) for i in ids if i is not None]


def truths(data: Data, n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-10 of each query over the first ``n`` rows: unfiltered, and among ``bucket < 10``."""
    allowed = np.flatnonzero(data.buckets[:n] < FILTER_LIMIT)
    qv = data.query_vectors[:queries]
    return exact_top_k(data.vectors[:n], qv, K), exact_top_k(data.vectors[:n], qv, K, allowed)


# ---------------------------------------------------------------------------- LangChain
def langchain_leg(data: Data, n: int, run: Runner, work: Path) -> dict[str, Any]:
    """T4DMVectorStore vs InMemoryVectorStore on ``n`` documents."""
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    import t4dm_core
    from protocol_adapters.langchain import T4DMVectorStore
    from t4dm_core import Options

    emb = data.embeddings
    docs = [Document(page_content=data.texts[i], metadata=data.meta(i), id=str(i)) for i in range(n)]
    batches = [docs[i:i + BATCH] for i in range(0, n, BATCH)]
    lookup = time_calls([functools.partial(emb.embed_documents, [d.page_content for d in b]) for b in batches])
    path = Path(tempfile.mkdtemp(prefix=f"{run.label}-", dir=work)) / "store"
    t4 = T4DMVectorStore(emb, path=path)
    ref = InMemoryVectorStore(emb)
    t4_add = throughput(time_calls([functools.partial(t4.add_documents, b) for b in batches]), n, "docs/s")
    stats = t4.store.stats()
    ref_add = throughput(time_calls([functools.partial(ref.add_documents, b) for b in batches]), n, "docs/s")
    flushed = ""
    if stats["segments"]:
        t4_add["rate_without_slowest_call"] = (n - BATCH) / (t4_add["seconds"] - t4_add["slowest_call_s"])
        flushed = (f" (it includes the in-line memtable flush: segment + HNSW build; the other calls ran at "
                   f"{t4_add['rate_without_slowest_call']:,.0f} docs/s)")
    run.add(pair(f"add_documents: {n:,} docs in batches of {BATCH:,}", t4_add, ref_add,
                 f"the embedding lookup both pay: {lookup.sum() / 1e9:.2f} s; T4DM slowest call "
                 f"{t4_add['slowest_call_s']:.2f} s{flushed}"))

    qtexts = data.query_texts[:run.queries]
    truth, ftruth = truths(data, n, run.queries)

    def plain(store: Any, q: int) -> list[int]:
        return id_rows([d.id for d in store.similarity_search(qtexts[q], k=K)])

    def filtered(store: Any, flt: Any, q: int) -> list[int]:
        return id_rows([d.id for d in store.similarity_search(qtexts[q], k=K, filter=flt)])

    def keep(doc: Document) -> bool:
        return bool(doc.metadata["bucket"] < FILTER_LIMIT)

    dict_filter = {"bucket": {"$lt": FILTER_LIMIT}}
    run.both(f"similarity_search k={K}", functools.partial(plain, t4), functools.partial(plain, ref), truth,
             "T4DM with learn_on_read on (the default): each search also records access counts and "
             "co-retrieval edges")
    run.both(f"similarity_search k={K}, filter bucket < {FILTER_LIMIT} (~10%)",
             functools.partial(filtered, t4, dict_filter), functools.partial(filtered, ref, keep), ftruth,
             f"T4DM: dict filter {json.dumps(dict_filter)} (evaluated by the engine); InMemory: callable")
    run.t4dm_only("  same, T4DM given the same callable filter", functools.partial(filtered, t4, keep), ftruth,
                  "the adapter over-fetches hits and tests the callable in Python")

    start = time.perf_counter()
    t4.close()
    close_s = time.perf_counter() - start
    start = time.perf_counter()
    t4 = T4DMVectorStore(emb, path=path)
    reopen_s = time.perf_counter() - start
    count = len(t4.store.ids(namespace=t4.namespace))
    start = time.perf_counter_ns()
    t4.similarity_search(qtexts[0], k=K)
    first_us = (time.perf_counter_ns() - start) / 1e3
    t4.close()
    assert count == n, f"reopened store holds {count} documents, expected {n}"
    run.add(pair("close(), then reopen: T4DMVectorStore(embedding, path=same)",
                 {"close_s": close_s, "reopen_s": reopen_s, "documents_after_reopen": count,
                  "first_query_us": first_us}, None,
                 "InMemoryVectorStore persists nothing: its documents live in a dict and are gone with the "
                 "process (dump(path) writes an explicit JSON snapshot on request; not timed)"))

    store = t4dm_core.open(path, dim=data.vectors.shape[1], options=Options(learn_on_read=False))
    t4 = T4DMVectorStore(emb, store=store)
    run.t4dm_only(f"  similarity_search k={K}, T4DM with learn_on_read=False", functools.partial(plain, t4), truth,
                  "the same store reopened with Options(learn_on_read=False): the cost of learning on read")
    t4.close()
    store.close()
    return {"framework": "LangChain", "reference": f"InMemoryVectorStore (langchain-core "
            f"{metadata.version('langchain-core')})", "n": n, "queries": run.queries, "rows": run.rows,
            "t4dm_state": f"after the adds: {stats['memtable_rows']:,} rows in the memtable, "
                          f"{stats['segments']} segment(s)"}


# ---------------------------------------------------------------------------- LangGraph
def langgraph_leg(data: Data, n: int, run: Runner, work: Path) -> dict[str, Any]:
    """T4DMStore vs InMemoryStore with the same index config, ``n`` items over 10 namespaces."""
    from langgraph.store.memory import InMemoryStore

    import t4dm_core
    from protocol_adapters.langgraph import T4DMStore

    dim = data.vectors.shape[1]

    def namespace(i: int) -> tuple[str, ...]:
        return ("bench", f"user{i % LANGGRAPH_USERS}")

    values = [{"text": data.texts[i], **data.meta(i)} for i in range(n)]
    index = {"dims": dim, "embed": data.embeddings, "fields": ["text"]}
    path = Path(tempfile.mkdtemp(prefix=f"{run.label}-", dir=work)) / "store"
    engine = t4dm_core.open(path, dim=dim)  # default Options, as T4DMStore(path=...) would open it
    t4 = T4DMStore(store=engine, index=index)
    ref = InMemoryStore(index=index)  # type: ignore[arg-type]
    put_t4 = throughput(time_calls([functools.partial(t4.put, namespace(i), str(i), values[i]) for i in range(n)]),
                        n, "items/s")
    put_ref = throughput(time_calls([functools.partial(ref.put, namespace(i), str(i), values[i])
                                     for i in range(n)]), n, "items/s")
    run.add(pair(f"put: {n:,} items, one call each, 10 namespaces", put_t4, put_ref,
                 "T4DM: each put is one atomic engine write (item record + its vector record) in the WAL "
                 "before put returns"))

    picks = np.random.default_rng(DEFAULT_SEED + 3).integers(0, n, run.queries)
    for store in (t4, ref):
        got = store.get(namespace(int(picks[0])), str(picks[0]))
        assert got is not None and got.value == values[int(picks[0])], "get returned the wrong value"

    def get(store: Any, q: int) -> Any:
        return store.get(namespace(int(picks[q])), str(picks[q]))

    run.both("get(namespace, key), random keys", functools.partial(get, t4), functools.partial(get, ref))
    qtexts = data.query_texts[:run.queries]
    truth, ftruth = truths(data, n, run.queries)
    flt = {"bucket": {"$lt": FILTER_LIMIT}}

    def search(store: Any, filt: dict[str, Any] | None, q: int) -> list[int]:
        return [int(item.key) for item in store.search(("bench",), query=qtexts[q], filter=filt, limit=K)]

    run.both(f"search(('bench',), query=..., limit={K})", functools.partial(search, t4, None),
             functools.partial(search, ref, None), truth, "T4DMStore searches with learn=False (InMemoryStore "
                                                          "semantics)")
    run.both(f"search with query + filter bucket < {FILTER_LIMIT} (~10%)", functools.partial(search, t4, flt),
             functools.partial(search, ref, flt), ftruth, "the same filter dict for both")

    expected = sorted({namespace(i) for i in range(min(n, LANGGRAPH_USERS))})
    for store in (t4, ref):
        assert store.list_namespaces(prefix=("bench",)) == expected, "list_namespaces differs"

    def listing(store: Any, _: int) -> Any:
        return store.list_namespaces(prefix=("bench",))

    run.both(f"list_namespaces(prefix=('bench',)) -> {len(expected)} namespaces", functools.partial(listing, t4),
             functools.partial(listing, ref))
    stats = engine.stats()
    t4.close()
    engine.close()
    return {"framework": "LangGraph", "reference": f"InMemoryStore (langgraph {metadata.version('langgraph')}, "
            f"langgraph-checkpoint {metadata.version('langgraph-checkpoint')})", "n": n, "queries": run.queries,
            "rows": run.rows, "t4dm_state": f"after the puts: {stats['memtable_rows']:,} engine rows in the "
                                            f"memtable, {stats['segments']} segment(s)"}


# ---------------------------------------------------------------------------- LlamaIndex
def llama_index_leg(data: Data, n: int, run: Runner, work: Path) -> dict[str, Any]:
    """T4DMVectorStore vs SimpleVectorStore on ``n`` TextNodes with embeddings."""
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores import SimpleVectorStore
    from llama_index.core.vector_stores.types import (
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
    )

    from protocol_adapters.llama_index import T4DMVectorStore

    dim = data.vectors.shape[1]
    nodes = [TextNode(id_=str(i), text=data.texts[i], embedding=data.vectors[i].tolist(), metadata=data.meta(i))
             for i in range(n)]
    batches = [nodes[i:i + BATCH] for i in range(0, n, BATCH)]
    path = Path(tempfile.mkdtemp(prefix=f"{run.label}-", dir=work)) / "store"
    t4 = T4DMVectorStore(path, dim=dim)
    ref = SimpleVectorStore()
    run.add(pair(f"add: {n:,} TextNodes with embeddings, batches of {BATCH:,}",
                 throughput(time_calls([functools.partial(t4.add, b) for b in batches]), n, "nodes/s"),
                 throughput(time_calls([functools.partial(ref.add, b) for b in batches]), n, "nodes/s")))
    stats = t4.client.stats()
    qlists = [v.tolist() for v in data.query_vectors[:run.queries]]
    truth, ftruth = truths(data, n, run.queries)
    filters = MetadataFilters(filters=[MetadataFilter(key="bucket", value=FILTER_LIMIT, operator=FilterOperator.LT)])

    def query(store: Any, flt: MetadataFilters | None, q: int) -> list[int]:
        result = store.query(VectorStoreQuery(query_embedding=qlists[q], similarity_top_k=K, filters=flt))
        return id_rows(result.ids)

    run.both(f"query similarity_top_k={K}", functools.partial(query, t4, None), functools.partial(query, ref, None),
             truth, "T4DM returns the nodes (rebuilt from stored metadata), SimpleVectorStore only ids and "
                    "similarities (it keeps no text); T4DM with learn_on_read on")
    run.both(f"query with MetadataFilters bucket < {FILTER_LIMIT} (~10%)", functools.partial(query, t4, filters),
             functools.partial(query, ref, filters), ftruth)
    t4.close()
    return {"framework": "LlamaIndex", "reference": f"SimpleVectorStore (llama-index-core "
            f"{metadata.version('llama-index-core')})", "n": n, "queries": run.queries, "rows": run.rows,
            "t4dm_state": f"after the adds: {stats['memtable_rows']:,} rows in the memtable, "
                          f"{stats['segments']} segment(s)"}


# ---------------------------------------------------------------------------- report
def _duration(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:,.1f} ms"
    return f"{us:,.0f} µs"


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if "rate" in r:
        return f"{r['rate']:,.0f} {r['unit']} ({r['seconds']:.2f} s)"
    if "p50_us" in r:
        rec = f", recall@10 {r['recall']:.3f}" if "recall" in r else ""
        return f"{_duration(r['p50_us'])} / {_duration(r['p95_us'])} (n={r['n']}{rec})"
    if "reopen_s" in r:
        return (f"close {r['close_s']:.2f} s; reopen {r['reopen_s']:.2f} s, {r['documents_after_reopen']:,} docs "
                f"back; first query {_duration(r['first_query_us'])}")
    return json.dumps(r)


def _x(r: float) -> str:
    if r >= 100:
        return f"{r:,.0f}x"
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def _times(r: float) -> str:
    return f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x"


def _ratio(row: dict[str, Any]) -> tuple[str, str]:
    """(T4DM / reference of the row's quantity, which side is faster and by how much)."""
    t4, ref = row["t4dm"], row["reference"]
    if t4 is None or ref is None:
        return "-", "-"
    if "rate" in t4:
        r = t4["rate"] / ref["rate"]
        return f"{_x(r)} (rate)", f"T4DM {_times(r)}" if r >= 1 else f"reference {_times(1 / r)}"
    r = t4["p50_us"] / ref["p50_us"]
    return f"{_x(r)} (p50)", f"T4DM {_times(1 / r)}" if r <= 1 else f"reference {_times(r)}"


def leg_table(leg: dict[str, Any]) -> str:
    """Side-by-side Markdown table of one leg."""
    ref_name = leg["reference"].split(" (")[0]
    body = []
    for row in leg["rows"]:
        ratio, faster = _ratio(row)
        body.append([row["op"], _cell(row["t4dm"]), _cell(row["reference"]), ratio, faster, row["note"]])
    return _table(["operation (latency: p50 / p95)", "T4DM adapter", ref_name, "T4DM / reference", "faster",
                   "note"], body)


def render(results: dict[str, Any]) -> str:
    """All tables of an adapters results document as Markdown."""
    parts = []
    for name, leg in results["legs"].items():
        parts.append(f"#### {leg['framework']}: {leg['n']:,} records, {leg['queries']:,} queries ({name})\n\n"
                     f"Reference: {leg['reference']}. T4DM state: {leg['t4dm_state']}.\n\n{leg_table(leg)}")
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------- driver
def load_data(n: int, seed: int) -> tuple[Data, dict[str, Any]]:
    """The cached MiniLM corpus cut to ``n`` documents (queries: the held-out texts)."""
    corpus = load_corpus(max(n, DEFAULT_DOCS), DEFAULT_QUERIES, seed)
    texts, vectors = corpus.texts[:n], corpus.vectors[:n]
    emb = LookupEmbeddings(texts + corpus.query_texts, np.concatenate([vectors, corpus.query_vectors]))
    buckets = (np.random.default_rng(seed).permutation(n) % BUCKETS).astype(np.int64)
    sources = [s.split("/")[1].removesuffix(".py") for s in corpus.sources[:n]]
    info = {k: v for k, v in corpus.info.items() if k != "roots"}
    return Data(texts, sources, vectors, buckets, corpus.query_texts, corpus.query_vectors, emb), info


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="T4DM adapters vs the frameworks' in-memory stores "
                                                 "(see BENCHMARKS.md)")
    parser.add_argument("--langchain-n", type=int, default=10_000)
    parser.add_argument("--langchain-large-n", type=int, default=50_000, help="second LangChain leg (0 = skip)")
    parser.add_argument("--langgraph-n", type=int, default=5_000)
    parser.add_argument("--llama-n", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200, help="timed calls per measurement (queries, gets, ...)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds after which a measurement stops early (it still runs at least 20 calls)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--workdir", default=str(HERE / ".cache" / "run-adapters"), help="where T4DM stores go")
    parser.add_argument("--keep-stores", action="store_true", help="do not delete the T4DM stores afterwards")
    parser.add_argument("--out", default=None, help="results JSON (default benchmarks/results/adapters-DATE.json)")
    parser.add_argument("--report", metavar="RESULTS_JSON", default=None,
                        help="only print the Markdown tables of an earlier results file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.report:
        print(render(json.loads(Path(args.report).read_text(encoding="utf-8"))))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if str(REPO) not in sys.path:  # protocol_adapters, when the editable install predates it
        sys.path.insert(0, str(REPO))
    started = time.time()
    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "machine": machine_info(),
                               "versions": versions(PACKAGES, REPO), "argv": sys.argv[1:], "legs": {}}
    biggest = max(args.langchain_n, args.langchain_large_n, args.langgraph_n, args.llama_n)
    data, info = load_data(biggest, args.seed)
    results["corpus"] = info | {"used_docs": biggest, "filter": f"bucket < {FILTER_LIMIT} (about 10% of rows)",
                                "embedding": "precomputed MiniLM vectors, looked up by text (LookupEmbeddings)"}
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="adapters-", dir=args.workdir))  # only this run's directory is removed
    results["timing"] = {"calls_per_measurement": args.queries, "budget_s": args.budget, "min_calls": MIN_SAMPLES,
                         "warmup_calls": WARMUP, "batch": BATCH}
    try:
        legs: list[tuple[str, Callable[..., dict[str, Any]], int]] = [("langchain", langchain_leg, args.langchain_n)]
        if args.langchain_large_n:
            legs.append(("langchain-large", langchain_leg, args.langchain_large_n))
        legs += [("langgraph", langgraph_leg, args.langgraph_n), ("llama_index", llama_index_leg, args.llama_n)]
        for name, leg, n in legs:
            log(f"leg {name}")
            start = time.perf_counter()
            runner = Runner(f"{name}-{n}", args.queries, args.budget)
            results["legs"][name] = leg(data, n, runner, work) | {
                "seconds": round(time.perf_counter() - start, 1),
                "filter_selectivity": float(np.mean(data.buckets[:n] < FILTER_LIMIT))}
    finally:
        if not args.keep_stores:
            shutil.rmtree(work, ignore_errors=True)
    results["embedding_lookup_unknown_texts"] = data.embeddings.unknown
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.time() - started, 1)
    out = Path(args.out) if args.out else HERE / "results" / f"adapters-{results['date']}.json"
    save_results(results, out, render(results))


if __name__ == "__main__":
    main()
