"""T4DM demo: ingest the standard library's docstrings into an embedded store, then query it.

Run with ``make demo`` (creates .venv first). Everything is offline: the corpus is the
installed Python standard library, the embedder is the packaged all-MiniLM-L6-v2.

Shows: durable batch ingest with a progress bar, hybrid search (vector + BM25 + graph +
priors, each hit explained) against plain vector search, filtered search, graph neighbours
(members linked to their module), an as-of query after an update, and a sleep
(consolidation: near-duplicate merges and prototype memories).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import t4dm_core
from seeds.docstring_corpus import DocItem, sample_stdlib_docstrings
from t4dm_core import Memory


def ingest(store: t4dm_core.Store, items: list[DocItem], batch_size: int) -> None:
    modules = {item.module for item in items if item.kind == "module"}
    with tqdm(total=len(items), unit="doc", desc="ingest") as bar:
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            store.put_many([Memory(text=f"{it.module}.{it.qualname}: {it.text}" if it.qualname else
                                   f"{it.module}: {it.text}", id=it.id,
                                   metadata={"module": it.module, "package": it.module.split(".")[0],
                                             "kind": it.kind, "name": it.qualname or it.module})
                            for it in batch])
            for it in batch:
                if it.kind != "module" and it.module in modules:
                    store.link(f"{it.module}:", it.id, type="contains")
            bar.update(len(batch))
    store.flush()


def show(title: str, hits: list[t4dm_core.Hit]) -> None:
    print(f"\n== {title}")
    for hit in hits:
        why = hit.explain
        detail = f"cos {why['vector']:.3f}" + (f"  bm25 {why['lexical']:5.2f}" if "lexical" in why else "")
        print(f"  {hit.score:6.4f} ({detail})  {hit.memory.id:<40} {hit.memory.text[:60]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="demo-store", help="store directory (default: ./demo-store)")
    parser.add_argument("--limit", type=int, default=3000, help="docstrings to ingest (default 3000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rebuild", action="store_true", help="delete the store first")
    args = parser.parse_args()

    if args.rebuild and os.path.exists(args.store):
        shutil.rmtree(args.store)
    with t4dm_core.open(args.store) as store:
        if not store.ids():
            items = sample_stdlib_docstrings(args.limit)
            print(f"Ingesting {len(items)} standard-library docstrings into {store.path}")
            t0 = time.perf_counter()
            ingest(store, items, args.batch_size)
            print(f"ingested in {time.perf_counter() - t0:.1f}s")
        stats = store.stats()
        print(f"store: {stats['memories']} memories, {stats['edges']} edges, {stats['segments']} segment(s), "
              f"{stats['disk_bytes'] / 1e6:.1f} MB on disk")

        query = "parse a JSON document into Python objects"
        show(f"hybrid search (the default for text): {query!r}", store.search(query, k=5))
        show("the same, vector only (mode='vector')", store.search(query, k=5, mode="vector"))
        show("filtered search: 'send an email message' where kind = class",
             store.search("send an email message", k=5, filter={"kind": "class"}))
        top = store.search("compress data with a sliding window", k=1, filter={"kind": {"$ne": "module"}})
        show("top hit for 'compress data with a sliding window'", top)
        if top:
            module_id = f"{top[0].memory.metadata['module']}:"
            if store.get(module_id) is not None:
                siblings = store.neighbors(module_id, type="contains")[:5]
                print(f"\n== graph: first members of {module_id!r} (edges of type 'contains')")
                for n in siblings:
                    print(f"  hop {n.hops}  {n.memory.id}")

        target = store.search("return the current time in seconds", k=1)[0].memory
        if not target.metadata.get("annotated"):  # re-running the demo does not annotate twice
            store.put(Memory(text=target.text + " [annotated by the demo: prefer time.monotonic for intervals]",
                             id=target.id, metadata={**target.metadata, "annotated": True}))
        latest = store.history(target.id)[-1]
        print(f"\n== as-of: {target.id} was updated; the old version is kept")
        print(f"  now:       {store.get(target.id).text[-70:]!r}")
        print(f"  as of then: {store.get(target.id, as_of=latest.recorded_at - 1e-3).text[-70:]!r}")
        print(f"  versions:  {len(store.history(target.id))}")

        print("\n== sleep: consolidate (NREM replay and near-duplicate merge, REM prototypes; no forgetting here)")
        report = store.sleep(policy=t4dm_core.SleepPolicy(prune=False), progress=True)
        assert isinstance(report, t4dm_core.SleepReport)
        print(f"  replayed {report.replayed}, merged {len(report.merged)} groups of near-duplicates, "
              f"built {len(report.prototypes)} prototypes, in {sum(report.seconds.values()):.1f}s")
        for (ns, proto_id), members in list(report.prototypes.items())[:2]:
            print(f"  prototype {proto_id} abstracts {len(members)} memories: "
                  f"{store.get(proto_id, namespace=ns).text[:70]!r}")


if __name__ == "__main__":
    main()
