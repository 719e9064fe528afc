"""LlamaIndex ``MetadataFilters`` → the engine's Mongo-style filter dialect, plus a reference evaluator.

The meaning of a filter is that of LlamaIndex's in-memory reference,
``llama_index.core.vector_stores.utils.build_metadata_filter_fn``:

* the record's value is ``metadata.get(key)``, so a missing key and a ``null`` value are
  the same thing, and they match only ``!=`` and ``nin`` (and ``is_empty``);
* comparisons are Python's: ``"3"`` is not ``3``, ``1 == 1.0``, and, because Python's
  ``bool`` is an ``int``, a metadata value ``True`` equals ``1`` (and ``False`` equals ``0``);
* ``contains`` is Python's ``value in metadata_value``: element of a list, substring of a
  string, or key of an object; ``any`` / ``all`` apply that to each listed value;
* ``text_match`` is a substring test, ``text_match_insensitive`` compares ``str.lower()`` forms;
* ``is_empty`` matches a missing key, ``null``, ``""`` and ``[]``;
* a ``MetadataFilters`` combines its filters with ``and``, ``or`` or ``not`` (none of them
  matches); an empty one matches everything. Unlike the reference (which refuses nested
  ``MetadataFilters``), a nested group is evaluated recursively with the same rules.

Two deliberate differences from the reference, both about errors:

* where the reference raises ``TypeError`` from inside its scan because one record's value
  cannot be compared with the operand (``"abc" > 3``, ``text_match`` on a number), that
  record simply does not match (as in the engine and in database-backed stores);
* an operand that could never be compared (``>`` with ``None``, ``in`` with a number,
  ``text_match`` with a non-string) is refused up front with ``InvalidInputError``.

:func:`compile_metadata_filters` returns the engine filter and whether it is *exact*. It is
exact for every operator on a plain key (no ``.``, not starting with ``$``) except in
these cases, where the engine filter is only a prefilter (a superset) and
:meth:`CompiledFilters.matches` must run on its results:

* ``text_match_insensitive`` (``str.lower()`` is not the engine's regex case folding);
* ``in`` / ``nin`` with a string operand (substring membership);
* ordering operators with a list operand (Python compares lists element by element);
* ``==`` / ``!=`` / ``contains`` (and ``any`` / ``all`` items) with a list operand holding 0
  or 1 (Python equates those with booleans inside lists);
* ``contains`` (and ``any`` / ``all`` items) with a string that is empty or holds ``.`` (the
  "key of an object" case cannot be written as an engine path);
* keys holding ``.`` or starting with ``$`` (the engine reads those as paths / operators).

Compiled filters are immutable and thread-safe.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from t4dm_core import InvalidInputError

__all__ = ["RESERVED_PREFIX", "CompiledFilters", "compile_metadata_filters", "conjoin"]

RESERVED_PREFIX = "_t4dm_"

# An engine filter expression, or a constant: True = every record, False = none.
Expr = dict[str, Any] | bool
_Matcher = Callable[[Mapping[str, Any]], bool]

_ORDERING: dict[FilterOperator, tuple[str, Callable[[Any, Any], bool]]] = {
    FilterOperator.GT: ("$gt", operator.gt),
    FilterOperator.GTE: ("$gte", operator.ge),
    FilterOperator.LT: ("$lt", operator.lt),
    FilterOperator.LTE: ("$lte", operator.le),
}


@dataclass(frozen=True)
class CompiledFilters:
    """A translated ``MetadataFilters``.

    Attributes:
        engine: engine filter dict, ``None`` for "every record", or ``False`` when nothing
            can match (callers skip the engine call).
        exact: ``engine`` selects exactly the matching records; when False it selects a
            superset and :meth:`matches` must be applied to its results.
    """

    engine: dict[str, Any] | bool | None
    exact: bool
    _matcher: _Matcher

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Evaluate the filters on one record's metadata with the reference semantics."""
        return self._matcher(metadata)


def conjoin(*parts: Expr | None) -> Expr:
    """AND of engine expressions (``None`` counts as True), simplifying constants."""
    kept: list[dict[str, Any]] = []
    for part in parts:
        if part is False:
            return False
        if part is None or part is True:
            continue
        kept.append(part)
    if not kept:
        return True
    return kept[0] if len(kept) == 1 else {"$and": kept}


