"""Verification of an import: legacy counts against T4DM counts, and sampled records compared field by field.

Counts (each must be equal):

* ``nodes``: legacy nodes vs memories made from a node (their ``_t4dm_legacy`` has ``labels``);
* ``label X``: legacy nodes carrying X vs memories whose legacy labels contain X;
* ``edges TYPE``: legacy distinct (source, target) pairs of relationships of TYPE vs engine edges
  of the mapped edge type (the engine keys edges by (src, dst, type), so parallel legacy
  relationships become one edge; the report shows the raw relationship count beside it);
* ``records TYPE``: distinct pairs with properties vs relationship-properties records;
* ``points C``: points of collection C vs memories holding a point of C.

Samples (random; ``sample`` of each kind): a node's memory has the mapped text, every mapped
property with an equal value, and its labels; a point's memory holds that point (collection,
id, payload) and its vector equals the Qdrant vector after unit normalisation (max abs
difference <= 1e-5); a relationship's edge exists with the mapped weight and its properties
record holds exactly its properties. The report is JSON-able (:meth:`VerificationReport.to_dict`)
and printable (:meth:`VerificationReport.to_text`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from integrations.mapping import LEGACY_KEY, Mapping, relationship_record_id
from integrations.migrate.neo4j_reader import LegacyNode, LegacyRelationship, Neo4jReader
from integrations.migrate.qdrant_reader import LegacyPoint, QdrantReader
from t4dm_core import Memory, Store

__all__ = ["VECTOR_TOLERANCE", "CountCheck", "SampleCheck", "VerificationReport", "key_properties", "verify"]

VECTOR_TOLERANCE = 1e-5


@dataclass(frozen=True)
class CountCheck:
    """One count, legacy vs T4DM; ``note`` explains a difference the layout allows (e.g. parallel edges)."""

    name: str
    legacy: int
    t4dm: int
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.legacy == self.t4dm


@dataclass(frozen=True)
class SampleCheck:
    """One sampled legacy record and what differed in T4DM (empty = equal)."""

    kind: str  # "node" | "point" | "relationship"
    legacy: str
    memory_id: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerificationReport:
    """Counts and sampled comparisons; ``ok`` when every count matches and every sample is equal."""

    counts: list[CountCheck] = field(default_factory=list)
    samples: list[SampleCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.counts) and all(s.ok for s in self.samples)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok,
                "counts": [{**asdict(c), "ok": c.ok} for c in self.counts],
                "samples": {kind: {"checked": sum(s.kind == kind for s in self.samples),
                                   "equal": sum(s.kind == kind and s.ok for s in self.samples)}
                            for kind in ("node", "point", "relationship")},
                "failures": [asdict(s) for s in self.samples if not s.ok]}

    def to_text(self) -> str:
        lines = [f"Verification {'PASSED' if self.ok else 'FAILED'}", "", f"{'count':<40} {'legacy':>9} {'t4dm':>9}"]
        for c in self.counts:
            note = f"  ({c.note})" if c.note else ""
            lines.append(f"{c.name:<40} {c.legacy:>9} {c.t4dm:>9}  {'ok' if c.ok else 'MISMATCH'}{note}")
        summary = self.to_dict()["samples"]
        lines.append("")
        lines.append("samples equal: " + ", ".join(f"{kind}s {v['equal']}/{v['checked']}"
                                                   for kind, v in summary.items()))
        for s in self.samples:
            if not s.ok:
                lines.append(f"  {s.kind} {s.legacy} -> {s.memory_id}: {'; '.join(s.problems)}")
        return "\n".join(lines)


def key_properties(mapping: Mapping) -> list[str]:
    """Every property a node rule uses as its key (the default ``id`` included), in a stable order."""
    return sorted({"id", *(rule.key for rule in mapping.nodes)})


def verify(store: Store, mapping: Mapping, graph: Neo4jReader, points: QdrantReader | None,
           collections: Sequence[str], *, sample: int = 100) -> VerificationReport:
    """Compare the legacy stores with the import in ``store`` (read-only on both sides)."""
    report = VerificationReport()
    report.counts.extend(_count_checks(store, mapping, graph, points, collections))
    if sample > 0:
        keys = key_properties(mapping)
        report.samples.extend(_check_node(store, mapping, node) for node in graph.sample_nodes(sample))
        report.samples.extend(_check_relationship(store, mapping, rel)
                              for rel in graph.sample_relationships(sample, keys))
        for collection in collections if points is not None else ():
            assert points is not None
            report.samples.extend(_check_point(store, mapping, point) for point in points.sample(collection, sample))
    return report


# ---------------------------------------------------------------- counts
def _count_checks(store: Store, mapping: Mapping, graph: Neo4jReader, points: QdrantReader | None,
                  collections: Sequence[str]) -> list[CountCheck]:
    ns = mapping.namespace
    node_memories = 0
    labels: dict[str, int] = {}
    per_collection: dict[str, int] = {}
    edges: dict[str, int] = {}
    for memory_id in store.ids(namespace=ns):
        memory = store.get(memory_id, namespace=ns)
        legacy = memory.metadata.get(LEGACY_KEY, {}) if memory is not None else {}
        if "labels" in legacy:
            node_memories += 1
            for label in legacy["labels"] or [""]:
                labels[label] = labels.get(label, 0) + 1
        if isinstance(legacy.get("point"), dict):
            collection = legacy["point"].get("collection")
            per_collection[collection] = per_collection.get(collection, 0) + 1
        for edge in store.edges(memory_id, namespace=ns, direction="out"):
            edges[edge.type] = edges.get(edge.type, 0) + 1
    records: dict[str, int] = {}
    for record_id in store.ids(namespace=mapping.relationship_namespace):
        record = store.get(record_id, namespace=mapping.relationship_namespace)
        rel = record.metadata.get(LEGACY_KEY, {}).get("relationship", {}) if record is not None else {}
        records[rel.get("type", "?")] = records.get(rel.get("type", "?"), 0) + 1
    checks = [CountCheck("nodes", graph.count_nodes(), node_memories)]
    legacy_labels = graph.label_counts()
    checks.extend(CountCheck(f"label {label or '(none)'}", legacy_labels.get(label, 0), labels.get(label, 0))
                  for label in sorted(set(legacy_labels) | set(labels)))
    type_counts = graph.type_counts()
    expected_edges: dict[str, tuple[int, int]] = {}
    for rel_type, c in type_counts.items():
        edge_type = mapping.relationship_rule(rel_type).edge_type or rel_type
        pairs, raw = expected_edges.get(edge_type, (0, 0))
        expected_edges[edge_type] = (pairs + c["pairs"], raw + c["relationships"])
    for edge_type in sorted(set(expected_edges) | set(edges)):
        pairs, raw = expected_edges.get(edge_type, (0, 0))
        note = f"{raw} legacy relationships; parallel ones share one edge" if raw != pairs else ""
        checks.append(CountCheck(f"edges {edge_type}", pairs, edges.get(edge_type, 0), note))
    for rel_type in sorted(set(type_counts) | set(records)):
        with_props = type_counts.get(rel_type, {}).get("with_properties", 0)
        checks.append(CountCheck(f"records {rel_type}", with_props, records.get(rel_type, 0)))
    if points is not None:
        checks.extend(CountCheck(f"points {c}", points.count(c), per_collection.get(c, 0)) for c in collections)
    return checks


# ---------------------------------------------------------------- samples
def _check_node(store: Store, mapping: Mapping, node: LegacyNode) -> SampleCheck:
    expected = mapping.node_to_memory(node.labels, node.properties, node.element_id)
    assert expected.id is not None
    actual = store.get(expected.id, namespace=mapping.namespace)
    where = f"node {node.element_id} {list(node.labels)}"
    if actual is None:
        return SampleCheck("node", where, expected.id, ("no memory",))
    problems = []
    if expected.text is not None and actual.text != expected.text:
        problems.append(f"text {actual.text!r} != {expected.text!r}")
    for key, value in expected.metadata.items():
        if key != LEGACY_KEY and _canonical(actual.metadata.get(key)) != _canonical(value):
            problems.append(f"property {key!r}: {actual.metadata.get(key)!r} != {value!r}")
    legacy = actual.metadata.get(LEGACY_KEY, {})
    if legacy.get("labels") != expected.metadata[LEGACY_KEY]["labels"]:
        problems.append(f"labels {legacy.get('labels')!r} != {list(node.labels)!r}")
    for name in ("valid_from", "valid_to", "importance"):
        want = getattr(expected, name)
        if want is not None and getattr(actual, name) != want:
            problems.append(f"{name} {getattr(actual, name)!r} != {want!r}")
    return SampleCheck("node", where, expected.id, tuple(problems))


def _check_point(store: Store, mapping: Mapping, point: LegacyPoint) -> SampleCheck:
    memory_id = mapping.point_memory_id(point.collection, point.id, point.payload)
    actual = store.get(memory_id, namespace=mapping.namespace)
    where = f"point {point.collection}/{point.id}"
    if actual is None:
        return SampleCheck("point", where, memory_id, ("no memory",))
    problems = []
    held = actual.metadata.get(LEGACY_KEY, {}).get("point") or {}
    if held.get("collection") != point.collection or held.get("id") != point.id:
        problems.append(f"memory holds point {held.get('collection')}/{held.get('id')}")
    elif _canonical(held.get("payload")) != _canonical(point.payload):
        problems.append("payload differs")
    want = mapping.point_vector(point.collection, point.vector, None)
    want = want / np.float32(np.linalg.norm(want))
    if actual.vector is None or actual.vector.shape != want.shape:
        problems.append("vector missing or of another dimension")
    else:
        gap = float(np.max(np.abs(actual.vector - want)))
        if gap > VECTOR_TOLERANCE:
            problems.append(f"vector differs (max abs difference {gap:.2e})")
    return SampleCheck("point", where, memory_id, tuple(problems))


def _check_relationship(store: Store, mapping: Mapping, rel: LegacyRelationship) -> SampleCheck:
    src = mapping.node_memory_id(rel.src_labels, rel.src_keys, rel.src_element_id)
    dst = mapping.node_memory_id(rel.dst_labels, rel.dst_keys, rel.dst_element_id)
    edge = mapping.relationship_to_edge(src, dst, rel.type, rel.properties)
    where = f"relationship {rel.element_id} :{rel.type}"
    found = [e for e in store.edges(src, namespace=mapping.namespace, direction="out")
             if e.dst == dst and e.type == edge.type]
    problems = []
    if not found:
        problems.append(f"no edge {src} -[{edge.type}]-> {dst}")
    elif found[0].weight != edge.weight:
        problems.append(f"edge weight {found[0].weight} != {edge.weight}")
    record_id = relationship_record_id(src, rel.type, dst)
    record: Memory | None = store.get(record_id, namespace=mapping.relationship_namespace)
    if rel.properties:
        expected = mapping.relationship_record(src, dst, rel.type, rel.properties, np.ones(1, np.float32))
        if record is None:
            problems.append("no properties record")
        elif _canonical(record.metadata) != _canonical(expected.metadata):
            problems.append(f"properties record {record.metadata!r} != {expected.metadata!r}")
    elif record is not None:
        problems.append("a properties record exists for a relationship without properties")
    return SampleCheck("relationship", where, f"{src} -[{edge.type}]-> {dst}", tuple(problems))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
