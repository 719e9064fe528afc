"""Record-by-record comparison of the legacy stores with T4DM (used after reconcile and before cut-over).

:func:`graph_differences` reads every node and relationship over Bolt and checks that T4DM
holds exactly those nodes (labels and every property, text included, rebuilt from the
memory — see :mod:`integrations.dualwrite.halves`), edges (weights) and relationship
properties records, and nothing more.
:func:`point_differences` reads every point of a Qdrant collection (vectors and payloads)
and checks the memory holding each point: same memory id, same payload, same vector after
unit normalisation (cosine-equal within 1e-5), and no point T4DM holds that Qdrant lacks.

Both return human-readable differences (empty = equal), at most ``limit`` of them plus a
count line when there are more. They read whole stores: meant for tests, verification and
cut-over checks, not for hot paths. Read-only on every side.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from integrations.dualwrite.halves import node_labels, node_properties, record_properties
from integrations.dualwrite.t4dm_side import LEARNING_EDGE_TYPES, point_filter
from integrations.errors import MappingError
from integrations.mapping import LEGACY_KEY, Mapping, relationship_record_id
from t4dm_core import Store

__all__ = ["graph_differences", "point_differences"]

_PAGE = 1000


def _capped(found: list[str], limit: int) -> list[str]:
    if len(found) <= limit:
        return found
    return [*found[:limit], f"... and {len(found) - limit} more differences"]


def _read_all(driver: Any, database: str, query: str) -> list[dict[str, Any]]:
    """All rows of ``query`` (which must end in ``SKIP $skip LIMIT $limit``), page by page."""
    rows: list[dict[str, Any]] = []
    with driver.session(database=database) as session:
        while True:
            page = session.run(query, {"skip": len(rows), "limit": _PAGE}).data()
            rows.extend(page)
            if len(page) < _PAGE:
                return rows


def graph_differences(driver: Any, database: str, store: Store, mapping: Mapping | None = None, *,
                      limit: int = 50) -> list[str]:
    """Differences between the Neo4j graph in ``database`` and T4DM (see the module doc)."""
    mapping = mapping or Mapping()
    found: list[str] = []
    nodes = _read_all(driver, database, "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props "
                                        "ORDER BY id(n) SKIP $skip LIMIT $limit")
    expected: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for row in nodes:
        try:
            memory_id = mapping.node_memory_id(row["labels"], row["props"])
        except MappingError as exc:
            found.append(f"Neo4j node {row['labels']} {row['props']} cannot be mapped: {exc}")
            continue
        if memory_id in expected:
            found.append(f"Neo4j has more than one node with memory id {memory_id!r}")
        expected[memory_id] = (sorted(row["labels"]), dict(row["props"]))
    held: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for memory in store.find(namespace=mapping.namespace):
        labels = node_labels(memory)
        if labels is not None and memory.id is not None:
            held[memory.id] = (sorted(labels), node_properties(memory))
    for memory_id in sorted(expected.keys() - held.keys()):
        found.append(f"T4DM lacks node {memory_id!r}")
    for memory_id in sorted(held.keys() - expected.keys()):
        found.append(f"T4DM has node {memory_id!r} that Neo4j lacks")
    for memory_id in sorted(expected.keys() & held.keys()):
        if expected[memory_id] != held[memory_id]:
            found.append(f"node {memory_id!r} differs: Neo4j labels/properties {expected[memory_id]} / "
                         f"T4DM {held[memory_id]}")
    found.extend(_relationship_differences(driver, database, store, mapping, held))
    return _capped(found, limit)


def _relationship_differences(driver: Any, database: str, store: Store, mapping: Mapping,
                              nodes: dict[str, Any]) -> list[str]:
    found: list[str] = []
    rows = _read_all(driver, database, "MATCH (a)-[r]->(b) RETURN labels(a) AS la, properties(a) AS pa, "
                                       "type(r) AS type, properties(r) AS props, labels(b) AS lb, properties(b) AS pb "
                                       "ORDER BY id(r) SKIP $skip LIMIT $limit")
    want_edges: dict[tuple[str, str, str], float] = {}
    want_records: dict[str, dict[str, Any]] = {}
    multiplicity: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        src = mapping.node_memory_id(row["la"], row["pa"])
        dst = mapping.node_memory_id(row["lb"], row["pb"])
        edge = mapping.relationship_to_edge(src, dst, row["type"], row["props"])
        key = (src, dst, edge.type)
        multiplicity[key] += 1
        want_edges[key] = edge.weight
        if row["props"]:
            want_records[relationship_record_id(src, row["type"], dst)] = dict(row["props"])
    found.extend(f"Neo4j has {n} relationships {key} (T4DM keeps one)" for key, n in multiplicity.items() if n > 1)
    have_edges = {(e.src, e.dst, e.type): e.weight for memory_id in nodes
                  for e in store.edges(memory_id, namespace=mapping.namespace, direction="out")
                  if e.type not in LEARNING_EDGE_TYPES}
    for key in sorted(want_edges.keys() - have_edges.keys()):
        found.append(f"T4DM lacks edge {key}")
    for key in sorted(have_edges.keys() - want_edges.keys()):
        found.append(f"T4DM has edge {key} that Neo4j lacks")
    for key in sorted(want_edges.keys() & have_edges.keys()):
        if abs(want_edges[key] - have_edges[key]) > 1e-9:
            found.append(f"edge {key} weight: Neo4j {want_edges[key]} / T4DM {have_edges[key]}")
    have_records = {str(m.id): record_properties(m) for m in store.find(namespace=mapping.relationship_namespace)}
    for record_id in sorted(want_records.keys() | have_records.keys()):
        if want_records.get(record_id) != have_records.get(record_id):
            found.append(f"relationship properties {record_id!r}: Neo4j {want_records.get(record_id)} / "
                         f"T4DM {have_records.get(record_id)}")
    return found


def point_differences(client: Any, collection: str, store: Store, mapping: Mapping | None = None, *,
                      limit: int = 50) -> list[str]:
    """Differences between the points of Qdrant ``collection`` and the T4DM memories holding them."""
    mapping = mapping or Mapping()
    dim = int(store.dim)
    found: list[str] = []
    expected: dict[Any, tuple[str, np.ndarray, dict[str, Any]]] = {}
    offset = None
    while True:
        records, offset = client.scroll(collection_name=collection, limit=_PAGE, offset=offset, with_payload=True,
                                        with_vectors=True)
        for record in records:
            memory = mapping.point_to_memory(collection, record.id, record.vector, record.payload or {}, dim)
            assert memory.vector is not None and memory.id is not None
            expected[record.id] = (memory.id, _unit(memory.vector), dict(record.payload or {}))
        if offset is None:
            break
    held: dict[Any, tuple[str, np.ndarray, dict[str, Any]]] = {}
    for memory in store.find(point_filter(collection), namespace=mapping.namespace):
        point = memory.metadata[LEGACY_KEY]["point"]
        assert memory.vector is not None and memory.id is not None
        held[point["id"]] = (memory.id, _unit(memory.vector), dict(point.get("payload", {})))
    for pid in sorted(expected.keys() - held.keys(), key=str):
        found.append(f"T4DM lacks point {pid!r} of {collection!r}")
    for pid in sorted(held.keys() - expected.keys(), key=str):
        found.append(f"T4DM has point {pid!r} of {collection!r} that Qdrant lacks")
    for pid in sorted(expected.keys() & held.keys(), key=str):
        (want_id, want_vec, want_payload), (have_id, have_vec, have_payload) = expected[pid], held[pid]
        if want_id != have_id:
            found.append(f"point {pid!r} lives in memory {have_id!r}, the mapping says {want_id!r}")
        if want_payload != have_payload:
            found.append(f"point {pid!r} payload: Qdrant {want_payload} / T4DM {have_payload}")
        if float(want_vec @ have_vec) < 1.0 - 1e-5:
            found.append(f"point {pid!r} vector differs (cosine {float(want_vec @ have_vec):.6f})")
    return _capped(found, limit)


def _unit(vector: Any) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    return array / np.linalg.norm(array)
