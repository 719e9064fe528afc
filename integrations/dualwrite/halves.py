"""A T4DM memory made from legacy data as its two halves: the Neo4j node and the joined Qdrant point.

The mapping gives a node and the point whose payload names it one memory (node fields win,
the point's vector is kept). A shim write changes one half only — a node SET keeps the
point, a point upsert keeps the node, deleting the node leaves the point's memory — so the
writer splits the current memory (:func:`split`), replaces one half and recombines
(:func:`combine`).

Node properties are rebuilt from the memory's flat metadata, exactly, through the node's
property names that the mapping records in ``_t4dm_legacy["properties"]`` (a node property
and a payload key may share a name). A memory without that record (written before the
mapping recorded it) falls back to "every metadata key that is not a payload key with the
same value": a node property equal to a payload key of the same name is then attributed to
the payload.

A node-only memory gets a vector from the store's embedder when the store has one and the
node has text; otherwise :func:`protocol_adapters._common.stand_in_vector` keyed by the
memory id, plus metadata ``_t4dm_unembedded: True`` so vector searches can exclude it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from integrations.mapping import LEGACY_KEY, Mapping
from protocol_adapters._common import stand_in_vector
from t4dm_core import Memory

__all__ = ["UNEMBEDDED_KEY", "Halves", "combine", "node_labels", "node_properties", "point_provenance",
           "record_properties", "same_content", "split"]

UNEMBEDDED_KEY = "_t4dm_unembedded"
_PROPERTY_NAMES = "properties"  # in _t4dm_legacy: the node's own property names (set by the mapping)
_RESERVED = (LEGACY_KEY, UNEMBEDDED_KEY)


@dataclass(frozen=True)
class Halves:
    """The node-only memory and the point-only memory a memory was combined from (either may be None)."""

    node: Memory | None
    point: Memory | None


def _legacy(memory: Memory) -> dict[str, Any]:
    legacy = memory.metadata.get(LEGACY_KEY)
    return legacy if isinstance(legacy, dict) else {}


def point_provenance(memory: Memory | None) -> dict[str, Any] | None:
    """``{collection, id, vector, payload}`` of the point a memory holds, or None."""
    if memory is None:
        return None
    point = _legacy(memory).get("point")
    return point if isinstance(point, dict) else None


def node_labels(memory: Memory | None) -> list[str] | None:
    """Labels of the node a memory holds, or None when it holds no node."""
    if memory is None:
        return None
    labels = _legacy(memory).get("labels")
    return list(labels) if isinstance(labels, list) else None


def node_properties(memory: Memory) -> dict[str, Any]:
    """The legacy node's properties, rebuilt from the memory (exact when the names were recorded)."""
    legacy = _legacy(memory)
    text_property = legacy.get("text_property")
    names = legacy.get(_PROPERTY_NAMES)
    if isinstance(names, list):
        props = {k: memory.metadata[k] for k in names if k in memory.metadata and k != text_property}
    else:
        point = point_provenance(memory)
        payload = point.get("payload", {}) if point else {}
        key = legacy.get("key")
        props = {k: v for k, v in memory.metadata.items()
                 if k not in _RESERVED and (k == key or k not in payload or payload[k] != v)}
    if text_property:
        props[text_property] = memory.text
    return props


def record_properties(record: Memory | None) -> dict[str, Any]:
    """Properties of a relationship from its properties record ({} when there is none)."""
    if record is None:
        return {}
    return {k: v for k, v in record.metadata.items() if k not in _RESERVED}


def split(memory: Memory | None, mapping: Mapping, dim: int) -> Halves:
    """The node half and the point half of ``memory`` (rebuilt through the mapping)."""
    if memory is None:
        return Halves(None, None)
    labels = node_labels(memory)
    node = mapping.node_to_memory(labels, node_properties(memory)) if labels is not None else None
    point = point_provenance(memory)
    point_memory = None
    if point is not None and memory.vector is not None:
        point_memory = mapping.point_to_memory(point["collection"], point["id"], memory.vector,
                                               point.get("payload", {}), dim)
    return Halves(node, point_memory)


def combine(node: Memory | None, point: Memory | None, dim: int, *, embed_text: bool) -> Memory | None:
    """The memory holding ``node`` and ``point`` (None when both are None).

    ``embed_text``: the store has an embedder, so a node-only memory with text is left
    without a vector for the store to embed; otherwise it gets a stand-in vector.
    """
    if node is None and point is None:
        return None
    memory: Memory | None = Mapping.merge(node, point) if node is not None and point is not None else node or point
    assert memory is not None and memory.id is not None
    metadata = {k: v for k, v in memory.metadata.items() if k != UNEMBEDDED_KEY}
    if memory.vector is not None:
        return dataclasses.replace(memory, metadata=metadata)
    if embed_text and memory.text:
        return dataclasses.replace(memory, metadata=metadata)
    return dataclasses.replace(memory, vector=stand_in_vector(memory.id, dim),
                               metadata={**metadata, UNEMBEDDED_KEY: True})


def same_content(current: Memory | None, desired: Memory) -> bool:
    """True when writing ``desired`` over ``current`` would change nothing a legacy record carries.

    Compares text, metadata (JSON-exact), valid time and importance where ``desired`` sets
    them, and the vector (after unit normalisation) where ``desired`` has one.
    """
    if current is None or current.text != desired.text:
        return False
    if _canonical(current.metadata) != _canonical(desired.metadata):
        return False
    if desired.valid_from is not None and current.valid_from != desired.valid_from:
        return False
    if current.valid_to != desired.valid_to:
        return False
    if desired.importance is not None and current.importance != desired.importance:
        return False
    if desired.vector is None:
        return True
    if current.vector is None:
        return False
    want = np.asarray(desired.vector, dtype=np.float32)
    want = want / np.float32(np.linalg.norm(want))
    return bool(np.allclose(current.vector, want, atol=1e-6))


def _canonical(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"))
