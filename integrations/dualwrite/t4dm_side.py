"""The T4DM side of the dual writer: applies journaled ops to a :class:`t4dm_core.Store` idempotently.

One journal entry becomes one atomic ``Store.write`` batch in the mapping's namespace (plus,
when relationship properties records are deleted, one delete batch in the relationship
namespace; replay converges if a crash falls between the two). The ops are first folded
into an in-memory overlay of the touched memories and edges, so an entry may create,
change and delete the same node in any order; then only what differs from the store is
written. A memory whose content would not change is not written at all — ``Store.put`` of
an existing id adds a bitemporal version, so replaying an entry twice must not do that.

Semantics, matching Cypher and Qdrant where they are defined:

* a node is identified by the mapping (labels + key -> memory id); a MATCH that finds no
  node (or a node lacking one of the pattern's labels) does nothing;
* relationship writes whose ends are missing do nothing; edges are keyed by
  ``(src, dst, type)``; relationship properties live in a record in the relationship
  namespace (only while they are non-empty);
* a plain ``DELETE`` of a node that still has relationships is refused when T4DM judges
  the write (``first=True``), as Neo4j does; when the legacy primary already accepted it
  (FalkorDB deletes the relationships too), T4DM follows;
* a node and its joined point share one memory (see :mod:`integrations.dualwrite.halves`);
* edges of the engine's own learning (``co_retrieved``) are never treated as relationships.

Errors: invalid data (``InvalidInputError``, mapping errors) raise
:class:`SideRejectedError`; storage failures and a closed store raise
:class:`SideUnavailableError`. Not thread-safe by itself: the writer calls it under its lock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from integrations.dualwrite.halves import (
    combine,
    node_labels,
    node_properties,
    point_provenance,
    record_properties,
    same_content,
    split,
)
from integrations.dualwrite.ops import (
    NodeDelete,
    NodeRef,
    NodeUpsert,
    Op,
    PayloadSet,
    PointDelete,
    PointId,
    PointUpsert,
    RelDelete,
    RelUpsert,
)
from integrations.dualwrite.sides import T4DM, SideRejectedError, SideUnavailableError
from integrations.errors import MigrationError
from integrations.mapping import LEGACY_KEY, Mapping, relationship_record_id
from protocol_adapters._common import stand_in_vector
from t4dm_core import (
    Edge,
    InvalidInputError,
    Memory,
    MemoryNotFoundError,
    StorageError,
    Store,
    StoreClosedError,
    StoreFailedError,
)

__all__ = ["LEARNING_EDGE_TYPES", "T4DMSide", "point_filter"]

LEARNING_EDGE_TYPES = frozenset({"co_retrieved"})
EdgeKey = tuple[str, str, str]  # (src, dst, type) in the mapping's namespace
MemoryKey = tuple[str, str]  # (namespace, id)


def point_filter(collection: str, ids: Sequence[PointId] | None = None) -> dict[str, Any]:
    """Engine metadata filter selecting the memories that hold points of ``collection`` (optionally these ids)."""
    flt: dict[str, Any] = {f"{LEGACY_KEY}.point.collection": collection}
    if ids is not None:
        flt[f"{LEGACY_KEY}.point.id"] = {"$in": list(ids)}
    return flt


class T4DMSide:
    """Applies ops to ``store`` through ``mapping`` (see the module doc for semantics)."""

    name = T4DM

    def __init__(self, store: Store, mapping: Mapping) -> None:
        self.store = store
        self.mapping = mapping

    def check(self) -> None:
        """The store is embedded: nothing to reach (a closed store fails on first use)."""

    def apply(self, ops: Sequence[Op], *, first: bool) -> None:
        try:
            overlay = _Overlay(self.store, self.mapping)
            overlay.prefetch_points(ops)
            for op in ops:
                overlay.apply(op, first=first)
            overlay.commit()
        except (StoreClosedError, StoreFailedError, StorageError, OSError) as exc:
            raise SideUnavailableError(f"T4DM store {self.store.path}: {exc}") from exc
        except (InvalidInputError, MemoryNotFoundError, MigrationError) as exc:
            raise SideRejectedError(str(exc)) from exc


class _Overlay:
    """Desired state of the memories and edges an entry touches, over the store's current state."""

    def __init__(self, store: Store, mapping: Mapping) -> None:
        self.store = store
        self.mapping = mapping
        self.dim = int(store.dim)
        self.embed_text = store.embedder is not None
        self.ns = mapping.namespace
        self.rel_ns = mapping.relationship_namespace
        self.memories: dict[MemoryKey, Memory | None] = {}
        self.original: dict[MemoryKey, Memory | None] = {}
        self.edges: dict[EdgeKey, float | None] = {}
        self.original_edges: dict[EdgeKey, float | None] = {}
        self.edges_loaded: set[str] = set()
        self.point_homes: dict[tuple[str, PointId], str | None] = {}

    # ---- state access -------------------------------------------------------------------------
    def get(self, namespace: str, memory_id: str) -> Memory | None:
        key = (namespace, memory_id)
        if key not in self.memories:
            current = self.store.get(memory_id, namespace=namespace)
            self.memories[key] = self.original[key] = current
        return self.memories[key]

    def put(self, memory_id: str, memory: Memory | None, namespace: str | None = None) -> None:
        namespace = namespace or self.ns
        before = self.get(namespace, memory_id)
        if namespace == self.ns:
            for held, home in ((before, None), (memory, memory_id)):
                point = point_provenance(held)
                if point is not None:
                    self.point_homes[(point["collection"], point["id"])] = home
        self.memories[(namespace, memory_id)] = memory

    def load_edges(self, memory_id: str) -> None:
        if memory_id in self.edges_loaded:
            return
        self.edges_loaded.add(memory_id)
        try:
            current = self.store.edges(memory_id, namespace=self.ns, direction="both")
        except MemoryNotFoundError:
            current = []
        for edge in current:
            key = (edge.src, edge.dst, edge.type)
            if key not in self.edges:
                self.edges[key] = self.original_edges[key] = edge.weight

    def edge(self, key: EdgeKey) -> float | None:
        self.load_edges(key[0])
        return self.edges.get(key)

    def set_edge(self, key: EdgeKey, weight: float | None) -> None:
        self.load_edges(key[0])
        self.load_edges(key[1])
        self.original_edges.setdefault(key, None)
        self.edges[key] = weight

    def edges_touching(self, memory_id: str) -> list[EdgeKey]:
        self.load_edges(memory_id)
        return [k for k, w in self.edges.items() if w is not None and memory_id in (k[0], k[1])]

    def prefetch_points(self, ops: Sequence[Op]) -> None:
        """Find, in one scan per collection, which memories currently hold the points the ops name."""
        wanted: dict[str, list[PointId]] = defaultdict(list)
        for op in ops:
            if isinstance(op, PointUpsert | PointDelete | PayloadSet):
                wanted[op.collection].append(op.id)
        for collection, ids in wanted.items():
            for pid in ids:
                self.point_homes.setdefault((collection, pid), None)
            for memory in self.store.find(point_filter(collection, ids), namespace=self.ns):
                point = point_provenance(memory)
                assert point is not None and memory.id is not None
                self.memories.setdefault((self.ns, memory.id), memory)
                self.original.setdefault((self.ns, memory.id), memory)
                self.point_homes[(collection, point["id"])] = memory.id

    # ---- ops ----------------------------------------------------------------------------------
    def apply(self, op: Op, *, first: bool) -> None:
        if isinstance(op, NodeUpsert):
            self.node_upsert(op)
        elif isinstance(op, NodeDelete):
            self.node_delete(op, first=first)
        elif isinstance(op, RelUpsert):
            self.rel_upsert(op)
        elif isinstance(op, RelDelete):
            self.rel_delete(op)
        elif isinstance(op, PointUpsert):
            self.point_upsert(op.collection, op.id, op.vector, op.payload)
        elif isinstance(op, PointDelete):
            self.point_remove(op.collection, op.id)
        else:
            self.payload_set(op, first=first)

    def combine(self, node: Memory | None, point: Memory | None) -> Memory | None:
        return combine(node, point, self.dim, embed_text=self.embed_text)

    def node_id(self, ref: NodeRef) -> str:
        return self.mapping.node_id(list(ref.labels), ref.key)

    def matched_node(self, ref: NodeRef) -> str | None:
        """The memory id of the node a MATCH pattern finds, or None."""
        memory_id = self.node_id(ref)
        labels = node_labels(self.get(self.ns, memory_id))
        return memory_id if labels is not None and set(ref.labels) <= set(labels) else None

    def node_upsert(self, op: NodeUpsert) -> None:
        memory_id = self.node_id(op.node)
        current = self.get(self.ns, memory_id)
        halves = split(current, self.mapping, self.dim)
        labels = node_labels(current) if halves.node is not None else None
        if not op.create and (labels is None or not set(op.node.labels) <= set(labels)):
            return  # MATCH ... SET found no node
        old = node_properties(current) if halves.node is not None and current is not None else {}
        props = op.properties if op.replace else {**old, **op.properties}
        props = {k: v for k, v in props.items() if v is not None}
        node = self.mapping.node_to_memory(sorted(set(labels or ()) | set(op.node.labels)), props)
        self.put(memory_id, self.combine(node, halves.point))

    def node_delete(self, op: NodeDelete, *, first: bool) -> None:
        memory_id = self.matched_node(op.node)
        if memory_id is None:
            return
        touching = self.edges_touching(memory_id)
        legacy_edges = [k for k in touching if k[2] not in LEARNING_EDGE_TYPES]
        if legacy_edges and not op.detach and first:
            raise SideRejectedError(f"cannot DELETE node {memory_id!r}: it still has {len(legacy_edges)} "
                                    "relationship(s); use DETACH DELETE")
        for key in touching:
            self.set_edge(key, None)
            for rel_type in self.legacy_types(key[2]):
                self.put(relationship_record_id(key[0], rel_type, key[1]), None, self.rel_ns)
        halves = split(self.get(self.ns, memory_id), self.mapping, self.dim)
        self.put(memory_id, self.combine(None, halves.point))

    def legacy_types(self, edge_type: str) -> set[str]:
        """Relationship types that map onto ``edge_type`` (their records may exist)."""
        types = {edge_type}
        types.update(r.type for r in self.mapping.relationships if r.type and (r.edge_type or r.type) == edge_type)
        return types

    def rel_keys(self, op: RelUpsert | RelDelete) -> tuple[EdgeKey, str] | None:
        src, dst = self.matched_node(op.src), self.matched_node(op.dst)
        if src is None or dst is None:
            return None
        edge_type = self.mapping.relationship_rule(op.type).edge_type or op.type
        return (src, dst, edge_type), relationship_record_id(src, op.type, dst)

    def rel_upsert(self, op: RelUpsert) -> None:
        keys = self.rel_keys(op)
        if keys is None:
            return
        edge_key, record_id = keys
        exists = self.edge(edge_key) is not None
        old = record_properties(self.get(self.rel_ns, record_id)) if exists else {}
        props = op.properties if op.replace else {**old, **op.properties}
        props = {k: v for k, v in props.items() if v is not None}
        edge = self.mapping.relationship_to_edge(edge_key[0], edge_key[1], op.type, props)
        self.set_edge(edge_key, edge.weight)
        record = self.mapping.relationship_record(edge_key[0], edge_key[1], op.type, props,
                                                  stand_in_vector(record_id, self.dim)) if props else None
        self.put(record_id, record, self.rel_ns)

    def rel_delete(self, op: RelDelete) -> None:
        keys = self.rel_keys(op)
        if keys is None:
            return
        edge_key, record_id = keys
        if self.edge(edge_key) is not None:
            self.set_edge(edge_key, None)
        self.put(record_id, None, self.rel_ns)

    def point_upsert(self, collection: str, point_id: PointId, vector: Any, payload: dict[str, Any]) -> None:
        point = self.mapping.point_to_memory(collection, point_id, vector, payload, self.dim)
        assert point.id is not None
        home = self.point_homes.get((collection, point_id))
        if home is not None and home != point.id:
            self.point_remove(collection, point_id)
        halves = split(self.get(self.ns, point.id), self.mapping, self.dim)
        self.put(point.id, self.combine(halves.node, point))

    def point_remove(self, collection: str, point_id: PointId) -> None:
        home = self.point_homes.get((collection, point_id))
        if home is None:
            return
        halves = split(self.get(self.ns, home), self.mapping, self.dim)
        self.put(home, self.combine(halves.node, None))

    def payload_set(self, op: PayloadSet, *, first: bool) -> None:
        home = self.point_homes.get((op.collection, op.id))
        current = self.get(self.ns, home) if home is not None else None
        point = point_provenance(current)
        if current is None or point is None or current.vector is None:
            if first:
                raise SideRejectedError(f"collection {op.collection!r} has no point {op.id!r} to set a payload on")
            return
        payload = op.payload if op.replace else {**point.get("payload", {}), **op.payload}
        self.point_upsert(op.collection, op.id, current.vector, payload)

    # ---- commit -------------------------------------------------------------------------------
    def commit(self) -> None:
        puts: list[Memory] = []
        deletes: dict[str, list[str]] = defaultdict(list)
        for (namespace, memory_id), desired in self.memories.items():
            current = self.original[(namespace, memory_id)]
            if desired is None:
                if current is not None:
                    deletes[namespace].append(memory_id)
            elif not same_content(current, desired):
                puts.append(desired)
        links, unlinks = [], []
        for (src, dst, edge_type), weight in self.edges.items():
            before = self.original_edges.get((src, dst, edge_type))
            if weight is None and before is not None:
                unlinks.append(Edge(src, dst, edge_type, 0.0, self.ns))
            elif weight is not None and weight != before:
                links.append(Edge(src, dst, edge_type, weight, self.ns))
        if puts or links or unlinks or deletes.get(self.ns):
            self.store.write(put=puts, link=links, unlink=unlinks, delete=deletes.get(self.ns, ()),
                             namespace=self.ns)
        if deletes.get(self.rel_ns):
            self.store.write(delete=deletes[self.rel_ns], namespace=self.rel_ns)

