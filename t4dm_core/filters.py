"""Mongo-style metadata filters: parsing, the reference evaluator, and an Arrow compiler.

Dialect (also documented in README):

* ``{"k": v}`` is ``{"k": {"$eq": v}}``; several keys in one object are AND-ed.
* Field operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $between $like $ilike
  $contains $all``.
* Logical operators: ``$and`` / ``$or`` (non-empty lists of filters), ``$not`` (a filter).
* ``a.b`` reaches into nested objects.

Semantics (identical in the memtable and in segments; a differential test pins this):

* Equality is JSON equality; ``True`` never equals ``1``; ``1 == 1.0``; a missing key
  equals nothing (not even ``None``).
* ``$gt``/``$gte``/``$lt``/``$lte`` compare numbers with numbers and strings with strings
  (code-point order); any other pairing is false.
* ``$ne`` and ``$nin`` are the negations of ``$eq`` and ``$in``, so they match missing keys.
* ``$exists: true`` matches a present key, even one whose value is ``null``.
* ``$between: [lo, hi]`` is ``$gte lo`` and ``$lte hi`` (inclusive).
* ``$like`` / ``$ilike`` match a string value against an SQL LIKE pattern (``%`` any run,
  ``_`` one character, ``\\`` escapes the next character); ``$ilike`` ignores case. A
  non-string value never matches.
* ``$contains: v`` matches an array value holding an element JSON-equal to ``v``;
  ``$all: [v, ...]`` matches an array value holding every listed element. A non-array
  value never matches.

Unknown operators, bad operand types, empty ``$and``/``$or`` lists and filters nested deeper
than :data:`MAX_DEPTH` raise :class:`~t4dm_core.errors.FilterError`. No ``eval`` is used.
Thread-safe: compiled filters are immutable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from t4dm_core.errors import FilterError

__all__ = ["Filter", "compile_filter"]

MAX_DEPTH = 32
MAX_IN_VALUES = 10_000
FIELD_OPS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$between", "$like",
                       "$ilike", "$contains", "$all"})
LOGICAL_OPS = frozenset({"$and", "$or", "$not"})
_EXACT_FLOAT_INT = 2**53
_MISSING = object()


@dataclass(frozen=True)
class _Cond:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class _Logic:
    op: str  # "$and" | "$or" | "$not"
    children: tuple[Any, ...]


def _kind(value: object) -> str | None:
    """Comparable kind of a JSON scalar: "num", "str", "bool", or None for anything else."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, str):
        return "str"
    return None


def _json_equal(a: object, b: object) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return False
    if ka is not None:
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return False


def _ordered(op: str, a: object, b: object) -> bool:
    ka = _kind(a)
    if ka not in ("num", "str") or ka != _kind(b):
        return False
    if op == "$gt":
        return a > b  # type: ignore[operator]
    if op == "$gte":
        return a >= b  # type: ignore[operator]
    if op == "$lt":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def _scalar_key(value: object) -> tuple[str, object] | None:
    """A hashable key under which JSON-equal scalars coincide (1 and 1.0 do; True and 1 do not)."""
    kind = _kind(value)
    if kind == "num":
        if abs(value) >= _EXACT_FLOAT_INT:  # type: ignore[arg-type]
            return None  # floats merge distinct big integers (or overflow): compared exactly instead
        return kind, float(value)  # type: ignore[arg-type]
    if kind is not None:
        return kind, value
    return ("null", None) if value is None else None


class _ValueSet:
    """The operand of ``$in``/``$nin``: hashed scalars, plus arrays, objects and numbers beyond
    2**53 in absolute value, which are compared by exact JSON equality."""

    __slots__ = ("compound", "scalars", "values")

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = tuple(values)
        keys = [(_scalar_key(v), v) for v in self.values]
        self.scalars = {key for key, _ in keys if key is not None}
        self.compound = [v for key, v in keys if key is None]

    def contains(self, value: object) -> bool:
        key = _scalar_key(value)
        if key is None:  # arrays, objects and very large numbers: exact JSON equality
            return any(_json_equal(value, v) for v in self.compound)
        return key in self.scalars

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)


