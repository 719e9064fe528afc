"""The test servers themselves: Bolt round trip on FalkorDB, local Qdrant round trip."""

from __future__ import annotations

import neo4j
from qdrant_client import QdrantClient, models

from tests.integrations.falkordb_server import AUTH


def test_falkordb_bolt_round_trip(neo4j_driver, graph_name) -> None:
    with neo4j_driver.session(database=graph_name) as session:
        session.run("CREATE (:Person {id: $id, name: $name})", id="p1", name="Ann").consume()
        record = session.run("MATCH (n:Person {id: 'p1'}) RETURN n.name AS name, labels(n) AS labels").single()
    assert record["name"] == "Ann"
    assert record["labels"] == ["Person"]


def test_falkordb_restart_keeps_ports(falkordb, neo4j_driver, graph_name) -> None:
    port = falkordb.bolt_port
    falkordb.stop()
    assert not falkordb.running
    falkordb.start()
    assert falkordb.bolt_port == port
    with neo4j.GraphDatabase.driver(falkordb.uri, auth=AUTH) as fresh:  # pooled connections died
        fresh.verify_connectivity()


def test_local_qdrant_round_trip(qdrant_path) -> None:
    client = QdrantClient(path=qdrant_path)
    client.create_collection("c", vectors_config={"text": models.VectorParams(size=3, distance=models.Distance.COSINE)})
    client.upsert("c", points=[models.PointStruct(id=1, vector={"text": [1.0, 0.0, 0.0]}, payload={"k": "v"})])
    hits = client.query_points("c", query=[1.0, 0.0, 0.0], using="text", limit=1).points
    client.close()
    assert hits[0].id == 1
    assert hits[0].payload == {"k": "v"}


def test_falkordb_keeps_data_across_restart(falkordb, neo4j_driver, graph_name) -> None:
    with neo4j_driver.session(database=graph_name) as session:
        session.run("CREATE (:Fact {id: 'f1'})").consume()
    falkordb.stop()
    falkordb.start()
    with neo4j.GraphDatabase.driver(falkordb.uri, auth=AUTH) as fresh, fresh.session(database=graph_name) as session:
        assert session.run("MATCH (n:Fact) RETURN count(n) AS c").single()["c"] == 1
