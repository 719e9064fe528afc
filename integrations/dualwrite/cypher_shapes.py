"""Parser for the parameterised Cypher write shapes the dual-write shim mirrors into T4DM.

:func:`parse_write` turns a statement into a :class:`CypherWrite` template and
:meth:`CypherWrite.expand` binds the parameters, giving side-agnostic ops
(:mod:`integrations.dualwrite.ops`). Both run before anything is sent to either side; a
statement outside the shapes below raises :class:`UnsupportedCypherShapeError` naming the
clause (or expression) that is not understood.

Supported shapes (``L`` = one or more labels, ``key`` = the mapping rule's key property of
those labels, values = literals, ``$param`` (``$p.field``) or, under UNWIND, ``row`` /
``row.field``):

* ``CREATE (n:L {props})`` / ``CREATE (n:L $props)`` (several comma-separated nodes allowed),
  optionally followed by ``SET`` clauses on the created variables;
* ``MERGE (n:L {key: v, ...})`` followed by any number of ``SET n += map``, ``SET n = map``,
  ``SET n.p = v`` clauses;
* ``MATCH (n:L {key: v}) SET ...`` (same SET items) and ``MATCH (n:L {key: v}) [DETACH] DELETE n``;
* ``MATCH (a:L {key: $x}), (b:L {key: $y}) CREATE|MERGE (a)-[r:T {props}]->(b) [SET r ...]``
  (``<-`` also; several MATCH clauses allowed);
* ``MATCH (a:L {key: $x})-[r:T]->(b:L {key: $y}) DELETE r``;
* each of the above prefixed by ``UNWIND $rows AS row``.

Identity semantics (the mapping's model: a node is identified by labels + key): CREATE of a
node whose key exists updates that node rather than adding a duplicate, and CREATE / MERGE
of a relationship keeps one relationship per ``(start, type, end)``. Cypher's null rules are
kept: a ``null`` value in ``SET n += map`` or ``SET n.p = null`` removes the property, and
null properties of ``CREATE`` / ``SET n = map`` are not stored. ``SET n = map`` that would
drop the key property is refused (the node would lose its identity).

Not supported (raise, naming the clause): RETURN, WITH, WHERE, REMOVE, OPTIONAL MATCH,
ON CREATE / ON MATCH SET, FOREACH, CALL, LOAD CSV, label changes, paths in CREATE / MERGE,
relationship patterns without a type or with variable length, function calls and
arithmetic in values, and MATCH by a property other than the key.

Thread-safety: pure functions over immutable values; :func:`parse_write` is cached.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from integrations.dualwrite.errors import InvalidWriteError
from integrations.dualwrite.ops import (
    NodeDelete,
    NodeRef,
    NodeUpsert,
    Op,
    RelDelete,
    RelUpsert,
    plain_properties,
    plain_value,
)
from integrations.errors import UnsupportedCypherShapeError
from integrations.mapping import Mapping

__all__ = ["CypherWrite", "is_write_statement", "parse_write"]

WRITE_KEYWORDS = frozenset({"CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "FOREACH", "LOAD", "CALL"})
_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<param>\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<qident>`[^`]*`)
  | (?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<punct>\+=|->|<-|<>|<=|>=|=~|[()\[\]{}:,.;=\-<>+*/%^|!])
""", re.VERBOSE | re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "\\": "\\", "'": "'", '"': '"'}
_CLAUSE_KEYWORDS = WRITE_KEYWORDS | {"RETURN", "WITH", "WHERE", "UNWIND", "MATCH", "OPTIONAL", "ON", "UNION", "USE",
                                     "ORDER", "SKIP", "LIMIT", "YIELD", "AS"}
_CLAUSE_NAMES = {"ON": "ON CREATE / ON MATCH SET", "OPTIONAL": "OPTIONAL MATCH", "LOAD": "LOAD CSV",
                 "DETACH": "DETACH DELETE"}


