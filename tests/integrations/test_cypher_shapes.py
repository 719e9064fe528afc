"""The Cypher write shapes the shim understands, the ones it refuses, and its canonical Neo4j batches."""

from __future__ import annotations

import json

import pytest

from integrations.dualwrite.cypher_shapes import is_write_statement, parse_write
from integrations.dualwrite.errors import InvalidWriteError
from integrations.dualwrite.neo4j_side import canonical_batches
from integrations.dualwrite.ops import NodeDelete, NodeRef, NodeUpsert, RelDelete, RelUpsert, op_from_dict, op_to_dict
from integrations.errors import UnsupportedCypherShapeError
from integrations.mapping import Mapping, NodeRule

MAPPING = Mapping(nodes=(NodeRule(label="Person", key="uid"),))
FACT = ("Fact",)


def fact(key: object) -> NodeRef:
    return NodeRef(FACT, "id", key)


def expand(cypher: str, **params: object) -> list:
    return parse_write(cypher).expand(params, MAPPING)


@pytest.mark.parametrize(("cypher", "params", "expected"), [
    ("CREATE (n:Fact {id: $id, text: $t})", {"id": "a", "t": "hi"},
     [NodeUpsert(fact("a"), {"id": "a", "text": "hi"}, replace=True, create=True)]),
    ("CREATE (n:Fact $props)", {"props": {"id": 1, "gone": None}},
     [NodeUpsert(fact(1), {"id": 1, "gone": None}, replace=True, create=True)]),
    ("CREATE (a:Fact {id: 'x'}), (b:Fact {id: 'y', n: -2.5e1})", {},
     [NodeUpsert(fact("x"), {"id": "x"}, True, True), NodeUpsert(fact("y"), {"id": "y", "n": -25.0}, True, True)]),
    ("MERGE (n:Fact {id: $id}) SET n += $props, n.z = 'it\\'s'", {"id": "a", "props": {"y": [1, 2]}},
     [NodeUpsert(fact("a"), {"id": "a", "y": [1, 2], "z": "it's"}, replace=False, create=True)]),
    ("merge (n:Fact:Extra {id: $id}) set n = $props", {"id": "a", "props": {"id": "a", "k": True}},
     [NodeUpsert(NodeRef(("Fact", "Extra"), "id", "a"), {"id": "a", "k": True}, replace=True, create=True)]),
    ("MERGE (p:Person {uid: 7}) SET p.name = $n", {"n": "Ann"},
     [NodeUpsert(NodeRef(("Person",), "uid", 7), {"uid": 7, "name": "Ann"}, replace=False, create=True)]),
    ("MATCH (n:Fact {id: $id}) SET n.x = null, n += {y: 1}", {"id": "a"},
     [NodeUpsert(fact("a"), {"x": None, "y": 1}, replace=False, create=False)]),
    ("MATCH (n:Fact {id: $id}) DETACH DELETE n", {"id": "a"}, [NodeDelete(fact("a"), detach=True)]),
    ("MATCH (n:Fact {id: $id}) DELETE n;", {"id": "a"}, [NodeDelete(fact("a"), detach=False)]),
    ("MATCH (a:Fact {id: $x}), (b:Fact {id: $y}) CREATE (a)-[:KNOWS {weight: 0.5}]->(b)", {"x": 1, "y": 2},
     [RelUpsert(fact(1), fact(2), "KNOWS", {"weight": 0.5}, replace=True)]),
    ("MATCH (a:Fact {id: $x}) MATCH (b:Fact {id: $y}) MERGE (b)<-[r:KNOWS]-(a) SET r += $p", {"x": 1, "y": 2,
                                                                                             "p": {"s": 1}},
     [RelUpsert(fact(1), fact(2), "KNOWS", {"s": 1}, replace=False)]),
    ("MATCH (a:Fact {id: $x})-[r:KNOWS]->(b:Fact {id: $y}) DELETE r", {"x": 1, "y": 2},
     [RelDelete(fact(1), fact(2), "KNOWS")]),
    ("MATCH (a:Fact {id: $x})<-[r:KNOWS]-(b:Fact {id: $y}) DELETE r", {"x": 1, "y": 2},
     [RelDelete(fact(2), fact(1), "KNOWS")]),
    ("UNWIND $rows AS row MERGE (n:Fact {id: row.id}) SET n += row.props",
     {"rows": [{"id": 1, "props": {"a": 1}}, {"id": 2, "props": {}}]},
     [NodeUpsert(fact(1), {"id": 1, "a": 1}, False, True), NodeUpsert(fact(2), {"id": 2}, False, True)]),
    ("UNWIND $rows AS row CREATE (n:Fact) SET n = row", {"rows": [{"id": 1, "a": 1}]},
     [NodeUpsert(fact(1), {"id": 1, "a": 1}, replace=True, create=True)]),
    ("UNWIND $rows AS r MATCH (a:Fact {id: r.s}), (b:Fact {id: r.d}) MERGE (a)-[x:REL]->(b) SET x.w = r.w",
     {"rows": [{"s": 1, "d": 2, "w": 0.5}, {"s": 2, "d": 3}]},
     [RelUpsert(fact(1), fact(2), "REL", {"w": 0.5}, False), RelUpsert(fact(2), fact(3), "REL", {"w": None}, False)]),
    ("UNWIND $ids AS id MATCH (n:Fact {id: id}) DETACH DELETE n", {"ids": ["a", "b"]},
     [NodeDelete(fact("a"), True), NodeDelete(fact("b"), True)]),
    ("UNWIND $rows AS row MERGE (n:Fact {id: row.id})", {"rows": []}, []),
    ("// comment\nMERGE (n:`Fact` {`id`: $p.key}) /* block */ SET n.`note` = \"q\"", {"p": {"key": 5}},
     [NodeUpsert(fact(5), {"id": 5, "note": "q"}, False, True)]),
])
def test_supported_shapes(cypher: str, params: dict, expected: list) -> None:
    ops = parse_write(cypher).expand(params, MAPPING)
    assert ops == expected
    assert [op_from_dict(json.loads(json.dumps(op_to_dict(op)))) for op in ops] == ops  # journal round trip


