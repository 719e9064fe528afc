"""Evaluate a parsed read-only Cypher query against a graph view.

Semantics follow Neo4j for the supported subset:

* **Matching** is by backtracking. Each comma-separated pattern starts at an *anchor* node
  (one already bound, else the first with inline properties, else the first with a label,
  else the first) whose candidates come from :meth:`GraphView.scan`; the chain is then
  extended edge by edge to the right and to the left of the anchor. Within one MATCH
  clause a relationship is used at most once per result row (Cypher's relationship
  isomorphism); nodes may repeat. A variable-length relationship yields one row per
  distinct path. An undirected relationship matches in both directions.
* **Null logic** is three-valued: comparisons with ``null`` give ``null``, AND/OR/NOT follow
  Kleene logic, and WHERE keeps a row only when its predicate is ``true``. ``=`` between
  values of different types is ``false``; ``<``-style comparisons between incomparable
  values are ``null``.
* **Projection**: non-aggregated RETURN items are the grouping keys of count()/collect();
  DISTINCT and grouping compare nodes and relationships by identity; ORDER BY uses Cypher's
  cross-type order (nulls last ascending, first descending) and is stable.
* **Results** are plain Python: a node becomes a dict of its properties, a relationship the
  tuple ``(start node properties, type, end node properties)`` and a variable-length
  relationship a list of those, as the Neo4j driver's ``Record.data()`` returns them.

Cost: each unbound anchor costs one :meth:`GraphView.scan` (a metadata scan of the graph);
each extension step costs one adjacency lookup per reached node, so a pattern of ``h`` hops
over nodes of degree ``d`` costs O(candidates × d^h) with ``h`` ≤ 3. Rows are materialised
before projection, so memory grows with the number of matches.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from protocol_adapters.langchain._cypher_parse import (
    Aggregate,
    BoolOp,
    Compare,
    CypherError,
    Expr,
    Func,
    InList,
    IsNull,
    ListExpr,
    Literal,
    MatchClause,
    NodePattern,
    Not,
    Param,
    PathPattern,
    Prop,
    Query,
    RelPattern,
    ReturnItem,
    Var,
    children,
)

__all__ = ["GraphView", "NodeRef", "RelRef", "execute"]


@dataclass(frozen=True)
class NodeRef:
    """A node as the evaluator sees it; equal (and hashed) by ``key`` alone."""

    key: str
    labels: tuple[str, ...] = field(compare=False)
    props: Mapping[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True)
class RelRef:
    """A relationship, identified by its endpoints' keys and its type."""

    src: str
    type: str
    dst: str


class GraphView(Protocol):
    """What the evaluator reads. Implementations may cache within one query."""

    def scan(self, labels: tuple[str, ...], props: Mapping[str, Any]) -> Iterable[NodeRef]:
        """Nodes that may carry all ``labels`` and ``props`` (a superset is fine: results are re-checked)."""

    def node(self, key: str) -> NodeRef | None:
        """The node with ``key``, or None."""

    def relationships(self, node: NodeRef, direction: str, types: tuple[str, ...]) -> Iterable[RelRef]:
        """Relationships leaving (``"out"``) or entering (``"in"``) ``node``, of ``types`` (empty = any)."""

    def rel_props(self, rel: RelRef) -> Mapping[str, Any]:
        """The properties of ``rel``."""


Binding = dict[str, Any]


def execute(query: Query, params: Mapping[str, Any], view: GraphView) -> list[dict[str, Any]]:
    """Run ``query`` with ``params`` over ``view``; one dict per result row, keyed by RETURN column.

    Raises:
        CypherError: a missing parameter, or a value of the wrong type at run time (for
            example ``toLower(1)``, a non-boolean WHERE, a negative LIMIT).
    """
    if not isinstance(params, Mapping):
        raise CypherError(f"params must be a dict, got {type(params).__name__}")
    missing = sorted(_param_names(query) - set(params))
    if missing:
        raise CypherError("missing query parameter(s): " + ", ".join(f"${name}" for name in missing))
    evaluator = _Evaluator({name: _normalise(value) for name, value in params.items()}, view)
    rows: list[Binding] = [{}]
    for clause in query.matches:
        rows = [out for row in rows for out in evaluator.match(clause, row)]
    return evaluator.project(query, rows)