def _lookup(metadata: Mapping[str, Any], field: str) -> object:
    node: object = metadata
    for part in field.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


class Filter:
    """A parsed, validated filter. Build with :func:`compile_filter`."""

    __slots__ = ("_root", "canonical")

    def __init__(self, root: Any, canonical: str) -> None:
        self._root = root
        self.canonical = canonical  # stable JSON text; usable as a cache key

    # -- reference evaluator -------------------------------------------------
    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Evaluate against one metadata object (the reference semantics)."""
        return _eval(self._root, metadata)

    # -- vectorised evaluator over promoted Arrow columns --------------------
    def mask(self, columns: PromotedColumns, fallback: Callable[[], Sequence[Mapping[str, Any]]]) -> np.ndarray:
        """Boolean mask over a segment's rows.

        ``columns`` gives vectorised access to promoted top-level keys; for a condition it
        cannot evaluate that way, ``fallback()`` returns the rows' parsed metadata and the
        reference evaluator runs on it.
        """
        result = _compile_mask(self._root, columns)
        if result is not None:
            return result
        rows = fallback()
        return np.fromiter((self.matches(m) for m in rows), dtype=bool, count=len(rows))


def _eval(node: Any, metadata: Mapping[str, Any]) -> bool:
    if isinstance(node, _Logic):
        if node.op == "$and":
            return all(_eval(c, metadata) for c in node.children)
        if node.op == "$or":
            return any(_eval(c, metadata) for c in node.children)
        return not _eval(node.children[0], metadata)
    value = _lookup(metadata, node.field)
    op = node.op
    if op == "$exists":
        return (value is not _MISSING) == node.value
    if op == "$eq":
        return value is not _MISSING and _json_equal(value, node.value)
    if op == "$ne":
        return not (value is not _MISSING and _json_equal(value, node.value))
    if op == "$in":
        return value is not _MISSING and node.value.contains(value)
    if op == "$nin":
        return not (value is not _MISSING and node.value.contains(value))
    if op in ("$like", "$ilike"):
        return isinstance(value, str) and node.value.matches(value)
    if op == "$contains":
        return isinstance(value, list) and any(_json_equal(item, node.value) for item in value)
    if op == "$all":
        return isinstance(value, list) and all(any(_json_equal(item, v) for item in value) for v in node.value)
    return value is not _MISSING and _ordered(op, value, node.value)


# ---------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------
def compile_filter(spec: Mapping[str, Any] | None) -> Filter | None:
    """Parse and validate a filter dict; ``None`` or ``{}`` means "no filter"."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise FilterError(f"filter must be a dict, got {type(spec).__name__}")
    if not spec:
        return None
    root = _parse_object(spec, 0)
    try:
        canonical = json.dumps(spec, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise FilterError(f"filter values must be JSON: {exc}") from None
    return Filter(root, canonical)


def _parse_object(spec: Mapping[str, Any], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise FilterError(f"filter nested deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, Mapping) or not spec:
        raise FilterError(f"expected a non-empty filter object, got {spec!r}")
    parts = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise FilterError(f"filter keys must be strings, got {key!r}")
        if key.startswith("$"):
            parts.append(_parse_logical(key, value, depth))
        else:
            parts.extend(_parse_field(key, value))
    return parts[0] if len(parts) == 1 else _Logic("$and", tuple(parts))


def _parse_logical(op: str, value: Any, depth: int) -> Any:
    if op not in LOGICAL_OPS:
        known = ", ".join(sorted(LOGICAL_OPS | FIELD_OPS))
        raise FilterError(f"unknown filter operator {op!r} at top level (known: {known})")
    if op == "$not":
        return _Logic("$not", (_parse_object(value, depth + 1),))
    if not isinstance(value, list) or not value:
        raise FilterError(f"{op} needs a non-empty list of filters")
    return _Logic(op, tuple(_parse_object(v, depth + 1) for v in value))


def _parse_field(field: str, value: Any) -> list[Any]:
    if not field or any(not part for part in field.split(".")):
        raise FilterError(f"bad field name {field!r}")
    if isinstance(value, Mapping) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
        return [_parse_condition(field, op, operand) for op, operand in value.items()]
    if isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value):
        raise FilterError(f"field {field!r}: do not mix operators and plain keys in one object")
    return [_parse_condition(field, "$eq", value)]


def _check_operand(field: str, op: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise FilterError(f"field {field!r}: {op} operand {value!r} is not a JSON value") from None


class _LikePattern:
    """An SQL LIKE pattern (``%`` any run, ``_`` one character, backslash escapes the next)
    matched in O(len(pattern) · len(text)) worst case, never by a backtracking regex."""

    __slots__ = ("ignore_case", "tokens")

    def __init__(self, pattern: str, *, ignore_case: bool) -> None:
        tokens: list[str | None] = []  # a character, "" for ``_``, None for ``%``
        chars = iter(pattern.casefold() if ignore_case else pattern)
        for ch in chars:
            if ch == "\\":
                tokens.append(next(chars, "\\"))
            elif ch == "%":
                if not tokens or tokens[-1] is not None:
                    tokens.append(None)
            else:
                tokens.append("" if ch == "_" else ch)
        self.tokens = tokens
        self.ignore_case = ignore_case

    def matches(self, text: str) -> bool:
        if self.ignore_case:
            text = text.casefold()
        tokens, n = self.tokens, len(text)
        t = p = 0
        star_p, star_t = -1, 0
        while t < n:
            if p < len(tokens) and tokens[p] is not None and (tokens[p] == "" or tokens[p] == text[t]):
                t += 1
                p += 1
            elif p < len(tokens) and tokens[p] is None:
                star_p, star_t = p, t
                p += 1
            elif star_p >= 0:  # let the last % absorb one more character
                star_t += 1
                t, p = star_t, star_p + 1
            else:
                return False
        while p < len(tokens) and tokens[p] is None:
            p += 1
        return p == len(tokens)


def _parse_condition(field: str, op: str, value: Any) -> Any:
    if op not in FIELD_OPS:
        if op in LOGICAL_OPS:
            raise FilterError(f"field {field!r}: {op} is a logical operator; use it at the top level")
        raise FilterError(f"field {field!r}: unknown operator {op!r} (known: {', '.join(sorted(FIELD_OPS))})")
    if op == "$exists":
        if not isinstance(value, bool):
            raise FilterError(f"field {field!r}: $exists needs true or false")
        return _Cond(field, op, value)
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple)):
            raise FilterError(f"field {field!r}: {op} needs a list")
        if len(value) > MAX_IN_VALUES:
            raise FilterError(f"field {field!r}: {op} list longer than {MAX_IN_VALUES}")
        for item in value:
            _check_operand(field, op, item)
        return _Cond(field, op, _ValueSet(value))
    if op == "$between":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise FilterError(f"field {field!r}: $between needs a [low, high] pair")
        return _Logic("$and", (_parse_condition(field, "$gte", value[0]), _parse_condition(field, "$lte", value[1])))
    if op in ("$like", "$ilike"):
        if not isinstance(value, str):
            raise FilterError(f"field {field!r}: {op} needs a string pattern")
        return _Cond(field, op, _LikePattern(value, ignore_case=op == "$ilike"))
    if op == "$all":
        if not isinstance(value, (list, tuple)) or not value:
            raise FilterError(f"field {field!r}: $all needs a non-empty list")
        for item in value:
            _check_operand(field, op, item)
        return _Cond(field, op, tuple(value))
    if op in ("$gt", "$gte", "$lt", "$lte") and _kind(value) not in ("num", "str"):
        raise FilterError(f"field {field!r}: {op} needs a number or a string, got {value!r}")
    _check_operand(field, op, value)
    return _Cond(field, op, value)


# ---------------------------------------------------------------------------
# vectorised evaluation
# ---------------------------------------------------------------------------
class PromotedColumns:
    """Top-level metadata keys of a segment stored as typed Arrow columns.

    ``kinds`` maps a key to "num" | "str" | "bool" for keys whose present values in this
    segment are all of that kind (numbers exactly representable as float64);
    ``all_keys`` is every top-level key present in any row. ``column(key)`` returns the
    Arrow array (null = key missing in that row).
    """

    def __init__(self, n_rows: int, kinds: Mapping[str, str], all_keys: frozenset[str],
                 column: Callable[[str], Any]) -> None:
        self.n_rows = n_rows
        self.kinds = kinds
        self.all_keys = all_keys
        self.column = column


def _const(columns: PromotedColumns, value: bool) -> np.ndarray:
    return np.full(columns.n_rows, value, dtype=bool)


def _compile_mask(node: Any, columns: PromotedColumns) -> np.ndarray | None:
    if isinstance(node, _Logic):
        masks = []
        for child in node.children:
            m = _compile_mask(child, columns)
            if m is None:
                return None
            masks.append(m)
        if node.op == "$not":
            return ~masks[0]
        return np.logical_and.reduce(masks) if node.op == "$and" else np.logical_or.reduce(masks)
    return _compile_cond(node, columns)


def _numeric_literal_ok(value: object) -> bool:
    return not (isinstance(value, int) and not isinstance(value, bool) and abs(value) > _EXACT_FLOAT_INT)


def _compile_cond(cond: _Cond, columns: PromotedColumns) -> np.ndarray | None:
    import pyarrow.compute as pc

    if "." in cond.field:
        return None
    if cond.field not in columns.all_keys:  # missing in every row
        if cond.op == "$exists":
            return _const(columns, not cond.value)
        return _const(columns, cond.op in ("$ne", "$nin"))
    kind = columns.kinds.get(cond.field)
    if kind is None:
        return None
    if cond.op in ("$contains", "$all"):  # promoted columns hold scalars only, never arrays
        return _const(columns, False)
    if cond.op in ("$like", "$ilike"):
        return None  # the compiled regex runs on the reference path
    col = columns.column(cond.field)
    if cond.op == "$exists":
        present = pc.is_valid(col).to_numpy(zero_copy_only=False)
        return present if cond.value else ~present
    if cond.op in ("$eq", "$ne"):
        if _kind(cond.value) != kind:
            eq = _const(columns, False)
        elif kind == "num" and not _numeric_literal_ok(cond.value):
            return None
        else:
            eq = pc.fill_null(pc.equal(col, cond.value), False).to_numpy(zero_copy_only=False)
        return eq if cond.op == "$eq" else ~eq
    if cond.op in ("$in", "$nin"):
        values = [v for v in cond.value if _kind(v) == kind]
        if kind == "num" and not all(_numeric_literal_ok(v) for v in values):
            return None
        if values:
            import pyarrow as pa

            value_set = pa.array([float(v) for v in values] if kind == "num" else values, type=col.type)
            found = pc.fill_null(pc.is_in(col, value_set=value_set), False).to_numpy(zero_copy_only=False)
        else:
            found = _const(columns, False)
        return found if cond.op == "$in" else ~found
    # ordering
    if _kind(cond.value) != kind or kind == "bool":
        return _const(columns, False)
    if kind == "num" and not _numeric_literal_ok(cond.value):
        return None
    fn = {"$gt": pc.greater, "$gte": pc.greater_equal, "$lt": pc.less, "$lte": pc.less_equal}[cond.op]
    return pc.fill_null(fn(col, cond.value), False).to_numpy(zero_copy_only=False)
