"""T4DMPropertyGraphStore against the real engine, differential against SimplePropertyGraphStore.

Where the two stores agree by design the same calls go to both and the results are compared;
where T4DM deliberately follows Neo4jPropertyGraphStore instead (AND-ed properties, deletes
that keep neighbours, undirected rel maps, entity-only vector queries) a test pins both sides.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from llama_index.core import Document, MockEmbedding, PropertyGraphIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.graph_stores import SimplePropertyGraphStore
from llama_index.core.graph_stores.types import (
    KG_NODES_KEY,
    KG_RELATIONS_KEY,
    ChunkNode,
    EntityNode,
    LabelledNode,
    PropertyGraphStore,
    Relation,
)
from llama_index.core.indices.property_graph import ImplicitPathExtractor, VectorContextRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode, TransformComponent
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

import t4dm_core
from protocol_adapters.llama_index import T4DMPropertyGraphStore
from protocol_adapters.llama_index.property_graph import StructuredQueryNotSupportedError
from t4dm_core import (
    DimensionMismatchError,
    EmbedderMismatchError,
    InvalidInputError,
    InvalidNamespaceError,
    MetadataError,
    StoreClosedError,
    StoreFailedError,
    T4DMError,
)

DIM = 8


@pytest.fixture
def pg(tmp_path) -> Iterator[T4DMPropertyGraphStore]:
    store = T4DMPropertyGraphStore(path=tmp_path / "pg", dim=DIM)
    try:
        yield store
    finally:
        store.close()


def vec(*hot: int, scale: float = 1.0) -> list[float]:
    out = [0.0] * DIM
    for i in hot:
        out[i] = scale
    return out


def canon_node(node: LabelledNode) -> tuple[str, str, str, str]:
    return type(node).__name__, node.id, node.label, json.dumps(node.properties, sort_keys=True)


def canon_triplet(t: Sequence[Any]) -> tuple[str, str, str, str]:
    return t[0].id, t[1].label, t[2].id, json.dumps(t[1].properties, sort_keys=True)


def node_set(nodes: Sequence[LabelledNode]) -> set[tuple[str, str, str, str]]:
    return {canon_node(n) for n in nodes}


def triplet_set(triplets: Sequence[Sequence[Any]]) -> set[tuple[str, str, str, str]]:
    return {canon_triplet(t) for t in triplets}


def work_graph(store: PropertyGraphStore) -> None:
    """Two people at one org in one city, a chunk mentioning one of them, an isolated entity."""
    store.upsert_nodes([
        EntityNode(name="Logan", label="PERSON", properties={"age": 28, "team": "core"}, embedding=vec(0)),
        EntityNode(name="LlamaIndex", label="ORG", properties={"team": "core"}, embedding=vec(1)),
        EntityNode(name="Jerry", label="PERSON", properties={"age": 30}, embedding=vec(0, 2)),
        EntityNode(name="Paris", label="CITY", embedding=vec(3)),
        EntityNode(name="Loner", label="THING", properties={"lonely": True}),
        ChunkNode(text="Logan works for LlamaIndex.", id_="c1", properties={"page": 1}),
    ])
    store.upsert_relations([
        Relation(label="WORKS_FOR", source_id="Logan", target_id="LlamaIndex", properties={"since": 2023}),
        Relation(label="WORKS_FOR", source_id="Jerry", target_id="LlamaIndex"),
        Relation(label="LOCATED_IN", source_id="LlamaIndex", target_id="Paris", properties={"hq": True}),
        Relation(label="MENTIONS", source_id="c1", target_id="Logan"),
    ])


@pytest.fixture
def both(pg: T4DMPropertyGraphStore) -> tuple[T4DMPropertyGraphStore, SimplePropertyGraphStore]:
    simple = SimplePropertyGraphStore()
    for store in (pg, simple):
        work_graph(store)
    return pg, simple


# --------------------------------------------------------------------------- get
@pytest.mark.parametrize("kwargs", [
    {},
    {"ids": ["Logan", "Paris", "missing"]},
    {"properties": {"team": "core"}},
    {"properties": {"age": 28}},
    {"properties": {"page": 1}},
    {"properties": {"team": "core"}, "ids": ["LlamaIndex", "Jerry"]},
    {"properties": {"nobody": "has this"}},
])
def test_get_matches_simple_store(both, kwargs) -> None:
    ours, simple = both
    assert node_set(ours.get(**kwargs)) == node_set(simple.get(**kwargs))


def test_get_returns_kinds_labels_and_unit_embeddings(pg) -> None:
    work_graph(pg)
    pg.upsert_nodes([EntityNode(name="Scaled", embedding=[3.0, 4.0, 0, 0, 0, 0, 0, 0])])
    by_id = {n.id: n for n in pg.get()}
    assert isinstance(by_id["c1"], ChunkNode) and by_id["c1"].text == "Logan works for LlamaIndex."
    assert isinstance(by_id["Logan"], EntityNode) and by_id["Logan"].label == "PERSON"
    assert by_id["Loner"].embedding is None and by_id["c1"].embedding is None
    assert np.allclose(by_id["Jerry"].embedding, np.array(vec(0, 2)) / np.sqrt(2), atol=1e-6)
    assert np.allclose(by_id["Scaled"].embedding[:2], [0.6, 0.8], atol=1e-6)
    assert [n.id for n in pg.get(ids=["Paris", "Logan", "Paris"])] == ["Paris", "Logan"]


def test_get_properties_are_anded_unlike_simple_store(both) -> None:
    ours, simple = both
    query = {"team": "core", "age": 28}
    assert [n.id for n in ours.get(properties=query)] == ["Logan"]
    assert {n.id for n in simple.get(properties=query)} == {"Logan", "LlamaIndex"}  # the simple store ORs


def test_get_properties_with_keys_the_filter_dialect_cannot_address(pg) -> None:
    pg.upsert_nodes([EntityNode(name="a", properties={"file.name": "x.txt", "$weird": 1, "": "empty"}),
                     EntityNode(name="b", properties={"file": {"name": "x.txt"}})])
    assert [n.id for n in pg.get(properties={"file.name": "x.txt"})] == ["a"]
    assert [n.id for n in pg.get(properties={"$weird": 1, "": "empty"})] == ["a"]
    assert pg.get(properties={"$weird": True}) == []


def test_get_with_ids_that_cannot_exist_returns_nothing(pg) -> None:
    work_graph(pg)
    assert pg.get(ids=["", "x" * 600, "_t4dm_rel:abc"]) == []


# --------------------------------------------------------------------------- triplets
@pytest.mark.parametrize("kwargs", [
    {"entity_names": ["Logan"]},
    {"entity_names": ["LlamaIndex"]},
    {"entity_names": ["LlamaIndex"], "relation_names": ["WORKS_FOR"]},
    {"relation_names": ["WORKS_FOR"]},
    {"relation_names": ["LOCATED_IN", "MENTIONS"]},
    {"ids": ["Paris"]},
    {"ids": ["c1"]},
    {"properties": {"age": 30}},
    {"entity_names": ["Loner"]},
    {"relation_names": ["NO_SUCH_LABEL"]},
])
def test_get_triplets_matches_simple_store(both, kwargs) -> None:
    ours, simple = both
    found = ours.get_triplets(**kwargs)
    assert triplet_set(found) == triplet_set(simple.get_triplets(**kwargs))
    assert len(found) == len(triplet_set(found))  # each relation once


def test_get_triplets_without_arguments_is_empty(both) -> None:
    ours, simple = both
    assert ours.get_triplets() == [] == simple.get_triplets()


def test_get_triplets_returns_full_nodes_in_both_directions(pg) -> None:
    work_graph(pg)
    triplets = pg.get_triplets(entity_names=["LlamaIndex"])
    assert {(t[0].id, t[2].id) for t in triplets} == {("Logan", "LlamaIndex"), ("Jerry", "LlamaIndex"),
                                                       ("LlamaIndex", "Paris")}
    logan = next(t[0] for t in triplets if t[0].id == "Logan")
    assert logan.properties == {"age": 28, "team": "core"} and logan.label == "PERSON"


def test_relation_properties_round_trip(pg) -> None:
    props = {"since": 2023, "weight": 0.25, "ok": False, "none": None, "tags": ["a", 1, 2.5],
             "nested": {"k": [{"deep": "ünïcødé ✓"}]}, "big": 2**53 + 1}
    pg.upsert_nodes([EntityNode(name="a"), EntityNode(name="b")])
    pg.upsert_relations([Relation(label="R", source_id="a", target_id="b", properties=props)])
    [(_, rel, _)] = pg.get_triplets(relation_names=["R"])
    assert rel.properties == props
    assert json.dumps(rel.properties, sort_keys=True) == json.dumps(props, sort_keys=True)  # int stays int
    assert (rel.source_id, rel.target_id, rel.label) == ("a", "b", "R")


# --------------------------------------------------------------------------- rel map
def chain_graph(store: PropertyGraphStore) -> None:
    """A -> B -> C -> D, plus B -> E, a chunk mentioning B."""
    store.upsert_nodes([EntityNode(name=n) for n in "ABCDE"] + [ChunkNode(text="about B", id_="chunk")])
    store.upsert_relations([
        Relation(label="R1", source_id="A", target_id="B"),
        Relation(label="R2", source_id="B", target_id="C", properties={"p": 1}),
        Relation(label="R3", source_id="C", target_id="D"),
        Relation(label="R4", source_id="B", target_id="E"),
        Relation(label="MENTIONS", source_id="chunk", target_id="B"),
    ])


@pytest.mark.parametrize(("depth", "ignore"), [(1, None), (2, None), (3, None), (2, ["R4"]), (3, ["R2"])])
def test_get_rel_map_matches_simple_store_downstream(pg, depth, ignore) -> None:
    simple = SimplePropertyGraphStore()
    for store in (pg, simple):
        chain_graph(store)
    start = pg.get(ids=["A"])
    ours = pg.get_rel_map(start, depth=depth, ignore_rels=ignore)
    # the simple store returns MENTIONS links too; T4DM leaves them out as Neo4j does
    expected = simple.get_rel_map(simple.get(ids=["A"]), depth=depth, ignore_rels=[*(ignore or []), "MENTIONS"])
    assert triplet_set(ours) == triplet_set(expected)
    assert len(ours) == len(triplet_set(ours))


def test_get_rel_map_is_undirected_nearest_first_and_skips_mentions(pg) -> None:
    chain_graph(pg)
    from_d = pg.get_rel_map(pg.get(ids=["D"]), depth=2)
    assert [(t[0].id, t[2].id) for t in from_d] == [("C", "D"), ("B", "C")]
    assert {t[1].label for t in pg.get_rel_map(pg.get(ids=["A"]), depth=5)} == {"R1", "R2", "R3", "R4"}
    assert pg.get_rel_map(pg.get(ids=["chunk"]), depth=3) == []  # only a MENTIONS link leaves the chunk
    assert [t[1].label for t in pg.get_rel_map(pg.get(ids=["A"]), depth=3, limit=2)] == ["R1", "R2"]
    # ignored relations are traversed, just not returned (as Neo4j)
    assert {t[1].label for t in pg.get_rel_map(pg.get(ids=["A"]), depth=2, ignore_rels=["R1"])} == {"R2", "R4"}
    assert pg.get_rel_map([EntityNode(name="not stored")]) == []
    assert pg.get_rel_map(pg.get(ids=["A"]), limit=0) == []


# --------------------------------------------------------------------------- upsert semantics
def test_upsert_semantics_match_simple_store(pg) -> None:
    simple = SimplePropertyGraphStore()
    for store in (pg, simple):
        store.upsert_nodes([EntityNode(name="x", label="OLD", properties={"a": 1, "b": 2})])
        store.upsert_nodes([EntityNode(name="x", label="NEW", properties={"c": 3})])  # replaced whole
        store.upsert_nodes([EntityNode(name="dup", properties={"v": 1}), EntityNode(name="dup", properties={"v": 2})])
        store.upsert_relations([Relation(label="R", source_id="x", target_id="ghost", properties={"v": 1})])
        store.upsert_relations([Relation(label="R", source_id="x", target_id="ghost", properties={"v": 2}),
                                Relation(label="S", source_id="x", target_id="dup", properties={"first": 1}),
                                Relation(label="S", source_id="x", target_id="dup", properties={"first": 0})])
    assert node_set(pg.get()) == node_set(simple.get())
    assert ("EntityNode", "ghost", "entity", "{}") in node_set(pg.get())  # missing endpoint became an entity
    assert triplet_set(pg.get_triplets(ids=["x"])) == triplet_set(simple.get_triplets(ids=["x"]))
    assert {t[1].properties["first" if t[1].label == "S" else "v"] for t in pg.get_triplets(ids=["x"])} == {1}


def test_half_written_relations_are_invisible_and_repaired_by_upsert(pg) -> None:
    """An edge without its property record (linked by another tool, or written by an older,
    non-atomic adapter version) and a record without its edge are not relations."""
    work_graph(pg)
    engine = pg.client
    assert engine is not None
    engine.link("Logan", "Paris", type="VISITED", namespace=pg.namespace)
    engine.unlink("Logan", "LlamaIndex", type="WORKS_FOR", namespace=pg.namespace)
    assert {t[1].label for t in pg.get_triplets(entity_names=["Logan"])} == {"MENTIONS"}
    assert {t[1].label for t in pg.get_rel_map(pg.get(ids=["Paris"]), depth=1)} == {"LOCATED_IN"}
    assert triplet_set(pg.get_triplets(relation_names=["WORKS_FOR"])) == {("Jerry", "WORKS_FOR", "LlamaIndex", "{}")}
    assert "VISITED" not in pg.get_schema()["relation_types"]
    pg.upsert_relations([Relation(label="WORKS_FOR", source_id="Logan", target_id="LlamaIndex",
                                  properties={"since": 1999}),
                         Relation(label="VISITED", source_id="Logan", target_id="Paris")])
    assert triplet_set(pg.get_triplets(entity_names=["Logan"], relation_names=["WORKS_FOR", "VISITED"])) == {
        ("Logan", "WORKS_FOR", "LlamaIndex", '{"since": 1999}'), ("Logan", "VISITED", "Paris", "{}")}


def test_engine_learning_edges_are_not_relations(pg) -> None:
    """vector_query learns on read: the engine links the entities it returned with
    ``co_retrieved`` edges. They have no relation record, so no read shows them."""
    work_graph(pg)
    nodes, _ = pg.vector_query(VectorStoreQuery(query_embedding=vec(0, 1), similarity_top_k=3))
    ids = [n.id for n in nodes]
    engine = pg.client
    assert engine is not None and ids == ["Logan", "LlamaIndex", "Jerry"]
    assert any(e.type == "co_retrieved" for i in ids for e in engine.edges(i, namespace=pg.namespace))
    assert {t[1].label for t in pg.get_triplets(ids=ids)} == {"WORKS_FOR", "LOCATED_IN", "MENTIONS"}
    assert {t[1].label for t in pg.get_rel_map(nodes, depth=2)} == {"WORKS_FOR", "LOCATED_IN"}
    assert pg.get_schema()["relation_types"] == ["LOCATED_IN", "MENTIONS", "WORKS_FOR"]
    pg.delete(ids=["Logan"])  # the engine detaches every edge of a deleted node, learnt ones too
    assert all("Logan" not in (e.src, e.dst) for i in ids[1:]
               for e in engine.edges(i, namespace=pg.namespace, direction="both"))


def test_replacing_a_node_keeps_its_relations(pg) -> None:
    work_graph(pg)
    pg.upsert_nodes([ChunkNode(text="now a chunk", id_="Paris")])
    [(_, rel, city)] = pg.get_triplets(relation_names=["LOCATED_IN"])
    assert isinstance(city, ChunkNode) and city.text == "now a chunk" and rel.properties == {"hq": True}


# --------------------------------------------------------------------------- delete
@pytest.mark.parametrize("kwargs", [{"ids": ["Loner"]}, {"properties": {"lonely": True}}, {"ids": ["missing"]}])
def test_delete_of_unlinked_nodes_matches_simple_store(both, kwargs) -> None:
    ours, simple = both
    ours.delete(**kwargs)
    simple.delete(**kwargs)
    assert node_set(ours.get()) == node_set(simple.get())
    assert triplet_set(ours.get_triplets(relation_names=["WORKS_FOR", "LOCATED_IN", "MENTIONS"])) == \
        triplet_set(simple.get_triplets(relation_names=["WORKS_FOR", "LOCATED_IN", "MENTIONS"]))


def test_delete_removes_a_node_and_its_relations_but_not_its_neighbours(both) -> None:
    ours, simple = both
    ours.delete(ids=["LlamaIndex"])
    assert {n.id for n in ours.get()} == {"Logan", "Jerry", "Paris", "Loner", "c1"}
    assert triplet_set(ours.get_triplets(ids=["Logan", "Jerry", "Paris", "c1"])) == \
        {("c1", "MENTIONS", "Logan", "{}")}
    engine = ours.client
    assert engine is not None
    for node_id in ("Logan", "Jerry", "Paris"):
        assert [e for e in engine.edges(node_id, namespace=ours.namespace, direction="both")
                if "LlamaIndex" in (e.src, e.dst)] == []
    assert [m.metadata["_t4dm_label"] for m in engine.find({"_t4dm_kind": "pg_relation"}, namespace=ours.namespace)] \
        == ["MENTIONS"]
    ours.upsert_nodes([EntityNode(name="LlamaIndex")])  # re-creating the node does not resurrect its relations
    assert ours.get_triplets(ids=["LlamaIndex"]) == []
    # the simple store deletes both ends of every matched triplet: a deliberate difference
    simple.delete(ids=["LlamaIndex"])
    assert {n.id for n in simple.get()} == {"Loner", "c1"}


def test_delete_by_entity_names_relation_names_and_anded_properties(pg) -> None:
    work_graph(pg)
    pg.delete(relation_names=["WORKS_FOR"])
    assert pg.get_triplets(relation_names=["WORKS_FOR"]) == []
    assert len(pg.get()) == 6  # nodes stay
    pg.delete(properties={"team": "core", "age": 28})  # AND: only Logan
    assert {n.id for n in pg.get()} == {"LlamaIndex", "Jerry", "Paris", "Loner", "c1"}
    assert pg.get_triplets(ids=["c1"]) == []
    pg.delete(entity_names=["Paris", "c1"])  # entity names only: the chunk has no name
    assert {n.id for n in pg.get()} == {"LlamaIndex", "Jerry", "Loner", "c1"}
    pg.delete()
    assert len(pg.get()) == 4


def test_llama_nodes_round_trip_and_delete_like_simple_store(pg) -> None:
    simple = SimplePropertyGraphStore()
    n1 = TextNode(id_="n1", text="first ✓ chunk", metadata={"author": "Ann", "year": 2024, "tags": ["x"]},
                  relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc")})
    n2 = TextNode(id_="n2", text="second chunk")
    for store in (pg, simple):
        store.upsert_llama_nodes([n1, n2])
        assert store.get_llama_nodes(["n1", "n2"]) == [n1, n2]
    assert [n.properties for n in pg.get(ids=["n1", "n2"])] == [n.properties for n in simple.get(ids=["n1", "n2"])]
    for store in (pg, simple):
        store.upsert_nodes([EntityNode(name="Ann", properties={"triplet_source_id": "n1"})])
        store.delete_llama_nodes(node_ids=["n1"])
    assert node_set(pg.get()) == node_set(simple.get()) == {canon_node(simple.get(ids=["n2"])[0])}


@pytest.mark.parametrize(("ref_doc", "left"), [("n2", set()), ("n3", {"n2"})])
def test_delete_llama_nodes_by_ref_doc_ids_like_simple_store(pg, ref_doc, left) -> None:
    simple = SimplePropertyGraphStore()
    n1 = TextNode(id_="n1", text="n1", relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=ref_doc)})
    n2 = TextNode(id_="n2", text="n2")
    for store in (pg, simple):
        store.upsert_llama_nodes([n1, n2])
        store.delete_llama_nodes(ref_doc_ids=[ref_doc])
    assert {n.id for n in pg.get()} == {n.id for n in simple.get()} == left


# --------------------------------------------------------------------------- vector query
@pytest.fixture
def random_graph(pg) -> tuple[T4DMPropertyGraphStore, dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    rng = np.random.default_rng(7)
    embedded: dict[str, np.ndarray] = {}
    props: dict[str, dict[str, Any]] = {}
    nodes: list[LabelledNode] = []
    for i in range(40):
        vector = rng.normal(size=DIM) * rng.uniform(0.2, 5.0)  # deliberately not unit length
        embedded[f"e{i}"] = vector
        props[f"e{i}"] = {"i": i, "group": f"g{i % 3}", "tags": [f"t{i % 4}", "all"]}
        if i % 5 == 0:
            props[f"e{i}"]["rare"] = "x"
        nodes.append(EntityNode(name=f"e{i}", properties=props[f"e{i}"], embedding=vector.tolist()))
    nodes += [ChunkNode(text=f"chunk {i}", id_=f"c{i}", embedding=rng.normal(size=DIM).tolist()) for i in range(5)]
    nodes += [EntityNode(name=f"bare{i}", properties={"i": i, "group": "g0"}) for i in range(5)]
    pg.upsert_nodes(nodes)
    return pg, embedded, props


def brute_force(query: np.ndarray, embedded: dict[str, np.ndarray], keep: Callable[[str], bool],
                k: int) -> list[tuple[str, float]]:
    q = query / np.linalg.norm(query)
    scored = [(i, float(v @ q / np.linalg.norm(v))) for i, v in embedded.items() if keep(i)]
    return sorted(scored, key=lambda s: -s[1])[:k]


def assert_ranking(result: tuple[list[LabelledNode], list[float]], expected: list[tuple[str, float]]) -> None:
    nodes, scores = result
    assert [n.id for n in nodes] == [i for i, _ in expected]
    assert np.allclose(scores, [s for _, s in expected], atol=1e-5)
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("k", [1, 5, 40, 100])
def test_vector_query_matches_brute_force_cosine(random_graph, k) -> None:
    pg, embedded, _ = random_graph
    query = np.random.default_rng(k).normal(size=DIM)
    result = pg.vector_query(VectorStoreQuery(query_embedding=query.tolist(), similarity_top_k=k))
    assert_ranking(result, brute_force(query, embedded, lambda _: True, k))
    assert all(isinstance(n, EntityNode) and n.embedding is not None for n in result[0])  # no chunks, no bare


FLAT_FILTERS = [  # the oracle is LlamaIndex's own reference evaluator
    MetadataFilters(filters=[MetadataFilter(key="group", value="g1")]),
    MetadataFilters(filters=[MetadataFilter(key="i", value=10, operator=FilterOperator.GTE),
                             MetadataFilter(key="group", value="g2", operator=FilterOperator.NE)]),
    MetadataFilters(filters=[MetadataFilter(key="i", value=[1, 2, 3, 30], operator=FilterOperator.IN),
                             MetadataFilter(key="i", value=35, operator=FilterOperator.GT)],
                    condition=FilterCondition.OR),
    MetadataFilters(filters=[MetadataFilter(key="tags", value="t1", operator=FilterOperator.CONTAINS)],
                    condition=FilterCondition.NOT),
    MetadataFilters(filters=[MetadataFilter(key="rare", value="x", operator=FilterOperator.NE)]),  # missing matches
    MetadataFilters(filters=[MetadataFilter(key="rare", value=None, operator=FilterOperator.IS_EMPTY)]),
    MetadataFilters(filters=[MetadataFilter(key="group", value="G1",  # scanned: not exact in the engine
                                            operator=FilterOperator.TEXT_MATCH_INSENSITIVE)]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value=["t0", "t3"], operator=FilterOperator.ANY)]),
]


@pytest.mark.parametrize("filters", FLAT_FILTERS)
def test_vector_query_filters_match_brute_force_and_the_reference_evaluator(random_graph, filters) -> None:
    pg, embedded, props = random_graph
    keep = build_metadata_filter_fn(props.__getitem__, filters)
    query = np.random.default_rng(3).normal(size=DIM)
    result = pg.vector_query(VectorStoreQuery(query_embedding=query.tolist(), similarity_top_k=6, filters=filters))
    expected = brute_force(query, embedded, keep, 6)
    assert len(expected) == 6
    assert_ranking(result, expected)


def test_vector_query_nested_filters(random_graph) -> None:
    pg, embedded, props = random_graph
    filters = MetadataFilters(filters=[
        MetadataFilter(key="i", value=20, operator=FilterOperator.LT),
        MetadataFilters(filters=[MetadataFilter(key="group", value=["g0", "g2"], operator=FilterOperator.NIN),
                                 MetadataFilter(key="tags", value=["t0", "all"], operator=FilterOperator.ALL)],
                        condition=FilterCondition.OR)])
    query = np.random.default_rng(5).normal(size=DIM)
    result = pg.vector_query(VectorStoreQuery(query_embedding=query.tolist(), similarity_top_k=6, filters=filters))
    assert_ranking(result, brute_force(
        query, embedded, lambda i: props[i]["i"] < 20 and (props[i]["group"] == "g1" or "t0" in props[i]["tags"]), 6))


def test_vector_query_node_ids_and_top_k(random_graph) -> None:
    pg, embedded, props = random_graph
    query = np.random.default_rng(4).normal(size=DIM)
    wanted = {"e3", "e7", "e11", "e20", "e21", "c0", "bare1", "missing"}
    result = pg.vector_query(VectorStoreQuery(query_embedding=query.tolist(), similarity_top_k=3,
                                              node_ids=sorted(wanted)))
    assert_ranking(result, brute_force(query, embedded, lambda i: i in wanted, 3))
    filtered = pg.vector_query(VectorStoreQuery(
        query_embedding=query.tolist(), similarity_top_k=10, node_ids=sorted(wanted),
        filters=MetadataFilters(filters=[MetadataFilter(key="group", value="g0")])))
    assert_ranking(filtered, brute_force(query, embedded, lambda i: i in wanted and props[i]["group"] == "g0", 10))
    assert pg.vector_query(VectorStoreQuery(query_embedding=query.tolist(), node_ids=[])) == ([], [])
    assert pg.vector_query(VectorStoreQuery(query_embedding=query.tolist(), similarity_top_k=0)) == ([], [])


# --------------------------------------------------------------------------- schema
def test_schema_lists_labels_types_and_properties(pg) -> None:
    work_graph(pg)
    schema = pg.get_schema()
    assert schema["node_labels"] == ["CITY", "ORG", "PERSON", "THING", "text_chunk"]
    assert schema["relation_types"] == ["LOCATED_IN", "MENTIONS", "WORKS_FOR"]
    assert schema["node_props"]["PERSON"] == [{"property": "age", "type": "INTEGER"},
                                              {"property": "team", "type": "STRING"}]
    assert schema["rel_props"]["LOCATED_IN"] == [{"property": "hq", "type": "BOOLEAN"}]
    assert {"start": "PERSON", "type": "WORKS_FOR", "end": "ORG"} in schema["relationships"]
    text = pg.get_schema_str()
    assert "PERSON {age: INTEGER, team: STRING}" in text and "(:ORG)-[:LOCATED_IN]->(:CITY)" in text
    pg.upsert_relations([Relation(label="KNOWS", source_id="Logan", target_id="Jerry", properties={"x": 1.5})])
    assert pg.get_schema()["rel_props"]["KNOWS"] == [{"property": "x", "type": "FLOAT"}]  # cache invalidated
    schema["node_labels"].clear()
    assert pg.get_schema()["node_labels"]  # callers get a copy


def test_structured_query_is_refused_with_a_pointer() -> None:
    store = T4DMPropertyGraphStore(dim=DIM)
    assert store.supports_vector_queries and not store.supports_structured_queries
    with pytest.raises(StructuredQueryNotSupportedError, match="T4DMGraphStore") as info:
        store.structured_query("MATCH (n) RETURN n")
    assert isinstance(info.value, NotImplementedError) and isinstance(info.value, T4DMError)
    store.close()


# --------------------------------------------------------------------------- storage life cycle
def test_persistence_across_reopen(tmp_path) -> None:
    path = tmp_path / "persist"
    first = T4DMPropertyGraphStore(path=path)  # dimension comes from the first embedding
    work_graph(first)
    first.upsert_llama_nodes([TextNode(id_="n1", text="persisted", metadata={"k": 1})])
    before = (node_set(first.get()), triplet_set(first.get_triplets(entity_names=["LlamaIndex"])),
              first.get_llama_nodes(["n1"]), first.get_schema())
    query = VectorStoreQuery(query_embedding=vec(0, 1), similarity_top_k=3)
    ranked = first.vector_query(query)
    first.close()
    second = T4DMPropertyGraphStore(path=path)
    assert second.client is not None and second.client.dim == DIM
    assert (node_set(second.get()), triplet_set(second.get_triplets(entity_names=["LlamaIndex"])),
            second.get_llama_nodes(["n1"]), second.get_schema()) == before
    assert [n.id for n in second.vector_query(query)[0]] == [n.id for n in ranked[0]]
    second.close()
    with pytest.raises(EmbedderMismatchError, match="dimension"):
        T4DMPropertyGraphStore(path=path, dim=DIM + 1)


def raw_graph(engine: t4dm_core.Store, namespace: str) -> tuple[set[str], set[tuple[str, str, str]]]:
    """Every current memory id and every edge of the namespace, straight from the engine."""
    ids = {m.id for m in engine.find(namespace=namespace) if m.id is not None}
    return ids, {(e.src, e.type, e.dst) for i in ids for e in engine.edges(i, namespace=namespace)}


def labels_around(store: T4DMPropertyGraphStore, node_ids: Sequence[str]) -> dict[str, set[str]]:
    return {i: {t[1].label for t in store.get_triplets(ids=[i])} for i in node_ids}


ATOMIC_CALLS: dict[str, tuple[Callable[[T4DMPropertyGraphStore], None], dict[str, set[str]]]] = {
    "upsert_relations": (lambda pg: pg.upsert_relations([
        Relation(label="VISITED", source_id="Logan", target_id="Rome", properties={"year": 2020}),
        Relation(label="KNOWS", source_id="Jerry", target_id="Logan")]),
        {"Logan": {"MENTIONS", "WORKS_FOR", "VISITED", "KNOWS"}, "Rome": {"VISITED"}, "Paris": {"LOCATED_IN"}}),
    "delete": (lambda pg: pg.delete(ids=["LlamaIndex"], relation_names=["MENTIONS"]),
               {"Logan": set(), "Rome": set(), "Paris": set()}),
}


@pytest.mark.parametrize("failing_write", [1, 2])
@pytest.mark.parametrize("operation", sorted(ATOMIC_CALLS))
def test_writes_are_one_atomic_batch(tmp_path, operation: str, failing_write: int) -> None:
    """upsert_relations (endpoints + records + edges) and delete (nodes + records + edges) are ONE
    WAL write each: if it fails, a power cut leaves the graph as before; a fault armed for a
    second write is never reached, and all of the call survives."""
    path = tmp_path / "pg"
    fs = t4dm_core.FaultInjectingFS()
    engine = t4dm_core.open(path, dim=DIM, fs=fs, options=t4dm_core.Options(sync="full"))
    pg = T4DMPropertyGraphStore(store=engine)
    work_graph(pg)
    before, labels_before = raw_graph(engine, pg.namespace), labels_around(pg, ["Logan", "Rome", "Paris"])
    call, labels_after = ATOMIC_CALLS[operation]
    fs.fail("write", failing_write)
    if failing_write == 1:
        with pytest.raises(StoreFailedError):
            call(pg)
    else:
        call(pg)
    after = raw_graph(engine, pg.namespace)
    assert (after == before) == (failing_write == 1)
    engine.close()
    fs.crash()  # power cut: only what the WAL made durable survives
    with T4DMPropertyGraphStore(path=path) as reopened:
        assert reopened.client is not None and raw_graph(reopened.client, reopened.namespace) == after
        assert labels_around(reopened, list(labels_after)) == (labels_before if failing_write == 1 else labels_after)
    if operation == "delete" and failing_write == 2:  # no edge or record of a deleted relation is left
        assert after[1] == set() and not any(i.startswith("_t4dm_rel:") for i in after[0])


def test_detecting_an_existing_store_opens_it_once_and_creates_nothing(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with T4DMPropertyGraphStore(path=empty) as pg:  # a directory without a store: waits for a dimension
        assert pg.client is None
    assert os.listdir(empty) == []
    path = tmp_path / "existing"
    with T4DMPropertyGraphStore(path=path) as pg:
        work_graph(pg)
    with T4DMPropertyGraphStore(path=path) as again:
        assert again.client is not None and len(again.get()) == 6
    assert not (path / "readers").exists()  # no read-only probe left reader pins behind


def test_new_store_waits_for_a_dimension(tmp_path) -> None:
    path = tmp_path / "lazy"
    store = T4DMPropertyGraphStore(path=path)
    assert store.get() == [] and store.get_triplets(ids=["x"]) == [] and store.client is None
    assert store.vector_query(VectorStoreQuery(query_embedding=vec(0))) == ([], [])
    store.delete(ids=["x"])
    with pytest.raises(InvalidInputError, match="dim="):
        store.upsert_nodes([EntityNode(name="no embedding")])
    with pytest.raises(InvalidInputError, match="dim="):
        store.upsert_relations([Relation(label="R", source_id="a", target_id="b")])
    with pytest.raises(DimensionMismatchError):
        store.upsert_nodes([EntityNode(name="a", embedding=[1.0, 2.0, 3.0]), EntityNode(name="b", embedding=[1.0])])
    assert not os.path.exists(path)  # nothing was created
    store.upsert_nodes([EntityNode(name="bare"), EntityNode(name="vec", embedding=[1.0, 2.0, 3.0])])
    assert store.client is not None and store.client.dim == 3
    assert [n.id for n in store.vector_query(VectorStoreQuery(query_embedding=[1.0, 0, 0]))[0]] == ["vec"]
    store.close()


def test_shared_store_namespaces_and_ownership(tmp_path) -> None:
    engine = t4dm_core.open(tmp_path / "shared", dim=DIM)
    left = T4DMPropertyGraphStore(store=engine, namespace="left")
    right = T4DMPropertyGraphStore(store=engine, namespace="right")
    work_graph(left)
    right.upsert_nodes([EntityNode(name="Logan", embedding=vec(5))])
    assert len(left.get()) == 6 and [n.id for n in right.get()] == ["Logan"]
    assert right.get_triplets(entity_names=["Logan"]) == []
    left.close()
    assert not engine.closed and [n.id for n in right.get()] == ["Logan"]
    with pytest.raises(StoreClosedError):
        left.get()
    left.close()  # idempotent
    with pytest.raises(DimensionMismatchError):
        T4DMPropertyGraphStore(store=engine, dim=DIM + 1)
    right.close()
    engine.close()


def test_concurrent_writers_through_one_adapter(pg) -> None:
    def writer(w: int) -> None:
        for i in range(10):
            pg.upsert_nodes([EntityNode(name=f"w{w}n{i}", embedding=vec(w))])
            pg.upsert_relations([Relation(label="NEXT", source_id=f"w{w}n{i}", target_id=f"w{w}n{i + 1}")])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pg.get()) == 44 and len(pg.get_triplets(relation_names=["NEXT"])) == 40


# --------------------------------------------------------------------------- bad input
def good_entity() -> EntityNode:
    return EntityNode(name="good", embedding=vec(0))


BAD_WRITES: list[tuple[str, Callable[[T4DMPropertyGraphStore], None], type[Exception]]] = [
    ("not a node", lambda s: s.upsert_nodes([good_entity(), TextNode(text="x")]), InvalidInputError),
    ("nodes not a list", lambda s: s.upsert_nodes("abc"), InvalidInputError),
    ("reserved property", lambda s: s.upsert_nodes([good_entity(), EntityNode(name="b", properties={"_t4dm_x": 1})]),
     InvalidInputError),
    ("reserved id", lambda s: s.upsert_nodes([good_entity(), EntityNode(name="_t4dm_rel:x")]), InvalidInputError),
    ("id too long", lambda s: s.upsert_nodes([good_entity(), EntityNode(name="x" * 513)]), InvalidInputError),
    ("non-JSON property", lambda s: s.upsert_nodes([good_entity(), EntityNode(name="b", properties={"s": {1}})]),
     InvalidInputError),
    ("NaN property", lambda s: s.upsert_nodes([good_entity(), EntityNode(name="b", properties={"f": float("nan")})]),
     InvalidInputError),
    ("wrong dimension", lambda s: s.upsert_nodes([good_entity(), EntityNode(name="b", embedding=[1.0, 2.0])]),
     DimensionMismatchError),
    ("zero embedding", lambda s: s.upsert_nodes([good_entity(), EntityNode(name="b", embedding=[0.0] * DIM)]),
     InvalidInputError),
    ("empty label", lambda s: s.upsert_relations([Relation(label="", source_id="a", target_id="b")]),
     InvalidInputError),
    ("relation not a Relation", lambda s: s.upsert_relations([("a", "R", "b")]), InvalidInputError),
    ("bad relation property", lambda s: s.upsert_relations([
        Relation(label="R", source_id="a", target_id="b"),
        Relation(label="R", source_id="a", target_id="c", properties={"t": (1, 2)})]), MetadataError),
    ("reserved endpoint", lambda s: s.upsert_relations([Relation(label="R", source_id="_t4dm_x", target_id="b")]),
     InvalidInputError),
    ("delete ids not a list", lambda s: s.delete(ids="good"), InvalidInputError),
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_WRITES, ids=[b[0] for b in BAD_WRITES])
def test_bad_writes_raise_typed_errors_and_write_nothing(pg, name, call, error) -> None:
    pg.upsert_nodes([EntityNode(name="keep", embedding=vec(1))])
    engine = pg.client
    assert engine is not None
    before = [(m.id, m.metadata) for m in engine.find(namespace=pg.namespace)]
    with pytest.raises(error):
        call(pg)
    assert [(m.id, m.metadata) for m in engine.find(namespace=pg.namespace)] == before
    assert engine.edges("a", namespace=pg.namespace, direction="both") == []


BAD_READS: list[tuple[str, Callable[[T4DMPropertyGraphStore], object]]] = [
    ("ids as a string", lambda s: s.get(ids="Logan")),
    ("ids not strings", lambda s: s.get(ids=[1, 2])),
    ("properties not a dict", lambda s: s.get(properties=[("a", 1)])),
    ("reserved property query", lambda s: s.get(properties={"_t4dm_kind": "pg_node"})),
    ("non-JSON property query", lambda s: s.get_triplets(properties={"a": object()})),
    ("depth 0", lambda s: s.get_rel_map(s.get(ids=["Logan"]), depth=0)),
    ("negative limit", lambda s: s.get_rel_map(s.get(ids=["Logan"]), limit=-1)),
    ("graph_nodes not nodes", lambda s: s.get_rel_map(["Logan"])),
    ("no query embedding", lambda s: s.vector_query(VectorStoreQuery(query_str="Logan"))),
    ("wrong query dimension", lambda s: s.vector_query(VectorStoreQuery(query_embedding=[1.0, 0.0]))),
    ("wrong query dimension with node_ids",
     lambda s: s.vector_query(VectorStoreQuery(query_embedding=[1.0, 0.0], node_ids=["Logan"]))),
    ("mmr mode", lambda s: s.vector_query(VectorStoreQuery(query_embedding=vec(0), mode="mmr"))),
    ("doc_ids", lambda s: s.vector_query(VectorStoreQuery(query_embedding=vec(0), doc_ids=["d"]))),
    ("negative top k", lambda s: s.vector_query(VectorStoreQuery(query_embedding=vec(0), similarity_top_k=-1))),
    ("uncomparable filter operand", lambda s: s.vector_query(VectorStoreQuery(
        query_embedding=vec(0), filters=MetadataFilters(filters=[
            MetadataFilter(key="age", value=None, operator=FilterOperator.GT)])))),
    ("node_ids not strings", lambda s: s.vector_query(VectorStoreQuery(query_embedding=vec(0), node_ids=[1]))),
    ("reserved filter key", lambda s: s.vector_query(VectorStoreQuery(
        query_embedding=vec(0), filters=MetadataFilters(filters=[MetadataFilter(key="_t4dm_type", value="x")])))),
]


@pytest.mark.parametrize(("name", "call"), BAD_READS, ids=[b[0] for b in BAD_READS])
def test_bad_reads_raise_invalid_input(pg, name, call) -> None:
    work_graph(pg)
    with pytest.raises(InvalidInputError):
        call(pg)


def test_bad_constructor_arguments(tmp_path) -> None:
    engine = t4dm_core.open(tmp_path / "e", dim=DIM)
    with pytest.raises(InvalidInputError):
        T4DMPropertyGraphStore(path=tmp_path / "x", store=engine)
    for namespace in ("", "x" * 129, "a\nb", 3):
        with pytest.raises(InvalidNamespaceError):
            T4DMPropertyGraphStore(store=engine, namespace=namespace)
    for dim in (0, -1, 2.5, True):
        with pytest.raises(InvalidInputError):
            T4DMPropertyGraphStore(dim=dim)
    engine.close()
    assert not os.path.exists(tmp_path / "x")


# --------------------------------------------------------------------------- async twins
async def test_async_twins_match_sync(tmp_path) -> None:
    store = T4DMPropertyGraphStore(path=tmp_path / "async", dim=DIM)
    await store.aupsert_nodes([EntityNode(name="Logan", label="PERSON", embedding=vec(0)),
                               EntityNode(name="Org", embedding=vec(1))])
    await store.aupsert_relations([Relation(label="WORKS_FOR", source_id="Logan", target_id="Org",
                                            properties={"since": 2023})])
    node = TextNode(id_="n1", text="async chunk")
    store.upsert_llama_nodes([node])
    assert await store.aget(ids=["Logan"]) == store.get(ids=["Logan"])
    assert await store.aget_triplets(entity_names=["Org"]) == store.get_triplets(entity_names=["Org"])
    assert await store.aget_rel_map(store.get(ids=["Logan"]), depth=1) == \
        store.get_rel_map(store.get(ids=["Logan"]), depth=1)
    assert await store.aget_llama_nodes(["n1"]) == [node]
    query = VectorStoreQuery(query_embedding=vec(0, 1), similarity_top_k=2)
    assert await store.avector_query(query) == store.vector_query(query)
    assert await store.aget_schema() == store.get_schema()
    assert await store.aget_schema_str() == store.get_schema_str()
    with pytest.raises(StructuredQueryNotSupportedError):
        await store.astructured_query("MATCH (n) RETURN n")
    await store.adelete_llama_nodes(node_ids=["n1"])
    await store.adelete(relation_names=["WORKS_FOR"])
    assert store.get_triplets(entity_names=["Org"]) == [] and {n.id for n in store.get()} == {"Logan", "Org"}
    with pytest.raises(InvalidInputError):
        await store.aupsert_nodes([EntityNode(name="x", properties={"_t4dm_kind": 1})])
    store.close()


# --------------------------------------------------------------------------- PropertyGraphIndex end to end
class CapitalisedEntityExtractor(TransformComponent):
    """Offline extractor: each capitalised word is an entity, consecutive ones are linked by NEAR."""

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        for node in nodes:
            words = dict.fromkeys(re.findall(r"\b[A-Z][a-z]+\b", node.get_content()))
            entities = [EntityNode(name=w, label="NAME") for w in words]
            relations = [Relation(label="NEAR", source_id=a.id, target_id=b.id)
                         for a, b in itertools.pairwise(entities)]
            node.metadata[KG_NODES_KEY] = [*node.metadata.get(KG_NODES_KEY, []), *entities]
            node.metadata[KG_RELATIONS_KEY] = [*node.metadata.get(KG_RELATIONS_KEY, []), *relations]
        return nodes


VOCABULARY = ("alice", "bob", "paris", "carol", "rome", "met", "lives")


class KeywordEmbedding(BaseEmbedding):
    """Offline embedding that tells documents apart: one dimension per known word, plus a bias."""

    @staticmethod
    def _embed(text: str) -> list[float]:
        words = set(re.findall(r"[a-z]+", text.lower()))
        return [1.0 if w in words else 0.0 for w in VOCABULARY] + [0.1]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._embed(query)


def documents() -> list[Document]:
    return [Document(text="Alice met Bob in Paris.", id_="d1"), Document(text="Carol lives in Rome.", id_="d2")]


def build_index(store: PropertyGraphStore, embed_model: BaseEmbedding, **kwargs: Any) -> PropertyGraphIndex:
    return PropertyGraphIndex.from_documents(
        documents(), property_graph_store=store, llm=MockLLM(), embed_model=embed_model,
        kg_extractors=[ImplicitPathExtractor(), CapitalisedEntityExtractor()], **kwargs)


def readable_graph(store: PropertyGraphStore, nodes: Sequence[LabelledNode],
                   triplets: Sequence[Sequence[Any]]) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """Nodes and triplets with chunk ids replaced by chunk text (ids are random per ingestion)."""
    name = {n.id: (n.text if isinstance(n, ChunkNode) else n.id) for n in nodes}
    return ({(type(n).__name__, n.label, name[n.id]) for n in nodes},
            {(name[t[0].id], t[1].label, name[t[2].id]) for t in triplets})


def test_property_graph_index_end_to_end_matches_simple_store(tmp_path) -> None:
    ours = T4DMPropertyGraphStore(path=tmp_path / "index")
    simple = SimplePropertyGraphStore()
    index = build_index(ours, MockEmbedding(embed_dim=8))
    reference = build_index(simple, MockEmbedding(embed_dim=8))

    our_nodes = ours.get()
    assert readable_graph(ours, our_nodes, ours.get_triplets(ids=[n.id for n in our_nodes])) == \
        readable_graph(simple, simple.get(), simple.graph.get_triplets())
    assert {n.id for n in our_nodes if isinstance(n, EntityNode) and n.embedding is not None} == \
        {"Alice", "Bob", "Paris", "Carol", "Rome"}
    chunk_ids = [n.id for n in our_nodes if isinstance(n, ChunkNode)]
    assert {n.get_content() for n in ours.get_llama_nodes(chunk_ids)} == {d.text for d in documents()}
    assert {t[1].properties["triplet_source_id"] for t in ours.get_triplets(relation_names=["NEAR"])} == \
        set(chunk_ids)

    def retrieved(idx: PropertyGraphIndex) -> list[str]:
        return [r.node.get_content() for r in
                idx.as_retriever(include_text=True, similarity_top_k=10).retrieve("Alice")]

    def unordered(texts: list[str]) -> set[frozenset[str]]:  # all scores tie: triplet order is arbitrary
        return {frozenset(t.splitlines()) for t in texts}

    texts = retrieved(index)
    assert any(t.endswith("Alice met Bob in Paris.") and "Alice -> NEAR -> Bob" in t for t in texts)
    assert unordered(texts) == unordered(retrieved(reference))
    ours.close()


async def test_property_graph_index_ranked_retrieval_sync_and_async(tmp_path) -> None:
    store = T4DMPropertyGraphStore(path=tmp_path / "ranked")
    embed = KeywordEmbedding(embed_dim=len(VOCABULARY) + 1)
    index = build_index(store, embed, use_async=False)
    retriever = index.as_retriever(
        sub_retrievers=[VectorContextRetriever(store, embed_model=embed, similarity_top_k=1, include_text=True)])

    for results in (retriever.retrieve("Where is Carol?"), await retriever.aretrieve("Where is Carol?")):
        [hit] = results
        assert hit.node.get_content().endswith("Carol lives in Rome.")
        assert "Carol -> NEAR -> Rome" in hit.node.get_content() and "Alice" not in hit.node.get_content()
        assert hit.score == pytest.approx(1.0, abs=1e-6)

    store.delete_llama_nodes(ref_doc_ids=["d2"])  # the chunk and the document's SOURCE placeholder
    [hit] = retriever.retrieve("Where is Carol?")
    assert "Carol lives in Rome." not in hit.node.get_content()  # the triplet remains, its source text is gone
    assert "d2" not in {n.id for n in store.get()}
    store.close()