@pytest.mark.parametrize(("cypher", "clause"), [
    ("CREATE (n:Fact {id: 1}) RETURN n", "'RETURN'"),
    ("MATCH (n:Fact) WHERE n.id = 1 DELETE n", "'WHERE'"),
    ("MERGE (n:Fact {id: 1}) ON CREATE SET n.x = 1", "ON CREATE / ON MATCH SET"),
    ("MATCH (n:Fact {id: 1}) REMOVE n.x", "'REMOVE'"),
    ("MATCH (n:Fact {id: 1}) SET n:Extra", "label changes"),
    ("CREATE (n:Fact {id: timestamp()})", "function call timestamp()"),
    ("MATCH (n:Fact {id: 1}) SET n.x = n.x + 1", "values must be literals"),
    ("MERGE (n:Fact {id: 1}) SET n.x = $a + 1", "expressions are not supported"),
    ("MATCH (a:Fact {id: 1})-[r]->(b:Fact {id: 2}) DELETE r", "exactly one type"),
    ("MATCH (a:Fact {id: 1})-[r:T*1..2]->(b:Fact {id: 2}) DELETE r", "variable-length"),
    ("MATCH (a:Fact {id: 1}), (b:Fact {id: 2}) CREATE (a)-[:T]-(b)", "undirected"),
    ("CREATE (a:Fact {id: 1})-[:T]->(b:Fact {id: 2})", "both ends bound by MATCH"),
    ("MERGE (a:Fact {id: 1})-[:T]->(b:Fact {id: 2})", "MERGE of a path"),
    ("MATCH (a:Fact {id: 1}), (b:Fact {id: 2}) SET a.x = 1", "not written by the statement"),
    ("OPTIONAL MATCH (n:Fact {id: 1}) DELETE n", "OPTIONAL MATCH"),
    ("CALL db.labels()", "'CALL'"),
    ("FOREACH (x IN $l | CREATE (:Fact {id: x}))", "'FOREACH'"),
    ("LOAD CSV FROM 'f' AS line CREATE (:Fact {id: line[0]})", "LOAD CSV"),
    ("MATCH (n:Fact {id: 1}) WITH n DELETE n", "'WITH'"),
    ("MATCH (a:Fact {id: 1})-[r:T]->(b:Fact {id: 2}) DELETE a", "DELETE a"),
    ("MERGE (n:Fact) SET n.id = 1", "key property in its pattern"),
    ("UNWIND [1, 2] AS x CREATE (:Fact {id: x})", "UNWIND takes a $parameter"),
])
def test_unsupported_shapes_name_the_clause(cypher: str, clause: str) -> None:
    with pytest.raises(UnsupportedCypherShapeError) as info:
        parse_write(cypher).expand({"l": [1], "a": 1}, MAPPING)
    assert clause in str(info.value)
    assert repr(cypher) in str(info.value)


