"""The importer: legacy Neo4j nodes, Qdrant points and relationships into one T4DM store, resumably.

:func:`migrate` (or :class:`Importer`) runs, in order:

1. **preflight** (writes nothing): connect to both legacy stores (unreachable ->
   :class:`LegacyConnectionError`, refused credentials -> :class:`LegacyAuthError`), check the
   mapping against their schemas (:class:`MappingError`), check vector dimensions against the
   store (:class:`VectorShapeError`), then open — or create — the store;
2. **nodes**: pages of nodes become memories; the points whose payload names a node of the
   page are looked up and merged into its memory (node fields win, the point's vector is
   kept). A node without a point is embedded by the store's embedder when it has one and the
   node has text; otherwise it gets a stand-in vector and ``_t4dm_unembedded: True``, so
   searches that exclude that flag (``filter={"_t4dm_unembedded": {"$exists": False}}``)
   never return it;
3. **points**: every point of every imported collection; one already merged in step 2 is
   unchanged and skipped, any other becomes its own memory (``p:{collection}:{id}``), or the
   memory of the node its payload names when that node does not exist in the graph;
4. **relationships**: pages of source nodes' outgoing relationships become edges (and
   properties records, see :mod:`integrations.mapping`).

Each page is one atomic ``Store.write``; a memory whose content is unchanged is not written
(its history does not grow), an edge already present with the same weight is not re-linked.
So a re-run writes nothing for unchanged data, and a killed run resumed from its checkpoint
(:mod:`.checkpoint`, saved after every committed batch) ends exactly as an uninterrupted one.
On any failure the checkpoint records status ``failed``, the error and the counts of what was
committed, and the error is raised.

Joins: a memory holds one point. When several points name the same node, the last one in
collection and point-id order is merged in step 2; step 3 skips the others and counts them as
``point_join_conflicts`` (the verification's point counts then show the shortfall). The
importer shares the record layout code of the dual-write shim (:mod:`integrations.dualwrite.halves`),
so the shim can take over an imported store record for record.
Not thread-safe; one importer per store (the store's writer lock enforces it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from integrations.dualwrite.halves import UNEMBEDDED_KEY, combine, same_content, split
from integrations.errors import MigrationError
from integrations.mapping import LEGACY_KEY, Mapping, relationship_record_id
from integrations.migrate.checkpoint import Checkpoint
from integrations.migrate.neo4j_reader import Neo4jReader
from integrations.migrate.preflight import check_mapping, collection_dims, open_target_store, resolve_collections
from integrations.migrate.progress import NoProgress, Progress
from integrations.migrate.qdrant_reader import LegacyPoint, PointId, QdrantReader
from integrations.migrate.verify import VerificationReport, key_properties, verify
from protocol_adapters._common import stand_in_vector
from t4dm_core import Edge, Memory, Store

__all__ = ["CHECKPOINT_NAME", "Importer", "MigrationResult", "Neo4jSource", "QdrantSource", "migrate",
           "verify_only"]

CHECKPOINT_NAME = "migrate-checkpoint.json"
DEFAULT_BATCH = 500


@dataclass(frozen=True)
class Neo4jSource:
    """Where the legacy graph is: a Bolt URI, credentials and the database (FalkorDB: the graph)."""

    uri: str
    user: str = "neo4j"
    password: str = field(default="", repr=False)
    database: str | None = None
    timeout: float = 10.0

    def reader(self) -> Neo4jReader:
        return Neo4jReader(self.uri, self.user, self.password, database=self.database, timeout=self.timeout)


@dataclass(frozen=True)
class QdrantSource:
    """Where the legacy points are: a server ``url`` or a local-mode ``path``; ``collections`` () = all."""

    url: str | None = None
    path: str | None = None
    api_key: str | None = field(default=None, repr=False)
    collections: tuple[str, ...] = ()

    def reader(self) -> QdrantReader:
        return QdrantReader(url=self.url, path=self.path, api_key=self.api_key)


@dataclass
class MigrationResult:
    """What an import did: pass counters, whether it resumed, the verification report, and seconds spent in
    ``preflight`` (connecting, checks, opening the store), each phase run and ``verify``."""

    store_path: str
    checkpoint_path: str
    counts: dict[str, int]
    resumed: bool
    seconds: dict[str, float]
    report: VerificationReport | None


def migrate(neo4j: Neo4jSource, to: str | os.PathLike[str], *, qdrant: QdrantSource | None = None,
            mapping: Mapping | None = None, batch_size: int = DEFAULT_BATCH, restart: bool = False,
            checkpoint_path: str | os.PathLike[str] | None = None, embedder: Any = "auto", dim: int | None = None,
            verify_sample: int = 100, verify_after: bool = True, progress: Progress | None = None) -> MigrationResult:
    """Import the legacy stores into the T4DM store at ``to``; see the module docstring for the contract.

    ``restart`` ignores an unfinished checkpoint (the import is idempotent, so starting over is
    safe, only slower). ``embedder`` / ``dim``: see :func:`.preflight.open_target_store`.
    ``verify_sample`` records of each kind are compared after the import (0 = counts only).
    """
    importer = Importer(neo4j, to, qdrant=qdrant, mapping=mapping, batch_size=batch_size,
                        checkpoint_path=checkpoint_path, embedder=embedder, dim=dim, progress=progress)
    return importer.run(restart=restart, verify_sample=verify_sample, verify_after=verify_after)


def verify_only(neo4j: Neo4jSource, to: str | os.PathLike[str], *, qdrant: QdrantSource | None = None,
                mapping: Mapping | None = None, sample: int = 100) -> VerificationReport:
    """Verify an earlier import without writing (the store is opened read-only)."""
    import t4dm_core

    mapping = mapping or Mapping()
    with neo4j.reader() as graph, _maybe(qdrant) as points:
        collections = resolve_collections(mapping, points, qdrant.collections if qdrant else ())
        if not t4dm_core.exists(to):
            raise MigrationError(f"no T4DM store at {to}")
        with t4dm_core.open(to, read_only=True) as store:
            return verify(store, mapping, graph, points, collections, sample=sample)


class Importer:
    """One import of legacy stores into one T4DM store (see :func:`migrate`)."""

    def __init__(self, neo4j: Neo4jSource, to: str | os.PathLike[str], *, qdrant: QdrantSource | None = None,
                 mapping: Mapping | None = None, batch_size: int = DEFAULT_BATCH,
                 checkpoint_path: str | os.PathLike[str] | None = None, embedder: Any = "auto",
                 dim: int | None = None, progress: Progress | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise MigrationError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.neo4j = neo4j
        self.qdrant = qdrant
        self.store_path = os.fspath(to)
        self.mapping = mapping or Mapping()
        self.batch_size = batch_size
        self.checkpoint_path = os.fspath(checkpoint_path or os.path.join(self.store_path, CHECKPOINT_NAME))
        self.embedder = embedder
        self.dim = dim
        self.progress: Progress = progress or NoProgress()
        self._graph: Neo4jReader | None = None
        self._points: QdrantReader | None = None
        self._store: Store | None = None
        self._collections: list[str] = []
        self._embed_text = False

    # ------------------------------------------------------------------ driver
    def run(self, *, restart: bool = False, verify_sample: int = 100, verify_after: bool = True) -> MigrationResult:
        """Preflight, import (resuming an unfinished checkpoint of the same migration), verify."""
        started = time.perf_counter()
        with self.neo4j.reader() as graph, _maybe(self.qdrant) as points:
            self._graph, self._points = graph, points
            requested = self.qdrant.collections if self.qdrant else ()
            self._collections = resolve_collections(self.mapping, points, requested)
            check_mapping(self.mapping, graph.schema(), points, self._collections)
            dims = collection_dims(self.mapping, points, self._collections) if points is not None else {}
            checkpoint, resumed = self._checkpoint(restart)
            with open_target_store(self.store_path, dims, embedder=self.embedder, dim=self.dim) as store:
                self._store = store
                self._embed_text = store.embedder is not None and self.embedder != "none"
                preflight = time.perf_counter() - started
                seconds = {"preflight": preflight, **self._import(checkpoint)}
                report = None
                if verify_after:
                    started = time.perf_counter()
                    report = verify(store, self.mapping, graph, points, self._collections, sample=verify_sample)
                    seconds["verify"] = time.perf_counter() - started
            return MigrationResult(self.store_path, self.checkpoint_path, dict(checkpoint.counts), resumed,
                                   seconds, report)

    def source(self) -> dict[str, Any]:
        """What identifies this migration in its checkpoint."""
        mapping_json = json.dumps(dataclasses.asdict(self.mapping), sort_keys=True, default=str)
        return {"neo4j": self.neo4j.uri, "database": self.neo4j.database,
                "qdrant": (self.qdrant.url or self.qdrant.path) if self.qdrant else None,
                "collections": list(self._collections), "namespace": self.mapping.namespace,
                "mapping_sha256": hashlib.sha256(mapping_json.encode("utf-8")).hexdigest()}

    def _checkpoint(self, restart: bool) -> tuple[Checkpoint, bool]:
        existing = Checkpoint.load(self.checkpoint_path)
        if existing is None or restart or existing.status == "complete":
            return Checkpoint(self.source()), False
        if existing.source != self.source():
            raise MigrationError(
                f"checkpoint {self.checkpoint_path} belongs to another migration ({existing.source}); "
                "pass restart=True (--restart) to start this one over")
        existing.status, existing.error = "running", None
        return existing, True

    def _import(self, checkpoint: Checkpoint) -> dict[str, float]:
        seconds: dict[str, float] = {}
        try:
            for phase, step in (("nodes", self._nodes), ("points", self._point_phase),
                                ("relationships", self._relationships)):
                if checkpoint.phase == phase:
                    started = time.perf_counter()
                    step(checkpoint)
                    seconds[phase] = time.perf_counter() - started
            checkpoint.phase, checkpoint.cursor, checkpoint.status = "done", None, "complete"
            checkpoint.save(self.checkpoint_path)
        except BaseException as exc:
            self.progress.finish()
            checkpoint.status, checkpoint.error = "failed", f"{type(exc).__name__}: {exc}"
            try:
                checkpoint.save(self.checkpoint_path)
            except OSError as save_error:
                exc.add_note(f"the checkpoint {self.checkpoint_path} could not be saved either: {save_error}")
            raise
        return seconds

    def _commit(self, checkpoint: Checkpoint, cursor: Any, tally: Counter[str], put: Sequence[Memory] = (),
                link: Sequence[Edge] = ()) -> None:
        """One atomic store batch, then the checkpoint that covers it (``tally`` counted only once committed)."""
        assert self._store is not None
        if put or link:
            self._store.write(put=put, link=link)
        checkpoint.add(**tally)
        checkpoint.cursor = cursor
        checkpoint.save(self.checkpoint_path)

    @property
    def _ns(self) -> str:
        return self.mapping.namespace

    # ------------------------------------------------------------------ phase 1: nodes (+ joined points)
    def _nodes(self, checkpoint: Checkpoint) -> None:
        assert self._graph is not None and self._store is not None
        self.progress.start("nodes", self._graph.count_nodes(), checkpoint.counts.get("nodes_read", 0))
        after = checkpoint.cursor if isinstance(checkpoint.cursor, int) else -1
        index = self._join_index()
        for page in self._graph.node_pages(after, self.batch_size):
            tally: Counter[str] = Counter(nodes_read=len(page.nodes))
            memories: dict[str, Memory] = {}
            for node in page.nodes:
                memory = self.mapping.node_to_memory(node.labels, node.properties, node.element_id)
                assert memory.id is not None
                tally["node_key_collisions"] += memory.id in memories
                tally["nodes_keyed_by_element_id"] += memory.id.startswith("e:")
                memories[memory.id] = memory
            joined = self._joined_points(memories, index)
            tally["points_merged_into_nodes"] += len(joined)
            desired = [combine(m, joined.get(mid), self._store.dim, embed_text=self._embed_text)
                       for mid, m in memories.items()]
            self._commit(checkpoint, page.last_cursor, tally, put=self._changed(desired, self._ns, tally))
            self.progress.advance(len(page.nodes))
        checkpoint.phase, checkpoint.cursor = "points", None
        checkpoint.save(self.checkpoint_path)
        self.progress.finish()

    def _join_index(self) -> dict[str, tuple[str, PointId]]:
        """Memory id -> the (collection, point id) whose payload names it; read once, payload key only.

        Several points naming one memory: the last in collection and id order wins (see the module doc).
        """
        index: dict[str, tuple[str, PointId]] = {}
        for collection in self._collections:
            join_key = self.mapping.point_rule(collection).join_key
            if not join_key or self._points is None:
                continue
            for point_id, payload in self._points.payload_values(collection, join_key, max(self.batch_size, 1000)):
                memory_id = self.mapping.point_join_id(collection, payload)
                if memory_id is not None:
                    index[memory_id] = (collection, point_id)
        return index

    def _joined_points(self, memories: dict[str, Memory], index: dict[str, tuple[str, PointId]]) -> dict[str, Memory]:
        """Point memories (by node memory id) of the points joined to the nodes of one page."""
        wanted: dict[str, list[PointId]] = {}
        for memory_id in memories:
            if memory_id in index:
                collection, point_id = index[memory_id]
                wanted.setdefault(collection, []).append(point_id)
        joined: dict[str, Memory] = {}
        for collection, ids in wanted.items():
            assert self._points is not None
            for point in self._points.retrieve(collection, ids):
                memory = self._point_memory(point)
                assert memory.id is not None
                if memory.id in memories:
                    joined[memory.id] = memory
        return joined

    # ------------------------------------------------------------------ phase 2: points
    def _point_phase(self, checkpoint: Checkpoint) -> None:
        assert self._points is not None or not self._collections
        cursor = checkpoint.cursor if isinstance(checkpoint.cursor, dict) else {"collection": None, "offset": None}
        name = cursor["collection"]
        start = len(self._collections) if name == "" else \
            self._collections.index(name) if name in self._collections else 0
        for index in range(start, len(self._collections)):
            collection = self._collections[index]
            assert self._points is not None
            offset = cursor["offset"] if index == start else None
            following = {"collection": self._collections[index + 1] if index + 1 < len(self._collections) else "",
                         "offset": None}  # "" = every collection done
            self.progress.start(f"points {collection}", self._points.count(collection),
                                checkpoint.counts.get(f"points_read:{collection}", 0))
            for page in self._points.pages(collection, offset, self.batch_size):
                tally: Counter[str] = Counter({"points_read": len(page.points),
                                               f"points_read:{collection}": len(page.points)})
                changed = self._changed(self._merged_points(page.points, tally), self._ns, tally)
                next_cursor = following if page.next_offset is None else {"collection": collection,
                                                                          "offset": page.next_offset}
                self._commit(checkpoint, next_cursor, tally, put=changed)
                self.progress.advance(len(page.points))
        checkpoint.phase, checkpoint.cursor = "relationships", None
        checkpoint.save(self.checkpoint_path)
        self.progress.finish()

    def _merged_points(self, points: Sequence[LegacyPoint], tally: Counter[str]) -> list[Memory]:
        """Each point merged into the memory it belongs to (in-page order; a point held elsewhere is skipped)."""
        assert self._store is not None
        pending: dict[str, Memory] = {}
        for point in points:
            memory = self._point_memory(point)
            assert memory.id is not None
            current = pending.get(memory.id) or self._store.get(memory.id, namespace=self._ns)
            held = (current.metadata.get(LEGACY_KEY) or {}).get("point") if current is not None else None
            if isinstance(held, dict) and (held.get("collection"), held.get("id")) != (point.collection, point.id):
                tally["point_join_conflicts"] += 1
                continue
            halves = split(current, self.mapping, self._store.dim)
            merged = combine(halves.node, memory, self._store.dim, embed_text=self._embed_text)
            assert merged is not None
            pending[memory.id] = merged
        return list(pending.values())

    def _point_memory(self, point: LegacyPoint) -> Memory:
        assert self._store is not None
        return self.mapping.point_to_memory(point.collection, point.id, point.vector, point.payload, self._store.dim)

    # ------------------------------------------------------------------ phase 3: relationships
    def _relationships(self, checkpoint: Checkpoint) -> None:
        assert self._graph is not None and self._store is not None
        store, mapping = self._store, self.mapping
        present = set(store.ids(namespace=self._ns))
        keys = key_properties(mapping)
        self.progress.start("relationships", self._graph.count_relationships(),
                            checkpoint.counts.get("relationships_read", 0))
        after = checkpoint.cursor if isinstance(checkpoint.cursor, int) else -1
        for page in self._graph.relationship_pages(after, self.batch_size, keys):
            tally: Counter[str] = Counter(relationships_read=len(page.relationships))
            edges: dict[tuple[str, str, str], Edge] = {}
            records: dict[str, Memory] = {}
            for rel in page.relationships:
                src = mapping.node_memory_id(rel.src_labels, rel.src_keys, rel.src_element_id)
                dst = mapping.node_memory_id(rel.dst_labels, rel.dst_keys, rel.dst_element_id)
                if src not in present or dst not in present:
                    tally["dangling_relationships"] += 1
                    continue
                edge = mapping.relationship_to_edge(src, dst, rel.type, rel.properties)
                tally["parallel_relationships"] += (src, dst, edge.type) in edges
                edges[(src, dst, edge.type)] = edge
                if rel.properties:
                    record_id = relationship_record_id(src, rel.type, dst)
                    records[record_id] = mapping.relationship_record(src, dst, rel.type, rel.properties,
                                                                     stand_in_vector(record_id, store.dim))
            links = self._changed_edges(list(edges.values()), tally)
            changed = self._changed(list(records.values()), mapping.relationship_namespace, tally, kind="records")
            self._commit(checkpoint, page.last_cursor, tally, put=changed, link=links)
            self.progress.advance(len(page.relationships))
        checkpoint.phase, checkpoint.cursor = "done", None
        self.progress.finish()

    def _changed_edges(self, edges: list[Edge], tally: Counter[str]) -> list[Edge]:
        """The edges of ``edges`` that are missing from the store or have another weight there."""
        assert self._store is not None
        current: dict[str, dict[tuple[str, str], float]] = {}
        out = []
        for edge in edges:
            if edge.src not in current:
                current[edge.src] = {(e.dst, e.type): e.weight
                                     for e in self._store.edges(edge.src, namespace=self._ns, direction="out")}
            if current[edge.src].get((edge.dst, edge.type)) != edge.weight:
                out.append(edge)
        tally["edges_linked"] += len(out)
        tally["edges_unchanged"] += len(edges) - len(out)
        return out

    # ------------------------------------------------------------------ shared
    def _changed(self, desired: Sequence[Memory | None], namespace: str, tally: Counter[str],
                 kind: str = "memories") -> list[Memory]:
        """The memories of ``desired`` whose content differs from what the store holds."""
        assert self._store is not None
        wanted = [m for m in desired if m is not None]
        current = self._store.get_many([m.id for m in wanted if m.id is not None], namespace=namespace)
        changed = [m for m, c in zip(wanted, current, strict=True) if not same_content(c, m)]
        tally[f"{kind}_written"] += len(changed)
        tally[f"{kind}_unchanged"] += len(wanted) - len(changed)
        if kind == "memories":
            tally["unembedded_written"] += sum(UNEMBEDDED_KEY in m.metadata for m in changed)
        return changed


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _maybe(source: QdrantSource | None) -> Any:
    """The source's reader as a context manager, or a context yielding None."""
    return source.reader() if source is not None else _NullContext()

