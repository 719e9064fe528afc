"""The three engines under test behind one small interface.

Each adapter ingests the same rows (row ``i`` gets id ``i``, a text, a vector and metadata
``{"bucket": int, "source": str}``), answers single-vector top-k queries as a list of row
numbers, and can answer the bucket filter ``bucket < limit`` (selectivity ``limit / 100``).

* :class:`T4DMEngine` - the engine of this repo, through its public API only.
* :class:`HnswlibEngine` - raw hnswlib with the same M / ef_construction / space / threads:
  the floor T4DM's index layer is built on (no text, metadata or durability).
* :class:`ChromaEngine` - chromadb ``PersistentClient`` (cosine), when importable.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hnswlib
import numpy as np

import t4dm_core
from t4dm_core import Memory, Options

BATCH = 1_000


@dataclass
class Rows:
    """Rows to ingest: vectors (unit float32), optional texts, and per-row metadata columns."""

    vectors: np.ndarray
    texts: Sequence[str] | None
    buckets: np.ndarray
    sources: Sequence[str] | None

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def metadata(self, i: int) -> dict[str, Any]:
        meta: dict[str, Any] = {"bucket": int(self.buckets[i])}
        if self.sources is not None:
            meta["source"] = self.sources[i]
        return meta

    def text(self, i: int) -> str | None:
        return None if self.texts is None else self.texts[i]


@dataclass
class IngestResult:
    """Wall time of an ingest, split into the timed calls of the engine."""

    records: int
    seconds: float
    batch_seconds: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def _batches(n: int, size: int) -> list[range]:
    return [range(start, min(n, start + size)) for start in range(0, n, size)]


class T4DMEngine:
    """A T4DM store opened vectors-only (no embedder) with the given sync mode."""

    name = "T4DM"

    def __init__(self, path: str, dim: int, sync: str, **options: Any) -> None:
        self.path = path
        self.dim = dim
        self.options = Options(sync=sync, **options)  # type: ignore[arg-type]
        self.store = t4dm_core.open(path, dim=dim, options=self.options)
        self.ef: int | None = None

    def ingest(self, rows: Rows, batch: int = BATCH) -> IngestResult:
        """``put_many`` in batches of ``batch`` (Memory objects are built outside the timed calls).

        Memtable flushes run inside the ``put_many`` that fills the memtable (the writer
        flushes synchronously), so they are part of the timed total; ``flushing_batches``
        counts those calls and ``flush_seconds`` their time plus the final ``flush()``.
        ``settle_seconds`` is the close + reopen afterwards, which waits for any background
        compaction the flushes started.
        """
        times: list[float] = []
        flush_time, flushes = 0.0, 0
        buffered = self.store.stats()["memtable_rows"]
        for part in _batches(len(rows), batch):
            items = [Memory(text=rows.text(i), vector=rows.vectors[i], metadata=rows.metadata(i), id=str(i))
                     for i in part]
            start = time.perf_counter()
            self.store.put_many(items)
            took = time.perf_counter() - start
            times.append(took)
            now = self.store.stats()["memtable_rows"]
            if now < buffered + len(part):
                flushes, flush_time = flushes + 1, flush_time + took
            buffered = now
        start = time.perf_counter()
        self.store.flush()
        final_flush = time.perf_counter() - start
        settle = self.reopen()
        return IngestResult(len(rows), sum(times) + final_flush, times,
                            {"flushing_batches": flushes, "flush_seconds": flush_time + final_flush,
                             "settle_seconds": settle})

    def compact(self) -> float:
        """``flush()`` then ``compact(full=True)``; returns the wall time."""
        start = time.perf_counter()
        self.store.flush()
        self.store.compact(full=True)
        return time.perf_counter() - start

    def set_ef(self, ef: int | None) -> None:
        self.ef = ef

    def search(self, q: np.ndarray, k: int = 10) -> list[int]:
        """Ids of the hits (``Hit.id``; the lazy ``Hit.memory`` is not touched), like hnswlib's labels."""
        return [int(h.id) for h in self.store.search(q, k=k, ef=self.ef)]

    def search_materialized(self, q: np.ndarray, k: int = 10) -> list[int]:
        """Like :meth:`search`, but also builds every hit's Memory (text, metadata, vector, counters)."""
        return [int(h.memory.id) for h in self.store.search(q, k=k, ef=self.ef)]  # type: ignore[arg-type]

    def search_filtered(self, q: np.ndarray, limit: int, k: int = 10) -> list[int]:
        hits = self.store.search(q, k=k, ef=self.ef, filter={"bucket": {"$lt": limit}})
        return [int(h.id) for h in hits]

    def bump(self, row: int) -> None:
        self.store.bump(str(row), "access_count", 1)

    def strengthen(self, src: int, dst: int) -> None:
        self.store.strengthen(str(src), str(dst), 0.1)

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def close(self) -> None:
        self.store.close()

    def reopen(self, *, open_only: bool = False) -> float:
        """Close, then open again; returns the wall time (of ``t4dm_core.open`` alone if ``open_only``).

        With ``open_only`` the closed handle is released and garbage-collected before the
        timed open, as in a fresh process.
        """
        start = time.perf_counter()
        self.store.close()
        if open_only:
            del self.store
            gc.collect()
            start = time.perf_counter()
        self.store = t4dm_core.open(self.path, dim=self.dim, options=self.options)
        return time.perf_counter() - start


