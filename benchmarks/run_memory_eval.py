"""Memory-dynamics evaluation (issue 4): T4DM search against a plain vector store and BM25, in one run.

Scenarios (deterministic generators in ``seeds/scenarios.py``; same seed = same data):

* ``A``: partial-cue slot stories with hard negatives (cue types direct / paraphrase /
  fragment); P@1 with and without query completion (``search(..., complete=True)``).
* ``C``: preferences and service settings that change over four eras, stored two ways:
  ``versioned`` (each change is a new version of one id, with its valid time) and
  ``appended`` (each change is a new memory). Is the current value first? Does ``as_of``
  return the value of the past?
* ``D``: near-collision interference (families of meeting records that share people and
  topic) at 1k and 10k records; ``--full`` adds 100k = the 10k synthetic records + 90k
  stdlib docstrings from the engine benchmark's cached corpus as background.
* ``conversations``: multi-session chats stored with ``Store.add_conversation``; questions
  whose evidence turns are known (categories single / multi-hop / update / assistant).
* ``sleep``: a redundant stream (facts restated several times); disk and held-out recall
  before and after ``Store.sleep()``.

Methods, all over the same MiniLM vectors:

* ``T4DM hybrid``: ``store.search(text, k=10)`` with the default ranking (vector + BM25 +
  graph expansion + recency/importance/kappa priors, reciprocal-rank fused), ``learn=False``
  so that every method sees the same store (the ranking of one call is the same either way);
* ``T4DM hybrid + completion``: the same with ``complete=True``;
* ``vector exact (numpy)``: the plain vector-store baseline, exact cosine by numpy brute
  force over the vectors stored in T4DM (the store's HNSW is not involved);
* ``BM25 (T4DM lexical)``: ``store.search(text, mode="lexical")``;
* per scenario a few more T4DM rows (``mode="vector"``, ablations of the ranking, learning on).

Latency: every call is timed with ``perf_counter_ns`` after 5 warm-up calls. "excl.
embedding": the store's embedder is a wrapper that answers ``embed_query`` from vectors
embedded beforehand in batches; "incl. embedding": the wrapper runs MiniLM for every query
(the first ``--live-queries`` queries). Embeddings are cached under
``benchmarks/.cache/memory-eval/`` by content hash, so a second run embeds nothing.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run_memory_eval.py [--full]``; results go
to ``benchmarks/results/memory-eval-DATE[-full].json`` and are printed as Markdown
(``--render FILE`` prints a results file again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from corpus import DEFAULT_DOCS, DEFAULT_QUERIES, DEFAULT_SEED, load_corpus
from measure import log, machine_info, save_results, timed_searches, versions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import t4dm_core
from seeds import scenarios as sc
from t4dm_core import Hit, Memory, MiniLMEmbedder, Ranking, Store

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "benchmarks"
K = 10
KS = (1, 5, 10)
WARMUP = 5
D_SYNTHETIC_MAX = 10_000  # D stores above this size are filled up with docstring background
HYBRID, HYBRID_C = "T4DM hybrid", "T4DM hybrid + completion"
VECTOR, BM25 = "vector exact (numpy)", "BM25 (T4DM lexical)"
T4_VECTOR, T4_VECTOR_C = "T4DM vector (HNSW)", "T4DM vector + completion"
NO_PRIORS = "T4DM hybrid, priors off"
PRIORS_OFF = Ranking(recency=0, importance=0, kappa=0)
NS = "default"

Search = Callable[[sc.Query], Sequence[Any]]  # hits or labels, best first


# ----------------------------------------------------------------------------- embeddings
class QueryVectors:
    """The embedder of every store in this run: MiniLM plus a table of vectors embedded beforehand.

    ``matrix(texts)`` embeds a list once (batched) and caches it on disk by content hash;
    ``embed_query`` answers from the table unless ``live`` is set, in which case MiniLM
    runs for the query as it would in production. ``name``/``dim`` are MiniLMEmbedder's,
    so the stores record the packaged embedder. Not thread-safe (this runner is serial).
    """

    name = MiniLMEmbedder.name
    dim = MiniLMEmbedder.dim

    def __init__(self, cache_dir: Path) -> None:
        self.model = MiniLMEmbedder()
        self.cache_dir = cache_dir
        self.table: dict[str, np.ndarray] = {}
        self.live = False
        self.embedded = 0
        self.embed_seconds = 0.0

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` (rows in order); also remembered for ``embed_query``."""
        key = hashlib.sha256(("\x1e".join(texts) + self.name).encode()).hexdigest()[:20]
        path = self.cache_dir / f"emb-{len(texts)}-{key}.npy"
        if path.exists():
            out = np.load(path)
        else:
            todo = list(dict.fromkeys(t for t in texts if t not in self.table))
            if todo:
                started = time.perf_counter()
                fresh = self.model.embed_documents(todo)
                self.embed_seconds += time.perf_counter() - started
                self.embedded += len(todo)
                self.table.update(zip(todo, fresh, strict=True))
            out = np.stack([self.table[t] for t in texts]).astype(np.float32)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, out)
            os.replace(tmp, path)
        for text, vec in zip(texts, out, strict=True):
            self.table.setdefault(text, vec)
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        cached = None if self.live else self.table.get(text)
        return cached if cached is not None else self.model.embed_query(text)


