"""Shadow reads: the same query on the legacy store and on T4DM, compared for overlap and latency.

:class:`ShadowReader` runs

* vector queries: Qdrant ``query_points(collection, query=vector, using=..., limit=k,
  with_payload=True)`` vs T4DM ``store.search(vector, k, mode="vector")`` over the memories
  holding points of that collection (``learn=False``: shadow reads never change T4DM);
* neighbourhood queries: ``MATCH (a:L {key: $key})-[r]->(b) RETURN type(r), labels(b),
  properties(b)`` over Bolt vs ``store.neighbors(id, hops=1)`` (``<-`` / undirected for
  direction "in" / "both");

and maps legacy results to memory ids through the :class:`Mapping`, so both sides are
compared in one id space. Each side's latency is the wall time of the call that returns ids
*and* payloads/properties (Qdrant returns payloads; on T4DM the timed section includes
reading each hit's metadata, which hits load lazily), measured with ``perf_counter``.

Scores: ``overlap`` of a vector query is overlap@k = |top-k(legacy) ∩ top-k(T4DM)| / k
(k reduced to the larger result size when a side returns fewer); of a neighbourhood query
the Jaccard index of the two neighbour sets (1.0 when both are empty). Higher is better;
1.0 = identical. :meth:`ShadowReport.recommendation` turns the means into a go / no-go
for cut-over with the reasons.

Not thread-safe (a reader keeps no state besides its configuration; use one per thread).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from integrations.dualwrite.neo4j_side import quote_name
from integrations.dualwrite.t4dm_side import LEARNING_EDGE_TYPES, point_filter
from integrations.mapping import Mapping
from t4dm_core import MemoryNotFoundError, Store

__all__ = ["NodeQuery", "QueryComparison", "Recommendation", "ShadowReader", "ShadowReport"]

Direction = Literal["out", "in", "both"]
_ARROWS = {"out": ("-", "->"), "in": ("<-", "-"), "both": ("-", "-")}


@dataclass(frozen=True)
class NodeQuery:
    """A neighbourhood query: the node with ``labels`` and key ``key``; optional relationship type and direction."""

    labels: tuple[str, ...]
    key: Any
    rel_type: str | None = None
    direction: Direction = "out"


@dataclass(frozen=True)
class QueryComparison:
    """One shadow query: what each side returned (memory ids), their overlap and each side's latency."""

    kind: Literal["vector", "neighbors"]
    query: str
    legacy_ids: tuple[str, ...]
    t4dm_ids: tuple[str, ...]
    overlap: float
    legacy_ms: float
    t4dm_ms: float


@dataclass(frozen=True)
class Recommendation:
    """Go / no-go for cut-over, with the reasons (each threshold checked)."""

    ready: bool
    reasons: tuple[str, ...]


