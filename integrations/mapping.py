"""Declarative mapping of legacy Neo4j nodes / relationships and Qdrant points onto T4DM.

The importer and the dual-write shim both go through this module, so a record written by
either lands under the same memory id: a re-run of the importer, or a shim write after an
import, updates the memory instead of duplicating it.

Identity (stable across runs):

* node -> memory id ``n:{key}`` (``id_scope="global"``, the default) or ``n:{label}:{key}``
  (``id_scope="label"``), where ``key`` is the node's ``rule.key`` property (default ``id``)
  and ``label`` is the label of the rule that matched it (else its alphabetically first
  label). A node without the key property falls back to ``e:{element_id}`` — stable only as
  long as the legacy database does not recycle element ids, so the importer reports them.
* Qdrant point whose payload ``rule.join_key`` names a node key -> that node's memory (the
  point's vector becomes the node memory's vector); any other point -> ``p:{collection}:{id}``.
* relationship -> :class:`t4dm_core.Edge` ``(src memory, dst memory, type)``, weight from
  ``rule.weight`` (default property ``weight``, else 1.0). Engine edges carry no properties,
  so a relationship with properties also gets a record in :meth:`Mapping.relationship_namespace`
  under :func:`relationship_record_id`. Two relationships of one type between the same two
  nodes collapse into one edge (the engine keys edges by ``(src, dst, type)``).

Metadata layout of a memory made from legacy data: the node's properties (minus the one used
as text) and, for a point, its payload keys, flat, so engine filters work on them; node
properties win a clash. The reserved key :data:`LEGACY_KEY` holds what is needed to verify or
reverse the migration exactly: ``labels``, ``key`` (property name), ``text_property``,
``properties`` (the names of the node properties the memory carries — text and metadata — so
they can be told apart from a joined point's payload keys) and, for a point,
``point = {collection, id, vector, payload}``.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from integrations.errors import MappingError, VectorShapeError
from t4dm_core import Edge, Memory

__all__ = [
    "DEFAULT_TEXT_PROPERTIES",
    "LEGACY_KEY",
    "Mapping",
    "NodeRule",
    "PointRule",
    "RelationshipRule",
    "legacy_value_to_time",
    "relationship_record_id",
]

DEFAULT_TEXT_PROPERTIES: tuple[str, ...] = ("text", "content", "name", "description")
LEGACY_KEY = "_t4dm_legacy"
_RELATIONSHIP_NAMESPACE_SUFFIX = ".relationships"
_R = TypeVar("_R", "NodeRule", "RelationshipRule", "PointRule")


@dataclass(frozen=True)
class NodeRule:
    """How nodes with ``label`` (``None`` = any node no other rule matches) become memories.

    ``text`` lists candidate text properties, first present wins; ``metadata`` limits which
    other properties are kept (``None`` = all); ``valid_from`` / ``valid_to`` / ``importance``
    name properties holding valid time (epoch seconds or ISO-8601) and importance in [0, 1].
    """

    label: str | None = None
    key: str = "id"
    text: tuple[str, ...] = DEFAULT_TEXT_PROPERTIES
    metadata: tuple[str, ...] | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    importance: str | None = None

    def named_properties(self) -> tuple[str, ...]:
        """Properties this rule names explicitly (a preflight checks that each exists somewhere)."""
        named = [p for p in (self.valid_from, self.valid_to, self.importance) if p]
        if self.metadata:
            named.extend(self.metadata)
        if self.text != DEFAULT_TEXT_PROPERTIES:
            named.extend(self.text)
        return tuple(named)


@dataclass(frozen=True)
class RelationshipRule:
    """How relationships of ``type`` (``None`` = any) become edges; ``weight`` names the weight property."""

    type: str | None = None
    weight: str | None = "weight"
    edge_type: str | None = None  # engine edge type; default = the relationship type


@dataclass(frozen=True)
class PointRule:
    """How points of Qdrant ``collection`` (``None`` = any) become memories.

    ``vector`` names the named vector to import (``None`` = the unnamed vector, or the only
    named one). ``join_key`` is the payload key holding a node key; ``join_label`` is that
    node's label, required when the mapping uses ``id_scope="label"``.
    """

    collection: str | None = None
    vector: str | None = None
    join_key: str | None = "node_id"
    join_label: str | None = None
    text: tuple[str, ...] = DEFAULT_TEXT_PROPERTIES


@dataclass(frozen=True)
class Mapping:
    """The whole mapping; :meth:`load` reads it from a JSON or TOML file.

    File shape (JSON shown; TOML uses the same keys)::

        {"namespace": "legacy", "id_scope": "global",
         "nodes": [{"label": "Fact", "text": ["body"], "valid_from": "since"}],
         "relationships": [{"type": "KNOWS", "weight": "strength"}],
         "points": [{"collection": "memories", "vector": "text", "join_key": "node_id"}]}
    """

    namespace: str = "legacy"
    id_scope: Literal["global", "label"] = "global"
    nodes: tuple[NodeRule, ...] = ()
    relationships: tuple[RelationshipRule, ...] = ()
    points: tuple[PointRule, ...] = ()
    _default_node: NodeRule = field(default_factory=NodeRule, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.id_scope not in ("global", "label"):
            raise MappingError(f"id_scope must be 'global' or 'label', got {self.id_scope!r}")
        if self.id_scope == "label":
            for rule in self.points:
                if rule.join_key and not rule.join_label:
                    raise MappingError(
                        f"points rule for collection {rule.collection!r} joins on {rule.join_key!r} but has no "
                        "join_label; id_scope='label' needs the label of the joined nodes")

    # ---- loading --------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        """Read a mapping file (``.json`` or ``.toml``); raises :class:`MappingError` naming the problem."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise MappingError(f"cannot read mapping file {p}: {exc}") from exc
        try:
            data = tomllib.loads(raw.decode("utf-8")) if p.suffix == ".toml" else json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MappingError(f"mapping file {p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: object, *, source: str = "mapping") -> Mapping:
        """Build a mapping from plain data; unknown keys are errors (a typo must not be ignored)."""
        if not isinstance(data, MappingABC):
            raise MappingError(f"{source}: expected an object at the top level")
        top = _take(data, {"namespace", "id_scope", "nodes", "relationships", "points"}, source)
        return cls(
            namespace=str(top.get("namespace", "legacy")),
            id_scope=top.get("id_scope", "global"),
            nodes=tuple(_rule(NodeRule, r, f"{source}.nodes[{i}]") for i, r in enumerate(top.get("nodes", ()))),
            relationships=tuple(_rule(RelationshipRule, r, f"{source}.relationships[{i}]")
                                for i, r in enumerate(top.get("relationships", ()))),
            points=tuple(_rule(PointRule, r, f"{source}.points[{i}]") for i, r in enumerate(top.get("points", ()))),
        )

    # ---- rule lookup ----------------------------------------------------------------------
    @property
    def relationship_namespace(self) -> str:
        """Namespace of the records that hold relationship properties."""
        return self.namespace + _RELATIONSHIP_NAMESPACE_SUFFIX

    def node_rule(self, labels: Sequence[str]) -> NodeRule:
        """The first rule whose label the node carries, else the default rule."""
        for rule in self.nodes:
            if rule.label is None or rule.label in labels:
                return rule
        return self._default_node

    def relationship_rule(self, rel_type: str) -> RelationshipRule:
        for rule in self.relationships:
            if rule.type is None or rule.type == rel_type:
                return rule
        return RelationshipRule()

    def point_rule(self, collection: str) -> PointRule:
        for rule in self.points:
            if rule.collection is None or rule.collection == collection:
                return rule
        return PointRule()

    # ---- identity -------------------------------------------------------------------------
    def node_id(self, labels: Sequence[str], key_value: Any) -> str:
        """Memory id of the node with ``labels`` whose key property is ``key_value``."""
        if key_value is None:
            raise MappingError(f"node with labels {sorted(labels)} has no key value")
        if self.id_scope == "global":
            return f"n:{_key_text(key_value)}"
        return f"n:{self._id_label(labels)}:{_key_text(key_value)}"

    def node_memory_id(self, labels: Sequence[str], properties: MappingABC[str, Any],
                       element_id: str | None = None) -> str:
        """Memory id of a node from its labels and properties (element id when the key is missing)."""
        rule = self.node_rule(labels)
        if rule.key in properties and properties[rule.key] is not None:
            return self.node_id(labels, properties[rule.key])
        if element_id is None:
            raise MappingError(f"node with labels {sorted(labels)} lacks its key property {rule.key!r}")
        return f"e:{element_id}"

    def point_memory_id(self, collection: str, point_id: int | str, payload: MappingABC[str, Any]) -> str:
        """The joined node's memory id when the payload names one, else ``p:{collection}:{id}``."""
        join = self.point_join_id(collection, payload)
        return join if join is not None else f"p:{collection}:{point_id}"

    def point_join_id(self, collection: str, payload: MappingABC[str, Any]) -> str | None:
        rule = self.point_rule(collection)
        if not rule.join_key or payload.get(rule.join_key) is None:
            return None
        labels = [rule.join_label] if rule.join_label else []
        return self.node_id(labels, payload[rule.join_key])

    def _id_label(self, labels: Sequence[str]) -> str:
        rule = self.node_rule(labels)
        if rule.label is not None:
            return rule.label
        if not labels:
            raise MappingError("id_scope='label' needs every node to carry a label")
        return sorted(labels)[0]

    # ---- conversion -----------------------------------------------------------------------
    def node_to_memory(self, labels: Sequence[str], properties: MappingABC[str, Any],
                       element_id: str | None = None) -> Memory:
        """The memory for a node (no vector: the point join or the store's embedder gives one)."""
        rule = self.node_rule(labels)
        text_prop = next((p for p in rule.text if isinstance(properties.get(p), str)), None)
        kept = {k: v for k, v in properties.items()
                if k != text_prop and (rule.metadata is None or k in rule.metadata or k == rule.key)}
        carried = set(kept) | ({text_prop} if text_prop else set())
        kept[LEGACY_KEY] = {"labels": sorted(labels), "key": rule.key, "text_property": text_prop,
                            "properties": sorted(carried)}
        return Memory(
            id=self.node_memory_id(labels, properties, element_id),
            namespace=self.namespace,
            text=properties[text_prop] if text_prop else None,
            metadata=_plain(kept),
            valid_from=legacy_value_to_time(properties.get(rule.valid_from)) if rule.valid_from else None,
            valid_to=legacy_value_to_time(properties.get(rule.valid_to)) if rule.valid_to else None,
            importance=_importance(properties.get(rule.importance)) if rule.importance else None,
        )

    def point_vector(self, collection: str, vector: Any, dim: int | None) -> np.ndarray:
        """The rule's vector out of a point's ``vector`` field (plain list or named dict), checked."""
        rule = self.point_rule(collection)
        if isinstance(vector, MappingABC):
            if rule.vector is not None:
                if rule.vector not in vector:
                    raise MappingError(f"collection {collection!r} points have no named vector {rule.vector!r}; "
                                       f"named vectors present: {sorted(vector)}")
                vector = vector[rule.vector]
            elif len(vector) == 1:
                vector = next(iter(vector.values()))
            else:
                raise MappingError(f"collection {collection!r} has named vectors {sorted(vector)}; "
                                   "say which one to import (points[].vector)")
        try:
            arr = np.asarray(vector, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise VectorShapeError(f"collection {collection!r}: vector is not numeric ({exc})") from exc
        if arr.ndim != 1 or not np.all(np.isfinite(arr)):
            raise VectorShapeError(f"collection {collection!r}: vector must be a finite 1-D float vector")
        if dim is not None and arr.shape[0] != dim:
            raise VectorShapeError(f"collection {collection!r}: vector has {arr.shape[0]} dimensions, "
                                   f"the store has {dim}")
        return arr

    def point_to_memory(self, collection: str, point_id: int | str, vector: Any,
                        payload: MappingABC[str, Any], dim: int | None) -> Memory:
        """The memory for a point on its own (see :meth:`merge` to combine it with its node)."""
        rule = self.point_rule(collection)
        text_prop = next((p for p in rule.text if isinstance(payload.get(p), str)), None)
        metadata = {k: v for k, v in payload.items() if k != text_prop}
        metadata[LEGACY_KEY] = {"point": {"collection": collection, "id": point_id,
                                          "vector": rule.vector, "payload": dict(payload)}}
        return Memory(id=self.point_memory_id(collection, point_id, payload), namespace=self.namespace,
                      text=payload[text_prop] if text_prop else None,
                      vector=self.point_vector(collection, vector, dim), metadata=_plain(metadata))

    @staticmethod
    def merge(existing: Memory | None, incoming: Memory) -> Memory:
        """Combine a node memory and a point memory that share an id, in either arrival order.

        Node fields (text, properties, valid time) win over payload fields; the point's vector
        and ``point`` provenance are kept whichever arrives second. Two writes of the same kind
        (node after node-only, point after point-only) return the newer. Returns a new Memory.
        ``existing`` should hold one kind only: to replace one half of a memory that already
        combines a node and a point, split it first (``integrations.dualwrite.halves.split``),
        or keys of the replaced half linger.
        """
        if existing is None:
            return incoming
        old_legacy = dict(existing.metadata.get(LEGACY_KEY, {}))
        new_legacy = dict(incoming.metadata.get(LEGACY_KEY, {}))
        incoming_is_node = "labels" in new_legacy
        if incoming_is_node and "labels" in old_legacy and "point" not in old_legacy:
            return incoming  # a node replaces a node-only memory
        node, point = (incoming, existing) if incoming_is_node else (existing, incoming)
        node_legacy, point_legacy = (new_legacy, old_legacy) if incoming_is_node else (old_legacy, new_legacy)
        if "labels" not in node_legacy:  # two point writes (or two node writes): the newer replaces
            return incoming if "point" in new_legacy or incoming_is_node else existing
        legacy = {**node_legacy, **({"point": point_legacy["point"]} if "point" in point_legacy else {})}
        metadata = {**{k: v for k, v in point.metadata.items() if k != LEGACY_KEY},
                    **{k: v for k, v in node.metadata.items() if k != LEGACY_KEY}, LEGACY_KEY: legacy}
        return Memory(id=incoming.id, namespace=incoming.namespace,
                      text=node.text if node.text is not None else point.text,
                      vector=point.vector if point.vector is not None else node.vector,
                      metadata=metadata, valid_from=node.valid_from, valid_to=node.valid_to,
                      importance=node.importance)

    def relationship_to_edge(self, src_id: str, dst_id: str, rel_type: str,
                             properties: MappingABC[str, Any]) -> Edge:
        rule = self.relationship_rule(rel_type)
        weight = properties.get(rule.weight) if rule.weight else None
        if weight is not None and (not isinstance(weight, int | float) or not math.isfinite(weight)):
            raise MappingError(f"relationship {rel_type!r} weight property {rule.weight!r} is {weight!r}, "
                               "not a finite number")
        return Edge(src=src_id, dst=dst_id, type=rule.edge_type or rel_type,
                    weight=float(weight) if weight is not None else 1.0, namespace=self.namespace)

    def relationship_record(self, src_id: str, dst_id: str, rel_type: str,
                            properties: MappingABC[str, Any], vector: np.ndarray) -> Memory:
        """The record holding a relationship's properties (``vector``: a stand-in, never searched)."""
        metadata = dict(_plain(properties))
        metadata[LEGACY_KEY] = {"relationship": {"src": src_id, "dst": dst_id, "type": rel_type}}
        metadata["_t4dm_unembedded"] = True
        return Memory(id=relationship_record_id(src_id, rel_type, dst_id), namespace=self.relationship_namespace,
                      vector=vector, metadata=metadata)


def relationship_record_id(src_id: str, rel_type: str, dst_id: str) -> str:
    """Id of the properties record of the relationship ``(src)-[:rel_type]->(dst)``."""
    return f"r:{src_id}|{rel_type}|{dst_id}"


def legacy_value_to_time(value: Any) -> float | None:
    """Epoch seconds from a number, an ISO-8601 string or a Neo4j temporal value; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise MappingError(f"time property holds a boolean ({value!r})")
    if isinstance(value, int | float):
        return float(value)
    if hasattr(value, "to_native"):  # neo4j.time.DateTime / Date
        value = value.to_native()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise MappingError(f"time property value {value!r} is not ISO-8601") from exc
    if isinstance(value, datetime):
        return value.timestamp()
    raise MappingError(f"time property value {value!r} is neither a number nor an ISO-8601 time")


def _importance(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise MappingError(f"importance property value {value!r} is not a number in [0, 1]")
    return float(value)


def _key_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    """Neo4j temporal and spatial values become ISO strings / lists, so metadata stays JSON-able."""
    if isinstance(value, MappingABC):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return value


def _take(data: MappingABC[str, Any], allowed: set[str], where: str) -> MappingABC[str, Any]:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return data


def _rule(cls: type[_R], data: object, where: str) -> _R:
    if not isinstance(data, MappingABC):
        raise MappingError(f"{where}: expected an object")
    names = {f.name for f in fields(cls)}
    values = dict(_take(data, names, where))
    for name, value in list(values.items()):
        if isinstance(value, list):
            values[name] = tuple(value)
    try:
        return cls(**values)
    except TypeError as exc:
        raise MappingError(f"{where}: {exc}") from exc