class ExactIndex:
    """The plain vector-store baseline: exact cosine (numpy brute force) per namespace. Returns labels."""

    def __init__(self, emb: QueryVectors) -> None:
        self.emb = emb
        self.labels: dict[str, list[str]] = {}
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, namespace: str, labels: Sequence[str], vectors: np.ndarray) -> None:
        self.labels.setdefault(namespace, []).extend(labels)
        old = self.vectors.get(namespace)
        self.vectors[namespace] = vectors if old is None else np.concatenate([old, vectors])

    def search(self, query: sc.Query) -> list[str]:
        q = self.emb.embed_query(query.text)
        scores = self.vectors[query.namespace] @ (q / np.linalg.norm(q))
        k = min(K, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        labels = self.labels[query.namespace]
        return [labels[i] for i in top]


# ----------------------------------------------------------------------------- metrics
def query_metrics(ranked: Sequence[str], evidence: Sequence[str]) -> dict[str, float]:
    """recall@k (fraction of the evidence in the top k), hit@10, P@1 and reciprocal rank of one query."""
    ev = set(evidence)
    first = next((i + 1 for i, label in enumerate(ranked) if label in ev), None)
    out = {f"recall@{k}": len(set(ranked[:k]) & ev) / len(ev) for k in KS}
    out["hit@10"] = float(first is not None and first <= K)
    out["p@1"] = float(first == 1)
    out["mrr"] = 0.0 if first is None else 1.0 / first
    return out


def aggregate(ranked: list[list[str]], queries: Sequence[sc.Query]) -> dict[str, Any]:
    """Mean metrics over all queries and per category."""
    rows = [(q.category, query_metrics(r, q.evidence)) for r, q in zip(ranked, queries, strict=True)]

    def mean(selected: list[dict[str, float]]) -> dict[str, float]:
        return {key: float(np.mean([m[key] for m in selected])) for key in selected[0]} | {"n": len(selected)}

    categories = sorted({c for c, _ in rows})
    return {"all": mean([m for _, m in rows]),
            "by_category": {c: mean([m for cat, m in rows if cat == c]) for c in categories}}


def latency_ms(samples_ns: np.ndarray) -> dict[str, float]:
    ms = samples_ns / 1e6
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "n": int(ms.size)}


def default_label(x: Any) -> str:
    return x.id if isinstance(x, Hit) else str(x)


def run_method(search: Search, queries: Sequence[sc.Query],
               label: Callable[[Any], str] = default_label) -> tuple[list[list[str]], np.ndarray]:
    """Labels ranked per query and ns per call (labels are computed outside the timed calls)."""
    raw, times = timed_searches(search, queries, WARMUP)
    return [[label(x) for x in r] for r in raw], times


