"""Validating a batch of LangGraph ops and planning its writes, before anything touches the store.

:func:`plan_batch` checks every op first (so one bad op fails the whole batch and nothing
is written or embedded), then de-duplicates the writes like ``InMemoryStore``: the last
``PutOp`` for a ``(namespace, key)`` wins, and writes are applied in the order each pair
first appears. It also collects the distinct texts to embed and the distinct queries.
Pure; thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    SearchOp,
    validate_op_namespace,
)

from protocol_adapters.langgraph._index import IndexSpec
from protocol_adapters.langgraph._records import check_value, is_finite_number, item_id
from protocol_adapters.langgraph._semantics import check_filter
from t4dm_core import InvalidInputError

__all__ = ["Plan", "PlannedPut", "plan_batch"]

_RESERVED_ROOT = "langgraph"


@dataclass(frozen=True)
class PlannedPut:
    """One de-duplicated write: ``value is None`` deletes; ``texts`` are embedded in order."""

    namespace: tuple[str, ...]
    key: str
    id: str
    value: dict[str, Any] | None
    texts: tuple[str, ...]
    ttl: float | None


@dataclass
class Plan:
    """A checked batch: the ops, the writes to apply, and what to embed."""

    ops: list[Op]
    puts: list[PlannedPut] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


def plan_batch(ops: Iterable[Op], index: IndexSpec | None) -> Plan:
    """Check ``ops`` and plan their writes.

    Raises:
        langgraph.store.base.InvalidNamespaceError: a bad namespace label; a put into the
            empty namespace or under the reserved root ``"langgraph"``.
        InvalidInputError: any other malformed op (see the module docstring of
            :mod:`protocol_adapters.langgraph.store` for the accepted values).
    """
    plan = Plan(list(ops))
    for op in plan.ops:
        _check_op(op)
    order: dict[tuple[tuple[str, ...], str], PutOp] = {}
    for op in plan.ops:
        if isinstance(op, PutOp):  # re-assigning a key keeps its first position: last op, first place
            order[(tuple(op.namespace), op.key)] = op
    texts: dict[str, None] = {}
    for (namespace, key), op in order.items():
        value = None if op.value is None else check_value(op.value)
        found: list[str] = []
        if value is not None and index is not None and op.index is not False:
            found = index.texts(value, op.index)
        texts.update(dict.fromkeys(found))
        plan.puts.append(PlannedPut(namespace, key, item_id(namespace, key), value, tuple(found),
                                    None if op.value is None else op.ttl))
    plan.texts = list(texts)
    if index is not None:
        plan.queries = list(dict.fromkeys(op.query for op in plan.ops if isinstance(op, SearchOp) and op.query))
    return plan


def _check_op(op: Op) -> None:
    if isinstance(op, ListNamespacesOp):
        _check_list(op)
    elif isinstance(op, (GetOp, PutOp)):
        _check_path(op.namespace)
    elif isinstance(op, SearchOp):
        _check_path(op.namespace_prefix)
    else:
        raise InvalidInputError(f"unknown operation type: {type(op).__name__}")
    validate_op_namespace(op)
    if isinstance(op, GetOp):
        _check_key(op.key)
    elif isinstance(op, SearchOp):
        check_filter(op.filter)
        _check_count("limit", op.limit)
        _check_count("offset", op.offset)
        if op.query is not None and not isinstance(op.query, str):
            raise InvalidInputError(f"query must be a string or None, got {type(op.query).__name__}")
    elif isinstance(op, PutOp):
        _check_put(op)


def _check_path(path: object) -> None:
    if not isinstance(path, (tuple, list)):
        raise InvalidNamespaceError(f"a namespace must be a tuple of strings, got {path!r}")


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise InvalidInputError(f"key must be a string, got {type(key).__name__}")


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{name} must be a non-negative int, got {value!r}")


def _check_put(op: PutOp) -> None:
    if not op.namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    if op.namespace[0] == _RESERVED_ROOT:
        raise InvalidNamespaceError(f'Root label for namespace cannot be "langgraph". Got: {op.namespace}')
    _check_key(op.key)
    if op.value is not None:
        check_value(op.value)
    if not (op.index is None or op.index is False or (
            isinstance(op.index, (list, tuple)) and all(isinstance(p, str) for p in op.index))):
        raise InvalidInputError(f"index must be None, False or a list of field paths, got {op.index!r}")
    if op.ttl is not None and not (is_finite_number(op.ttl) and op.ttl > 0):
        raise InvalidInputError(f"ttl must be a positive number of minutes or None, got {op.ttl!r}")


def _check_list(op: ListNamespacesOp) -> None:
    conditions = op.match_conditions
    if conditions is not None:
        if not isinstance(conditions, (tuple, list)):
            raise InvalidInputError(f"match_conditions must be a tuple of MatchCondition, got {conditions!r}")
        for condition in conditions:
            if not isinstance(condition, MatchCondition) or condition.match_type not in ("prefix", "suffix"):
                raise InvalidInputError(f"unsupported match condition {condition!r} (match_type prefix or suffix)")
            _check_path(condition.path)
    if op.max_depth is not None and (isinstance(op.max_depth, bool) or not isinstance(op.max_depth, int)
                                     or op.max_depth < 1):
        raise InvalidInputError(f"max_depth must be a positive int or None, got {op.max_depth!r}")
    _check_count("limit", op.limit)
    _check_count("offset", op.offset)