# ---- tokens -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tok:
    kind: str  # ws-free kinds: param ident qident number string punct eof
    text: str
    pos: int

    def is_kw(self, word: str) -> bool:
        return self.kind == "ident" and self.text.upper() == word


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise UnsupportedCypherShapeError(f"cannot read Cypher at character {pos}: {text[pos:pos + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Tok("eof", "", len(text)))
    return tokens


def is_write_statement(cypher: str) -> bool:
    """True if the statement uses a write clause (CREATE, MERGE, SET, DELETE, REMOVE, FOREACH, LOAD, CALL).

    Keywords inside strings, backticked names, property keys (``n.set``, ``{delete: 1}``)
    and labels do not count. ``CALL`` counts because a procedure may write.
    """
    tokens = _tokenize(cypher)
    for i, tok in enumerate(tokens):
        if tok.kind != "ident" or tok.text.upper() not in WRITE_KEYWORDS:
            continue
        before = tokens[i - 1].text if i > 0 else ""
        if before not in (".", ":") and tokens[i + 1].text != ":":
            return True
    return False


# ---- expressions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Lit:
    value: Any


@dataclass(frozen=True)
class _Param:
    name: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class _RowRef:
    path: tuple[str, ...]


@dataclass(frozen=True)
class _ListExpr:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class _MapExpr:
    items: tuple[tuple[str, Any], ...]


_Expr = _Lit | _Param | _RowRef | _ListExpr | _MapExpr


@dataclass(frozen=True)
class _Env:
    params: MappingABC[str, Any]
    row: Any
    statement: str


def _evaluate(expr: _Expr, env: _Env) -> Any:
    if isinstance(expr, _Lit):
        return expr.value
    if isinstance(expr, _ListExpr):
        return [_evaluate(item, env) for item in expr.items]
    if isinstance(expr, _MapExpr):
        return {key: _evaluate(value, env) for key, value in expr.items}
    if isinstance(expr, _Param):
        if expr.name not in env.params:
            raise InvalidWriteError(f"parameter ${expr.name} is missing (statement: {env.statement!r})")
        return _follow(env.params[expr.name], expr.path, f"${expr.name}")
    return _follow(env.row, expr.path, "the UNWIND row")


def _follow(value: Any, path: tuple[str, ...], where: str) -> Any:
    for name in path:
        if value is None:
            return None
        if not isinstance(value, MappingABC):
            raise InvalidWriteError(f"{where} is not a map, so .{name} cannot be read from it")
        value = value.get(name)
        where = f"{where}.{name}"
    return value


# ---- templates ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _NodePat:
    var: str | None
    labels: tuple[str, ...]
    props: _Expr | None

    def describe(self) -> str:
        return f"({self.var or ''}{''.join(':' + label for label in self.labels)} ...)"


@dataclass(frozen=True)
class _SetStep:
    var: str
    kind: Literal["=", "+=", "prop"]
    prop: str | None
    expr: _Expr


@dataclass(frozen=True)
class _NodeWrite:
    pattern: _NodePat
    steps: tuple[_SetStep, ...]
    mode: Literal["create", "merge", "match"]


@dataclass(frozen=True)
class _NodeRemoval:
    pattern: _NodePat
    detach: bool


@dataclass(frozen=True)
class _RelWrite:
    src: _NodePat
    dst: _NodePat
    type: str
    props: _Expr | None
    steps: tuple[_SetStep, ...]
    mode: Literal["create", "merge"]


@dataclass(frozen=True)
class _RelRemoval:
    src: _NodePat
    dst: _NodePat
    type: str


_Template = _NodeWrite | _NodeRemoval | _RelWrite | _RelRemoval


@dataclass(frozen=True)
class CypherWrite:
    """A parsed write statement: optional UNWIND source plus op templates; :meth:`expand` binds parameters."""

    statement: str
    unwind: _Expr | None
    templates: tuple[_Template, ...]

    def expand(self, params: MappingABC[str, Any] | None, mapping: Mapping) -> list[Op]:
        """The ops this statement performs with ``params`` (validated; nothing is sent anywhere).

        Raises:
            InvalidWriteError: a parameter is missing, a value is not JSON-native, a node lacks
                its key property, or ``SET n = map`` would drop the key.
            UnsupportedCypherShapeError: a MATCH pattern uses a property other than the key.
        """
        params = params or {}
        rows: list[Any] = [None]
        if self.unwind is not None:
            source = _evaluate(self.unwind, _Env(params, None, self.statement))
            if not isinstance(source, list | tuple):
                raise InvalidWriteError(f"UNWIND needs a list, got {type(source).__name__} "
                                        f"(statement: {self.statement!r})")
            rows = list(source)
        ops: list[Op] = []
        for row in rows:
            env = _Env(params, row, self.statement)
            for template in self.templates:
                ops.append(_expand_one(template, env, mapping))
        return ops


def _expand_one(template: _Template, env: _Env, mapping: Mapping) -> Op:
    if isinstance(template, _NodeWrite):
        return _expand_node_write(template, env, mapping)
    if isinstance(template, _NodeRemoval):
        return NodeDelete(_match_ref(template.pattern, env, mapping), template.detach)
    src, dst = _match_ref(template.src, env, mapping), _match_ref(template.dst, env, mapping)
    if isinstance(template, _RelRemoval):
        return RelDelete(src, dst, template.type)
    base = _map_value(_evaluate(template.props, env), "relationship properties") if template.props else {}
    props, replace = _fold(base, template.mode == "create", template.steps, env)
    return RelUpsert(src, dst, template.type, props, replace)


def _expand_node_write(template: _NodeWrite, env: _Env, mapping: Mapping) -> NodeUpsert:
    pattern = template.pattern
    key_property = mapping.node_rule(pattern.labels).key
    if template.mode == "match":
        ref = _match_ref(pattern, env, mapping)
        props, replace = _fold({}, False, template.steps, env)
    else:
        base = _map_value(_evaluate(pattern.props, env), f"properties of {pattern.describe()}") \
            if pattern.props else {}
        props, replace = _fold(base, template.mode == "create", template.steps, env)
        ref = _node_ref(pattern, base if template.mode == "merge" else props, key_property)
    if replace and props.get(key_property) != ref.key:
        raise InvalidWriteError(f"SET {pattern.var or 'n'} = map on {pattern.describe()} would remove or change its "
                                f"key property {key_property!r}; include it unchanged (statement: {env.statement!r})")
    return NodeUpsert(ref, props, replace, template.mode != "match")


def _node_ref(pattern: _NodePat, props: MappingABC[str, Any], key_property: str) -> NodeRef:
    key = props.get(key_property)
    if key is None:
        raise InvalidWriteError(f"node {pattern.describe()} has no value for its key property {key_property!r} "
                                "(the mapping identifies nodes by it)")
    if not isinstance(key, str | int) or isinstance(key, bool):
        raise InvalidWriteError(f"node {pattern.describe()} key {key_property!r} is {key!r}; keys must be strings "
                                "or integers")
    return NodeRef(pattern.labels, key_property, key)


def _match_ref(pattern: _NodePat, env: _Env, mapping: Mapping) -> NodeRef:
    key_property = mapping.node_rule(pattern.labels).key
    props = _map_value(_evaluate(pattern.props, env), f"pattern {pattern.describe()}") if pattern.props else {}
    extra = sorted(set(props) - {key_property})
    if extra or key_property not in props:
        raise UnsupportedCypherShapeError(
            f"MATCH {pattern.describe()} with properties {sorted(props)}: the shim finds nodes only by their key "
            f"property {key_property!r} (statement: {env.statement!r})")
    return _node_ref(pattern, props, key_property)


def _map_value(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    return plain_properties(value, where)


def _fold(base: dict[str, Any], replace: bool, steps: tuple[_SetStep, ...], env: _Env) -> tuple[dict[str, Any], bool]:
    """Apply SET steps in order: ``=`` replaces, ``+=`` merges, ``.p =`` sets one property."""
    props = dict(base)
    for step in steps:
        value = _evaluate(step.expr, env)
        if step.kind == "=":
            props, replace = _map_value(value, f"SET {step.var} = ..."), True
        elif step.kind == "+=":
            props.update(_map_value(value, f"SET {step.var} += ..."))
        else:
            assert step.prop is not None
            props[step.prop] = plain_value(value, f"SET {step.var}.{step.prop}")
    return props, replace


# ---- parser -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=512)
def parse_write(cypher: str) -> CypherWrite:
    """Parse a write statement into a :class:`CypherWrite`; raises UnsupportedCypherShapeError naming the clause."""
    return _Parser(cypher).statement()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.row_var: str | None = None

    # -- token helpers
    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, punct: str) -> bool:
        tok = self.peek()
        return tok.kind == "punct" and tok.text == punct

    def accept(self, punct: str) -> bool:
        if self.at(punct):
            self.i += 1
            return True
        return False

    def expect(self, punct: str, context: str) -> None:
        if not self.accept(punct):
            self.unsupported(self.peek(), f"expected {punct!r} in {context}")

    def accept_kw(self, word: str) -> bool:
        if self.peek().is_kw(word):
            self.i += 1
            return True
        return False

    def unsupported(self, tok: _Tok, why: str = "") -> NoReturn:
        if tok.kind == "eof":
            clause = "end of statement"
        elif tok.kind == "ident" and tok.text.upper() in _CLAUSE_NAMES:
            clause = _CLAUSE_NAMES[tok.text.upper()]
        else:
            clause = tok.text.upper() if tok.kind == "ident" and tok.text.upper() in _CLAUSE_KEYWORDS else tok.text
        detail = f": {why}" if why else ""
        raise UnsupportedCypherShapeError(
            f"unsupported Cypher clause {clause!r} at character {tok.pos}{detail}; the shim mirrors only CREATE / "
            "MERGE / MATCH-by-key SET / DELETE of nodes and relationships (see integrations.dualwrite.cypher_shapes). "
            f"Statement: {self.text!r}")

    def name(self, context: str) -> str:
        tok = self.take()
        if tok.kind == "ident":
            return tok.text
        if tok.kind == "qident" and len(tok.text) > 2:
            return tok.text[1:-1]
        return self.unsupported(tok, f"expected a name in {context}")

    # -- statement
    def statement(self) -> CypherWrite:
        unwind: _Expr | None = None
        if self.accept_kw("UNWIND"):
            unwind = self.value()
            if not isinstance(unwind, _Param):
                self.unsupported(self.peek(), "UNWIND takes a $parameter list")
            if not self.accept_kw("AS"):
                self.unsupported(self.peek(), "expected AS after UNWIND $param")
            self.row_var = self.name("UNWIND ... AS")
        tok = self.peek()
        if self.accept_kw("CREATE"):
            templates = self.create_nodes()
        elif self.accept_kw("MERGE"):
            templates = self.merge_node()
        elif self.accept_kw("MATCH"):
            templates = self.match_statement()
        else:
            return self.unsupported(tok)
        self.accept(";")
        if self.peek().kind != "eof":
            self.unsupported(self.peek())
        return CypherWrite(self.text, unwind, tuple(templates))

    def create_nodes(self) -> list[_Template]:
        patterns = [self.node_pattern("CREATE")]
        while self.accept(","):
            patterns.append(self.node_pattern("CREATE"))
        if self.at("-") or self.at("<-"):
            self.unsupported(self.peek(), "CREATE of a relationship needs both ends bound by MATCH")
        steps = self.set_clauses({p.var for p in patterns if p.var})
        return [_NodeWrite(p, tuple(s for s in steps if s.var == p.var), "create") for p in patterns]

    def merge_node(self) -> list[_Template]:
        pattern = self.node_pattern("MERGE")
        if self.at("-") or self.at("<-"):
            self.unsupported(self.peek(), "MERGE of a path; MATCH both nodes, then MERGE the relationship")
        if pattern.props is None:
            self.unsupported(self.peek(), "MERGE needs the node's key property in its pattern")
        steps = self.set_clauses({pattern.var} if pattern.var else set())
        return [_NodeWrite(pattern, tuple(steps), "merge")]

    def match_statement(self) -> list[_Template]:
        nodes: dict[str, _NodePat] = {}
        rels: dict[str, tuple[_NodePat, _NodePat, str]] = {}
        while True:
            self.match_pattern(nodes, rels)
            if self.accept(","):
                continue
            if self.accept_kw("MATCH"):
                continue
            break
        tok = self.peek()
        templates: list[_Template]
        if tok.is_kw("SET") and not rels:
            steps = self.set_clauses(set(nodes))
            templates = [_NodeWrite(nodes[var], tuple(s for s in steps if s.var == var), "match")
                         for var in nodes if any(s.var == var for s in steps)]
        elif tok.is_kw("DETACH") or tok.is_kw("DELETE"):
            templates = self.delete_tail(nodes, rels)
        elif (tok.is_kw("CREATE") or tok.is_kw("MERGE")) and not rels:
            self.i += 1
            templates = self.relationship_writes(nodes, "create" if tok.is_kw("CREATE") else "merge")
        else:
            return self.unsupported(tok, "after MATCH the shim mirrors SET, (DETACH) DELETE, or CREATE / MERGE "
                                         "of a relationship between the matched nodes")
        used = {id(p) for t in templates for p in _patterns_of(t)}
        unused = sorted(var for var, p in nodes.items() if id(p) not in used)
        if unused:
            self.unsupported(tok, f"matched node(s) {unused} are not written by the statement (a MATCH that only "
                                  "filters cannot be mirrored)")
        return templates

    def match_pattern(self, nodes: dict[str, _NodePat], rels: dict[str, tuple[_NodePat, _NodePat, str]]) -> None:
        left = self.bind(self.node_pattern("MATCH"), nodes)
        if not (self.at("-") or self.at("<-")):
            return
        rel_var, rel_type, forward, _ = self.rel_pattern("MATCH", allow_props=False)
        right = self.bind(self.node_pattern("MATCH"), nodes)
        if rel_var is None:
            self.unsupported(self.peek(), "a matched relationship needs a variable to DELETE")
        rels[rel_var] = (left, right, rel_type) if forward else (right, left, rel_type)

    def bind(self, pattern: _NodePat, nodes: dict[str, _NodePat]) -> _NodePat:
        if pattern.var is None:
            self.unsupported(self.peek(), "matched nodes need a variable")
        if pattern.var in nodes:
            self.unsupported(self.peek(), f"variable {pattern.var!r} is matched twice")
        nodes[pattern.var] = pattern
        return pattern

    def delete_tail(self, nodes: dict[str, _NodePat], rels: dict[str, tuple[_NodePat, _NodePat, str]]
                    ) -> list[_Template]:
        detach = self.accept_kw("DETACH")
        if not self.accept_kw("DELETE"):
            self.unsupported(self.peek())
        names = [self.name("DELETE")]
        while self.accept(","):
            names.append(self.name("DELETE"))
        out: list[_Template] = []
        for var in names:
            if var in rels and not detach:
                out.append(_RelRemoval(*rels[var]))
            elif var in nodes and not rels:
                out.append(_NodeRemoval(nodes[var], detach))
            else:
                self.unsupported(self.peek(), f"DELETE {var}: delete a matched node (matched by key, no "
                                              "relationship pattern) or a matched relationship")
        return out

    def relationship_writes(self, nodes: dict[str, _NodePat], mode: Literal["create", "merge"]) -> list[_Template]:
        specs: list[tuple[str | None, _NodePat, _NodePat, str, _Expr | None]] = []
        while True:
            left = self.bound_end(nodes)
            if not (self.at("-") or self.at("<-")):
                self.unsupported(self.peek(), f"{mode.upper()} after MATCH creates a relationship between "
                                              "matched nodes")
            rel_var, rel_type, forward, props = self.rel_pattern(mode.upper(), allow_props=True)
            right = self.bound_end(nodes)
            src, dst = (left, right) if forward else (right, left)
            specs.append((rel_var, src, dst, rel_type, props))
            if not (mode == "create" and self.accept(",")):
                break
        steps = self.set_clauses({s[0] for s in specs if s[0]})
        return [_RelWrite(src, dst, rel_type, props, tuple(s for s in steps if s.var == var), mode)
                for var, src, dst, rel_type, props in specs]

    def bound_end(self, nodes: dict[str, _NodePat]) -> _NodePat:
        pattern = self.node_pattern("relationship end")
        if pattern.var not in nodes or pattern.labels or pattern.props is not None:
            self.unsupported(self.peek(), "relationship ends must be variables bound by MATCH, e.g. (a)-[:T]->(b)")
        assert pattern.var is not None
        return nodes[pattern.var]

    # -- patterns
    def node_pattern(self, context: str) -> _NodePat:
        self.expect("(", f"a {context} node pattern")
        var = self.name(context) if self.peek().kind in ("ident", "qident") else None
        labels: list[str] = []
        while self.accept(":"):
            labels.append(self.name(f"{context} labels"))
        props: _Expr | None = None
        if self.at("{"):
            props = self.map_literal()
        elif self.peek().kind == "param":
            props = self.value()
        self.expect(")", f"a {context} node pattern")
        return _NodePat(var, tuple(labels), props)

    def rel_pattern(self, context: str, *, allow_props: bool) -> tuple[str | None, str, bool, _Expr | None]:
        incoming = self.accept("<-")
        if not incoming:
            self.expect("-", f"a {context} relationship pattern")
        if not self.accept("["):
            self.unsupported(self.peek(), "relationship patterns need [:TYPE]")
        var = self.name(context) if self.peek().kind in ("ident", "qident") else None
        if not self.accept(":"):
            self.unsupported(self.peek(), "relationship patterns need exactly one type, e.g. [:KNOWS]")
        rel_type = self.name(f"{context} relationship type")
        if self.at("|") or self.at("*"):
            self.unsupported(self.peek(), "alternative types and variable-length relationships")
        props: _Expr | None = None
        if self.at("{") or self.peek().kind == "param":
            if not allow_props:
                self.unsupported(self.peek(), "properties in a matched relationship pattern")
            props = self.map_literal() if self.at("{") else self.value()
        self.expect("]", f"a {context} relationship pattern")
        if incoming:
            self.expect("-", f"a {context} relationship pattern")
        elif not self.accept("->"):
            self.unsupported(self.peek(), "undirected relationship patterns (use -> or <-)")
        return var, rel_type, not incoming, props

    def set_clauses(self, targets: set[str]) -> list[_SetStep]:
        steps: list[_SetStep] = []
        while True:
            if self.peek().is_kw("ON"):
                self.unsupported(self.peek())
            if not self.accept_kw("SET"):
                return steps
            steps.append(self.set_item(targets))
            while self.accept(","):
                steps.append(self.set_item(targets))

    def set_item(self, targets: set[str]) -> _SetStep:
        var_tok = self.peek()
        var = self.name("SET")
        if var not in targets:
            self.unsupported(var_tok, f"SET {var}: not a variable this statement writes")
        if self.accept("+="):
            return _SetStep(var, "+=", None, self.map_source())
        if self.accept("="):
            return _SetStep(var, "=", None, self.map_source())
        if self.accept("."):
            prop = self.name("SET")
            self.expect("=", f"SET {var}.{prop}")
            return _SetStep(var, "prop", prop, self.value())
        return self.unsupported(self.peek(), "SET supports n += map, n = map and n.p = value (no label changes)")

    def map_source(self) -> _Expr:
        expr = self.map_literal() if self.at("{") else self.value()
        if isinstance(expr, _Lit | _ListExpr):
            self.unsupported(self.peek(), "SET n = / += needs a map")
        return expr

    # -- values
    def map_literal(self) -> _MapExpr:
        self.expect("{", "a map")
        items: list[tuple[str, _Expr]] = []
        if not self.accept("}"):
            while True:
                key = self.name("a map key")
                self.expect(":", "a map")
                items.append((key, self.value()))
                if self.accept("}"):
                    break
                self.expect(",", "a map")
        return _MapExpr(tuple(items))

    def value(self) -> _Expr:
        tok = self.take()
        expr: _Expr
        if tok.kind == "string":
            expr = _Lit(_unquote(tok.text))
        elif tok.kind == "number" or (tok.kind == "punct" and tok.text == "-" and self.peek().kind == "number"):
            text = tok.text if tok.kind == "number" else "-" + self.take().text
            expr = _Lit(float(text) if any(c in text for c in ".eE") else int(text))
        elif tok.kind == "param":
            expr = _Param(tok.text[1:], self.path())
        elif tok.kind == "punct" and tok.text == "[":
            items: list[_Expr] = []
            if not self.accept("]"):
                items.append(self.value())
                while self.accept(","):
                    items.append(self.value())
                self.expect("]", "a list")
            expr = _ListExpr(tuple(items))
        elif tok.kind == "punct" and tok.text == "{":
            self.i -= 1
            expr = self.map_literal()
        elif tok.kind == "ident" and tok.text.upper() in ("TRUE", "FALSE", "NULL"):
            expr = _Lit({"TRUE": True, "FALSE": False, "NULL": None}[tok.text.upper()])
        elif tok.kind == "ident" and tok.text == self.row_var and not self.at("("):
            expr = _RowRef(self.path())
        elif tok.kind == "ident" and self.at("("):
            return self.unsupported(tok, f"function call {tok.text}(); pass the value as a parameter")
        else:
            return self.unsupported(tok, "values must be literals, $parameters or the UNWIND row")
        nxt = self.peek()
        if nxt.kind == "punct" and nxt.text in ("+", "-", "*", "/", "%", "^", "[", "=~", "<>", "<", ">", "<=", ">="):
            self.unsupported(nxt, "expressions are not supported; compute the value and pass it as a parameter")
        return expr

    def path(self) -> tuple[str, ...]:
        names: list[str] = []
        while self.accept("."):
            names.append(self.name("a property access"))
        return tuple(names)


def _patterns_of(template: _Template) -> tuple[_NodePat, ...]:
    if isinstance(template, _NodeWrite | _NodeRemoval):
        return (template.pattern,)
    return (template.src, template.dst)


def _unquote(text: str) -> str:
    body = text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 5 < len(body):
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