def evaluate(methods: dict[str, Search], queries: Sequence[sc.Query], emb: QueryVectors, *, live: Sequence[str],
             n_live: int, label: Callable[[Any], str] = default_label) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics and latency of every method; ``live`` methods are also timed with MiniLM in the loop.

    Returns (JSON-able results per method, ranked labels per method).
    """
    results: dict[str, Any] = {}
    ranked_by: dict[str, list[list[str]]] = {}
    for name, search in methods.items():
        ranked, times = run_method(search, queries, label)
        ranked_by[name] = ranked
        results[name] = {**aggregate(ranked, queries), "latency_excl_embedding": latency_ms(times)}
        if name in live:
            emb.live = True
            try:
                _, live_times = run_method(search, queries[:n_live], label)
            finally:
                emb.live = False
            results[name]["latency_incl_embedding"] = latency_ms(live_times)
        log(f"    {name}: recall@10 {results[name]['all']['recall@10']:.3f} P@1 {results[name]['all']['p@1']:.3f} "
            f"p50 {results[name]['latency_excl_embedding']['p50_ms']:.2f} ms")
    return results, ranked_by


def t4dm(store: Store, **kwargs: Any) -> Search:
    """A T4DM search method (``learn=False`` unless given)."""
    kwargs.setdefault("learn", False)
    return lambda q: store.search(q.text, k=K, namespace=q.namespace, **kwargs)


def put_items(store: Store, items: Sequence[sc.Item], vectors: np.ndarray, namespace: str = NS,
              batch: int = 1000) -> None:
    for start in range(0, len(items), batch):
        store.put_many([Memory(text=it.text, id=it.id, namespace=namespace, vector=vectors[start + j],
                               metadata=it.metadata, valid_from=it.valid_from)
                        for j, it in enumerate(items[start:start + batch])])


def paired_p1(base: list[list[str]], other: list[list[str]], queries: Sequence[sc.Query]) -> dict[str, Any]:
    """How ``other`` changes P@1 against ``base``, query by query, with a two-sided sign test.

    ``fixed``: wrong top-1 made right; ``broken``: right made wrong; ``p_value``: probability
    of a split at least this uneven if both were equally likely (exact binomial).
    """
    good_a = [bool(a) and a[0] in q.evidence for a, q in zip(base, queries, strict=True)]
    good_b = [bool(b) and b[0] in q.evidence for b, q in zip(other, queries, strict=True)]
    fixed = sum(b and not a for a, b in zip(good_a, good_b, strict=True))
    broken = sum(a and not b for a, b in zip(good_a, good_b, strict=True))
    n = fixed + broken
    tail = sum(math.comb(n, i) for i in range(min(fixed, broken) + 1)) / 2**n if n else 1.0
    changed = float(np.mean([x[:1] != y[:1] for x, y in zip(base, other, strict=True)]))
    return {"top1_changed": changed, "fixed": fixed, "broken": broken, "p_value": min(1.0, 2 * tail)}


# ----------------------------------------------------------------------------- scenario A
def scenario_a(emb: QueryVectors, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    s = sc.slot_stories(args.seed, args.a_groups)
    log(f"A: {len(s.items)} stories, {len(s.queries)} partial cues")
    vectors = emb.matrix([it.text for it in s.items])
    emb.matrix([q.text for q in s.queries])
    exact = ExactIndex(emb)
    exact.add(NS, [it.id for it in s.items], vectors)
    with t4dm_core.open(work / "A", embedder=emb) as store:
        put_items(store, s.items, vectors)
        store.flush()
        methods = {HYBRID: t4dm(store), HYBRID_C: t4dm(store, complete=True), T4_VECTOR: t4dm(store, mode="vector"),
                   T4_VECTOR_C: t4dm(store, mode="vector", complete=True), VECTOR: exact.search,
                   BM25: t4dm(store, mode="lexical"), NO_PRIORS: t4dm(store, ranking=PRIORS_OFF)}
        results, ranked = evaluate(methods, s.queries, emb, live=(HYBRID, VECTOR), n_live=args.live_queries)
    return {"items": len(s.items), "queries": len(s.queries), "methods": results,
            "completion": {"hybrid": paired_p1(ranked[HYBRID], ranked[HYBRID_C], s.queries),
                           "vector": paired_p1(ranked[T4_VECTOR], ranked[T4_VECTOR_C], s.queries)}}


# ----------------------------------------------------------------------------- scenario C
NS_VERSIONED, NS_APPENDED = "c-versioned", "c-appended"


def scenario_c(emb: QueryVectors, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    facts = sc.changing_facts(args.seed, args.c_facts, args.c_facts, eras=args.c_eras)
    changes = [(f, ch) for f in facts for ch in f.changes]
    log(f"C: {len(facts)} facts, {len(changes)} values over {args.c_eras} eras")
    vectors = dict(zip([ch.text for _, ch in changes], emb.matrix([ch.text for _, ch in changes]), strict=True))
    emb.matrix([f.question for f in facts])
    boundaries: list[float] = []
    out: dict[str, Any] = {"facts": len(facts), "values": len(changes), "eras": args.c_eras}
    with t4dm_core.open(work / "C", embedder=emb) as store:
        for era in range(args.c_eras):
            batch = []
            for f, ch in changes:
                if ch.era != era:
                    continue
                meta = {"key": f.key, "kind": f.kind, "era": era, "value": ch.value}
                for ns, mid in ((NS_VERSIONED, f.key), (NS_APPENDED, f"{f.key}@{era}")):
                    batch.append(Memory(text=ch.text, id=mid, namespace=ns, vector=vectors[ch.text], metadata=meta,
                                        valid_from=ch.valid_from))
            store.put_many(batch)
            boundaries.append(time.time())  # transaction time after era `era` was written
            time.sleep(0.02)
        store.flush()
        exact = ExactIndex(emb)
        for f in facts:  # a plain vector store: upserts keep only the latest value; appends keep all
            last = f.changes[-1]
            exact.add(NS_VERSIONED, [f"{f.key}@{last.era}"], vectors[last.text][None, :])
            exact.add(NS_APPENDED, [f"{f.key}@{ch.era}" for ch in f.changes],
                      np.stack([vectors[ch.text] for ch in f.changes]))

        def label(h: Any) -> str:
            if not isinstance(h, Hit):
                return str(h)
            meta = h.memory.metadata
            return f"{meta['key']}@{meta['era']}"

        for ns in (NS_VERSIONED, NS_APPENDED):
            log(f"  C/{ns}")
            current = [sc.Query(f"{f.key}-now", f.question, (f"{f.key}@{f.changes[-1].era}",), f.kind, ns)
                       for f in facts]
            methods = {HYBRID: t4dm(store), T4_VECTOR: t4dm(store, mode="vector"), VECTOR: exact.search,
                       BM25: t4dm(store, mode="lexical"), NO_PRIORS: t4dm(store, ranking=PRIORS_OFF)}
            cur, _ = evaluate(methods, current, emb, live=(), n_live=0, label=label)
            past = [(f, ch) for f in facts for ch in f.changes[:-1]]
            old = [sc.Query(f"{f.key}-{ch.era}", f.question, (f"{f.key}@{ch.era}",), f.kind, ns) for f, ch in past]
            tx_time = {q.id: boundaries[ch.era] for q, (_, ch) in zip(old, past, strict=True)}
            valid_time = {q.id: (ch.valid_from + 3600.0, None) for q, (_, ch) in zip(old, past, strict=True)}
            as_of_results = {
                "as_of=T (past transaction and valid time)": _as_of_leg(store, emb, ns, past, old, tx_time, label),
                "as_of=(valid T, None) (valid time only)": _as_of_leg(store, emb, ns, past, old, valid_time, label)}
            out[ns] = {"current": cur, "as_of": as_of_results, "as_of_queries": len(old)}
    return out


def _as_of_leg(store: Store, emb: QueryVectors, ns: str, past: list[tuple[sc.ChangingFact, sc.FactChange]],
               queries: list[sc.Query], when: dict[str, Any], label: Callable[[Any], str]) -> dict[str, Any]:
    """Searches and ``get`` at past times ``when[query id]``: is the value of that time first?"""

    def method(mode: str | None) -> Search:
        return lambda q: store.search(q.text, k=K, namespace=q.namespace, mode=mode, as_of=when[q.id], learn=False)

    out: dict[str, Any]
    out, _ = evaluate({HYBRID: method(None), T4_VECTOR: method("vector"), BM25: method("lexical")}, queries, emb,
                      live=(), n_live=0, label=label)
    good = 0
    for (f, ch), q in zip(past, queries, strict=True):
        got = store.get(f.key if ns == NS_VERSIONED else f"{f.key}@{ch.era}", namespace=ns, as_of=when[q.id])
        good += got is not None and got.text == ch.text
    out["get(id, as_of) returns the old value"] = good / len(queries)
    return out


# ----------------------------------------------------------------------------- scenario D
def scenario_d(emb: QueryVectors, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sizes = sorted(args.d_sizes + ([100_000] if args.full else []))
    n_synthetic = min(max(sizes), D_SYNTHETIC_MAX)
    s = sc.near_collisions(args.seed, n_synthetic)
    vectors = emb.matrix([it.text for it in s.items])
    emb.matrix([q.text for q in s.queries])
    background: tuple[list[str], np.ndarray] | None = None
    if max(sizes) > n_synthetic:
        corpus = load_corpus(DEFAULT_DOCS, DEFAULT_QUERIES, DEFAULT_SEED)
        need = max(sizes) - n_synthetic
        background = corpus.texts[:need], corpus.vectors[:need]
    out: dict[str, Any] = {}
    for size in sizes:
        syn = min(size, n_synthetic)
        n_bg = size - syn
        log(f"D: {size:,} records ({syn:,} synthetic + {n_bg:,} background), {len(s.queries)} probes")
        exact = ExactIndex(emb)
        exact.add(NS, [it.id for it in s.items[:syn]], vectors[:syn])
        path = work / f"D-{size}"
        started = time.perf_counter()
        with t4dm_core.open(path, embedder=emb) as store:
            put_items(store, s.items[:syn], vectors[:syn])
            if n_bg:
                assert background is not None
                texts, bg_vectors = background
                bg_items = [sc.Item(f"bg-{i:06d}", texts[i], {"scenario": "background"}) for i in range(n_bg)]
                put_items(store, bg_items, bg_vectors[:n_bg])
                exact.add(NS, [it.id for it in bg_items], bg_vectors[:n_bg])
            store.flush()
            ingest_s = time.perf_counter() - started
            methods = {HYBRID: t4dm(store), HYBRID_C: t4dm(store, complete=True), T4_VECTOR: t4dm(store, mode="vector"),
                       VECTOR: exact.search, BM25: t4dm(store, mode="lexical"),
                       NO_PRIORS: t4dm(store, ranking=PRIORS_OFF)}
            results, ranked = evaluate(methods, s.queries, emb, live=(HYBRID, VECTOR), n_live=args.live_queries)
            stats = store.stats()
        out[str(size)] = {"records": size, "synthetic": syn, "background": n_bg, "ingest_seconds": ingest_s,
                          "segments": stats["segments"], "disk_bytes": stats["disk_bytes"], "methods": results,
                          "completion": paired_p1(ranked[HYBRID], ranked[HYBRID_C], s.queries)}
        shutil.rmtree(path, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- conversations
def scenario_conversations(emb: QueryVectors, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    cs = sc.conversations(args.seed, args.personas, args.sessions, args.turns)
    texts = [text for sess in cs.sessions for _, text in sess.turns]
    log(f"conversations: {args.personas} personas, {len(cs.sessions)} sessions, {len(texts)} turns, "
        f"{len(cs.queries)} questions")
    vectors = emb.matrix(texts)
    emb.matrix([q.text for q in cs.queries])
    exact = ExactIndex(emb)
    with t4dm_core.open(work / "conversations", embedder=emb) as store:
        row = 0
        for sess in cs.sessions:
            n = len(sess.turns)
            ids = store.add_conversation(sess.id, sess.turns, namespace=sess.namespace, vectors=vectors[row:row + n])
            exact.add(sess.namespace, ids, vectors[row:row + n])
            row += n
        store.flush()
        missing = [e for q in cs.queries for e in q.evidence if store.get(e, namespace=q.namespace) is None]
        if missing:
            raise SystemExit(f"evidence ids not in the store: {missing[:5]}")
        no_graph = Ranking(graph=0)
        rrf_only = Ranking(graph=0, recency=0, importance=0, kappa=0)
        methods = {HYBRID: t4dm(store), HYBRID_C: t4dm(store, complete=True), VECTOR: exact.search,
                   BM25: t4dm(store, mode="lexical"), T4_VECTOR: t4dm(store, mode="vector"),
                   "T4DM hybrid, graph off": t4dm(store, ranking=no_graph), NO_PRIORS: t4dm(store, ranking=PRIORS_OFF),
                   "T4DM vector+BM25 fusion only": t4dm(store, ranking=rrf_only),
                   "T4DM hybrid, learning on read": t4dm(store, learn=True)}  # last: it changes the store
        results, ranked = evaluate(methods, cs.queries, emb, live=(HYBRID, VECTOR), n_live=args.live_queries)
    return {"personas": args.personas, "sessions": len(cs.sessions), "turns": len(texts),
            "questions": len(cs.queries), "methods": results,
            "completion": paired_p1(ranked[HYBRID], ranked[HYBRID_C], cs.queries)}


# ----------------------------------------------------------------------------- sleep
def live_bytes(path: str) -> int:
    """Bytes of the files the newest manifest references (segments, WAL, the manifest itself)."""
    names = [n for n in os.listdir(path) if n.startswith("MANIFEST-") and n.endswith(".json")]
    newest = max(names, key=lambda n: int(n[9:-5]))
    body = json.loads(Path(path, newest).read_text(encoding="utf-8"))["body"]
    files = [f["name"] for seg in body["segments"] for f in seg["files"].values()]
    files += [f"wal-{n:06d}.log" for n in body["wal_numbers"]] + [newest]
    return sum(os.path.getsize(os.path.join(path, f)) for f in files if os.path.exists(os.path.join(path, f)))


def storage(store: Store) -> dict[str, Any]:
    stats = store.stats()
    return {"disk_bytes": stats["disk_bytes"], "live_bytes": live_bytes(store.path), "memories_in_namespace":
            len(store.ids(namespace=NS)), "versions_all_namespaces": stats["versions"], "segments": stats["segments"]}


def scenario_sleep(emb: QueryVectors, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Storage and held-out recall before sleep, after sleep, and after ``vacuum()`` past the sleep.

    Storage is read after one more commit (a flush of one record) so the previous
    generation, which the store keeps as a fallback until its next commit, has rotated out:
    ``disk_bytes`` then counts what the store holds at rest. ``as_of_before_sleep`` is the
    share of held-out questions whose top 10 with ``as_of`` = the moment before the sleep
    equals the top 10 measured before the sleep (the sleep must be reversible in time).
    """
    s = sc.redundant_stream(args.seed, args.r_facts)
    log(f"sleep: {len(s.items)} memories stating {len(s.queries)} facts")
    vectors = emb.matrix([it.text for it in s.items])
    emb.matrix([q.text for q in s.queries])
    out: dict[str, Any] = {"memories": len(s.items), "facts": len(s.queries)}
    before_lists: list[list[str]] = []
    with t4dm_core.open(work / "sleep", embedder=emb) as store:
        put_items(store, s.items, vectors)
        store.flush()
        store.compact(full=True)
        before_sleep = time.time()
        for phase in ("before", "after", "vacuumed"):
            if phase == "after":
                started = time.perf_counter()
                report = store.sleep()
                assert isinstance(report, t4dm_core.SleepReport)
                out["sleep_seconds"] = time.perf_counter() - started
                out["report"] = {"merged_groups": len(report.merged),
                                 "absorbed": sum(len(v) for v in report.merged.values()),
                                 "prototypes": len(report.prototypes), "forgotten": len(report.forgotten),
                                 "replayed": report.replayed, "versions_written": report.versions_written,
                                 "compacted": report.compacted, "seconds": report.seconds}
            elif phase == "vacuumed":
                out["vacuum_dropped_versions"] = store.vacuum()
            store.put(Memory(text="storage probe", id="storage-probe", namespace="probe", vector=vectors[0]))
            store.flush()
            current = store.find(namespace=NS)
            exact = ExactIndex(emb)
            exact.add(NS, [str(m.id) for m in current], np.stack([m.vector for m in current if m.vector is not None]))
            methods = {HYBRID: t4dm(store), T4_VECTOR: t4dm(store, mode="vector"), VECTOR: exact.search}
            results, ranked = evaluate(methods, s.queries, emb, live=(), n_live=0)
            members = {str(m.id): {e.dst for e in store.edges(str(m.id), namespace=NS) if e.type == "abstracts"}
                       for m in current if str(m.id).startswith("proto-")}
            for name, lists in ranked.items():
                found = [any(x in q.evidence or members.get(x, set()) & set(q.evidence) for x in r[:K])
                         for r, q in zip(lists, s.queries, strict=True)]
                results[name]["fact_hit@10_prototypes_count"] = float(np.mean(found))
                results[name]["prototype_hits_in_top10"] = int(sum(x in members for r in lists for x in r[:K]))
            out[phase] = {"storage": storage(store), "methods": results,
                          "as_of_before_sleep": as_of_agreement(store, s.queries, before_sleep, before_lists)}
    return out


