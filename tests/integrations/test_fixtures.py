"""The test servers themselves: Bolt round trip on FalkorDB, local Qdrant round trip."""

from __future__ import annotations

from qdrant_client import QdrantClient, models


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
    neo4j_driver.verify_connectivity()


def test_local_qdrant_round_trip(qdrant_path) -> None:
    client = QdrantClient(path=qdrant_path)
    client.create_collection("c", vectors_config={"text": models.VectorParams(size=3, distance=models.Distance.COSINE)})
    client.upsert("c", points=[models.PointStruct(id=1, vector={"text": [1.0, 0.0, 0.0]}, payload={"k": "v"})])
    hits = client.query_points("c", query=[1.0, 0.0, 0.0], using="text", limit=1).points
    client.close()
    assert hits[0].id == 1
    assert hits[0].payload == {"k": "v"}
