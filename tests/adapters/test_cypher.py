"""The Cypher subset on its own: the parser's syntax tree and errors, and Cypher value semantics.

Value semantics are checked through ``T4DMGraphStore.query`` on a real (small) store, with
expected values taken from the Cypher manual (null logic, cross-type comparison and order).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_community.graphs.graph_document import GraphDocument, Node, Relationship
from langchain_core.documents import Document

import t4dm_core
from protocol_adapters.langchain import T4DMGraphStore
from protocol_adapters.langchain._cypher_parse import (
    Aggregate,
    BoolOp,
    Compare,
    CypherError,
    CypherSyntaxError,
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
    SortItem,
    UnsupportedCypherError,
    Var,
    parse,
)
from t4dm_core import InvalidInputError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def graph(tmp_path) -> Iterator[T4DMGraphStore]:
    with t4dm_core.open(tmp_path / "s", dim=6) as store:
        yield T4DMGraphStore(store=store)


# ---------------------------------------------------------------------- the syntax tree
def test_parse_builds_the_expected_tree() -> None:
    query = parse("""
        // a comment
        MATCH (a:Person:Actor {name: $who})<-[r:ACTED_IN|:DIRECTED*1..2 {year: 1999}]-(m), (m)-->()
        WHERE NOT (a.born < -5 OR toLower(m.title) STARTS WITH 'the') AND a.x IS NOT NULL AND m.y IN [1, 2.5]
        RETURN DISTINCT a.name AS name, count(DISTINCT m) /* block comment */, collect(m.title)
        ORDER BY name DESC, count(DISTINCT m) SKIP 1 LIMIT $n;
    """)
    a, m = Var("a", 0), Var("m", 0)
    assert query == Query(
        matches=(MatchClause(
            patterns=(
                PathPattern(
                    nodes=(NodePattern("a", ("Person", "Actor"), (("name", Param("who")),)),
                           NodePattern("m", (), ())),
                    rels=(RelPattern("r", ("ACTED_IN", "DIRECTED"), "in", 1, 2, True, (("year", Literal(1999)),)),)),
                PathPattern(nodes=(NodePattern("m", (), ()), NodePattern(None, (), ())),
                            rels=(RelPattern(None, (), "out", 1, 1, False, ()),))),
            where=BoolOp("AND", (
                Not(BoolOp("OR", (Compare("<", Prop(a, "born"), Literal(-5)),
                                  Compare("STARTS", Func("tolower", Prop(m, "title")), Literal("the"))))),
                IsNull(Prop(a, "x"), negated=True),
                InList(Prop(m, "y"), ListExpr((Literal(1), Literal(2.5)))))),
        ),),
        distinct=True,
        items=(ReturnItem(Prop(a, "name"), "name"),
               ReturnItem(Aggregate("count", m, True), "count(DISTINCT m)"),
               ReturnItem(Aggregate("collect", Prop(m, "title"), False), "collect(m.title)")),
        order=(SortItem(Var("name", 0), "name", True),
               SortItem(Aggregate("count", m, True), "count(DISTINCT m)", False)),
        skip=Literal(1), limit=Param("n"))


@pytest.mark.parametrize(("text", "rel"), [
    ("MATCH (a)-[:T]->(b) RETURN a", RelPattern(None, ("T",), "out", 1, 1, False, ())),
    ("MATCH (a)<-[:T]-(b) RETURN a", RelPattern(None, ("T",), "in", 1, 1, False, ())),
    ("MATCH (a)-[:T]-(b) RETURN a", RelPattern(None, ("T",), "both", 1, 1, False, ())),
    ("MATCH (a)--(b) RETURN a", RelPattern(None, (), "both", 1, 1, False, ())),
    ("MATCH (a)<--(b) RETURN a", RelPattern(None, (), "in", 1, 1, False, ())),
    ("MATCH (a)-[r*2]->(b) RETURN a", RelPattern("r", (), "out", 2, 2, True, ())),
    ("MATCH (a)-[*..3]->(b) RETURN a", RelPattern(None, (), "out", 1, 3, True, ())),
    ("MATCH (a)-[:`has part`*1..1]-(b) RETURN a", RelPattern(None, ("has part",), "both", 1, 1, True, ())),
])
def test_relationship_pattern_shapes(text: str, rel: RelPattern) -> None:
    assert parse(text).matches[0].patterns[0].rels == (rel,)


def test_lexical_details() -> None:
    query = parse("cypher match (`odd name`:Ünïcode) where `odd name`.`a b` = 'it\\'s \\u00e9\\n' return `odd name`")
    node = query.matches[0].patterns[0].nodes[0]
    assert node == NodePattern("odd name", ("Ünïcode",), ())
    assert query.matches[0].where == Compare("=", Prop(Var("odd name", 0), "a b"), Literal("it's é\n"))
    assert query.items == (ReturnItem(Var("odd name", 0), "`odd name`"),)
    assert parse("CYPHER 5 RETURN 1.5e3 AS x, $0 AS y").items == (ReturnItem(Literal(1500.0), "x"),
                                                                    ReturnItem(Param("0"), "y"))
    assert parse("MATCH (n {order: 1, count: 2}) RETURN n.limit").items[0].key == "n.limit"  # keywords as names


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected MATCH or RETURN but found the end of the query at line 1, column 1"),
    ("MATCH (n", "expected ')' but found the end of the query at line 1, column 9"),
    ("MATCH (n)\n  RETURN n.", "expected a property name but found the end of the query at line 2, column 12"),
    ("MATCH (n) RETURN n LIMIT 'x'", "expected a non-negative integer or $parameter after LIMIT but found \"'x'\""),
    ("MATCH (n) RETURN n LIMIT 1 SKIP 1", "expected the end of the query but found 'SKIP' at line 1, column 28"),
    ("MATCH (n) RETURN n, n", "two RETURN columns are both named 'n'"),
    ("MATCH (n) WHERE m.x = 1 RETURN n", "variable `m` is not defined at line 1, column 17"),
    ("MATCH (n)-[n]->(m) RETURN n", "variable `n` is used both as a node and as a rel"),
    ("MATCH (a)<-[:T]->(b) RETURN a", "cannot point both ways"),
    ("MATCH (a)-[*3..2]->(b) RETURN a", "range *3..2 is empty"),
    ("MATCH (n) WHERE n.x != 1 RETURN n", "'<>' for inequality"),
    ("MATCH (n) WHERE count(*) > 1 RETURN n", "count() is only allowed at the top level of a RETURN item"),
    ("MATCH (n) RETURN toLower(count(n))", "count() is only allowed at the top level"),
    ("MATCH (n) RETURN toLower(n.a, n.b)", "toLower() takes one argument"),
    ("MATCH (n) RETURN 'unterminated", "unterminated quote or comment starting at line 1, column 18"),
    ("MATCH (n) RETURN n.x # 1", "unexpected character '#' at line 1, column 22"),
    ("MATCH (n) RETURN '\\q'", "invalid escape sequence \\q"),
])
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(CypherSyntaxError) as caught:
        parse(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(("text", "construct"), [
    ("CREATE (n)", "the CREATE clause"),
    ("MATCH (n) MERGE (m)", "the MERGE clause"),
    ("MATCH (n) SET n.a = 1", "the SET clause"),
    ("MATCH (n) DELETE n", "the DELETE clause"),
    ("MATCH (n) DETACH DELETE n", "the DETACH DELETE clause"),
    ("MATCH (n) REMOVE n.a", "the REMOVE clause"),
    ("OPTIONAL MATCH (n) RETURN n", "the OPTIONAL MATCH clause"),
    ("MATCH (n) WITH n RETURN n", "the WITH clause"),
    ("UNWIND [1] AS x RETURN x", "the UNWIND clause"),
    ("CALL db.schema.visualization()", "the CALL clause"),
    ("MATCH (n) CALL { RETURN 1 } RETURN n", "the CALL clause"),
    ("MATCH (n) RETURN n UNION ALL MATCH (n) RETURN n", "the UNION clause"),
    ("MATCH (n) FOREACH (x IN [1] | CREATE ())", "the FOREACH clause"),
    ("LOAD CSV FROM 'x' AS r RETURN r", "the LOAD CSV clause"),
    ("PROFILE MATCH (n) RETURN n", "the PROFILE clause"),
    ("SHOW INDEXES", "the SHOW clause"),
    ("CYPHER runtime=slotted MATCH (n) RETURN n", "CYPHER query options"),
    ("MATCH p = allShortestPaths((a)-[*]-(b)) RETURN p", "allShortestPaths()"),
    ("MATCH shortestPath((a)-[*..3]-(b)) RETURN a", "shortestPath()"),
    ("MATCH (a)-[*0..2]->(b) RETURN a", "a zero-length relationship"),
    ("MATCH (a)-[*2..]->(b) RETURN a", "without an upper bound"),
    ("MATCH (a)-[:T*5]->(b) RETURN a", "more than 3 hops (*..5)"),
    ("MATCH (a)-[:A&B]->(b) RETURN a", "relationship type expression"),
    ("MATCH (n:A&B) RETURN n", "label expression"),
    ("MATCH (n WHERE n.a = 1) RETURN n", "WHERE inside a node pattern"),
    ("MATCH (a)-[r WHERE r.a = 1]->(b) RETURN a", "WHERE inside a relationship pattern"),
    ("MATCH (n) RETURN n.a XOR n.b", "XOR"),
    ("MATCH (n) RETURN n.a < n.b < n.c", "chained comparison"),
    ("MATCH (n) RETURN n.list[0]", "subscripts"),
    ("MATCH (n) RETURN {a: 1}", "a map literal"),
    ("MATCH (n) RETURN count { (n)-->() }", "COUNT {...} subquery"),
    ("MATCH (n) WHERE (n)<-[:T]-() RETURN n", "pattern predicate"),
    ("MATCH (n) RETURN n.a - 1", "arithmetic operator '-'"),
    ("MATCH (n) RETURN size(n.list)", "the function size()"),
    ("MATCH (n) RETURN type(n)", "the function type()"),
    ("MATCH (n) RETURN [x IN [1] WHERE x > 0]", "list comprehension"),
])
def test_unsupported_constructs_are_named(text: str, construct: str) -> None:
    with pytest.raises(UnsupportedCypherError) as caught:
        parse(text)
    assert construct in str(caught.value)
    assert "not supported" in str(caught.value)


def test_error_hierarchy() -> None:
    assert issubclass(CypherSyntaxError, CypherError) and issubclass(UnsupportedCypherError, CypherError)
    assert issubclass(CypherError, InvalidInputError) and issubclass(CypherError, t4dm_core.T4DMError)
    with pytest.raises(CypherError):
        parse(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- value semantics
@pytest.mark.parametrize(("expr", "expected"), [
    ("1 = 1.0", True), ("1 = '1'", False), ("true = 1", False), ("null = null", None), ("null <> 1", None),
    ("1 <> 1", False), ("NOT null", None), ("NOT false", True), ("null AND false", False), ("null AND true", None),
    ("null OR true", True), ("null OR false", None), ("1 < 2.5", True), ("'a' < 'b'", True), ("1 < 'a'", None),
    ("false < true", True), ("2 >= 2", True), ("'b' <= 'a'", False), ("[1, 2] = [1, 2.0]", True),
    ("[1, null] = [1, 2]", None), ("[1, null] = [2, 2]", False), ("[1] = [1, 1]", False), ("2 IN [1, 2]", True),
    ("3 IN [1, null]", None), ("3 IN [1, 2]", False), ("null IN []", False), ("null IN [1]", None),
    ("[1] IN [[1], 2]", True), ("'abc' CONTAINS 'b'", True), ("'abc' STARTS WITH null", None),
    ("1 CONTAINS 'a'", None), ("'abc' ENDS WITH 'bc'", True), ("toUpper('abc')", "ABC"), ("toLower(null)", None),
    ("-5 < -4.5", True), ("'it\\'s'", "it's"), ('"tab\\tx\\u00e9"', "tab\txé"), ("[]", []),
    ("$nothing IS NULL", True), ("$pair", [1, [2, 3]]), ("$pair = [1, [2, 3]]", True), ("1 IS NOT NULL", True),
])
def test_expression_semantics(graph, expr: str, expected: Any) -> None:
    rows = graph.query(f"RETURN {expr} AS v", {"nothing": None, "pair": (1, (2, 3))})
    assert rows == [{"v": expected}]
    assert type(rows[0]["v"]) is type(expected)


def test_order_by_uses_cyphers_cross_type_order(graph) -> None:
    values: list[Any] = [2.5, "b", True, [1], 1, "a", False, [0, 5]]
    nodes = [Node(id=f"n{i}", type="T", properties={"v": v}) for i, v in enumerate(values)]
    nodes.append(Node(id="missing", type="T"))
    graph.add_graph_documents([GraphDocument(nodes=nodes, relationships=[], source=Document(page_content="x"))])
    ascending = [row["v"] for row in graph.query("MATCH (n:T) RETURN n.v AS v ORDER BY v")]
    assert ascending == [[0, 5], [1], "a", "b", False, True, 1, 2.5, None]
    descending = [row["v"] for row in graph.query("MATCH (n:T) RETURN n.v AS v ORDER BY v DESC")]
    assert descending == ascending[::-1]
    assert graph.query("MATCH (n:T) RETURN DISTINCT n.v = 1 AS one ORDER BY one") == [
        {"one": False}, {"one": True}, {"one": None}]


def test_matching_keeps_relationships_unique_per_row_but_not_across_match_clauses(graph) -> None:
    a, b = Node(id="a", type="N"), Node(id="b", type="N")
    graph.add_graph_documents([GraphDocument(nodes=[a, b], relationships=[Relationship(source=a, target=b, type="R")],
                                             source=Document(page_content="x"))])
    assert graph.query("MATCH (x)-[:R]-(y)-[:R]-(z) RETURN x.id") == []
    rows = graph.query("MATCH (x)-[:R]-(y) MATCH (y)-[:R]-(z) RETURN x.id, y.id, z.id ORDER BY x.id")
    assert rows == [{"x.id": "a", "y.id": "b", "z.id": "a"}, {"x.id": "b", "y.id": "a", "z.id": "b"}]
    assert graph.query("MATCH (x:N), (y:N) WHERE x <> y RETURN x.id, y.id ORDER BY x.id") == [
        {"x.id": "a", "y.id": "b"}, {"x.id": "b", "y.id": "a"}]
    assert graph.query("MATCH (x)-[r:R]->(y), (x)-[r2]->(y) WHERE r = r2 RETURN count(*) AS c") == [{"c": 0}]
