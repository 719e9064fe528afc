"""The declarative mapping: stable ids, conversions, merge, files, and the errors it raises."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import neo4j.time
import numpy as np
import pytest

from integrations.errors import MappingError, VectorShapeError
from integrations.mapping import (
    LEGACY_KEY,
    Mapping,
    NodeRule,
    PointRule,
    RelationshipRule,
    legacy_value_to_time,
    relationship_record_id,
)

FACT = {"id": "f1", "text": "Ada likes tea", "confidence": 0.9, "tags": ["drinks"], "source": "chat"}


def test_node_ids_are_stable_and_scoped() -> None:
    assert Mapping().node_memory_id(["Fact"], FACT) == "n:f1"
    assert Mapping().node_memory_id(["Fact"], {"id": 7}) == "n:7"
    by_label = Mapping(id_scope="label")
    assert by_label.node_memory_id(["Person", "Agent"], {"id": "p1"}) == "n:Agent:p1"  # first label, sorted
    ruled = Mapping(id_scope="label", nodes=(NodeRule(label="Person", key="uid"),))
    assert ruled.node_memory_id(["Person", "Agent"], {"uid": "u9"}) == "n:Person:u9"
    assert Mapping().node_memory_id(["Topic"], {"name": "tea"}, element_id="node_12") == "e:node_12"
    with pytest.raises(MappingError, match="'id'"):
        Mapping().node_memory_id(["Topic"], {"name": "tea"})
    with pytest.raises(MappingError, match="needs every node to carry a label"):
        by_label.node_id([], "x")


def test_node_to_memory_splits_text_properties_and_provenance() -> None:
    memory = Mapping().node_to_memory(["Fact"], FACT)
    assert memory.id == "n:f1" and memory.namespace == "legacy" and memory.text == "Ada likes tea"
    assert memory.vector is None
    assert {k: v for k, v in memory.metadata.items() if k != LEGACY_KEY} == {
        "id": "f1", "confidence": 0.9, "tags": ["drinks"], "source": "chat"}
    assert memory.metadata[LEGACY_KEY] == {"labels": ["Fact"], "key": "id", "text_property": "text",
                                           "properties": ["confidence", "id", "source", "tags", "text"]}
    untexted = Mapping().node_to_memory(["Session"], {"id": "s1", "title": "Chat", "turns": 3})
    assert untexted.text is None and untexted.metadata["title"] == "Chat"
    assert untexted.metadata[LEGACY_KEY]["text_property"] is None


def test_node_rules_choose_text_metadata_time_and_importance() -> None:
    mapping = Mapping(nodes=(NodeRule(label="Fact", text=("body", "text"), metadata=("confidence",),
                                      valid_from="since", valid_to="until", importance="confidence"),))
    props = {"id": "f2", "body": "the body", "text": "not this", "confidence": 0.25,
             "since": "2024-01-02T03:04:05+00:00", "until": 1_800_000_000, "noise": "dropped"}
    memory = mapping.node_to_memory(["Fact"], props)
    assert memory.text == "the body"
    assert {k for k in memory.metadata if k != LEGACY_KEY} == {"id", "confidence"}  # the key is always kept
    assert memory.metadata[LEGACY_KEY]["properties"] == ["body", "confidence", "id"]  # what the memory carries
    assert memory.valid_from == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert memory.valid_to == 1_800_000_000.0
    assert memory.importance == 0.25
    assert mapping.nodes[0].named_properties() == ("since", "until", "confidence", "confidence", "body", "text")
    with pytest.raises(MappingError, match="importance"):
        mapping.node_to_memory(["Fact"], {**props, "confidence": 3})


def test_neo4j_temporal_values_become_iso_strings_and_epoch_seconds() -> None:
    when = neo4j.time.DateTime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    mapping = Mapping(nodes=(NodeRule(label="Event", valid_from="at"),))
    memory = mapping.node_to_memory(["Event"], {"id": "e1", "at": when, "days": [neo4j.time.Date(2024, 5, 6)]})
    assert memory.metadata["at"] == when.iso_format()
    assert memory.metadata["days"] == ["2024-05-06"]
    assert memory.valid_from == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC).timestamp()
    json.dumps(memory.metadata)  # JSON-able, as the store requires


@pytest.mark.parametrize(("value", "expected"), [(None, None), (12, 12.0), (1.5, 1.5),
                                                 ("2024-01-01T00:00:00+00:00", 1_704_067_200.0)])
def test_legacy_value_to_time(value: object, expected: float | None) -> None:
    assert legacy_value_to_time(value) == expected


@pytest.mark.parametrize("bad", [True, "yesterday", [1, 2]])
def test_legacy_value_to_time_rejects_what_is_not_a_time(bad: object) -> None:
    with pytest.raises(MappingError):
        legacy_value_to_time(bad)


def test_point_vectors_named_unnamed_and_checked() -> None:
    plain = Mapping()
    assert plain.point_vector("c", [1, 2, 3], 3).tolist() == [1.0, 2.0, 3.0]
    assert plain.point_vector("c", {"only": [1, 2]}, 2).tolist() == [1.0, 2.0]
    with pytest.raises(MappingError, match="say which one"):
        plain.point_vector("c", {"a": [1.0], "b": [2.0]}, 1)
    named = Mapping(points=(PointRule(collection="c", vector="b"),))
    assert named.point_vector("c", {"a": [1.0], "b": [2.0]}, 1).tolist() == [2.0]
    with pytest.raises(MappingError, match="no named vector 'b'"):
        named.point_vector("c", {"a": [1.0]}, 1)
    with pytest.raises(VectorShapeError, match="3 dimensions, the store has 4"):
        plain.point_vector("c", [1, 2, 3], 4)
    with pytest.raises(VectorShapeError, match="finite"):
        plain.point_vector("c", [1.0, math.nan], 2)
    with pytest.raises(VectorShapeError, match="not numeric"):
        plain.point_vector("c", ["x", "y"], 2)


def test_point_ids_join_to_nodes_or_stand_alone() -> None:
    mapping = Mapping()
    joined = mapping.point_to_memory("mem", 5, [1.0, 0.0], {"node_id": "f1", "text": "Ada likes tea", "k": 1}, 2)
    assert joined.id == "n:f1" and joined.text == "Ada likes tea" and joined.metadata["k"] == 1
    assert "text" not in joined.metadata
    assert joined.metadata[LEGACY_KEY]["point"] == {"collection": "mem", "id": 5, "vector": None,
                                                    "payload": {"node_id": "f1", "text": "Ada likes tea", "k": 1}}
    alone = mapping.point_to_memory("mem", "7f0c1d2e-0000-4000-8000-000000000001", [0.0, 1.0], {"text": "chunk"}, 2)
    assert alone.id == "p:mem:7f0c1d2e-0000-4000-8000-000000000001"
    labelled = Mapping(id_scope="label", points=(PointRule(collection="mem", join_label="Fact"),))
    assert labelled.point_memory_id("mem", 1, {"node_id": "f1"}) == "n:Fact:f1"
    with pytest.raises(MappingError, match="join_label"):
        Mapping(id_scope="label", points=(PointRule(collection="mem"),))


def test_merge_keeps_node_fields_and_point_vector_in_either_order() -> None:
    mapping = Mapping()
    node = mapping.node_to_memory(["Fact"], FACT)
    point = mapping.point_to_memory("mem", 5, [3.0, 4.0], {"node_id": "f1", "text": "older text", "source": "qdrant",
                                                           "model": "v2"}, 2)
    first, second = Mapping.merge(node, point), Mapping.merge(point, node)
    for merged in (first, second):
        assert merged.text == "Ada likes tea"
        assert merged.metadata["source"] == "chat" and merged.metadata["model"] == "v2"
        assert merged.vector is not None and merged.vector.tolist() == [3.0, 4.0]
        assert merged.metadata[LEGACY_KEY]["labels"] == ["Fact"]
        assert merged.metadata[LEGACY_KEY]["point"]["id"] == 5
    assert first.metadata == second.metadata
    assert Mapping.merge(None, point) is point


def test_merge_of_the_same_kind_returns_the_newer() -> None:
    mapping = Mapping()
    old_node = mapping.node_to_memory(["Fact"], FACT)
    new_node = mapping.node_to_memory(["Fact"], {"id": "f1", "text": "Ada likes coffee"})
    merged = Mapping.merge(old_node, new_node)
    assert merged.text == "Ada likes coffee" and "source" not in merged.metadata  # no stale property
    old_point = mapping.point_to_memory("mem", 1, [1.0], {"text": "a", "x": 1}, 1)
    new_point = mapping.point_to_memory("mem", 1, [2.0], {"text": "b"}, 1)
    assert Mapping.merge(old_point, new_point) is new_point


def test_relationships_become_weighted_edges_and_property_records() -> None:
    mapping = Mapping(relationships=(RelationshipRule(type="KNOWS", weight="closeness", edge_type="knows"),))
    edge = mapping.relationship_to_edge("n:a", "n:b", "KNOWS", {"closeness": 0.5, "since": 2020})
    assert (edge.src, edge.dst, edge.type, edge.weight, edge.namespace) == ("n:a", "n:b", "knows", 0.5, "legacy")
    assert mapping.relationship_to_edge("n:a", "n:b", "LIKES", {}).weight == 1.0
    assert mapping.relationship_to_edge("n:a", "n:b", "LIKES", {"weight": 2}).weight == 2.0
    for bad in ("close", math.inf):
        with pytest.raises(MappingError, match="'closeness'"):
            mapping.relationship_to_edge("n:a", "n:b", "KNOWS", {"closeness": bad})
    record = mapping.relationship_record("n:a", "n:b", "KNOWS", {"since": 2020}, np.ones(2, np.float32))
    assert record.id == relationship_record_id("n:a", "KNOWS", "n:b") == "r:n:a|KNOWS|n:b"
    assert record.namespace == "legacy.relationships" == mapping.relationship_namespace
    assert record.metadata == {"since": 2020, LEGACY_KEY: {"relationship": {"src": "n:a", "dst": "n:b",
                                                                            "type": "KNOWS"}},
                               "_t4dm_unembedded": True}


def test_mapping_files_json_and_toml(tmp_path) -> None:
    spec = {"namespace": "mem", "id_scope": "global", "nodes": [{"label": "Fact", "text": ["body"]}],
            "relationships": [{"type": "KNOWS", "weight": "strength"}],
            "points": [{"collection": "m", "vector": "text", "join_key": "node"}]}
    (tmp_path / "m.json").write_text(json.dumps(spec))
    (tmp_path / "m.toml").write_text('namespace = "mem"\nid_scope = "global"\n'
                                     '[[nodes]]\nlabel = "Fact"\ntext = ["body"]\n'
                                     '[[relationships]]\ntype = "KNOWS"\nweight = "strength"\n'
                                     '[[points]]\ncollection = "m"\nvector = "text"\njoin_key = "node"\n')
    from_json, from_toml = Mapping.load(tmp_path / "m.json"), Mapping.load(tmp_path / "m.toml")
    assert from_json == from_toml
    assert from_json.nodes == (NodeRule(label="Fact", text=("body",)),)
    assert from_json.point_rule("m").join_key == "node" and from_json.point_rule("other") == PointRule()


@pytest.mark.parametrize(("content", "message"), [
    ('{"nodez": []}', "unknown key.*'nodez'"),
    ('{"nodes": [{"label": "A", "txt": ["x"]}]}', r"nodes\[0\].*'txt'"),
    ('{"nodes": ["Fact"]}', "expected an object"),
    ('{"id_scope": "planet"}', "id_scope"),
    ("[1, 2]", "top level"),
    ("{not json", "not valid json"),
])
def test_bad_mapping_files_are_named(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(content)
    with pytest.raises(MappingError, match=message):
        Mapping.load(path)


def test_missing_mapping_file_is_named(tmp_path) -> None:
    with pytest.raises(MappingError, match="cannot read mapping file"):
        Mapping.load(tmp_path / "absent.json")
