"""Tokenizer, syntax tree and recursive-descent parser for the read-only Cypher subset.

The accepted language (keywords are case-insensitive)::

    query    := [CYPHER [version]] (MATCH pattern ("," pattern)* [WHERE expr])* RETURN [DISTINCT] item ("," item)*
                [ORDER BY expr [ASC|DESC] ("," ...)*] [SKIP int|$p] [LIMIT int|$p] [";"]
    pattern  := node (rel node)*                       -- at most 3 hops in total
    node     := "(" [var] (":" label)* ["{" key ":" literal|$param, ... "}"] ")"
    rel      := "-[" [var] [":" T ("|" [":"] T)*] ["*" [min] [".." max]] [props] "]->"
              | "<-[" ... "]-" | "-[" ... "]-" | "-->" | "<--" | "--"
    item     := expr [AS alias]                       -- count()/collect() only at top level
    expr     := OR / AND / NOT over comparisons: = <> < <= > >=, IS [NOT] NULL, CONTAINS,
                STARTS WITH, ENDS WITH, IN; operands are literals, $params, lists, variables,
                var.prop, toLower()/toUpper() and parentheses

Everything else is refused while parsing, before anything is evaluated: a clause or
construct outside the subset raises :class:`UnsupportedCypherError` naming it, malformed
text raises :class:`CypherSyntaxError` with the line and column. Parsing is a pure function
of the text; the parser is not shared between threads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

from t4dm_core import InvalidInputError

__all__ = [
    "MAX_HOPS",
    "Aggregate",
    "BoolOp",
    "Compare",
    "CypherError",
    "CypherSyntaxError",
    "Expr",
    "Func",
    "InList",
    "IsNull",
    "ListExpr",
    "Literal",
    "MatchClause",
    "NodePattern",
    "Not",
    "Param",
    "PathPattern",
    "Prop",
    "Query",
    "RelPattern",
    "ReturnItem",
    "SortItem",
    "UnsupportedCypherError",
    "Var",
    "children",
    "parse",
]

MAX_HOPS = 3


class CypherError(InvalidInputError):
    """A Cypher query cannot be run: malformed, outside the subset, or a runtime type error."""


class CypherSyntaxError(CypherError):
    """The query text is not valid Cypher (the message gives line and column)."""


class UnsupportedCypherError(CypherError):
    """Valid Cypher that the read-only subset does not implement (the message names the construct)."""


# ------------------------------------------------------------------ syntax tree
@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Param:
    name: str


@dataclass(frozen=True)
class Var:
    name: str
    pos: int = field(compare=False)


@dataclass(frozen=True)
class Prop:
    subject: Expr
    key: str


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class BoolOp:
    op: str  # "AND" | "OR"
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Compare:
    op: str  # = <> < <= > >= CONTAINS STARTS ENDS
    left: Expr
    right: Expr


@dataclass(frozen=True)
class IsNull:
    operand: Expr
    negated: bool


@dataclass(frozen=True)
class InList:
    item: Expr
    container: Expr


@dataclass(frozen=True)
class Func:
    name: str  # "tolower" | "toupper"
    arg: Expr


@dataclass(frozen=True)
class Aggregate:
    name: str  # "count" | "collect"
    arg: Expr | None  # None = count(*)
    distinct: bool


Expr = Literal | Param | Var | Prop | ListExpr | Not | BoolOp | Compare | IsNull | InList | Func | Aggregate


@dataclass(frozen=True)
class NodePattern:
    var: str | None
    labels: tuple[str, ...]
    props: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class RelPattern:
    var: str | None
    types: tuple[str, ...]  # empty = any type
    direction: str  # "out" (->), "in" (<-) or "both" (undirected), read left to right
    min_hops: int
    max_hops: int
    variable_length: bool
    props: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class PathPattern:
    nodes: tuple[NodePattern, ...]
    rels: tuple[RelPattern, ...]  # rels[i] joins nodes[i] and nodes[i + 1]


@dataclass(frozen=True)
class MatchClause:
    patterns: tuple[PathPattern, ...]
    where: Expr | None


@dataclass(frozen=True)
class ReturnItem:
    expr: Expr
    key: str  # the alias, or the expression's text as written (Neo4j's column name)


@dataclass(frozen=True)
class SortItem:
    expr: Expr
    text: str
    descending: bool


@dataclass(frozen=True)
class Query:
    matches: tuple[MatchClause, ...]
    distinct: bool
    items: tuple[ReturnItem, ...]
    order: tuple[SortItem, ...]
    skip: Expr | None
    limit: Expr | None


# ------------------------------------------------------------------ tokenizer
@dataclass(frozen=True)
class _Token:
    kind: str  # WORD, QUOTED (backticked name), STRING, INT, FLOAT, PARAM, OP, EOF
    value: Any
    pos: int
    end: int


_TOKEN_RE = re.compile(r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<float>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>\d+)
  | (?P<word>[^\W\d]\w*)
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<param>\$(?:[^\W\d]\w*|\d+|`(?:[^`]|``)*`))
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op><>|<=|>=|=~|!=|\.\.|[-()\[\]{},:.|*;=<>+/%^!&?])
""", re.VERBOSE | re.DOTALL)