def as_of_agreement(store: Store, queries: Sequence[sc.Query], when: float,
                    reference: list[list[str]]) -> float | str:
    """Share of queries whose vector top 10 at ``as_of=when`` equals ``reference`` (filled on first call)."""
    lists = []
    for q in queries:
        try:
            hits = store.search(q.text, k=K, namespace=NS, mode="vector", learn=False, as_of=when)
        except t4dm_core.HistoryUnavailableError:
            return "HistoryUnavailableError (vacuumed)"
        lists.append([str(h.memory.id) for h in hits])
    if not reference:
        reference.extend(lists)
    return float(np.mean([a == b for a, b in zip(lists, reference, strict=True)]))


# ----------------------------------------------------------------------------- embedding latency
def embedding_latency(emb: QueryVectors, texts: Sequence[str], threads: Sequence[int], restore: int) -> dict[str, Any]:
    """MiniLM ``embed_query`` wall time per short query at several torch thread counts."""
    import torch

    out: dict[str, Any] = {}
    for n in threads:
        torch.set_num_threads(n)
        for text in texts[:WARMUP]:
            emb.model.embed_query(text)
        times = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            start = time.perf_counter_ns()
            emb.model.embed_query(text)
            times[i] = time.perf_counter_ns() - start
        out[f"torch_threads={n}"] = latency_ms(times)
    torch.set_num_threads(restore)
    return out