def _param_names(query: Query) -> set[str]:
    exprs: list[Expr] = []
    for clause in query.matches:
        for path in clause.patterns:
            for props in [n.props for n in path.nodes] + [r.props for r in path.rels]:
                exprs.extend(value for _, value in props)
        if clause.where is not None:
            exprs.append(clause.where)
    exprs.extend(item.expr for item in query.items)
    exprs.extend(item.expr for item in query.order)
    exprs.extend(e for e in (query.skip, query.limit) if e is not None)
    names: set[str] = set()
    while exprs:
        expr = exprs.pop()
        if isinstance(expr, Param):
            names.add(expr.name)
        exprs.extend(children(expr))
    return names


def _normalise(value: Any) -> Any:
    """Parameters: tuples behave as lists (Cypher has no tuples)."""
    if isinstance(value, tuple | list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


class _Evaluator:
    def __init__(self, params: dict[str, Any], view: GraphView) -> None:
        self.params = params
        self.view = view

    # ---------------------------------------------------------------- matching
    def match(self, clause: MatchClause, row: Binding) -> Iterator[Binding]:
        for binding in self._patterns(clause.patterns, 0, row, frozenset()):
            if clause.where is None or self.truth(clause.where, binding) is True:
                yield binding

    def _patterns(self, patterns: tuple[PathPattern, ...], i: int, binding: Binding,
                  used: frozenset[RelRef]) -> Iterator[Binding]:
        if i == len(patterns):
            yield binding
            return
        for extended, now_used in self._path(patterns[i], binding, used):
            yield from self._patterns(patterns, i + 1, extended, now_used)

    def _path(self, path: PathPattern, binding: Binding,
              used: frozenset[RelRef]) -> Iterator[tuple[Binding, frozenset[RelRef]]]:
        anchor = _anchor(path, binding)
        steps = [(j, j + 1) for j in range(anchor, len(path.rels))] + \
                [(j + 1, j) for j in range(anchor - 1, -1, -1)]
        pattern = path.nodes[anchor]
        for node in self._candidates(pattern, binding):
            bound = self._bind_node(pattern, node, binding)
            if bound is not None:
                yield from self._steps(path, steps, 0, {anchor: node}, bound, used)

    def _steps(self, path: PathPattern, steps: list[tuple[int, int]], k: int, placed: dict[int, NodeRef],
               binding: Binding, used: frozenset[RelRef]) -> Iterator[tuple[Binding, frozenset[RelRef]]]:
        if k == len(steps):
            yield binding, used
            return
        start, end = steps[k]
        backwards = end < start
        rel_pattern = path.rels[min(start, end)]
        for trail, reached in self._expand(placed[start], rel_pattern, backwards, used):
            bound = self._bind_rel(rel_pattern, trail[::-1] if backwards else trail, binding)
            if bound is None:
                continue
            bound = self._bind_node(path.nodes[end], reached, bound)
            if bound is not None:
                yield from self._steps(path, steps, k + 1, {**placed, end: reached}, bound, used.union(trail))

    def _candidates(self, pattern: NodePattern, binding: Binding) -> Iterable[NodeRef]:
        if pattern.var is not None and pattern.var in binding:
            value = binding[pattern.var]
            return [value] if isinstance(value, NodeRef) else []
        return self.view.scan(pattern.labels, {key: self.value(expr, {}) for key, expr in pattern.props})

    def _expand(self, start: NodeRef, pattern: RelPattern, backwards: bool,
                used: frozenset[RelRef]) -> Iterator[tuple[tuple[RelRef, ...], NodeRef]]:
        """Paths of ``pattern.min_hops``..``max_hops`` unused relationships from ``start``."""
        direction = pattern.direction
        if backwards and direction != "both":
            direction = "in" if direction == "out" else "out"

        def walk(node: NodeRef, trail: tuple[RelRef, ...]) -> Iterator[tuple[tuple[RelRef, ...], NodeRef]]:
            if len(trail) >= pattern.min_hops:
                yield trail, node
            if len(trail) == pattern.max_hops:
                return
            for rel, other in self._adjacent(node, direction, pattern.types):
                if rel in used or rel in trail:
                    continue
                if pattern.props and not self._props_match(pattern.props, self.view.rel_props(rel)):
                    continue
                yield from walk(other, (*trail, rel))

        for trail, reached in walk(start, ()):
            if trail:
                yield trail, reached

    def _adjacent(self, node: NodeRef, direction: str, types: tuple[str, ...]) -> Iterator[tuple[RelRef, NodeRef]]:
        if direction in ("out", "both"):
            for rel in self.view.relationships(node, "out", types):
                other = self.view.node(rel.dst)
                if other is not None:
                    yield rel, other
        if direction in ("in", "both"):
            for rel in self.view.relationships(node, "in", types):
                if direction == "both" and rel.src == rel.dst:
                    continue  # a self-loop was already reached as an outgoing relationship
                other = self.view.node(rel.src)
                if other is not None:
                    yield rel, other

    def _bind_node(self, pattern: NodePattern, node: NodeRef, binding: Binding) -> Binding | None:
        if not set(pattern.labels) <= set(node.labels) or not self._props_match(pattern.props, node.props):
            return None
        return _bind(binding, pattern.var, node)

    def _bind_rel(self, pattern: RelPattern, trail: tuple[RelRef, ...], binding: Binding) -> Binding | None:
        return _bind(binding, pattern.var, list(trail) if pattern.variable_length else trail[0])

    def _props_match(self, wanted: tuple[tuple[str, Expr], ...], actual: Mapping[str, Any]) -> bool:
        return all(_equals(actual.get(key), self.value(expr, {})) is True for key, expr in wanted)

    # ---------------------------------------------------------------- expressions
    def truth(self, expr: Expr, env: Mapping[str, Any]) -> bool | None:
        value = self.value(expr, env)
        if value is None or isinstance(value, bool):
            return value
        raise CypherError(f"expected a boolean but the expression gave a {_type_name(value)}")

    def value(self, expr: Expr, env: Mapping[str, Any]) -> Any:
        if isinstance(expr, Literal):
            return expr.value
        if isinstance(expr, Param):
            return self.params[expr.name]
        if isinstance(expr, Var):
            if expr.name not in env:
                raise CypherError(f"variable `{expr.name}` is not available here: after DISTINCT or an "
                                  "aggregation, ORDER BY can only use the returned columns")
            return env[expr.name]
        if isinstance(expr, Prop):
            return self._property(self.value(expr.subject, env), expr.key)
        if isinstance(expr, ListExpr):
            return [self.value(item, env) for item in expr.items]
        if isinstance(expr, Not):
            operand = self.truth(expr.operand, env)
            return None if operand is None else not operand
        if isinstance(expr, BoolOp):
            return self._boolean(expr, env)
        if isinstance(expr, Compare):
            return _compare(expr.op, self.value(expr.left, env), self.value(expr.right, env))
        if isinstance(expr, IsNull):
            return (self.value(expr.operand, env) is None) != expr.negated
        if isinstance(expr, InList):
            return _contains(self.value(expr.container, env), self.value(expr.item, env))
        if isinstance(expr, Func):
            return _string_function(expr.name, self.value(expr.arg, env))
        raise CypherError(f"{expr.name}() cannot be used here")

    def _boolean(self, expr: BoolOp, env: Mapping[str, Any]) -> bool | None:
        decisive = expr.op == "OR"  # the operand value that settles the result
        result: bool | None = not decisive
        for operand in expr.operands:
            value = self.truth(operand, env)
            if value is decisive:
                return decisive
            if value is None:
                result = None
        return result

    def _property(self, subject: Any, key: str) -> Any:
        if subject is None:
            return None
        if isinstance(subject, NodeRef):
            return subject.props.get(key)
        if isinstance(subject, RelRef):
            return self.view.rel_props(subject).get(key)
        if isinstance(subject, dict):
            return subject.get(key)
        raise CypherError(f"cannot read property {key!r} of a {_type_name(subject)}")

    # ---------------------------------------------------------------- projection
    def project(self, query: Query, rows: list[Binding]) -> list[dict[str, Any]]:
        keys = [item.key for item in query.items]
        if any(isinstance(item.expr, Aggregate) for item in query.items):
            table = self._aggregate(query.items, rows)
        else:
            table = []
            for row in rows:
                values = [self.value(item.expr, row) for item in query.items]
                table.append((values, {**row, **dict(zip(keys, values, strict=True))}))
        if query.distinct:
            seen: set[Any] = set()
            unique = []
            for values, _ in table:
                frozen = tuple(_freeze(v) for v in values)
                if frozen not in seen:
                    seen.add(frozen)
                    unique.append((values, dict(zip(keys, values, strict=True))))
            table = unique
        table = self._sort(query, keys, table)
        start = self._count(query.skip, "SKIP") if query.skip is not None else 0
        stop = start + self._count(query.limit, "LIMIT") if query.limit is not None else None
        return [{key: self._output(v) for key, v in zip(keys, values, strict=True)}
                for values, _ in table[start:stop]]

    def _aggregate(self, items: tuple[ReturnItem, ...], rows: list[Binding]) -> list[tuple[list[Any], Binding]]:
        grouping = [i for i, item in enumerate(items) if not isinstance(item.expr, Aggregate)]
        groups: dict[tuple[Any, ...], tuple[list[Any], list[Binding]]] = {}
        for row in rows:
            key_values = [self.value(items[i].expr, row) for i in grouping]
            groups.setdefault(tuple(_freeze(v) for v in key_values), (key_values, []))[1].append(row)
        if not groups and not grouping:
            groups[()] = ([], [])
        table = []
        for key_values, members in groups.values():
            values: list[Any] = [None] * len(items)
            for i, value in zip(grouping, key_values, strict=True):
                values[i] = value
            for i, item in enumerate(items):
                if isinstance(item.expr, Aggregate):
                    values[i] = self._aggregate_value(item.expr, members)
            table.append((values, {item.key: v for item, v in zip(items, values, strict=True)}))
        return table

    def _aggregate_value(self, agg: Aggregate, rows: list[Binding]) -> Any:
        if agg.arg is None:
            return len(rows)
        values = [v for v in (self.value(agg.arg, row) for row in rows) if v is not None]
        if agg.distinct:
            unique: dict[Any, Any] = {}
            for v in values:
                unique.setdefault(_freeze(v), v)
            values = list(unique.values())
        return len(values) if agg.name == "count" else values

    def _sort(self, query: Query, keys: list[str],
              table: list[tuple[list[Any], Binding]]) -> list[tuple[list[Any], Binding]]:
        if not query.order:
            return table
        decorated = []
        for values, env in table:
            sort_values = [values[keys.index(item.text)] if item.text in keys else self.value(item.expr, env)
                           for item in query.order]
            decorated.append((sort_values, values, env))
        for i in range(len(query.order) - 1, -1, -1):  # stable sorts, last key first
            decorated.sort(key=partial(_sort_key, i), reverse=query.order[i].descending)
        return [(values, env) for _, values, env in decorated]

    def _count(self, expr: Expr, clause: str) -> int:
        value = self.value(expr, {})
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CypherError(f"{clause} needs a non-negative integer, got {value!r}")
        return value

    def _output(self, value: Any) -> Any:
        if isinstance(value, NodeRef):
            return copy.deepcopy(dict(value.props))
        if isinstance(value, RelRef):
            ends = [self.view.node(value.src), self.view.node(value.dst)]
            start, end = (copy.deepcopy(dict(n.props)) if n is not None else {} for n in ends)
            return start, value.type, end
        if isinstance(value, list):
            return [self._output(v) for v in value]
        if isinstance(value, dict):
            return {k: self._output(v) for k, v in value.items()}
        return value


# -------------------------------------------------------------------- value semantics
def _anchor(path: PathPattern, binding: Binding) -> int:
    """Where to start matching a chain: a bound node, else the most constrained one."""
    for i, node in enumerate(path.nodes):
        if node.var is not None and node.var in binding:
            return i
    for i, node in enumerate(path.nodes):
        if node.props:
            return i
    for i, node in enumerate(path.nodes):
        if node.labels:
            return i
    return 0


def _bind(binding: Binding, var: str | None, value: Any) -> Binding | None:
    if var is None:
        return binding
    if var in binding:
        return binding if _equals(binding[var], value) is True else None
    return {**binding, var: value}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equals(a: Any, b: Any) -> bool | None:
    """Cypher ``=``: null if either side is null, false across types, element-wise on lists."""
    if a is None or b is None:
        return None
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        results = [_equals(x, y) for x, y in zip(a, b, strict=True)]
        return False if False in results else None if None in results else True
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        return _equals([a[k] for k in sorted(a)], [b[k] for k in sorted(a)])
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _compare(op: str, a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    if op in ("=", "<>"):
        equal = _equals(a, b)
        return equal if op == "=" or equal is None else not equal
    if op in ("CONTAINS", "STARTS", "ENDS"):
        if not (isinstance(a, str) and isinstance(b, str)):
            return None
        return b in a if op == "CONTAINS" else a.startswith(b) if op == "STARTS" else a.endswith(b)
    comparable = (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)) or \
        (isinstance(a, bool) and isinstance(b, bool))
    if not comparable:
        return None
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _contains(container: Any, item: Any) -> bool | None:
    """Cypher ``item IN container``."""
    if container is None:
        return None
    if not isinstance(container, list):
        raise CypherError(f"IN needs a list on its right, got a {_type_name(container)}")
    if item is None:
        return None if container else False
    result: bool | None = False
    for element in container:
        equal = _equals(item, element)
        if equal is True:
            return True
        if equal is None:
            result = None
    return result


def _string_function(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CypherError(f"{'toLower' if name == 'tolower' else 'toUpper'}() needs a string, "
                          f"got a {_type_name(value)}")
    return value.lower() if name == "tolower" else value.upper()


def _freeze(value: Any) -> Any:
    """A hashable stand-in with Cypher equality (true is not 1; nodes by identity)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, list):
        return ("list", tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("map", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    return value


# Cypher's ascending order across types: maps, nodes, relationships, lists, strings,
# booleans, numbers, then null.
def _order_key(value: Any) -> tuple[Any, ...]:
    if value is None:
        return (9,)
    if isinstance(value, dict):
        return (0, tuple(sorted((k, _order_key(v)) for k, v in value.items())))
    if isinstance(value, NodeRef):
        return (1, value.key)
    if isinstance(value, RelRef):
        return (2, value.src, value.type, value.dst)
    if isinstance(value, list):
        return (3, tuple(_order_key(v) for v in value))
    if isinstance(value, str):
        return (4, value)
    if isinstance(value, bool):
        return (5, value)
    if _is_number(value):
        return (6, value)
    return (7, repr(value))


def _sort_key(i: int, entry: tuple[list[Any], list[Any], Binding]) -> tuple[Any, ...]:
    return _order_key(entry[0][i])


def _type_name(value: Any) -> str:
    if isinstance(value, NodeRef):
        return "node"
    if isinstance(value, RelRef):
        return "relationship"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__
