"""The test servers themselves: Bolt round trip on FalkorDB, restarts, local Qdrant round trip."""

from __future__ import annotations

import neo4j
from qdrant_client import QdrantClient, models


def _count(driver: neo4j.Driver) -> int:
    with driver.session(database="fixtures") as session:
        return session.run("MATCH (n:Fact) RETURN count(n) AS c").single()["c"]


def _reconnect(driver: neo4j.Driver) -> None:
    """After a restart the pooled connection is dead: the first call fails, the driver drops it."""
    try:
        driver.verify_connectivity()
    except neo4j.exceptions.ServiceUnavailable:
        driver.verify_connectivity()


def test_falkordb_bolt_round_trip(bolt) -> None:
    with bolt.session(database="fixtures") as session:
        session.run("MATCH (n) DETACH DELETE n").consume()
        session.run("CREATE (:Person {id: $id, name: $name})", id="p1", name="Ann").consume()
        record = session.run("MATCH (n:Person {id: 'p1'}) RETURN n.name AS name, labels(n) AS labels").single()
    assert record["name"] == "Ann"
    assert record["labels"] == ["Person"]


def test_falkordb_keeps_data_and_ports_across_restart(falkordb, bolt) -> None:
    with bolt.session(database="fixtures") as session:
        session.run("MATCH (n) DETACH DELETE n").consume()
        session.run("CREATE (:Fact {id: 'f1'})").consume()
    port = falkordb.bolt_port
    falkordb.stop()
    assert not falkordb.running
    falkordb.start()
    assert falkordb.bolt_port == port
    _reconnect(bolt)
    assert _count(bolt) == 1


def test_local_qdrant_round_trip(qdrant_path) -> None:
    client = QdrantClient(path=qdrant_path)
    client.create_collection("c", vectors_config={"text": models.VectorParams(size=3, distance=models.Distance.COSINE)})
    client.upsert("c", points=[models.PointStruct(id=1, vector={"text": [1.0, 0.0, 0.0]}, payload={"k": "v"})])
    hits = client.query_points("c", query=[1.0, 0.0, 0.0], using="text", limit=1).points
    client.close()
    assert hits[0].id == 1
    assert hits[0].payload == {"k": "v"}
