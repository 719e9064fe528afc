"""How LangGraph items are laid out in the engine: record ids, reserved metadata, builders.

Everything lives in the adapter's one engine namespace, as three kinds of record
(``_t4dm_kind``):

* ``item`` — one per LangGraph item, id :func:`item_id`. Metadata holds the value, the
  namespace labels, the key, ISO timestamps, the two ordering numbers (``_t4dm_ns_seq`` of
  the namespace, ``_t4dm_seq`` of the key), the number of vectors and the TTL in minutes.
  Its engine vector is a stand-in (``_t4dm_unembedded``). When the item has a TTL, its
  expiry is ``_t4dm_expiry_base`` (POSIX seconds of the put) plus the engine's
  ``importance`` counter (seconds), so a refresh on read is an O(1) learning write
  (``Store.bump``) instead of a new version of the record. The engine keeps counters as
  float32 in segments: an offset stays exact to well under a second for half a year.
* ``vector`` — one per embedded text of an item, id :func:`vector_id` (``item id`` + index),
  carrying the text, its vector, the id of its item and ``_t4dm_fields``: the value's
  top-level scalar fields (strings up to :data:`FIELD_STRING_LIMIT` characters; see
  :func:`filter_fields`), so a search can prefilter vectors by the item's filter. Records
  written before that key existed lack it (:data:`FIELDS`).
* ``namespace`` — one per LangGraph namespace ever written, id :func:`namespace_record_id`,
  holding the order in which namespaces were first written (``_t4dm_ns_seq``) and two
  flags: whether the namespace holds any item record (``_t4dm_has_items``; expired items
  count until swept) and any item without a TTL (``_t4dm_has_permanent``). A batch that
  changes a flag writes a new version in the same atomic engine write, so the flags always
  match the item records; most writes change neither. Never deleted (like the reference
  store, a namespace keeps its place after its items are deleted). Records written before
  the flags existed lack them (None in :class:`StoredNamespace`).

``_t4dm_nspath`` is the namespace joined with ``"."`` plus a trailing ``"."``: labels cannot
contain ``"."``, so it is unambiguous and a namespace prefix is a LIKE prefix of it.
Pure functions and frozen values; thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import Item, SearchItem

from protocol_adapters._common import stand_in_vector
from t4dm_core import Memory, MetadataError

__all__ = [
    "FIELDS",
    "FIELD_STRING_LIMIT",
    "ITEM",
    "KIND",
    "NAMESPACE",
    "VALUE",
    "VECTOR",
    "StoredItem",
    "StoredNamespace",
    "check_value",
    "decode_item",
    "decode_namespace",
    "filter_fields",
    "is_finite_number",
    "item_id",
    "item_record",
    "like_prefix",
    "namespace_path",
    "namespace_record",
    "namespace_record_id",
    "owner_of",
    "timestamp",
    "vector_id",
    "vector_record",
]

KIND = "_t4dm_kind"
ITEM, VECTOR, NAMESPACE = "item", "vector", "namespace"
VALUE = "_t4dm_value"  # an item record's value
FIELDS = "_t4dm_fields"  # a vector record's copy of its item's top-level scalar fields
FIELD_STRING_LIMIT = 128  # longer strings are left out of that copy
_READABLE_ID_LIMIT = 400  # longer ids are hashed; leaves room for vector suffixes under the engine's 512


def _id_for(prefix: str, parts: list[str]) -> str:
    readable = json.dumps(parts, ensure_ascii=False)
    if len(readable) <= _READABLE_ID_LIMIT:
        return f"{prefix}:{readable}"
    return f"{prefix}#{hashlib.blake2b(readable.encode('utf-8'), digest_size=20).hexdigest()}"


def item_id(namespace: tuple[str, ...], key: str) -> str:
    """Engine id of an item; injective over (namespace, key)."""
    return _id_for("item", [*namespace, key])


def vector_id(owner: str, index: int) -> str:
    """Engine id of the ``index``-th vector of the item with engine id ``owner``."""
    return f"{owner}|v{index}"


def owner_of(vector_record_id: str) -> str:
    """The item id inside a vector record id (the suffix ``|v<n>`` holds no other ``|v``)."""
    return vector_record_id.rsplit("|v", 1)[0]


def namespace_record_id(namespace: tuple[str, ...]) -> str:
    """Engine id of a namespace's ordering record."""
    return _id_for("ns", list(namespace))


def namespace_path(namespace: tuple[str, ...]) -> str:
    """``("a", "b")`` → ``"a.b."``; the empty namespace → ``""``."""
    return "".join(f"{label}." for label in namespace)