# ----------------------------------------------------------------------------- targets
def status(ok: bool | None) -> str:
    return "not run" if ok is None else ("MET" if ok else "MISSED")


def targets(r: dict[str, Any]) -> list[dict[str, str]]:
    """The issue's targets, each with the measured numbers and MET / MISSED."""
    out = []
    conv = r["scenarios"]["conversations"]["methods"]
    ratio = conv[HYBRID]["all"]["recall@10"] / max(1e-9, conv[VECTOR]["all"]["recall@10"])
    out.append({"target": "conversations: hybrid recall@10 of evidence >= 1.4x plain vector",
                "measured": f"{conv[HYBRID]['all']['recall@10']:.3f} vs {conv[VECTOR]['all']['recall@10']:.3f} "
                            f"= {ratio:.2f}x",
                "status": status(ratio >= 1.4)})
    a = r["scenarios"]["A"]["methods"]
    p_h, p_c = a[HYBRID]["all"]["p@1"], a[HYBRID_C]["all"]["p@1"]
    sign = r["scenarios"]["A"]["completion"]["hybrid"]
    out.append({"target": "A: partial-cue P@1 >= 0.6, completion beating no completion",
                "measured": f"P@1 hybrid {p_h:.3f}, hybrid + completion {p_c:.3f} (fixed {sign['fixed']}, broke "
                            f"{sign['broken']}, sign test p={sign['p_value']:.2f}); vector "
                            f"{a[T4_VECTOR]['all']['p@1']:.3f}, vector + completion {a[T4_VECTOR_C]['all']['p@1']:.3f}",
                "status": status(p_c >= 0.6 and p_c > p_h)})
    c = r["scenarios"]["C"]
    now = {ns: c[ns]["current"][HYBRID]["all"]["p@1"] for ns in (NS_VERSIONED, NS_APPENDED)}
    tx = "as_of=T (past transaction and valid time)"
    past = {ns: c[ns]["as_of"][tx][HYBRID]["all"]["p@1"] for ns in (NS_VERSIONED, NS_APPENDED)}
    got = c[NS_VERSIONED]["as_of"][tx]["get(id, as_of) returns the old value"]
    out.append({"target": "C: current value first >= 95% while as_of returns the old one",
                "measured": f"current first: versioned {now[NS_VERSIONED]:.3f}, appended {now[NS_APPENDED]:.3f}; "
                            f"as_of top-1 = old value: versioned {past[NS_VERSIONED]:.3f}, appended "
                            f"{past[NS_APPENDED]:.3f}; get(id, as_of) {got:.3f}",
                "status": status(min(now.values()) >= 0.95 and min(past.values()) >= 0.95 and got >= 0.95)})
    sl = r["scenarios"]["sleep"]
    before, after = sl["before"], sl["after"]
    vacuumed = sl["vacuumed"]
    disk = after["storage"]["disk_bytes"] / before["storage"]["disk_bytes"] - 1
    disk_v = vacuumed["storage"]["disk_bytes"] / before["storage"]["disk_bytes"] - 1
    rec_b, rec_a = before["methods"][HYBRID]["all"]["hit@10"], after["methods"][HYBRID]["all"]["hit@10"]
    rec_v = vacuumed["methods"][HYBRID]["all"]["hit@10"]
    out.append({"target": "sleep on a redundant stream: storage -30%, held-out recall@10 within 1 point",
                "measured": f"disk after sleep {disk:+.0%} (as_of before the sleep: top 10 unchanged for "
                            f"{after['as_of_before_sleep']:.3f} of questions); after sleep + vacuum() {disk_v:+.0%} "
                            f"(as_of before the sleep: {vacuumed['as_of_before_sleep']}); memories "
                            f"{before['storage']['memories_in_namespace']} -> "
                            f"{after['storage']['memories_in_namespace']}; held-out recall@10 (fact found) "
                            f"{rec_b:.3f} -> {rec_a:.3f} -> {rec_v:.3f}",
                "status": f"history kept: {status(disk <= -0.30 and rec_a >= rec_b - 0.01)}; vacuumed: "
                          f"{status(disk_v <= -0.30 and rec_v >= rec_b - 0.01)}"})
    d = r["scenarios"]["D"].get("100000")
    if d is None:
        out.append({"target": "search p95 <= 20 ms at 100k memories, 2 cores, incl. query embedding",
                    "measured": "100k leg not run (use --full)", "status": status(None)})
    else:
        inc = d["methods"][HYBRID]["latency_incl_embedding"]["p95_ms"]
        exc = d["methods"][HYBRID]["latency_excl_embedding"]["p95_ms"]
        out.append({"target": "search p95 <= 20 ms at 100k memories, 2 cores, incl. query embedding",
                    "measured": f"hybrid p95 {inc:.1f} ms incl. embedding ({exc:.1f} ms excl.)",
                    "status": status(inc <= 20.0)})
    return out