_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_ESCAPE_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.DOTALL)


def _location(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def _unescape(body: str, text: str, pos: int) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("u") and len(code) == 5:
            return chr(int(code[1:], 16))
        if code in _ESCAPES:
            return _ESCAPES[code]
        raise CypherSyntaxError(f"invalid escape sequence \\{code} in a string at {_location(text, pos)}")
    return _ESCAPE_RE.sub(one, body)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            if text.startswith(("'", '"', "`", "/*"), pos):
                raise CypherSyntaxError(f"unterminated quote or comment starting at {_location(text, pos)}")
            raise CypherSyntaxError(f"unexpected character {text[pos]!r} at {_location(text, pos)}")
        kind, raw, end = match.lastgroup, match.group(), match.end()
        if kind == "float":
            tokens.append(_Token("FLOAT", float(raw), pos, end))
        elif kind == "int":
            tokens.append(_Token("INT", int(raw), pos, end))
        elif kind == "word":
            tokens.append(_Token("WORD", raw, pos, end))
        elif kind == "quoted":
            tokens.append(_Token("QUOTED", raw[1:-1].replace("``", "`"), pos, end))
        elif kind == "param":
            name = raw[1:]
            tokens.append(_Token("PARAM", name[1:-1].replace("``", "`") if name.startswith("`") else name, pos, end))
        elif kind == "string":
            tokens.append(_Token("STRING", _unescape(raw[1:-1], text, pos), pos, end))
        elif kind == "op":
            tokens.append(_Token("OP", raw, pos, end))
        pos = end
    tokens.append(_Token("EOF", None, len(text), len(text)))
    return tokens


# ------------------------------------------------------------------ parser
# Clause keywords outside the subset, and the name the error message gives them.
_UNSUPPORTED_CLAUSES = {
    "CREATE": "CREATE", "MERGE": "MERGE", "SET": "SET", "DELETE": "DELETE", "DETACH": "DETACH DELETE",
    "REMOVE": "REMOVE", "OPTIONAL": "OPTIONAL MATCH", "WITH": "WITH", "UNWIND": "UNWIND", "CALL": "CALL",
    "UNION": "UNION", "FOREACH": "FOREACH", "LOAD": "LOAD CSV", "USE": "USE", "SHOW": "SHOW",
    "EXPLAIN": "EXPLAIN", "PROFILE": "PROFILE", "DROP": "DROP", "START": "START", "FINISH": "FINISH",
    "GRANT": "GRANT", "DENY": "DENY", "REVOKE": "REVOKE", "ALTER": "ALTER", "TERMINATE": "TERMINATE",
}
_COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
_ARITHMETIC = ("+", "-", "*", "/", "%", "^")
_SCALAR_FUNCTIONS = ("tolower", "toupper")
_AGGREGATES = ("count", "collect")


def parse(text: str) -> Query:
    """Parse ``text`` into a :class:`Query`.

    Raises:
        CypherSyntaxError: malformed query (message gives line and column).
        UnsupportedCypherError: a clause, function or construct outside the subset.
    """
    if not isinstance(text, str):
        raise CypherError(f"a Cypher query must be a string, got {type(text).__name__}")
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.scope: dict[str, str] = {}  # variable -> "node" | "rel" | "path"

    # ---------------------------------------------------------- token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def peek(self, offset: int = 1) -> _Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "OP" and self.tok.value in ops

    def at_kw(self, *words: str, token: _Token | None = None) -> bool:
        token = token or self.tok
        return token.kind == "WORD" and token.value.upper() in words

    def accept_op(self, op: str) -> bool:
        if self.at_op(op):
            self.advance()
            return True
        return False

    def accept_kw(self, word: str) -> bool:
        if self.at_kw(word):
            self.advance()
            return True
        return False

    def describe(self, token: _Token) -> str:
        return "the end of the query" if token.kind == "EOF" else repr(self.text[token.pos:token.end])

    def syntax_error(self, expected: str, token: _Token | None = None) -> NoReturn:
        token = token or self.tok
        raise CypherSyntaxError(f"expected {expected} but found {self.describe(token)} at "
                                f"{_location(self.text, token.pos)}")

    def unsupported(self, construct: str, token: _Token | None = None) -> NoReturn:
        token = token or self.tok
        raise UnsupportedCypherError(f"{construct} is not supported by the T4DM read-only Cypher subset "
                                     f"(at {_location(self.text, token.pos)})")

    def expect_op(self, op: str) -> _Token:
        if not self.at_op(op):
            self.syntax_error(repr(op))
        return self.advance()

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            self.syntax_error(word)

    def name(self, what: str) -> str:
        if self.tok.kind not in ("WORD", "QUOTED"):
            self.syntax_error(what)
        return str(self.advance().value)

    def clause_error(self, expected: str) -> NoReturn:
        if self.tok.kind == "WORD":
            clause = _UNSUPPORTED_CLAUSES.get(self.tok.value.upper())
            if clause is not None:
                self.unsupported(f"the {clause} clause")
        self.syntax_error(expected)

    # ---------------------------------------------------------- clauses
    def query(self) -> Query:
        if self.accept_kw("CYPHER"):  # Neo4j's query-options prefix; LLMs emit it via ```cypher fences
            if self.tok.kind == "INT":
                self.advance()  # a language version such as CYPHER 5
            if self.tok.kind == "WORD" and self.peek().kind == "OP" and self.peek().value == "=":
                self.unsupported("CYPHER query options")
        matches: list[MatchClause] = []
        while not self.at_kw("RETURN"):
            if not self.accept_kw("MATCH"):
                self.clause_error("MATCH or RETURN")
            matches.append(self.match_clause())
        self.advance()
        distinct = self.accept_kw("DISTINCT")
        if self.at_op("*"):
            self.unsupported("RETURN *")
        items = [self.return_item()]
        while self.accept_op(","):
            items.append(self.return_item())
        keys = [item.key for item in items]
        for key in keys:
            if keys.count(key) > 1:
                raise CypherSyntaxError(f"two RETURN columns are both named {key!r}; give one an alias with AS")
        order: list[SortItem] = []
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            order.append(self.sort_item(keys))
            while self.accept_op(","):
                order.append(self.sort_item(keys))
        skip = self.count_value("SKIP") if self.accept_kw("SKIP") else None
        limit = self.count_value("LIMIT") if self.accept_kw("LIMIT") else None
        self.accept_op(";")
        if self.tok.kind != "EOF":
            self.clause_error("the end of the query")
        return Query(tuple(matches), distinct, tuple(items), tuple(order), skip, limit)

    def match_clause(self) -> MatchClause:
        patterns = [self.pattern()]
        while self.accept_op(","):
            patterns.append(self.pattern())
        where = None
        if self.accept_kw("WHERE"):
            where = self.expr()
            self.check_expr(where, aggregates_allowed=False)
        return MatchClause(tuple(patterns), where)

    def return_item(self) -> ReturnItem:
        start = self.tok
        expr = self.expr()
        text = self.text[start.pos:self.tokens[self.i - 1].end]
        self.check_expr(expr, aggregates_allowed=True)
        key = self.name("an alias after AS") if self.accept_kw("AS") else text
        return ReturnItem(expr, key)

    def sort_item(self, keys: list[str]) -> SortItem:
        start = self.tok
        expr = self.expr()
        text = self.text[start.pos:self.tokens[self.i - 1].end]
        if text not in keys:
            self.check_expr(expr, aggregates_allowed=False, aliases=frozenset(keys))
        descending = False
        if self.at_kw("DESC", "DESCENDING"):
            descending = True
            self.advance()
        elif self.at_kw("ASC", "ASCENDING"):
            self.advance()
        return SortItem(expr, text, descending)

    def count_value(self, clause: str) -> Expr:
        token = self.advance()
        if token.kind not in ("INT", "PARAM"):
            self.syntax_error(f"a non-negative integer or $parameter after {clause}", token)
        return Literal(token.value) if token.kind == "INT" else Param(token.value)

    # ---------------------------------------------------------- patterns
    def pattern(self) -> PathPattern:
        if self.tok.kind == "WORD" and self.peek().kind == "OP" and self.peek().value == "=":
            following = self.peek(2)
            if self.at_kw("SHORTESTPATH", "ALLSHORTESTPATHS", token=following):
                self.unsupported(f"{following.value}()", following)
            self.unsupported("a named path (p = ...)")
        if self.at_kw("SHORTESTPATH", "ALLSHORTESTPATHS"):
            self.unsupported(f"{self.tok.value}()")
        start = self.tok
        nodes = [self.node_pattern()]
        rels: list[RelPattern] = []
        while self.at_op("-", "<"):
            rels.append(self.rel_pattern())
            nodes.append(self.node_pattern())
        if sum(r.max_hops for r in rels) > MAX_HOPS:
            self.unsupported(f"a pattern of more than {MAX_HOPS} hops", start)
        return PathPattern(tuple(nodes), tuple(rels))

    def declare(self, name: str, kind: str, token: _Token) -> None:
        known = self.scope.setdefault(name, kind)
        if known != kind:
            raise CypherSyntaxError(f"variable `{name}` is used both as a {known} and as a {kind} at "
                                    f"{_location(self.text, token.pos)}")

    def node_pattern(self) -> NodePattern:
        self.expect_op("(")
        var = None
        if self.tok.kind in ("WORD", "QUOTED"):
            token = self.tok
            var = self.name("a variable")
            self.declare(var, "node", token)
        labels: list[str] = []
        while self.accept_op(":"):
            labels.append(self.name("a label"))
            if self.at_op("|", "&", "!", "%"):
                self.unsupported("a label expression (|, &, !, %)")
        props = self.property_map() if self.at_op("{") else ()
        if self.at_kw("WHERE"):
            self.unsupported("WHERE inside a node pattern")
        self.expect_op(")")
        return NodePattern(var, tuple(labels), props)

    def rel_pattern(self) -> RelPattern:
        start = self.tok
        incoming = self.accept_op("<")
        self.expect_op("-")
        var: str | None = None
        types: list[str] = []
        props: tuple[tuple[str, Expr], ...] = ()
        min_hops = max_hops = 1
        variable_length = False
        if self.accept_op("["):
            if self.tok.kind in ("WORD", "QUOTED"):
                token = self.tok
                var = self.name("a variable")
            if self.accept_op(":"):
                types.append(self.name("a relationship type"))
                while self.accept_op("|"):
                    self.accept_op(":")
                    types.append(self.name("a relationship type"))
                if self.at_op("&", "!", "%"):
                    self.unsupported("a relationship type expression (&, !, %)")
            if self.at_op("*"):
                variable_length = True
                min_hops, max_hops = self.hop_range()
            if var is not None:
                self.declare(var, "path" if variable_length else "rel", token)
            if self.at_op("{"):
                props = self.property_map()
            if self.at_kw("WHERE"):
                self.unsupported("WHERE inside a relationship pattern")
            self.expect_op("]")
        self.expect_op("-")
        outgoing = self.accept_op(">")
        if incoming and outgoing:
            raise CypherSyntaxError(f"a relationship cannot point both ways (<-...->) at "
                                    f"{_location(self.text, start.pos)}")
        direction = "in" if incoming else "out" if outgoing else "both"
        return RelPattern(var, tuple(types), direction, min_hops, max_hops, variable_length, props)

    def hop_range(self) -> tuple[int, int]:
        star = self.advance()
        low: int | None = self.advance().value if self.tok.kind == "INT" else None
        high: int | None = low
        if self.accept_op(".."):
            high = self.advance().value if self.tok.kind == "INT" else None
        if high is None:
            self.unsupported(f"a variable-length relationship without an upper bound (at most {MAX_HOPS} hops)",
                             star)
        low = 1 if low is None else low
        if low == 0:
            self.unsupported("a zero-length relationship (*0..)", star)
        if high < low:
            raise CypherSyntaxError(f"variable-length range *{low}..{high} is empty at "
                                    f"{_location(self.text, star.pos)}")
        if high > MAX_HOPS:
            self.unsupported(f"a variable-length relationship of more than {MAX_HOPS} hops (*..{high})", star)
        return low, high

    def property_map(self) -> tuple[tuple[str, Expr], ...]:
        self.expect_op("{")
        entries: list[tuple[str, Expr]] = []
        if not self.at_op("}"):
            while True:
                key = self.name("a property name")
                self.expect_op(":")
                entries.append((key, self.map_value()))
                if not self.accept_op(","):
                    break
        self.expect_op("}")
        return tuple(entries)

    def map_value(self) -> Expr:
        token = self.tok
        if token.kind == "PARAM":
            self.advance()
            return Param(token.value)
        if self.at_op("["):
            self.advance()
            items: list[Expr] = []
            if not self.at_op("]"):
                items.append(self.map_value())
                while self.accept_op(","):
                    items.append(self.map_value())
            self.expect_op("]")
            return ListExpr(tuple(items))
        literal = self.literal()
        if literal is None:
            self.unsupported("an expression in a property map (only literals and $parameters)")
        return literal

    def literal(self) -> Literal | None:
        """A string, number (optionally negative), boolean or null literal, else None (nothing consumed)."""
        token = self.tok
        if token.kind in ("STRING", "INT", "FLOAT"):
            self.advance()
            return Literal(token.value)
        if self.at_op("-") and self.peek().kind in ("INT", "FLOAT"):
            self.advance()
            return Literal(-self.advance().value)
        if self.at_kw("TRUE", "FALSE", "NULL"):
            self.advance()
            return Literal({"TRUE": True, "FALSE": False, "NULL": None}[token.value.upper()])
        return None

    # ---------------------------------------------------------- expressions
    def expr(self) -> Expr:
        operands = [self.and_expr()]
        while True:
            if self.at_kw("XOR"):
                self.unsupported("XOR")
            if not self.accept_kw("OR"):
                break
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("OR", tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.not_expr()]
        while self.accept_kw("AND"):
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else BoolOp("AND", tuple(operands))

    def not_expr(self) -> Expr:
        if self.accept_kw("NOT"):
            return Not(self.not_expr())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        result: Expr
        if self.at_op("<") and self.peek().kind == "OP" and self.peek().value == "-" \
                and self.peek(2).kind == "OP" and self.peek(2).value in ("[", "-"):
            self.unsupported("a pattern predicate in an expression")
        if self.at_op(*_COMPARISONS):
            op = self.advance().value
            result = Compare(op, left, self.operand())
            if self.at_op(*_COMPARISONS):
                self.unsupported("a chained comparison (a < b < c)")
        elif self.at_op("!="):
            self.syntax_error("'<>' for inequality ('!=' is not Cypher)")
        elif self.at_op("=~"):
            self.unsupported("the regular-expression operator =~")
        elif self.accept_kw("IS"):
            negated = self.accept_kw("NOT")
            self.expect_kw("NULL")
            result = IsNull(left, negated)
        elif self.accept_kw("CONTAINS"):
            result = Compare("CONTAINS", left, self.operand())
        elif self.at_kw("STARTS", "ENDS"):
            op = self.advance().value.upper()
            self.expect_kw("WITH")
            result = Compare(op, left, self.operand())
        elif self.accept_kw("IN"):
            result = InList(left, self.operand())
        else:
            result = left
        if self.at_op(*_ARITHMETIC):
            if self.at_op("-") and self.peek().kind == "OP" and self.peek().value in ("[", "-", ">"):
                self.unsupported("a pattern predicate in an expression")
            self.unsupported(f"the arithmetic operator {self.tok.value!r}")
        return result

    def operand(self) -> Expr:
        expr = self.primary()
        while True:
            if self.at_op("."):
                self.advance()
                expr = Prop(expr, self.name("a property name"))
            elif self.at_op("["):
                self.unsupported("subscripts and slices (x[i])")
            elif self.at_op(":") and isinstance(expr, Var):
                self.unsupported("a label predicate in an expression (n:Label)")
            elif self.at_op("{"):
                self.unsupported("a map projection (n {.prop})")
            else:
                return expr

    def primary(self) -> Expr:
        token = self.tok
        literal = self.literal()
        if literal is not None:
            return literal
        if token.kind == "PARAM":
            self.advance()
            return Param(token.value)
        if self.accept_op("("):
            inner = self.expr()
            self.expect_op(")")
            return inner
        if self.accept_op("["):
            items: list[Expr] = []
            if not self.at_op("]"):
                items.append(self.expr())
                if self.at_op("|") or self.at_kw("WHERE"):
                    self.unsupported("a list comprehension")
                while self.accept_op(","):
                    items.append(self.expr())
            self.expect_op("]")
            return ListExpr(tuple(items))
        if self.at_op("{"):
            self.unsupported("a map literal")
        if token.kind == "QUOTED":
            self.advance()
            return Var(token.value, token.pos)
        if token.kind != "WORD":
            self.syntax_error("an expression")
        if self.at_kw("CASE"):
            self.unsupported("CASE")
        if self.at_kw("EXISTS", "COUNT", "COLLECT") and self.peek().kind == "OP" and self.peek().value == "{":
            self.unsupported(f"the {token.value.upper()} {{...}} subquery")
        name = self.function_name()
        if name is not None:
            return self.call(name, token)
        self.advance()
        return Var(token.value, token.pos)

    def function_name(self) -> str | None:
        """If a (possibly dotted) function call starts here, consume its name and the '('."""
        j, parts = self.i, []
        while True:
            if self.tokens[j].kind != "WORD":
                return None
            parts.append(self.tokens[j].value)
            nxt = self.tokens[j + 1]
            if nxt.kind == "OP" and nxt.value == "(":
                self.i = j + 2
                return ".".join(parts)
            if not (nxt.kind == "OP" and nxt.value == "."):
                return None
            j += 2

    def call(self, name: str, start: _Token) -> Expr:
        lowered = name.lower()
        if lowered in _AGGREGATES:
            distinct = self.accept_kw("DISTINCT")
            if lowered == "count" and self.accept_op("*"):
                if distinct:
                    self.syntax_error("an expression after DISTINCT")
                self.expect_op(")")
                return Aggregate("count", None, False)
            arg = self.expr()
            self.expect_op(")")
            return Aggregate(lowered, arg, distinct)
        if lowered not in _SCALAR_FUNCTIONS:
            self.unsupported(f"the function {name}()", start)
        arg = self.expr()
        if self.at_op(","):
            self.syntax_error(f"')' ({name}() takes one argument)")
        self.expect_op(")")
        return Func(lowered, arg)

    # ---------------------------------------------------------- checks
    def check_expr(self, expr: Expr, *, aggregates_allowed: bool, aliases: frozenset[str] = frozenset()) -> None:
        """Variables must be bound by MATCH (or be RETURN aliases, in ORDER BY); count()/collect()
        only at the top of a RETURN item (or as ORDER BY of exactly such an item)."""
        if isinstance(expr, Aggregate) and not aggregates_allowed:
            raise CypherSyntaxError(f"{expr.name}() is only allowed at the top level of a RETURN item")
        if isinstance(expr, Var) and expr.name not in self.scope and expr.name not in aliases:
            raise CypherSyntaxError(f"variable `{expr.name}` is not defined at {_location(self.text, expr.pos)}")
        for child in children(expr):
            self.check_expr(child, aggregates_allowed=False, aliases=aliases)


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``expr``."""
    if isinstance(expr, Prop):
        return (expr.subject,)
    if isinstance(expr, ListExpr):
        return expr.items
    if isinstance(expr, Not | IsNull):
        return (expr.operand,)
    if isinstance(expr, BoolOp):
        return expr.operands
    if isinstance(expr, Compare):
        return expr.left, expr.right
    if isinstance(expr, InList):
        return expr.item, expr.container
    if isinstance(expr, Func):
        return (expr.arg,)
    if isinstance(expr, Aggregate):
        return () if expr.arg is None else (expr.arg,)
    return ()
