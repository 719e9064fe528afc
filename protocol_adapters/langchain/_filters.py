"""The langchain-postgres (PGVector) metadata filter dialect, translated to the engine's.

LangChain has no standard filter format; PGVector's Mongo-style ``$`` dialect is the most
complete one, so :class:`~protocol_adapters.langchain.T4DMVectorStore` accepts it:

* ``{"k": v}`` means ``{"k": {"$eq": v}}``; several keys in one object are AND-ed.
* Field operators: ``$eq $ne $lt $lte $gt $gte $in $nin $between $exists $like $ilike``.
  Several operators on one field (``{"n": {"$gt": 1, "$lt": 5}}``) are AND-ed.
* Logical operators: ``$and`` and ``$or`` take a non-empty list of filters; ``$not`` takes a
  filter, or a non-empty list of filters meaning "none of them" (PGVector's
  ``NOT a AND NOT b``).

Semantics are the engine's (see :mod:`t4dm_core` filters): ``$gt`` & co. compare numbers
with numbers and strings with strings (lexicographically), never across kinds;
``$exists: true`` holds for a key whose value is ``None``; ``$ne``/``$nin`` hold for a
missing key; ``$between: [lo, hi]`` is inclusive; ``$like``/``$ilike`` take SQL LIKE
patterns. One extension over PGVector: a dotted key ``"a.b"`` reaches into nested objects.

Anything else — an unknown operator, a malformed operand, a NaN or infinite number, a key
under the adapters' reserved ``_t4dm_`` prefix — raises :class:`t4dm_core.FilterError`
before the engine is called. Pure functions; thread-safe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from t4dm_core import FilterError

__all__ = ["RESERVED_PREFIX", "UNEMBEDDED_KEY", "is_unembedded", "translate_filter", "vector_query_filter"]

RESERVED_PREFIX = "_t4dm_"
UNEMBEDDED_KEY = "_t4dm_unembedded"
_COMPARISONS = frozenset({"$eq", "$ne", "$lt", "$lte", "$gt", "$gte"})
_ORDERINGS = frozenset({"$lt", "$lte", "$gt", "$gte"})
_FIELD_OPS = _COMPARISONS | {"$in", "$nin", "$between", "$exists", "$like", "$ilike"}
_LOGICAL_OPS = ("$and", "$or", "$not")
_NOT_EMBEDDED = {UNEMBEDDED_KEY: {"$ne": True}}


def translate_filter(spec: Any) -> dict[str, Any] | None:
    """Validate a PGVector-style filter and return the equivalent engine filter (``None`` = no filter)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise FilterError(f"filter must be a dict (or, on search methods, a callable), got {type(spec).__name__}")
    if not spec:
        return None
    return _translate_object(spec, "filter")


def vector_query_filter(spec: Any) -> dict[str, Any]:
    """The engine filter for a vector query: the user's filter AND "the record has an embedding"."""
    translated = translate_filter(spec)
    return dict(_NOT_EMBEDDED) if translated is None else {"$and": [translated, dict(_NOT_EMBEDDED)]}


def is_unembedded(metadata: Mapping[str, Any]) -> bool:
    """Whether a record was stored with a stand-in vector (never a vector-query result)."""
    return metadata.get(UNEMBEDDED_KEY) is True


def _translate_object(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping) or not spec:
        raise FilterError(f"{where}: expected a non-empty filter object, got {spec!r}")
    parts: list[dict[str, Any]] = []
    for key, value in spec.items():
        if not isinstance(key, str) or not key:
            raise FilterError(f"{where}: filter keys must be non-empty strings, got {key!r}")
        if key.startswith("$"):
            parts.append(_translate_logical(key, value, where))
        else:
            parts.extend(_translate_field(key, value))
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _translate_logical(op: str, value: Any, where: str) -> dict[str, Any]:
    if op not in _LOGICAL_OPS:
        if op in _FIELD_OPS:
            raise FilterError(f"{where}: {op} needs a field, as in {{'field': {{{op!r}: ...}}}}")
        raise FilterError(f"{where}: unknown operator {op!r} (logical operators: {', '.join(_LOGICAL_OPS)})")
    if op == "$not" and isinstance(value, Mapping):
        return {"$not": _translate_object(value, "$not")}
    if not isinstance(value, list | tuple) or not value:
        expected = "a filter object or a non-empty list of filters" if op == "$not" else "a non-empty list of filters"
        raise FilterError(f"{where}: {op} needs {expected}, got {value!r}")
    children = [_translate_object(child, op) for child in value]
    if op == "$not":  # PGVector: NOT a AND NOT b AND ... == NOT (a OR b OR ...)
        return {"$not": {"$or": children}}
    return {op: children}


def _translate_field(field: str, value: Any) -> list[dict[str, Any]]:
    if field.startswith(RESERVED_PREFIX):
        raise FilterError(f"field {field!r}: keys starting with {RESERVED_PREFIX!r} are reserved for the adapters")
    if isinstance(value, Mapping) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
        return [{field: {op: _operand(field, op, operand)}} for op, operand in value.items()]
    if isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value):
        raise FilterError(f"field {field!r}: do not mix operators and plain keys in one object")
    return [{field: {"$eq": _json_value(field, "$eq", value)}}]


def _operand(field: str, op: str, value: Any) -> Any:
    if op not in _FIELD_OPS:
        if op in _LOGICAL_OPS:
            raise FilterError(f"field {field!r}: {op} is a logical operator; use it outside the field")
        raise FilterError(f"field {field!r}: unknown operator {op!r} (known: {', '.join(sorted(_FIELD_OPS))})")
    if op in _ORDERINGS:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise FilterError(f"field {field!r}: {op} needs a number or a string, got {value!r}")
        return _json_value(field, op, value)
    if op in ("$in", "$nin"):
        if not isinstance(value, list | tuple):
            raise FilterError(f"field {field!r}: {op} needs a list of values, got {value!r}")
        return [_json_value(field, op, item) for item in value]
    if op == "$between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise FilterError(f"field {field!r}: $between needs a [low, high] pair, got {value!r}")
        return [_operand(field, "$gte", value[0]), _operand(field, "$lte", value[1])]
    if op == "$exists":
        if not isinstance(value, bool):
            raise FilterError(f"field {field!r}: $exists needs true or false, got {value!r}")
        return value
    if op in ("$like", "$ilike"):
        if not isinstance(value, str):
            raise FilterError(f"field {field!r}: {op} needs a string pattern, got {value!r}")
        return value
    return _json_value(field, op, value)


def _json_value(field: str, op: str, value: Any) -> Any:
    """``value`` if it is plain JSON with finite numbers, else FilterError."""
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"field {field!r}: {op} operand {value!r} is not a finite number")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise FilterError(f"field {field!r}: {op} operand {value!r} is not a JSON value") from None
    return value
