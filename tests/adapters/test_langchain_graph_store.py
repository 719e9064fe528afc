"""T4DMGraphStore against the real engine: Neo4j import semantics, schema formats, the Cypher table.

There is no Neo4j server here, so expected rows are worked out by hand from the small movie
graph below; the schema text is also checked against langchain-community's own Neo4j
formatter, and GraphCypherQAChain is run end to end over the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_community.graphs.graph_document import GraphDocument, Node, Relationship
from langchain_community.graphs.graph_store import GraphStore
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

import t4dm_core
from protocol_adapters.langchain import T4DMGraphStore
from protocol_adapters.langchain.graph_store import CypherError, CypherSyntaxError, UnsupportedCypherError
from t4dm_core import InvalidInputError, InvalidNamespaceError

DIM = 8
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def person(name: str, born: int) -> Node:
    return Node(id=name, type="Person", properties={"born": born})


def movie(title: str, released: int, **extra: Any) -> Node:
    return Node(id=title, type="Movie", properties={"released": released, **extra})


KEANU, CARRIE, LAURENCE = person("Keanu Reeves", 1964), person("Carrie-Anne Moss", 1967), \
    person("Laurence Fishburne", 1961)
HUGO, LANA, CHAD = person("Hugo Weaving", 1960), person("Lana Wachowski", 1965), person("Chad Stahelski", 1968)
MATRIX = movie("The Matrix", 1999, tagline="Welcome to the Real World")
RELOADED, WICK, ATLAS = movie("The Matrix Reloaded", 2003), movie("John Wick", 2014), movie("Cloud Atlas", 2012)


def acted(actor: Node, film: Node, role: str) -> Relationship:
    return Relationship(source=actor, target=film, type="acted in", properties={"roles": [role]})


def movie_documents() -> list[GraphDocument]:
    """Two documents; relationship endpoints are bare Nodes (id and type only), as extractors emit them."""
    bare = {n.id: Node(id=n.id, type=n.type) for n in (KEANU, CARRIE, LAURENCE, HUGO, LANA, CHAD)}
    matrix = GraphDocument(
        nodes=[KEANU, CARRIE, LAURENCE, HUGO, LANA, MATRIX, RELOADED],
        relationships=[acted(KEANU, MATRIX, "Neo"), acted(KEANU, RELOADED, "Neo"), acted(CARRIE, MATRIX, "Trinity"),
                       acted(CARRIE, RELOADED, "Trinity"), acted(LAURENCE, MATRIX, "Morpheus"),
                       acted(HUGO, MATRIX, "Agent Smith"),
                       Relationship(source=LANA, target=MATRIX, type="DIRECTED"),
                       Relationship(source=LANA, target=RELOADED, type="DIRECTED"),
                       Relationship(source=bare["Keanu Reeves"], target=bare["Carrie-Anne Moss"], type="knows",
                                    properties={"since": 1999}),
                       Relationship(source=bare["Carrie-Anne Moss"], target=bare["Laurence Fishburne"], type="KNOWS",
                                    properties={"since": 1998})],
        source=Document(page_content="The Matrix (1999) stars Keanu Reeves ..."))
    others = GraphDocument(
        nodes=[CHAD, WICK, ATLAS],
        relationships=[acted(bare["Keanu Reeves"], WICK, "John Wick"), acted(bare["Hugo Weaving"], ATLAS, "Bill Smoke"),
                       Relationship(source=CHAD, target=WICK, type="DIRECTED"),
                       Relationship(source=bare["Lana Wachowski"], target=ATLAS, type="DIRECTED")],
        source=Document(page_content="John Wick (2014) ... Cloud Atlas (2012) ..."))
    return [matrix, others]


@pytest.fixture
def embedding() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=DIM)


@pytest.fixture
def graph(tmp_path, embedding) -> Iterator[T4DMGraphStore]:
    with T4DMGraphStore(path=tmp_path / "graph", embedding=embedding) as g:
        g.add_graph_documents(movie_documents())
        yield g


def props(node: Node) -> dict[str, Any]:
    return {"id": node.id, **node.properties}


# ---------------------------------------------------------------------- the query table
Q = list[tuple[str, dict[str, Any], list[dict[str, Any]]]]
ORDERED: Q = [
    # one hop, both directions, inline properties, alias
    ("MATCH (p:Person)-[:ACTED_IN]->(m:Movie {id: 'The Matrix'}) RETURN p.id AS actor ORDER BY actor", {},
     [{"actor": "Carrie-Anne Moss"}, {"actor": "Hugo Weaving"}, {"actor": "Keanu Reeves"},
      {"actor": "Laurence Fishburne"}]),
    ("MATCH (m:Movie)<-[:DIRECTED]-(d) WHERE d.id = 'Lana Wachowski' RETURN m.id ORDER BY m.id", {},
     [{"m.id": "Cloud Atlas"}, {"m.id": "The Matrix"}, {"m.id": "The Matrix Reloaded"}]),
    ("MATCH (a:Person {id: 'Carrie-Anne Moss'})-[:KNOWS]-(b) RETURN b.id ORDER BY b.id", {},
     [{"b.id": "Keanu Reeves"}, {"b.id": "Laurence Fishburne"}]),
    ("MATCH (:Person {id: 'Chad Stahelski'})-->(m) RETURN m.id", {}, [{"m.id": "John Wick"}]),
    ("MATCH (p:Person)-[r:ACTED_IN|DIRECTED]->(m:Movie {id: 'Cloud Atlas'}) RETURN p.id AS who ORDER BY who", {},
     [{"who": "Hugo Weaving"}, {"who": "Lana Wachowski"}]),
    ("MATCH (p:Person)-[:ACTED_IN|:DIRECTED]->(:Movie {id: 'John Wick'}) RETURN p.id ORDER BY p.id DESC", {},
     [{"p.id": "Keanu Reeves"}, {"p.id": "Chad Stahelski"}]),
    # two and three hops, parameters
    ("MATCH (k:Person {id: $name})-[:ACTED_IN]->(m)<-[:ACTED_IN]-(co:Person) RETURN DISTINCT co.id AS co ORDER BY co",
     {"name": "Keanu Reeves"}, [{"co": "Carrie-Anne Moss"}, {"co": "Hugo Weaving"}, {"co": "Laurence Fishburne"}]),
    ("MATCH (d:Person {id: 'Chad Stahelski'})-[:DIRECTED]->(:Movie)<-[:ACTED_IN]-(a)-[:KNOWS]->(f) "
     "RETURN a.id, f.id", {}, [{"a.id": "Keanu Reeves", "f.id": "Carrie-Anne Moss"}]),
    ("MATCH (a)-[:KNOWS]->(b)-[:KNOWS]->(c) RETURN a.id, b.id, c.id", {},
     [{"a.id": "Keanu Reeves", "b.id": "Carrie-Anne Moss", "c.id": "Laurence Fishburne"}]),
    # variable length
    ("MATCH (a:Person {id: 'Keanu Reeves'})-[:KNOWS*1..2]->(b) RETURN b.id ORDER BY b.id", {},
     [{"b.id": "Carrie-Anne Moss"}, {"b.id": "Laurence Fishburne"}]),
    ("MATCH (a:Person {id: 'Laurence Fishburne'})<-[:KNOWS*2]-(b) RETURN b.id", {}, [{"b.id": "Keanu Reeves"}]),
    ("MATCH (a:Person {id: 'Keanu Reeves'})-[r:KNOWS*..3]->(b) RETURN b.id AS b, r ORDER BY b", {},
     [{"b": "Carrie-Anne Moss", "r": [(props(KEANU), "KNOWS", props(CARRIE))]},
      {"b": "Laurence Fishburne", "r": [(props(KEANU), "KNOWS", props(CARRIE)),
                                        (props(CARRIE), "KNOWS", props(LAURENCE))]}]),
    ("MATCH (l:Person {id: 'Laurence Fishburne'})-[r:KNOWS*2..2]-(x) RETURN x.id, r", {},
     [{"x.id": "Keanu Reeves", "r": [(props(CARRIE), "KNOWS", props(LAURENCE)),
                                     (props(KEANU), "KNOWS", props(CARRIE))]}]),
    # comma-separated patterns and several MATCH clauses join on shared variables
    ("MATCH (p:Person)-[:ACTED_IN]->(m:Movie), (d:Person)-[:DIRECTED]->(m) WHERE p.born < 1962 "
     "RETURN p.id, d.id, m.id ORDER BY p.id, m.id", {},
     [{"p.id": "Hugo Weaving", "d.id": "Lana Wachowski", "m.id": "Cloud Atlas"},
      {"p.id": "Hugo Weaving", "d.id": "Lana Wachowski", "m.id": "The Matrix"},
      {"p.id": "Laurence Fishburne", "d.id": "Lana Wachowski", "m.id": "The Matrix"}]),
    ("MATCH (k:Person {id: 'Keanu Reeves'}) MATCH (k)-[:ACTED_IN]->(m) WHERE m.released > 2000 "
     "RETURN m.id ORDER BY m.released", {}, [{"m.id": "The Matrix Reloaded"}, {"m.id": "John Wick"}]),
    ("MATCH (a:Person)-[:ACTED_IN]->(m)<-[:ACTED_IN]-(b:Person) WHERE a.id < b.id AND m.id = 'The Matrix Reloaded' "
     "RETURN a.id, b.id", {}, [{"a.id": "Carrie-Anne Moss", "b.id": "Keanu Reeves"}]),
    # WHERE variants
    ("MATCH (p:Person) WHERE p.born <> 1964 AND p.born >= 1965 RETURN p.id ORDER BY p.id", {},
     [{"p.id": "Carrie-Anne Moss"}, {"p.id": "Chad Stahelski"}, {"p.id": "Lana Wachowski"}]),
    ("MATCH (p:Person) WHERE p.born <= 1961 OR p.born > 1967 RETURN p.id ORDER BY p.born", {},
     [{"p.id": "Hugo Weaving"}, {"p.id": "Laurence Fishburne"}, {"p.id": "Chad Stahelski"}]),
    ("MATCH (m:Movie) WHERE m.tagline IS NULL RETURN m.id ORDER BY m.id", {},
     [{"m.id": "Cloud Atlas"}, {"m.id": "John Wick"}, {"m.id": "The Matrix Reloaded"}]),
    ("MATCH (m:Movie) WHERE m.tagline IS NOT NULL RETURN m.id, m.tagline", {},
     [{"m.id": "The Matrix", "m.tagline": "Welcome to the Real World"}]),
    ("MATCH (m:Movie) WHERE toLower(m.id) STARTS WITH 'the matrix' RETURN m.id ORDER BY m.id DESC", {},
     [{"m.id": "The Matrix Reloaded"}, {"m.id": "The Matrix"}]),
    ("MATCH (m:Movie) WHERE m.id ENDS WITH 'Wick' OR toLower(m.id) CONTAINS toLower($q) RETURN m.id ORDER BY m.id",
     {"q": "ATLAS"}, [{"m.id": "Cloud Atlas"}, {"m.id": "John Wick"}]),
    ("MATCH (p:Person) WHERE p.born IN [1960, 1961, $year] RETURN p.id ORDER BY p.born", {"year": 1965},
     [{"p.id": "Hugo Weaving"}, {"p.id": "Laurence Fishburne"}, {"p.id": "Lana Wachowski"}]),
    ("MATCH (p:Person) WHERE NOT (p.born < 1965 OR p.id CONTAINS 'Lana') RETURN p.id ORDER BY p.id", {},
     [{"p.id": "Carrie-Anne Moss"}, {"p.id": "Chad Stahelski"}]),
    ("MATCH (p)-[r:ACTED_IN]->(m) WHERE 'Neo' IN r.roles RETURN m.id ORDER BY m.id", {},
     [{"m.id": "The Matrix"}, {"m.id": "The Matrix Reloaded"}]),
    ("MATCH (a)-[:KNOWS {since: $since}]->(b) RETURN a.id, b.id", {"since": 1999},
     [{"a.id": "Keanu Reeves", "b.id": "Carrie-Anne Moss"}]),
    ("MATCH (p:Person) WHERE p.nickname = 'Neo' OR p.id = 'Hugo Weaving' RETURN p.id", {}, [{"p.id": "Hugo Weaving"}]),
    # projection: counts, DISTINCT, ORDER BY / SKIP / LIMIT, whole nodes and relationships
    ("MATCH (p:Person)-[:ACTED_IN]->(m:Movie) RETURN m.id AS movie, count(p) AS actors "
     "ORDER BY actors DESC, movie LIMIT 2", {}, [{"movie": "The Matrix", "actors": 4},
                                                 {"movie": "The Matrix Reloaded", "actors": 2}]),
    ("MATCH (n:Person) RETURN count(*)", {}, [{"count(*)": 6}]),
    ("MATCH (n:Nobody) RETURN count(*) AS c", {}, [{"c": 0}]),
    ("MATCH (n:Nobody) RETURN n.id, count(*) AS c", {}, []),
    ("MATCH (p:Person)-[:ACTED_IN]->(m) RETURN count(DISTINCT p) AS actors, count(p) AS credits, "
     "count(m.tagline) AS tagged", {}, [{"actors": 4, "credits": 8, "tagged": 4}]),
    ("MATCH (p:Person)-[:ACTED_IN]->(m) RETURN DISTINCT p.id ORDER BY p.id", {},
     [{"p.id": "Carrie-Anne Moss"}, {"p.id": "Hugo Weaving"}, {"p.id": "Keanu Reeves"},
      {"p.id": "Laurence Fishburne"}]),
    ("MATCH (p:Person) RETURN p.id ORDER BY p.born DESC SKIP $s LIMIT $l", {"s": 1, "l": 2},
     [{"p.id": "Carrie-Anne Moss"}, {"p.id": "Lana Wachowski"}]),
    ("MATCH (m:Movie) RETURN m.id ORDER BY m.released SKIP 3", {}, [{"m.id": "John Wick"}]),
    ("MATCH (m:Movie) RETURN m.id LIMIT 0", {}, []),
    ("MATCH (m:Movie {id: 'The Matrix'}) RETURN m", {}, [{"m": props(MATRIX)}]),
    ("MATCH (x {id: 'John Wick'}) RETURN x.released, x.missing", {}, [{"x.released": 2014, "x.missing": None}]),
    ("MATCH (:Person {id: 'Keanu Reeves'})-[r:KNOWS]->() RETURN r, r.since AS since", {},
     [{"r": (props(KEANU), "KNOWS", props(CARRIE)), "since": 1999}]),
    ("MATCH (`the movie`:Movie) WHERE `the movie`.id = \"John Wick\" RETURN `the movie`.released AS `year released`",
     {}, [{"year released": 2014}]),
    ("match (p:Person {id: 'Lana Wachowski'})-[:DIRECTED]->(m) return p.id, collect(m.id) as movies;", {},
     [{"p.id": "Lana Wachowski", "movies": ["The Matrix", "The Matrix Reloaded", "Cloud Atlas"]}]),
]
UNORDERED: Q = [
    # without ORDER BY the row order is unspecified, as in Neo4j: compared as multisets
    ("MATCH (a)-[:KNOWS]-(b)-[:KNOWS]-(c) RETURN a.id, c.id", {},  # a relationship is used once per row
     [{"a.id": "Keanu Reeves", "c.id": "Laurence Fishburne"}, {"a.id": "Laurence Fishburne", "c.id": "Keanu Reeves"}]),
    ("MATCH (a:Person)-[:KNOWS]-(b:Person) RETURN a.id, b.id", {},
     [{"a.id": "Keanu Reeves", "b.id": "Carrie-Anne Moss"}, {"a.id": "Carrie-Anne Moss", "b.id": "Keanu Reeves"},
      {"a.id": "Carrie-Anne Moss", "b.id": "Laurence Fishburne"},
      {"a.id": "Laurence Fishburne", "b.id": "Carrie-Anne Moss"}]),
    ("MATCH (m:Movie)<-[:ACTED_IN]-(p) WHERE m.released >= 2012 RETURN m.id, p.id", {},
     [{"m.id": "John Wick", "p.id": "Keanu Reeves"}, {"m.id": "Cloud Atlas", "p.id": "Hugo Weaving"}]),
    ("MATCH (p:Person {id: 'Keanu Reeves'})-[:ACTED_IN*1..3]-(x:Person) RETURN DISTINCT x.id", {},
     [{"x.id": "Carrie-Anne Moss"}, {"x.id": "Laurence Fishburne"}, {"x.id": "Hugo Weaving"}]),
]


@pytest.mark.parametrize(("cypher", "params", "expected"), ORDERED, ids=[q[0][:60] for q in ORDERED])
def test_query_table_ordered(graph, cypher: str, params: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    rows = graph.query(cypher, params)
    assert rows == expected
    assert all(list(row) == list(expected[0]) for row in rows)  # columns in RETURN order


@pytest.mark.parametrize(("cypher", "params", "expected"), UNORDERED, ids=[q[0][:60] for q in UNORDERED])
def test_query_table_unordered(graph, cypher: str, params: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    assert sorted(map(repr, graph.query(cypher, params))) == sorted(map(repr, expected))


def test_results_are_copies(graph) -> None:
    rows = graph.query("MATCH (m:Movie {id: 'The Matrix'}) RETURN m")
    rows[0]["m"]["released"] = 0
    assert graph.query("MATCH (m:Movie {id: 'The Matrix'}) RETURN m.released") == [{"m.released": 1999}]


def test_query_errors_at_run_time_are_typed(graph) -> None:
    with pytest.raises(CypherError, match=r"\$name"):
        graph.query("MATCH (p:Person {id: $name}) RETURN p")
    with pytest.raises(CypherError, match="toLower"):
        graph.query("MATCH (p:Person) RETURN toLower(p.born)")
    with pytest.raises(CypherError, match="boolean"):
        graph.query("MATCH (p:Person) WHERE p.id RETURN p")
    with pytest.raises(CypherError, match="LIMIT"):
        graph.query("MATCH (p:Person) RETURN p LIMIT $n", {"n": -1})
    with pytest.raises(CypherError, match="ORDER BY"):
        graph.query("MATCH (p:Person) RETURN DISTINCT p.id ORDER BY p.born")
    with pytest.raises(CypherError, match="params"):
        graph.query("MATCH (p:Person) RETURN p", ["not", "a", "dict"])  # type: ignore[arg-type]
    assert issubclass(CypherError, InvalidInputError) and issubclass(CypherError, ValueError)


# ---------------------------------------------------------------------- refusals
REFUSED = [
    ("CREATE (n:Person {id: 'x'}) RETURN n", "CREATE"),
    ("MERGE (n:Person {id: 'x'}) RETURN n", "MERGE"),
    ("MATCH (n:Person) SET n.born = 1 RETURN n", "SET"),
    ("MATCH (n:Person) DELETE n", "DELETE"),
    ("MATCH (n) DETACH DELETE n", "DETACH DELETE"),
    ("MATCH (n:Person) REMOVE n.born RETURN n", "REMOVE"),
    ("OPTIONAL MATCH (n:Person) RETURN n", "OPTIONAL MATCH"),
    ("MATCH (n:Person) OPTIONAL MATCH (n)-->(m) RETURN m", "OPTIONAL MATCH"),
    ("MATCH (n:Person) WITH n RETURN n", "WITH"),
    ("UNWIND [1, 2] AS x RETURN x", "UNWIND"),
    ("CALL db.labels()", "CALL"),
    ("MATCH (n) RETURN n UNION MATCH (m) RETURN m", "UNION"),
    ("MATCH (n) FOREACH (x IN [1] | SET n.a = x)", "FOREACH"),
    ("LOAD CSV FROM 'file:///x.csv' AS row RETURN row", "LOAD CSV"),
    ("EXPLAIN MATCH (n) RETURN n", "EXPLAIN"),
    ("MATCH p = shortestPath((a:Person)-[*]-(b:Person)) RETURN p", "shortestPath"),
    ("MATCH p = (a)-->(b) RETURN p", "named path"),
    ("MATCH (n) RETURN labels(n)", "labels()"),
    ("MATCH (n) RETURN apoc.text.clean(n.id)", "apoc.text.clean()"),
    ("MATCH (a)-[*]->(b) RETURN b", "without an upper bound"),
    ("MATCH (a)-[:KNOWS*1..4]->(b) RETURN b", "more than 3 hops"),
    ("MATCH (a)-->(b)-->(c)-->(d)-->(e) RETURN e", "more than 3 hops"),
    ("MATCH (a)-[:KNOWS*2]->(b)-[:KNOWS*2]->(c) RETURN c", "more than 3 hops"),
    ("MATCH (n) WHERE n.id =~ 'K.*' RETURN n", "=~"),
    ("MATCH (n) RETURN n.born + 1", "arithmetic"),
    ("MATCH (n) RETURN CASE WHEN n.born > 1 THEN 1 END", "CASE"),
    ("MATCH (n) WHERE exists { (n)-->() } RETURN n", "EXISTS"),
    ("MATCH (n) WHERE (n)-[:KNOWS]->() RETURN n", "pattern predicate"),
    ("MATCH (n:Person|Movie) RETURN n", "label expression"),
    ("MATCH (n) WHERE n:Person RETURN n", "label predicate"),
    ("MATCH (n) RETURN *", "RETURN *"),
    ("MATCH (n) RETURN n {.id}", "map projection"),
    ("MATCH (n) RETURN [x IN [1, 2] | x]", "list comprehension"),
    ("MATCH (n {id: toLower('X')}) RETURN n", "property map"),
]


@pytest.mark.parametrize(("cypher", "named"), REFUSED, ids=[r[1] + ":" + r[0][:30] for r in REFUSED])
def test_unsupported_cypher_is_refused_by_name_and_changes_nothing(graph, cypher: str, named: str) -> None:
    before = graph.store.stats()
    with pytest.raises(UnsupportedCypherError) as caught:
        graph.query(cypher)
    assert named in str(caught.value)
    after = graph.store.stats()
    assert (after["next_lsn"], after["memories"], after["edges"]) == \
        (before["next_lsn"], before["memories"], before["edges"])
    assert graph.query("MATCH (n:Person) RETURN count(*) AS c") == [{"c": 6}]


def test_syntax_errors_give_the_position(graph) -> None:
    with pytest.raises(CypherSyntaxError, match=r"line 2, column 8"):
        graph.query("MATCH (n:Person)\nRETURN ")
    with pytest.raises(CypherSyntaxError, match=r"line 1, column 17"):
        graph.query("MATCH (n:Person RETURN n")
    with pytest.raises(CypherSyntaxError, match=r"not defined"):
        graph.query("MATCH (n:Person) RETURN m")


# ---------------------------------------------------------------------- schema
EXPECTED_SCHEMA = {
    "node_props": {
        "Movie": [{"property": "id", "type": "STRING"}, {"property": "released", "type": "INTEGER"},
                  {"property": "tagline", "type": "STRING"}],
        "Person": [{"property": "born", "type": "INTEGER"}, {"property": "id", "type": "STRING"}],
    },
    "rel_props": {"ACTED_IN": [{"property": "roles", "type": "LIST"}],
                  "KNOWS": [{"property": "since", "type": "INTEGER"}]},
    "relationships": [{"start": "Person", "type": "ACTED_IN", "end": "Movie"},
                      {"start": "Person", "type": "DIRECTED", "end": "Movie"},
                      {"start": "Person", "type": "KNOWS", "end": "Person"}],
    "metadata": {"constraint": [], "index": []},
}
EXPECTED_SCHEMA_TEXT = """Node properties:
Movie {id: STRING, released: INTEGER, tagline: STRING}
Person {born: INTEGER, id: STRING}
Relationship properties:
ACTED_IN {roles: LIST}
KNOWS {since: INTEGER}
The relationships:
(:Person)-[:ACTED_IN]->(:Movie)
(:Person)-[:DIRECTED]->(:Movie)
(:Person)-[:KNOWS]->(:Person)"""


def test_schema_string_and_dict_are_exact(graph) -> None:
    from langchain_community.graphs.neo4j_graph import _format_schema

    assert isinstance(graph, GraphStore)
    assert graph.get_structured_schema == graph.structured_schema == EXPECTED_SCHEMA
    assert graph.get_schema == graph.schema == EXPECTED_SCHEMA_TEXT
    assert _format_schema(graph.get_structured_schema, False) == EXPECTED_SCHEMA_TEXT  # Neo4jGraph's formatter
    graph.get_structured_schema["node_props"].clear()  # a copy: the cached schema is unaffected
    assert graph.get_structured_schema == EXPECTED_SCHEMA


def test_empty_graph_schema_and_mixed_property_types(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM) as store:
        graph = T4DMGraphStore(store=store)
        assert graph.get_schema == "Node properties:\n\nRelationship properties:\n\nThe relationships:\n"
        assert graph.get_structured_schema["node_props"] == {}
        graph.add_graph_documents([GraphDocument(nodes=[
            Node(id="a", type="Thing", properties={"size": 1, "score": 0.5, "ok": True, "tags": ["x"]}),
            Node(id="b", type="Thing", properties={"size": "large"})],
            relationships=[], source=Document(page_content="t"))])
        assert graph.get_structured_schema["node_props"]["Thing"] == [
            {"property": "id", "type": "STRING"}, {"property": "ok", "type": "BOOLEAN"},
            {"property": "score", "type": "FLOAT"}, {"property": "size", "type": "INTEGER"},
            {"property": "size", "type": "STRING"}, {"property": "tags", "type": "LIST"}]


# ---------------------------------------------------------------------- Neo4j import semantics
def test_include_source_adds_document_nodes_with_mentions(tmp_path, embedding) -> None:
    text = "Keanu Reeves starred in John Wick."
    anonymous = GraphDocument(nodes=[KEANU, WICK], relationships=[acted(KEANU, WICK, "John Wick")],
                              source=Document(page_content=text, metadata={"source": "wiki"}))
    named = GraphDocument(nodes=[CHAD], relationships=[],
                          source=Document(page_content="Chad directed it.", metadata={"id": "doc-7", "page": 3}))
    with T4DMGraphStore(path=tmp_path / "g", embedding=embedding) as graph:
        graph.add_graph_documents([anonymous, named], include_source=True)
        digest = hashlib.md5(text.encode("utf-8")).hexdigest()
        assert anonymous.source.metadata == {"source": "wiki", "id": digest}  # written back, as Neo4jGraph does
        assert named.source.metadata == {"id": "doc-7", "page": 3}
        rows = graph.query("MATCH (d:Document)-[:MENTIONS]->(n) RETURN d.id AS doc, n.id AS node ORDER BY doc, node")
        assert rows == [{"doc": digest, "node": "John Wick"}, {"doc": digest, "node": "Keanu Reeves"},
                        {"doc": "doc-7", "node": "Chad Stahelski"}]
        assert graph.query("MATCH (d:Document {id: 'doc-7'}) RETURN d") == [
            {"d": {"text": "Chad directed it.", "id": "doc-7", "page": 3}}]
        assert graph.get_structured_schema["node_props"]["Document"] == [
            {"property": "id", "type": "STRING"}, {"property": "page", "type": "INTEGER"},
            {"property": "source", "type": "STRING"}, {"property": "text", "type": "STRING"}]
        mentions = {"start": "Document", "type": "MENTIONS", "end": "Person"}
        assert mentions in graph.get_structured_schema["relationships"]
        before = graph.store.stats()["next_lsn"]
        graph.add_graph_documents([anonymous, named], include_source=True)  # idempotent: nothing new to write
        assert graph.store.stats()["next_lsn"] == before
        assert graph.query("MATCH (d:Document) RETURN count(d) AS n") == [{"n": 2}]
        hits = graph.store.search(embedding.embed_query(text), k=1, namespace="graph",
                                  filter={"_t4dm_kind": "graph_node"})
        assert graph.store.get(hits[0].id, namespace="graph").metadata["id"] == digest  # type: ignore[union-attr]


def test_merge_upserts_and_merges_properties(tmp_path, embedding) -> None:
    def doc(nodes: list[Node], rels: list[Relationship] | None = None) -> list[GraphDocument]:
        return [GraphDocument(nodes=nodes, relationships=rels or [], source=Document(page_content="x"))]

    with T4DMGraphStore(path=tmp_path / "g", embedding=embedding) as graph:
        graph.add_graph_documents(doc([Node(id="Keanu", type="Person", properties={"born": 1964})]))
        graph.add_graph_documents(doc([Node(id="Keanu", type="Person", properties={"nick": "The One"})]))
        assert graph.query("MATCH (p:Person) RETURN p") == [{"p": {"id": "Keanu", "born": 1964, "nick": "The One"}}]
        graph.add_graph_documents(doc([Node(id="Keanu", type="Person", properties={"nick": None, "born": 1965})]))
        assert graph.query("MATCH (p:Person) RETURN p") == [{"p": {"id": "Keanu", "born": 1965}}]
        # identity is (type, id); an int id is not the string id
        graph.add_graph_documents(doc([Node(id="Keanu", type="Alias"), Node(id=7, type="Person"),
                                       Node(id="7", type="Person")]))
        assert graph.query("MATCH (n {id: 'Keanu'}) RETURN count(*) AS c") == [{"c": 2}]
        assert graph.query("MATCH (n:Person {id: 7}) RETURN n") == [{"n": {"id": 7}}]
        # relationship MERGE per (start, type, end), properties merged; a type normalised
        k, seven = Node(id="Keanu", type="Person"), Node(id=7, type="Person")
        graph.add_graph_documents(doc([], [Relationship(source=k, target=seven, type="works with",
                                                        properties={"since": 1})]))
        graph.add_graph_documents(doc([], [Relationship(source=k, target=seven, type="WORKS_WITH",
                                                        properties={"on": ["film"]})]))
        assert graph.query("MATCH (a)-[r:WORKS_WITH]->(b) RETURN r.since, r.on, b.id") == [
            {"r.since": 1, "r.on": ["film"], "b.id": 7}]
        # endpoints that were never listed as nodes are created with just their id
        graph.add_graph_documents(doc([], [Relationship(source=k, target=Node(id="Neo", type="Role"), type="PLAYS")]))
        assert graph.query("MATCH (:Person {id: 'Keanu'})-[:PLAYS]->(r:Role) RETURN r") == [{"r": {"id": "Neo"}}]
        # backticks are stripped from labels and types, as Neo4jGraph does
        graph.add_graph_documents(doc([Node(id="x", type="`Odd`")], [Relationship(
            source=Node(id="x", type="Odd"), target=k, type="`likes`")]))
        assert graph.query("MATCH (o:Odd)-[:LIKES]->(p) RETURN o.id, p.id") == [{"o.id": "x", "p.id": "Keanu"}]


def test_base_entity_label_is_queryable_but_not_in_schema(tmp_path, embedding) -> None:
    with T4DMGraphStore(path=tmp_path / "g", embedding=embedding) as graph:
        graph.add_graph_documents([GraphDocument(nodes=[KEANU, WICK], relationships=[acted(KEANU, WICK, "John")],
                                                 source=Document(page_content="d"))], baseEntityLabel=True)
        assert graph.query("MATCH (e:__Entity__) RETURN e.id ORDER BY e.id") == [{"e.id": "John Wick"},
                                                                                  {"e.id": "Keanu Reeves"}]
        assert graph.query("MATCH (e:__Entity__:Person) RETURN e.id") == [{"e.id": "Keanu Reeves"}]
        assert set(graph.get_structured_schema["node_props"]) == {"Movie", "Person"}
        assert "__Entity__" not in graph.get_schema


@pytest.mark.parametrize("bad", [
    "not a list",
    [{"nodes": [], "relationships": []}],
    [GraphDocument(nodes=[Node(id="a", type="T", properties={"p": {"nested": 1}})], relationships=[],
                   source=Document(page_content="x"))],
    [GraphDocument(nodes=[Node(id="a", type="T", properties={"p": [1, "mixed"]})], relationships=[],
                   source=Document(page_content="x"))],
    [GraphDocument(nodes=[Node(id="a", type="T", properties={"p": float("inf")})], relationships=[],
                   source=Document(page_content="x"))],
    [GraphDocument(nodes=[Node(id="a", type="T", properties={"_t4dm_kind": "x"})], relationships=[],
                   source=Document(page_content="x"))],
    [GraphDocument(nodes=[Node(id="a", type="T", properties={"id": "b"})], relationships=[],
                   source=Document(page_content="x"))],
    [GraphDocument(nodes=[Node(id="a", type="``")], relationships=[], source=Document(page_content="x"))],
    [GraphDocument(nodes=[Node(id="a" * 600, type="T")], relationships=[], source=Document(page_content="x"))],
    [GraphDocument(nodes=[], relationships=[Relationship(source=Node(id="a"), target=Node(id="b"), type="``")],
                   source=Document(page_content="x"))],
])
def test_bad_graph_documents_raise_and_write_nothing(graph, bad: Any) -> None:
    good = GraphDocument(nodes=[Node(id="fresh", type="T")], relationships=[], source=Document(page_content="ok"))
    before = graph.store.stats()["next_lsn"]
    documents = [good, *bad] if isinstance(bad, list) else bad
    with pytest.raises(InvalidInputError):
        graph.add_graph_documents(documents)
    assert graph.store.stats()["next_lsn"] == before
    assert graph.query("MATCH (n:T) RETURN n") == []
    assert good.source.metadata == {}


def test_construction_errors(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM) as store:
        with pytest.raises(InvalidInputError):
            T4DMGraphStore(path=tmp_path / "x", store=store)
        with pytest.raises(InvalidNamespaceError):
            T4DMGraphStore(store=store, namespace="")
        with pytest.raises(t4dm_core.DimensionMismatchError):
            T4DMGraphStore(store=store, embedding=DeterministicFakeEmbedding(size=DIM + 1))
        assert not store.closed


def test_without_embedder_nodes_get_flagged_stand_in_vectors(tmp_path) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM) as store:
        graph = T4DMGraphStore(store=store, namespace="kg")
        graph.add_graph_documents(movie_documents())
        node = store.get('["Person", "Keanu Reeves"]', namespace="kg")
        assert node is not None and node.metadata["_t4dm_unembedded"] is True
        assert node.text == "Person Keanu Reeves; born: 1964"
        assert graph.query("MATCH (p:Person)-[:KNOWS]->(q) RETURN p.id, q.id ORDER BY p.id") == [
            {"p.id": "Carrie-Anne Moss", "q.id": "Laurence Fishburne"},
            {"p.id": "Keanu Reeves", "q.id": "Carrie-Anne Moss"}]
        assert store.neighbors('["Person", "Keanu Reeves"]', type="KNOWS", namespace="kg")[0].memory.id == \
            '["Person", "Carrie-Anne Moss"]'


def test_graph_persists_across_reopen(tmp_path, embedding) -> None:
    cypher = "MATCH (k:Person {id: 'Keanu Reeves'})-[r:ACTED_IN]->(m) RETURN m.id, r.roles ORDER BY m.released"
    with T4DMGraphStore(path=tmp_path / "g", embedding=embedding) as graph:
        graph.add_graph_documents(movie_documents())
        rows, schema = graph.query(cypher), graph.get_structured_schema
    with T4DMGraphStore(path=tmp_path / "g", embedding=embedding) as reopened:
        assert reopened.query(cypher) == rows == [
            {"m.id": "The Matrix", "r.roles": ["Neo"]}, {"m.id": "The Matrix Reloaded", "r.roles": ["Neo"]},
            {"m.id": "John Wick", "r.roles": ["John Wick"]}]
        assert reopened.get_structured_schema == schema == EXPECTED_SCHEMA
        assert reopened.query("MATCH (m:Movie {id: 'The Matrix'}) RETURN m") == [{"m": props(MATRIX)}]


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_an_import_and_its_edges_are_one_atomic_write(tmp_path, embedding, nth: int) -> None:
    """The nth WAL write fails, then power is cut: the import is wholly there (records and
    edges) or wholly absent, never relationship records without their edges."""
    fs = t4dm_core.FaultInjectingFS()
    store = t4dm_core.open(tmp_path / "s", dim=DIM, fs=fs, options=t4dm_core.Options(sync="full"))
    graph = T4DMGraphStore(store=store, embedding=embedding)
    graph.add_graph_documents([GraphDocument(nodes=[KEANU], relationships=[], source=Document(page_content="k"))])
    fs.fail("write", nth)
    try:
        graph.add_graph_documents(movie_documents())
    except t4dm_core.StoreFailedError:
        failed = True
    else:
        failed = False
    assert failed == (nth == 1)  # the import is a single WAL write
    fs.clear_faults()
    store.close()
    fs.crash()
    with t4dm_core.open(tmp_path / "s", dim=DIM) as reopened:
        recovered = T4DMGraphStore(store=reopened, embedding=embedding)
        nodes = recovered.query("MATCH (n) RETURN count(n) AS c")[0]["c"]
        edges = recovered.query("MATCH (a)-[r]->(b) RETURN count(r) AS c")[0]["c"]
        records = reopened.find({"_t4dm_kind": "graph_relationship"}, namespace="graph")
        if failed:
            assert (nodes, edges, records) == (1, 0, [])
        else:
            assert (nodes, edges, len(records)) == (10, 14, 14)
            assert recovered.get_structured_schema == EXPECTED_SCHEMA


def test_deleting_a_node_drops_its_relationships_and_a_reimport_restores_them(graph) -> None:
    keanu = '["Person", "Keanu Reeves"]'
    knows = "MATCH (p)-[:KNOWS]->(q) RETURN p.id, q.id ORDER BY p.id"
    assert graph.store.delete(keanu, namespace="graph") == 1
    assert graph.store.edges(keanu, namespace="graph", direction="both") == []
    assert graph.query(knows) == [{"p.id": "Carrie-Anne Moss", "q.id": "Laurence Fishburne"}]
    assert graph.query("MATCH (m)<-[:ACTED_IN]-(:Person {id: 'Keanu Reeves'}) RETURN m.id") == []
    graph.add_graph_documents(movie_documents())  # records unchanged, node and edges re-created
    assert graph.query(knows) == [{"p.id": "Carrie-Anne Moss", "q.id": "Laurence Fishburne"},
                                  {"p.id": "Keanu Reeves", "q.id": "Carrie-Anne Moss"}]
    assert graph.query("MATCH (:Person {id: 'Keanu Reeves'})-[r:ACTED_IN]->(m) RETURN m.id, r.roles "
                       "ORDER BY m.released") == [{"m.id": "The Matrix", "r.roles": ["Neo"]},
                                                  {"m.id": "The Matrix Reloaded", "r.roles": ["Neo"]},
                                                  {"m.id": "John Wick", "r.roles": ["John Wick"]}]
    assert graph.get_structured_schema == EXPECTED_SCHEMA


def test_two_graph_stores_on_one_store_share_writes(tmp_path, embedding) -> None:
    with t4dm_core.open(tmp_path / "s", embedder=embedding) as store:
        writer = T4DMGraphStore(store=store, embedding=embedding)
        reader = T4DMGraphStore(store=store, embedding=embedding)
        writer.add_graph_documents(movie_documents())
        assert reader.query("MATCH (n:Movie) RETURN count(*) AS c") == [{"c": 4}]
        reader.refresh_schema()
        assert reader.get_structured_schema == EXPECTED_SCHEMA
        other = T4DMGraphStore(store=store, namespace="other")
        assert other.query("MATCH (n) RETURN count(*) AS c") == [{"c": 0}]


def test_graph_cypher_qa_chain_runs_over_the_store(graph) -> None:
    from langchain_community.chains.graph_qa.cypher import GraphCypherQAChain
    from langchain_core.language_models.fake import FakeListLLM

    cypher = "MATCH (p:Person)-[:ACTED_IN]->(m:Movie {id: 'The Matrix'}) RETURN p.id AS actor ORDER BY actor"
    llm = FakeListLLM(responses=[f"```cypher\n{cypher}\n```", "Four actors."])
    chain = GraphCypherQAChain.from_llm(llm=llm, graph=graph, allow_dangerous_requests=True, validate_cypher=True,
                                        return_intermediate_steps=True, top_k=2)
    out = chain.invoke({"query": "Who acted in The Matrix?"})
    assert out["result"] == "Four actors."
    assert out["intermediate_steps"][0]["query"] == f"cypher\n{cypher}\n"  # the chain keeps the fence's tag,
    # which Neo4j (and this subset) read as the CYPHER query-options prefix
    assert out["intermediate_steps"][1]["context"] == [{"actor": "Carrie-Anne Moss"}, {"actor": "Hugo Weaving"}]
    assert "Person {born: INTEGER, id: STRING}" in chain.graph_schema
