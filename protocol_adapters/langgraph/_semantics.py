"""LangGraph's item-filter and namespace-match semantics, as ``InMemoryStore`` defines them.

Filter (``search(filter=...)``), evaluated against an item's value:

* top-level keys are AND-ed, each looked up with ``value.get(key)`` (a top-level ``"$..."``
  key is an ordinary key, never an operator);
* a dict whose keys include one starting with ``"$"`` is a set of operators, all of which
  must hold: ``$eq``/``$ne`` use Python ``==``/``!=``, ``$gt $gte $lt $lte`` compare
  ``float(actual)`` with ``float(operand)`` (so a missing or non-numeric field raises
  ``TypeError``/``ValueError`` exactly as the reference does);
* any other dict matches a nested dict partially (recursively); a list or tuple needs a
  list or tuple of the same length matching element by element; anything else uses ``==``.

Unlike the reference, which raises ``ValueError("Unsupported operator: ...")`` only when an
item reaches the operator, :func:`check_filter` refuses unsupported operators up front (an
:class:`~t4dm_core.InvalidInputError`, which is a ``ValueError``), so the error does not
depend on what the store holds. Pure functions; thread-safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.store.base import MatchCondition

from t4dm_core import InvalidInputError

__all__ = ["SUPPORTED_OPERATORS", "check_filter", "matches_filter", "namespace_matches"]

SUPPORTED_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})


def check_filter(flt: object) -> None:
    """Refuse a filter the reference could not evaluate.

    Raises:
        InvalidInputError: not a mapping, a nested dict with a non-string key, or an
            operator dict holding anything but ``$eq $ne $gt $gte $lt $lte``.
    """
    if flt is None:
        return
    if not isinstance(flt, Mapping):
        raise InvalidInputError(f"filter must be a dict, got {type(flt).__name__}")
    for expected in flt.values():
        _check_expected(expected)


def _check_expected(expected: object) -> None:
    if isinstance(expected, dict):
        if any(not isinstance(k, str) for k in expected):
            raise InvalidInputError(f"nested filter keys must be strings, got {list(expected)!r}")
        if any(k.startswith("$") for k in expected):
            for operator in expected:
                if operator not in SUPPORTED_OPERATORS:
                    raise InvalidInputError(f"Unsupported operator: {operator}")
            return
        for nested in expected.values():
            _check_expected(nested)
    elif isinstance(expected, (list, tuple)):
        for element in expected:
            _check_expected(element)


def matches_filter(value: Mapping[str, Any], flt: Mapping[str, Any] | None) -> bool:
    """Whether an item value satisfies a (checked) filter; ``None``/``{}`` match everything."""
    if not flt:
        return True
    return all(_matches(value.get(key), expected) for key, expected in flt.items())


def _matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        if any(k.startswith("$") for k in expected):
            return all(_holds(actual, operator, operand) for operator, operand in expected.items())
        return isinstance(actual, dict) and all(_matches(actual.get(k), v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return (isinstance(actual, (list, tuple)) and len(actual) == len(expected)
                and all(_matches(a, e) for a, e in zip(actual, expected, strict=True)))
    return bool(actual == expected)


def _holds(actual: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return bool(actual == operand)
    if operator == "$ne":
        return bool(actual != operand)
    left, right = float(actual), float(operand)
    if operator == "$gt":
        return left > right
    if operator == "$gte":
        return left >= right
    if operator == "$lt":
        return left < right
    return left <= right  # "$lte" (check_filter admits nothing else)


def namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether ``namespace`` starts (``prefix``) or ends (``suffix``) with the condition's
    path, where a ``"*"`` label matches any one label."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    else:
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    return all(wanted in ("*", label) for label, wanted in pairs)