# ----------------------------------------------------------------------------- report
def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _lat(m: dict[str, Any], key: str) -> str:
    lat = m.get(key)
    return "-" if lat is None else f"{lat['p50_ms']:.2f} / {lat['p95_ms']:.2f}"


def method_table(methods: dict[str, Any]) -> str:
    rows = []
    for name, m in methods.items():
        a = m["all"]
        rows.append([name, f"{a['recall@1']:.3f}", f"{a['recall@5']:.3f}", f"{a['recall@10']:.3f}", f"{a['p@1']:.3f}",
                     f"{a['mrr']:.3f}", _lat(m, "latency_excl_embedding"), _lat(m, "latency_incl_embedding")])
    return _table(["method", "recall@1", "recall@5", "recall@10", "P@1", "MRR", "p50 / p95 ms excl. emb.",
                   "p50 / p95 ms incl. emb."], rows)


def category_table(methods: dict[str, Any], metric: str) -> str:
    cats = list(next(iter(methods.values()))["by_category"])
    rows = [[name] + [f"{m['by_category'][c][metric]:.3f}" for c in cats] for name, m in methods.items()]
    first = next(iter(methods.values()))["by_category"]
    return _table([f"{metric} by category"] + [f"{c} (n={first[c]['n']})" for c in cats], rows)