def _disjoin(parts: Sequence[Expr]) -> Expr:
    kept: list[dict[str, Any]] = []
    for part in parts:
        if part is True:
            return True
        if part is not False:
            kept.append(part)
    if not kept:
        return False
    return kept[0] if len(kept) == 1 else {"$or": kept}


def _negate(part: Expr) -> Expr:
    return not part if isinstance(part, bool) else {"$not": part}


def compile_metadata_filters(filters: MetadataFilters | None) -> CompiledFilters:
    """Translate ``filters`` (``None`` = no filtering).

    Raises:
        InvalidInputError: a malformed filter, an operand that can never be compared, or a
            key starting with the adapters' reserved prefix ``_t4dm_``.
    """
    if filters is None:
        return CompiledFilters(None, True, lambda _: True)
    expr, exact, matcher = _compile_group(filters)
    engine: dict[str, Any] | bool | None = None if expr is True else expr
    return CompiledFilters(engine, exact, matcher)


def _compile_group(group: MetadataFilters) -> tuple[Expr, bool, _Matcher]:
    if not isinstance(group, MetadataFilters):
        raise InvalidInputError(f"filters must be a llama_index MetadataFilters, got {type(group).__name__}")
    condition = group.condition or FilterCondition.AND
    if condition not in (FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT):
        raise InvalidInputError(f"unknown filter condition {condition!r}")
    if not group.filters:
        return True, True, lambda _: True
    parts = [_compile_group(f) if isinstance(f, MetadataFilters) else _compile_leaf(f) for f in group.filters]
    exprs = [p[0] for p in parts]
    exact = all(p[1] for p in parts)
    matchers = [p[2] for p in parts]
    if condition == FilterCondition.AND:
        return conjoin(*exprs), exact, lambda md: all(m(md) for m in matchers)
    if condition == FilterCondition.OR:
        return _disjoin(exprs), exact, lambda md: any(m(md) for m in matchers)
    # NOT: none of the filters match. The complement of a superset is not a superset, so an
    # inexact group can only be prefiltered by "everything".
    return (_negate(_disjoin(exprs)) if exact else True), exact, lambda md: not any(m(md) for m in matchers)


# ---------------------------------------------------------------------------
# one MetadataFilter
# ---------------------------------------------------------------------------
def _check_scalar(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInputError(f"filter on {key!r}: values must be int, float or str, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"filter on {key!r}: {value!r} is not a finite number")


def _check_operand(value: Any, key: str) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _check_scalar(item, key)
    else:
        _check_scalar(value, key)


def _compile_leaf(flt: Any) -> tuple[Expr, bool, _Matcher]:
    if not isinstance(flt, MetadataFilter):
        raise InvalidInputError(f"filters must hold MetadataFilter or MetadataFilters, got {type(flt).__name__}")
    key, value = flt.key, flt.value
    try:
        op = FilterOperator(flt.operator)
    except ValueError:
        raise InvalidInputError(f"unknown filter operator {flt.operator!r}") from None
    if not isinstance(key, str):
        raise InvalidInputError(f"filter key must be a string, got {key!r}")
    if key.startswith(RESERVED_PREFIX):
        raise InvalidInputError(f"filter key {key!r} uses the reserved prefix {RESERVED_PREFIX!r}")
    if op != FilterOperator.IS_EMPTY:
        _check_operand(value, key)
        _check_comparable(op, value, key)
    matcher = _leaf_matcher(key, op, value)
    if not key or "." in key or key.startswith("$"):
        return True, False, matcher  # the engine would read the key as a path or an operator
    expr, exact = _leaf_expr(key, op, value)
    return expr, exact, matcher


def _check_comparable(op: FilterOperator, value: Any, key: str) -> None:
    """Refuse operands for which the reference raises TypeError on every record holding the key."""
    problem = None
    if op in _ORDERING and value is None:
        problem = "needs a number, a string or a list"
    elif op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL) and \
            not isinstance(value, (list, str)):
        problem = "needs a list"
    elif op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE) and not isinstance(value, str):
        problem = "needs a string"
    if problem:
        raise InvalidInputError(f"filter on {key!r}: operator {op.value!r} {problem}, got {value!r}")


def _leaf_matcher(key: str, op: FilterOperator, value: Any) -> _Matcher:
    def matches(metadata: Mapping[str, Any]) -> bool:
        current = metadata.get(key)
        if op == FilterOperator.IS_EMPTY:
            return current is None or current in ("", [])
        if current is None:
            return op in (FilterOperator.NE, FilterOperator.NIN)
        try:
            return _python_match(op, value, current)
        except TypeError:
            return False

    return matches