def like_prefix(labels: tuple[str, ...]) -> str:
    """A LIKE pattern matching the namespace paths that start with ``labels``."""
    escaped = namespace_path(labels).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def check_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """A private copy of an item value, refused unless it round-trips exactly through JSON.

    Raises:
        MetadataError: the value is not a mapping with string keys holding JSON-native
            values (tuples, sets, bytes, datetimes, NaN and infinity do not round-trip).
    """
    if not isinstance(value, Mapping):
        raise MetadataError(f"an item value must be a mapping, got {type(value).__name__}")
    plain = dict(value)
    try:
        copy = json.loads(json.dumps(plain, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"an item value must hold JSON values only: {exc}") from None
    if not _same_json(copy, plain):
        raise MetadataError("an item value must hold JSON-native values (str keys, lists not tuples)")
    return copy


def _same_json(copy: Any, original: Any) -> bool:
    if isinstance(original, dict):
        return (isinstance(copy, dict) and all(isinstance(k, str) for k in original)
                and copy.keys() == original.keys() and all(_same_json(copy[k], original[k]) for k in original))
    if isinstance(original, list):
        return isinstance(copy, list) and len(copy) == len(original) and all(
            _same_json(c, o) for c, o in zip(copy, original, strict=True))
    return type(copy) is type(original) and copy == original


@dataclass(frozen=True)
class StoredItem:
    """An item as read from its engine record. ``expires_at`` is None without a TTL."""

    id: str
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: str
    updated_at: str
    seq: int
    ns_seq: int
    nvec: int
    ttl: float | None
    expiry_base: float | None
    expires_at: float | None

    def expired(self, now: float) -> bool:
        """Whether the item's TTL has run out at ``now`` (expired items are invisible)."""
        return self.expires_at is not None and self.expires_at <= now

    @property
    def order(self) -> tuple[int, int]:
        """Listing order: namespaces by first write, then keys by first write."""
        return self.ns_seq, self.seq

    def to_item(self) -> Item:
        return Item(value=self.value, key=self.key, namespace=self.namespace,
                    created_at=datetime.fromisoformat(self.created_at),
                    updated_at=datetime.fromisoformat(self.updated_at))

    def to_search_item(self, score: float | None) -> SearchItem:
        return SearchItem(namespace=self.namespace, key=self.key, value=self.value,
                          created_at=datetime.fromisoformat(self.created_at),
                          updated_at=datetime.fromisoformat(self.updated_at), score=score)


def decode_item(memory: Memory | None) -> StoredItem | None:
    """The item held by an engine record, or None for a missing or non-item record."""
    if memory is None or memory.metadata.get(KIND) != ITEM:
        return None
    meta = memory.metadata
    ttl, base = meta["_t4dm_ttl"], meta["_t4dm_expiry_base"]
    return StoredItem(
        id=memory.id or "", namespace=tuple(meta["_t4dm_ns"]), key=meta["_t4dm_key"], value=meta[VALUE],
        created_at=meta["_t4dm_created"], updated_at=meta["_t4dm_updated"], seq=meta["_t4dm_seq"],
        ns_seq=meta["_t4dm_ns_seq"], nvec=meta["_t4dm_nvec"], ttl=ttl, expiry_base=base,
        expires_at=None if base is None else base + float(memory.importance or 0.0))


@dataclass(frozen=True)
class StoredNamespace:
    """A namespace record: first-write order, and whether it holds any item record and any
    item without a TTL (None in records that predate those flags)."""

    namespace: tuple[str, ...]
    seq: int
    has_items: bool | None
    has_permanent: bool | None


def decode_namespace(memory: Memory | None) -> StoredNamespace | None:
    """The namespace record held by an engine record, or None for a missing or other record."""
    if memory is None or memory.metadata.get(KIND) != NAMESPACE:
        return None
    meta = memory.metadata
    return StoredNamespace(tuple(meta["_t4dm_ns"]), int(meta["_t4dm_ns_seq"]), meta.get("_t4dm_has_items"),
                           meta.get("_t4dm_has_permanent"))


def filter_fields(value: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level fields of ``value`` a vector record copies: scalars under keys without
    ``"."``, strings only up to :data:`FIELD_STRING_LIMIT` characters."""
    return {key: field for key, field in value.items() if key and "." not in key and _copied(field)}


def _copied(field: Any) -> bool:
    if isinstance(field, str):
        return len(field) <= FIELD_STRING_LIMIT
    return not isinstance(field, (list, dict))


def timestamp(now: float) -> str:
    """ISO-8601 UTC text of POSIX seconds (round-trips exactly through ``fromisoformat``)."""
    return datetime.fromtimestamp(now, tz=UTC).isoformat()


def item_record(item: StoredItem, *, engine_namespace: str, dim: int) -> Memory:
    """The engine record of ``item`` (expiry offset in ``importance``; pinned against forgetting)."""
    meta = {KIND: ITEM, "_t4dm_unembedded": True, "_t4dm_ns": list(item.namespace),
            "_t4dm_nspath": namespace_path(item.namespace), "_t4dm_key": item.key, VALUE: item.value,
            "_t4dm_created": item.created_at, "_t4dm_updated": item.updated_at, "_t4dm_seq": item.seq,
            "_t4dm_ns_seq": item.ns_seq, "_t4dm_nvec": item.nvec, "_t4dm_ttl": item.ttl,
            "_t4dm_expiry_base": item.expiry_base}
    offset = 0.0 if item.expires_at is None or item.expiry_base is None else item.expires_at - item.expiry_base
    return Memory(id=item.id, namespace=engine_namespace, vector=stand_in_vector(item.id, dim), metadata=meta,
                  importance=offset, pinned=True)


def vector_record(owner: StoredItem, index: int, text: str, vector: Any, *, engine_namespace: str) -> Memory:
    """The engine record of one embedded text of ``owner``."""
    meta = {KIND: VECTOR, "_t4dm_item": owner.id, "_t4dm_nspath": namespace_path(owner.namespace),
            FIELDS: filter_fields(owner.value)}
    return Memory(text=text, id=vector_id(owner.id, index), namespace=engine_namespace, vector=vector,
                  metadata=meta, pinned=True)


def namespace_record(state: StoredNamespace, *, engine_namespace: str, dim: int) -> Memory:
    """The record of a LangGraph namespace (order and flags)."""
    record_id = namespace_record_id(state.namespace)
    meta = {KIND: NAMESPACE, "_t4dm_unembedded": True, "_t4dm_ns": list(state.namespace),
            "_t4dm_ns_seq": state.seq, "_t4dm_has_items": state.has_items,
            "_t4dm_has_permanent": state.has_permanent}
    return Memory(id=record_id, namespace=engine_namespace, vector=stand_in_vector(record_id, dim), metadata=meta,
                  pinned=True)


def is_finite_number(value: object) -> bool:
    """True for an int or float (not bool) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