def completion_line(comp: dict[str, Any]) -> str:
    return "; ".join(f"completion vs none ({name}): top-1 changed in {c['top1_changed']:.1%} of queries, fixed "
                     f"{c['fixed']}, broke {c['broken']} (sign test p={c['p_value']:.2f})" for name, c in comp.items())


def render(r: dict[str, Any]) -> str:
    s = r["scenarios"]
    parts = [f"## Memory-eval results ({r['date']}, git {r['versions']['git']}, {r['total_seconds']:.0f} s, "
             f"load {r['machine']['loadavg_start']} -> {r['machine'].get('loadavg_end')})",
             "### Targets", _table(["target", "measured", "status"],
                                   [[t["target"], t["measured"], f"**{t['status']}**"] for t in r["targets"]])]
    conv = s["conversations"]
    parts += [f"### Conversations ({conv['turns']} turns, {conv['questions']} questions)",
              method_table(conv["methods"]), category_table(conv["methods"], "recall@10"),
              category_table(conv["methods"], "p@1"), completion_line({"hybrid": conv["completion"]})]
    a = s["A"]
    parts += [f"### A: partial-cue slot stories ({a['items']} stories, {a['queries']} cues)",
              method_table(a["methods"]), category_table(a["methods"], "p@1"),
              completion_line(a["completion"])]
    c = s["C"]
    rows = []
    for ns in (NS_VERSIONED, NS_APPENDED):
        for name, m in c[ns]["current"].items():
            rows.append([ns, "current value first", name, f"{m['all']['p@1']:.3f}", f"{m['all']['mrr']:.3f}"])
        for variant, res in c[ns]["as_of"].items():
            for name, m in res.items():
                if isinstance(m, dict):
                    rows.append([ns, variant, name, f"{m['all']['p@1']:.3f}", f"{m['all']['mrr']:.3f}"])
            rows.append([ns, variant, "get(id, as_of)", f"{res['get(id, as_of) returns the old value']:.3f}", "-"])
    parts += [f"### C: changing facts ({c['facts']} facts, {c['values']} values)",
              _table(["storage", "question", "method", "P@1 (expected value first)", "MRR"], rows)]
    rows = []
    for size, leg in s["D"].items():
        for name, m in leg["methods"].items():
            rows.append([f"{int(size):,}", name, f"{m['all']['p@1']:.3f}", f"{m['all']['recall@10']:.3f}",
                         f"{m['all']['mrr']:.3f}", _lat(m, "latency_excl_embedding"),
                         _lat(m, "latency_incl_embedding")])
    parts += ["### D: near-collision interference", _table(["records", "method", "P@1", "recall@10", "MRR",
                                                            "p50 / p95 ms excl. emb.", "p50 / p95 ms incl. emb."],
                                                           rows)]
    parts += [f"{int(size):,} records: " + completion_line({"hybrid": leg["completion"]})
              for size, leg in s["D"].items()]
    sl = s["sleep"]
    rows = []
    for phase in (p for p in ("before", "after", "vacuumed") if p in sl):
        st = sl[phase]["storage"]
        agree = sl[phase].get("as_of_before_sleep", "-")
        for name, m in sl[phase]["methods"].items():
            rows.append([phase, name, f"{m['all']['hit@10']:.3f}", f"{m['all']['p@1']:.3f}", f"{m['all']['mrr']:.3f}",
                         f"{m['fact_hit@10_prototypes_count']:.3f}",
                         m["prototype_hits_in_top10"], f"{st['disk_bytes']:,}", f"{st['live_bytes']:,}",
                         st["memories_in_namespace"], st["versions_all_namespaces"],
                         f"{agree:.3f}" if isinstance(agree, float) else agree])
    parts += [f"### Sleep on a redundant stream ({sl['memories']} memories, {sl['facts']} facts)",
              _table(["phase", "method", "held-out recall@10 (fact found)", "P@1", "MRR", "recall@10, prototypes count",
                      "prototype hits", "disk bytes", "live-file bytes", "memories", "versions",
                      "as_of before sleep = before"], rows),
              f"sleep report: {json.dumps(sl['report'])}"]
    rows = [[k, f"{v['p50_ms']:.1f}", f"{v['p95_ms']:.1f}"] for k, v in r["embedding_latency"].items()]
    parts += ["### MiniLM query embedding alone", _table(["setting", "p50 ms", "p95 ms"], rows)]
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="T4DM memory-dynamics evaluation (issue 4; see BENCHMARKS.md)")
    parser.add_argument("--full", action="store_true", help="add the 100k leg of scenario D (latency target)")
    parser.add_argument("--seed", type=int, default=0, help="scenario generator seed")
    parser.add_argument("--a-groups", type=int, default=300, help="A: target stories (each + 4 hard negatives)")
    parser.add_argument("--c-facts", type=int, default=80, help="C: preferences and as many settings")
    parser.add_argument("--c-eras", type=int, default=4)
    parser.add_argument("--d-sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--personas", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=20, help="turns per session")
    parser.add_argument("--r-facts", type=int, default=300, help="sleep: distinct facts in the redundant stream")
    parser.add_argument("--live-queries", type=int, default=100, help="queries timed with MiniLM in the loop")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads for query embedding (1: see the embedding-latency table)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="OpenBLAS threads (1: on a shared 2-core box, 2 threads spin and spike p95)")
    parser.add_argument("--workdir", default=str(HERE / ".cache" / "memory-eval" / "run"))
    parser.add_argument("--out", default=None)
    parser.add_argument("--render", default=None, help="print the Markdown of a results JSON and exit")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text(encoding="utf-8"))))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.torch_threads)
    with threadpool_limits(args.blas_threads, user_api="blas"):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Every scenario, then the targets; writes the results JSON and prints the Markdown."""
    started = time.time()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    emb = QueryVectors(HERE / ".cache" / "memory-eval")
    emb.model.embed_query("warm up")
    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "machine": machine_info(),
                               "versions": versions((), REPO),
                               "argv": sys.argv[1:], "settings": {k: v for k, v in vars(args).items()
                                                                  if k not in ("render", "out", "workdir")},
                               "scenarios": {}}
    results["scenarios"]["conversations"] = scenario_conversations(emb, args, work)
    results["scenarios"]["A"] = scenario_a(emb, args, work)
    results["scenarios"]["C"] = scenario_c(emb, args, work)
    results["scenarios"]["sleep"] = scenario_sleep(emb, args, work)
    results["scenarios"]["D"] = scenario_d(emb, args, work)
    probe = [q.text for q in sc.slot_stories(args.seed, 20).queries[:50]]
    results["embedding_latency"] = embedding_latency(emb, probe, (1, 2), args.torch_threads)
    results["embedded_this_run"] = {"texts": emb.embedded, "seconds": round(emb.embed_seconds, 1)}
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.time() - started, 1)
    results["targets"] = targets(results)
    shutil.rmtree(work, ignore_errors=True)
    suffix = "-full" if args.full else ""
    out = Path(args.out) if args.out else HERE / "results" / f"memory-eval-{results['date']}{suffix}.json"
    save_results(results, out, render(results))


if __name__ == "__main__":
    main()