def _python_match(op: FilterOperator, value: Any, current: Any) -> bool:
    if op == FilterOperator.EQ:
        return bool(current == value)
    if op == FilterOperator.NE:
        return bool(current != value)
    if op in _ORDERING:
        return bool(_ORDERING[op][1](current, value))
    if op == FilterOperator.IN:
        return current in value
    if op == FilterOperator.NIN:
        return current not in value
    if op == FilterOperator.CONTAINS:
        return value in current
    if op == FilterOperator.TEXT_MATCH:
        return isinstance(current, str) and value in current
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return isinstance(current, str) and value.lower() in current.lower()
    if op == FilterOperator.ANY:
        return any(item in current for item in value)
    return all(item in current for item in value)  # ALL


def _equals(value: Any) -> list[Any]:
    """JSON values a metadata value may hold that Python considers equal to scalar ``value``."""
    if isinstance(value, str):
        return [value]
    return [value] + [b for b in (False, True) if b == value]


def _bool_sensitive(value: Any) -> bool:
    """A list operand Python would compare equal to a list holding booleans instead of 0/1."""
    return isinstance(value, list) and any(not isinstance(v, str) and v in (0, 1) for v in value)


def _in_list(key: str, values: list[Any]) -> Expr:
    expanded = [v for item in values for v in _equals(item)]
    if not expanded:
        return False
    return {key: {"$in": expanded}} if len(expanded) > 1 else {key: {"$eq": expanded[0]}}


def _like_substring(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(key: str, item: Any) -> tuple[Expr, bool]:
    """Python's ``item in metadata[key]`` for a list, string or object value."""
    if item is None:
        return {key: {"$contains": None}}, True
    if isinstance(item, list):
        if _bool_sensitive(item):
            return {key: {"$exists": True}}, False
        return {key: {"$contains": item}}, True
    if isinstance(item, str):
        as_element_or_substring = [{key: {"$contains": item}}, {key: {"$like": _like_substring(item)}}]
        if not item or "." in item:  # cannot address "object has key item" as a path
            return {key: {"$exists": True}}, False
        return _disjoin([*as_element_or_substring, {f"{key}.{item}": {"$exists": True}}]), True
    return _disjoin([{key: {"$contains": v}} for v in _equals(item)]), True


def _leaf_expr(key: str, op: FilterOperator, value: Any) -> tuple[Expr, bool]:
    present = {key: {"$exists": True}}
    if op == FilterOperator.IS_EMPTY:
        return _disjoin([{key: {"$exists": False}}, {key: {"$in": [None, "", []]}}]), True
    if op in (FilterOperator.EQ, FilterOperator.NE):
        if value is None:  # the reference never equates a value with None (None means "missing")
            return op == FilterOperator.NE, True
        if isinstance(value, list):
            if _bool_sensitive(value):
                return (present if op == FilterOperator.EQ else True), False
            return {key: {"$eq" if op == FilterOperator.EQ else "$ne": value}}, True
        equal = _in_list(key, [value])
        return (equal if op == FilterOperator.EQ else _negate(equal)), True
    if op in _ORDERING:
        engine_op, compare = _ORDERING[op]
        if isinstance(value, list):
            return present, False
        if isinstance(value, str):
            return {key: {engine_op: value}}, True
        bools = [b for b in (False, True) if compare(b, value)]
        return _disjoin([{key: {engine_op: value}}, {key: {"$in": bools}} if bools else False]), True
    if op in (FilterOperator.IN, FilterOperator.NIN):
        if isinstance(value, str):  # substring membership: evaluated in Python
            return (present if op == FilterOperator.IN else True), False
        members = _in_list(key, value)
        return (members if op == FilterOperator.IN else _negate(members)), True
    if op == FilterOperator.CONTAINS:
        return _contains(key, value)
    if op == FilterOperator.TEXT_MATCH:
        return {key: {"$like": _like_substring(value)}}, True
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return present, False
    parts = [_contains(key, item) for item in value]  # ANY / ALL over a list (or a string's characters)
    exact = all(p[1] for p in parts)
    if op == FilterOperator.ANY:
        return _disjoin([p[0] for p in parts]), exact
    # all() of nothing is True for any present, non-null value
    return conjoin({key: {"$exists": True, "$ne": None}}, *(p[0] for p in parts)), exact