@dataclass
class ShadowReport:
    """Comparisons of a shadow run; :meth:`summary` aggregates them per kind."""

    k: int
    comparisons: list[QueryComparison] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[QueryComparison]:
        return [c for c in self.comparisons if c.kind == kind]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per kind: query count, overlap mean / min, and mean / p50 / p95 latency (ms) per side."""
        out: dict[str, dict[str, Any]] = {}
        for kind in ("vector", "neighbors"):
            rows = self.of_kind(kind)
            if not rows:
                continue
            overlaps = np.array([r.overlap for r in rows])
            out[kind] = {"queries": len(rows), "overlap_mean": float(overlaps.mean()),
                         "overlap_min": float(overlaps.min()),
                         "legacy_ms": _latency([r.legacy_ms for r in rows]),
                         "t4dm_ms": _latency([r.t4dm_ms for r in rows])}
        return out

    def recommendation(self, *, min_vector_overlap: float = 0.9, min_neighbor_overlap: float = 0.99
                       ) -> Recommendation:
        """Ready when every kind measured meets its mean-overlap threshold (and at least one kind was measured)."""
        summary = self.summary()
        reasons = []
        ready = bool(summary)
        for kind, threshold in (("vector", min_vector_overlap), ("neighbors", min_neighbor_overlap)):
            if kind not in summary:
                reasons.append(f"no {kind} queries were compared")
                continue
            mean = summary[kind]["overlap_mean"]
            ok = mean >= threshold
            ready = ready and ok
            label = f"overlap@{self.k}" if kind == "vector" else "neighbour-set Jaccard"
            reasons.append(f"{kind}: mean {label} {mean:.3f} {'>=' if ok else '<'} {threshold}")
        return Recommendation(ready, tuple(reasons))

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "summary": self.summary(), "comparisons": [asdict(c) for c in self.comparisons]}

    def to_markdown(self) -> str:
        lines = ["| queries | kind | mean overlap | min overlap | legacy p50 / p95 ms | T4DM p50 / p95 ms |",
                 "|---:|---|---:|---:|---:|---:|"]
        for kind, s in self.summary().items():
            lines.append(f"| {s['queries']} | {kind} | {s['overlap_mean']:.3f} | {s['overlap_min']:.3f} | "
                         f"{s['legacy_ms']['p50']:.3f} / {s['legacy_ms']['p95']:.3f} | "
                         f"{s['t4dm_ms']['p50']:.3f} / {s['t4dm_ms']['p95']:.3f} |")
        return "\n".join(lines)


def _latency(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "p50": float(np.percentile(array, 50)),
            "p95": float(np.percentile(array, 95))}


class ShadowReader:
    """Runs shadow queries against T4DM and the legacy stores given (either may be omitted).

    Args:
        store: the T4DM store the shim writes.
        mapping: the mapping the shim uses.
        qdrant: a ``QdrantClient`` (the real one, not the shim) and ``collection`` / ``using``
            (the named vector the mapping imports; None for an unnamed vector).
        neo4j: a ``neo4j.Driver`` and the ``database`` to read.
        k: results per vector query.
        ef: T4DM's HNSW beam width for the vector queries (None = the store's ``hnsw_ef_search``).
    """

    def __init__(self, store: Store, mapping: Mapping | None = None, *, qdrant: Any = None,
                 collection: str | None = None, using: str | None = None, neo4j: Any = None,
                 database: str | None = None, k: int = 10, ef: int | None = None) -> None:
        if qdrant is not None and not collection:
            raise ValueError("a Qdrant shadow needs the collection name")
        if neo4j is not None and not database:
            raise ValueError("a Neo4j shadow needs the database name")
        self.store = store
        self.mapping = mapping or Mapping()
        self.qdrant, self.collection, self.using = qdrant, collection, using
        self.neo4j, self.database = neo4j, database
        self.k = k
        self.ef = ef

    def compare_vector(self, vector: Sequence[float] | np.ndarray, label: str = "vector") -> QueryComparison:
        """Top-k on Qdrant and on T4DM for ``vector``; overlap@k in memory-id space."""
        if self.qdrant is None or self.collection is None:
            raise ValueError("this ShadowReader has no Qdrant client")
        collection = self.collection
        query = np.asarray(vector, dtype=np.float32)
        start = time.perf_counter()
        points = self.qdrant.query_points(collection, query=query.tolist(), using=self.using, limit=self.k,
                                          with_payload=True).points
        legacy_ms = (time.perf_counter() - start) * 1e3
        legacy = tuple(self.mapping.point_memory_id(collection, p.id, p.payload or {}) for p in points)
        start = time.perf_counter()
        hits = self.store.search(query, k=self.k, mode="vector", learn=False, namespace=self.mapping.namespace,
                                 filter=point_filter(collection), ef=self.ef)
        for hit in hits:
            _ = hit.memory.metadata
        t4dm_ms = (time.perf_counter() - start) * 1e3
        t4dm = tuple(hit.id for hit in hits)
        depth = min(self.k, max(len(legacy), len(t4dm)))
        overlap = len(set(legacy) & set(t4dm)) / depth if depth else 1.0
        return QueryComparison("vector", label, legacy, t4dm, overlap, legacy_ms, t4dm_ms)

    def compare_neighbors(self, query: NodeQuery) -> QueryComparison:
        """One-hop neighbours of a node over Bolt and in T4DM; Jaccard of the two id sets."""
        if self.neo4j is None:
            raise ValueError("this ShadowReader has no Neo4j driver")
        rule = self.mapping.node_rule(query.labels)
        left, right = _ARROWS[query.direction]
        rel = f"[r:{quote_name(query.rel_type)}]" if query.rel_type else "[r]"
        labels = "".join(":" + quote_name(label) for label in query.labels)
        cypher = (f"MATCH (a{labels} {{{quote_name(rule.key)}: $key}}){left}{rel}{right}(b) "
                  "RETURN type(r) AS type, labels(b) AS labels, properties(b) AS props")
        start = time.perf_counter()
        with self.neo4j.session(database=self.database) as session:
            rows = session.run(cypher, {"key": query.key}).data()
        legacy_ms = (time.perf_counter() - start) * 1e3
        legacy = {self.mapping.node_memory_id(row["labels"], row["props"]) for row in rows}
        memory_id = self.mapping.node_id(query.labels, query.key)
        edge_type = None
        if query.rel_type:
            edge_type = self.mapping.relationship_rule(query.rel_type).edge_type or query.rel_type
        start = time.perf_counter()
        try:
            reached = self.store.neighbors(memory_id, hops=1, type=edge_type, direction=query.direction,
                                           namespace=self.mapping.namespace)
        except MemoryNotFoundError:
            reached = []
        t4dm_ms = (time.perf_counter() - start) * 1e3
        t4dm = {n.memory.id for n in reached if n.edge.type not in LEARNING_EDGE_TYPES and n.memory.id is not None}
        union = legacy | t4dm
        overlap = len(legacy & t4dm) / len(union) if union else 1.0
        return QueryComparison("neighbors", f"{memory_id} {query.direction} {query.rel_type or '*'}",
                               tuple(sorted(legacy)), tuple(sorted(t4dm)), overlap, legacy_ms, t4dm_ms)

    def run(self, vectors: Iterable[Sequence[float] | np.ndarray] = (), nodes: Iterable[NodeQuery] = ()
            ) -> ShadowReport:
        """Compare every vector query and every neighbourhood query; returns the report."""
        report = ShadowReport(self.k)
        report.comparisons.extend(self.compare_vector(v, f"vector {i}") for i, v in enumerate(vectors))
        report.comparisons.extend(self.compare_neighbors(n) for n in nodes)
        return report