def test_match_by_a_non_key_property_is_refused_naming_the_key() -> None:
    with pytest.raises(UnsupportedCypherShapeError, match="only by their key property 'uid'"):
        expand("MATCH (p:Person {name: $n}) DETACH DELETE p", n="Ann")
    with pytest.raises(UnsupportedCypherShapeError, match="key property 'id'"):
        expand("MATCH (n:Fact $m) DELETE n", m={"id": 1, "other": 2})


@pytest.mark.parametrize(("cypher", "params", "message"), [
    ("CREATE (n:Fact {text: 'x'})", {}, "no value for its key property 'id'"),
    ("CREATE (n:Fact {id: $id})", {}, r"parameter \$id is missing"),
    ("MERGE (n:Fact {id: $id}) SET n = {x: 1}", {"id": 1}, "would remove or change its key property 'id'"),
    ("MATCH (n:Fact {id: 1}) SET n = $p", {"p": {"id": 2}}, "key property 'id'"),
    ("CREATE (n:Fact {id: 1, when: $d})", {"d": object()}, "when has a value of type object"),
    ("CREATE (n:Fact {id: 1, v: $v})", {"v": float("nan")}, "only finite numbers"),
    ("CREATE (n:Fact {id: 1, v: $v})", {"v": 2**70}, "64-bit"),
    ("CREATE (n:Fact {id: 1, v: $v})", {"v": {"nested": 1}}, "value of type dict"),
    ("CREATE (n:Fact {id: $id})", {"id": 1.5}, "keys must be strings or integers"),
    ("MERGE (n:Fact {id: 1}) SET n += $p", {"p": [1, 2]}, "must be a map"),
    ("UNWIND $rows AS row MERGE (n:Fact {id: row.id})", {"rows": {"id": 1}}, "UNWIND needs a list"),
    ("UNWIND $rows AS row MERGE (n:Fact {id: row.a.b})", {"rows": [{"a": 3}]}, "not a map"),
])
def test_bad_parameters_raise_typed_errors(cypher: str, params: dict, message: str) -> None:
    with pytest.raises(InvalidWriteError, match=message):
        parse_write(cypher).expand(params, MAPPING)


@pytest.mark.parametrize(("cypher", "is_write"), [
    ("MATCH (n) RETURN n.set AS s", False),
    ("MATCH (n {delete: 1}) RETURN n", False),
    ("RETURN 'CREATE (n)'", False),
    ("MATCH (n:Set) RETURN n", False),
    ("MATCH (n:`CREATE`) RETURN n", False),
    ("CREATE (n)", True),
    ("match (n) detach delete n", True),
    ("CALL db.labels()", True),
])
def test_write_detection(cypher: str, is_write: bool) -> None:
    assert is_write_statement(cypher) is is_write


def test_canonical_batches_respect_size_order_and_identity() -> None:
    upserts = [NodeUpsert(fact(i), {"id": i, "text": "x" * 40}, replace=False, create=True) for i in range(30)]
    batches = list(canonical_batches(upserts, batch_size=8, max_request_bytes=100_000))
    assert [len(rows) for _, rows in batches] == [8, 8, 8, 6]
    assert {statement for statement, _ in batches} == {
        "UNWIND $rows AS row MERGE (n:`Fact` {`id`: row.key}) SET n += row.props"}
    by_bytes = list(canonical_batches(upserts, batch_size=100, max_request_bytes=500))
    assert all(len(statement) + len(json.dumps(rows, separators=(",", ":"))) <= 500 + 2 * len(rows)
               for statement, rows in by_bytes)
    assert [row["key"] for _, rows in by_bytes for row in rows] == list(range(30))
    twice = [upserts[0], upserts[1], upserts[0]]
    assert [len(rows) for _, rows in canonical_batches(twice, batch_size=50, max_request_bytes=10_000)] == [2, 1]
    mixed = [upserts[0], RelUpsert(fact(0), fact(1), "KNOWS", {}, True), NodeDelete(fact(1), True), upserts[2]]
    statements = [s for s, _ in canonical_batches(mixed, batch_size=50, max_request_bytes=10_000)]
    assert statements == [
        "UNWIND $rows AS row MERGE (n:`Fact` {`id`: row.key}) SET n += row.props",
        "UNWIND $rows AS row MATCH (a:`Fact` {`id`: row.src}), (b:`Fact` {`id`: row.dst}) "
        "MERGE (a)-[r:`KNOWS`]->(b) SET r = row.props",
        "UNWIND $rows AS row MATCH (n:`Fact` {`id`: row.key}) DETACH DELETE n",
        "UNWIND $rows AS row MERGE (n:`Fact` {`id`: row.key}) SET n += row.props",
    ]