class HnswlibEngine:
    """Raw hnswlib, space ``ip`` over unit vectors (= cosine), like T4DM's segment indexes."""

    name = "hnswlib"

    def __init__(self, dim: int, m: int, ef_construction: int, num_threads: int) -> None:
        self.dim = dim
        self.m = m
        self.ef_construction = ef_construction
        self.num_threads = num_threads
        self.index = hnswlib.Index(space="ip", dim=dim)

    def ingest(self, rows: Rows) -> IngestResult:
        """One ``add_items`` call over all rows (the fastest way to feed hnswlib)."""
        self.index.init_index(max_elements=len(rows), ef_construction=self.ef_construction, M=self.m)
        self.index.set_num_threads(self.num_threads)
        labels = np.arange(len(rows))
        start = time.perf_counter()
        self.index.add_items(rows.vectors, labels)
        took = time.perf_counter() - start
        return IngestResult(len(rows), took, [took])

    def save(self, path: str) -> float:
        """Persist the index (hnswlib's only durability); returns the wall time incl. fsync."""
        start = time.perf_counter()
        self.index.save_index(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return time.perf_counter() - start

    def set_ef(self, ef: int) -> None:
        self.index.set_ef(ef)

    def search(self, q: np.ndarray, k: int = 10) -> list[int]:
        labels, _ = self.index.knn_query(q, k=k, num_threads=1)
        return labels[0].tolist()

    def filtered_searcher(self, buckets: np.ndarray, limit: int) -> Callable[[np.ndarray], list[int]]:
        """Search with hnswlib's per-label filter callback (``bucket < limit``)."""
        allowed = buckets < limit

        def accept(label: int) -> bool:
            return bool(allowed[label])

        def search(q: np.ndarray, k: int = 10) -> list[int]:
            labels, _ = self.index.knn_query(q, k=k, num_threads=1, filter=accept)
            return labels[0].tolist()

        return search


class ChromaEngine:
    """chromadb ``PersistentClient`` collection with cosine space and the same HNSW parameters."""

    name = "chromadb"

    def __init__(self, path: str, m: int, ef_construction: int, ef_search: int) -> None:
        import chromadb
        from chromadb.config import Settings

        self.path = path
        self._settings = Settings(anonymized_telemetry=False)
        self.client = chromadb.PersistentClient(path=path, settings=self._settings)
        self.collection = self.client.create_collection(
            "bench", embedding_function=None,
            configuration={"hnsw": {"space": "cosine", "max_neighbors": m, "ef_construction": ef_construction,
                                    "ef_search": ef_search}})

    def reopen(self) -> float:
        """Drop the client (and its loaded index) and open a new one; returns the wall time."""
        import chromadb

        start = time.perf_counter()
        self.client.clear_system_cache()
        self.client = chromadb.PersistentClient(path=self.path, settings=self._settings)
        self.collection = self.client.get_collection("bench")
        return time.perf_counter() - start

    def ingest(self, rows: Rows) -> IngestResult:
        """``collection.add`` in the largest batches the client accepts (lists built outside the timing)."""
        batch = min(5_000, self.client.get_max_batch_size())
        times: list[float] = []
        for part in _batches(len(rows), batch):
            ids = [str(i) for i in part]
            metas = [rows.metadata(i) for i in part]
            docs = None if rows.texts is None else [rows.texts[i] for i in part]
            vectors = rows.vectors[part.start:part.stop]
            start = time.perf_counter()
            self.collection.add(ids=ids, embeddings=vectors, documents=docs, metadatas=metas)  # type: ignore[arg-type]
            times.append(time.perf_counter() - start)
        return IngestResult(len(rows), sum(times), times)

    def set_ef(self, ef: int) -> None:
        """Change ``ef_search``. chromadb 1.5 stores the new value but an index already loaded in
        this client keeps the old one, so the client is reopened (measured: recall moves only then).
        """
        if self.collection.configuration["hnsw"]["ef_search"] != ef:  # type: ignore[index]
            self.collection.modify(configuration={"hnsw": {"ef_search": ef}})  # type: ignore[typeddict-item]
            self.reopen()

    def search(self, q: np.ndarray, k: int = 10) -> list[int]:
        res = self.collection.query(query_embeddings=[q], n_results=k)
        return [int(i) for i in res["ids"][0]]

    def search_filtered(self, q: np.ndarray, limit: int, k: int = 10) -> list[int]:
        res = self.collection.query(query_embeddings=[q], n_results=k, where={"bucket": {"$lt": limit}})
        return [int(i) for i in res["ids"][0]]

    def update_metadata(self, row: int, count: int) -> None:
        """The closest chroma analogue of a learning write: a one-key metadata update."""
        self.collection.update(ids=[str(row)], metadatas=[{"access_count": count}])


def chroma_available() -> tuple[bool, str]:
    """Whether chromadb imports here, and why not."""
    try:
        import chromadb
    except ImportError as exc:
        return False, f"chromadb is not importable in this interpreter ({exc})"
    return True, f"chromadb {chromadb.__version__}"
