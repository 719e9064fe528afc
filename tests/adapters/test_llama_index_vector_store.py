"""T4DMVectorStore against LlamaIndex's reference, SimpleVectorStore (differential where it applies).

Same data goes into both stores; ids, order and similarities are compared. Filter semantics
are checked leaf by leaf against the reference evaluator ``build_metadata_filter_fn`` (the
documented deviation: where the reference raises TypeError for one record's value, that
record does not match), and combined AND / OR / NOT / nested groups are checked against the
combination of those leaf results. Every filter runs on records still in the memtable and on
records flushed to a segment (where the engine evaluates filters on Arrow columns).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from llama_index.core.schema import IndexNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn, node_to_metadata_dict

import t4dm_core
from protocol_adapters.llama_index import T4DMVectorStore
from protocol_adapters.llama_index.vector_store import UnsupportedQueryModeError
from t4dm_core import (
    DimensionMismatchError,
    InvalidInputError,
    InvalidNamespaceError,
    InvalidVectorError,
    Memory,
    StoreClosedError,
    T4DMError,
)

Q = [1.0, 0.15]  # every node below has a distinct cosine to Q: rankings have no ties
SPECS: list[tuple[str, list[float], dict[str, Any], str | None]] = [
    ("a", [1.0, 0.0], {"rank": "a", "weight": 1.0, "quality": ["medium", "high"], "identifier": "6FTR78Y",
                       "num": 3, "flag": True, "title": "hello world"}, "doc-1"),
    ("b", [0.0, 1.0], {"rank": "b", "weight": 2.0, "quality": ["low", "medium"], "identifier": "6FTR78Ya",
                       "num": "3", "flag": False, "maybe": None}, "doc-1"),
    ("c", [1.0, 1.0], {"rank": "c", "weight": 3, "quality": ["high"], "identifier": "6ftr78z", "empty": "",
                       "obj": {"k": 1}, "nums": [True, 2]}, "doc-2"),
    ("d", [1.0, 0.5], {"rank": 7, "quality": [], "title": "HELLO there", "a.b": 1, "$weird": 1, "nums": [1, None],
                       "percent": "50%_off"}, "doc-2"),
    ("e", [0.3, 1.0], {"weight": 2, "quality": "high-ish", "identifier": None, "nested": [[1, 2]],
                       "obj": {"z": 2}}, None),
    ("f", [-1.0, 0.4], {"rank": "B", "quality": ["HIGH"], "title": "İx", "num": 3.0, "flag": 1}, "doc-3"),
]
IDS = [s[0] for s in SPECS]
KEYS = sorted({k for s in SPECS for k in s[2]} | {"missing"})
RAISE = object()  # marks an operand the adapter refuses up front

OPERANDS: dict[FilterOperator, list[Any]] = {
    FilterOperator.EQ: [3, "3", 2, 1, 0, "b", "high", None, ["high"], ["medium", "high"], [1, 2], []],
    FilterOperator.NE: [3, "3", 2, 1, "b", None, ["high"], [1, 2]],
    FilterOperator.GT: [2, 2.0, 0, 1, "b", "B", ["low"], None],
    FilterOperator.GTE: [2, 1, "b", ["medium", "high"], None],
    FilterOperator.LT: [2, 1, "c", ["low"], None],
    FilterOperator.LTE: [3, 0, "a", None],
    FilterOperator.IN: [["a", "c"], [3, 4], ["3"], [1], [0], [], "abc", "high-ish!", 5, None],
    FilterOperator.NIN: [["a", "c"], [3], ["3"], [1], [], "abc", 5, None],
    FilterOperator.CONTAINS: ["high", "ell", "k", "", "a.b", 1, 2, None, [1, 2], ["high"], "%", "_", "-"],
    FilterOperator.ANY: [["high", "x"], ["nope"], ["ell"], ["k"], "hl", [], [1], [2, 3], 3, None],
    FilterOperator.ALL: [["medium", "high"], ["high"], ["ell", "lo"], [], [1, 2], "hi", 3, None],
    FilterOperator.TEXT_MATCH: ["6FTR78Y", "6ftr", "hello", "%", "_", "50%_", "", 3],
    FilterOperator.TEXT_MATCH_INSENSITIVE: ["6ftr78y", "HELLO", "i", "İ", "b", "", 3],
    FilterOperator.IS_EMPTY: [None],
}


def refused(op: FilterOperator, value: Any) -> bool:
    """Operands the reference can never compare (TypeError on every record holding the key)."""
    ordering = (FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE)
    listy = (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL)
    text = (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE)
    return ((op in ordering and value is None) or (op in listy and not isinstance(value, (list, str)))
            or (op in text and not isinstance(value, str)))


def make_nodes() -> list[TextNode]:
    nodes = []
    for node_id, emb, meta, doc in SPECS:
        rel = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)} if doc else {}
        nodes.append(TextNode(text=f"text of {node_id}", id_=node_id, embedding=emb, metadata=dict(meta),
                              relationships=rel))
    return nodes


def reference_store(nodes: list[TextNode] | None = None) -> SimpleVectorStore:
    simple = SimpleVectorStore()
    simple.add(nodes if nodes is not None else make_nodes())
    return simple


def leaf_holds(metadata: dict[str, Any], leaf: MetadataFilter) -> bool:
    fn = build_metadata_filter_fn(lambda _: metadata, MetadataFilters(filters=[leaf]))
    try:
        return fn("x")
    except TypeError:  # the documented deviation: such a record does not match
        return False


def reference_ids(simple: SimpleVectorStore, filters: MetadataFilters) -> set[str]:
    """Ids matching (possibly nested) ``filters``: reference leaves, combined by the condition."""
    if not filters.filters:
        return set(IDS)
    parts = [reference_ids(simple, f) if isinstance(f, MetadataFilters)
             else {i for i in IDS if leaf_holds(simple.data.metadata_dict[i], f)} for f in filters.filters]
    union = set().union(*parts)
    if filters.condition == FilterCondition.OR:
        return union
    if filters.condition == FilterCondition.NOT:
        return set(IDS) - union
    return set.intersection(*parts)


def reference_ranking(simple: SimpleVectorStore) -> list[str]:
    return simple.query(VectorStoreQuery(query_embedding=Q, similarity_top_k=0)).ids or []


def query(vs: T4DMVectorStore, filters: MetadataFilters | None = None, top_k: int = 10, **fields: Any) -> Any:
    return vs.query(VectorStoreQuery(query_embedding=Q, similarity_top_k=top_k, filters=filters, **fields))


def assert_same_result(ours: Any, ref: Any) -> None:
    assert ours.ids == ref.ids
    assert ours.similarities == pytest.approx([float(s) for s in ref.similarities], abs=1e-6)
    assert [n.node_id for n in ours.nodes] == ours.ids


# ---------------------------------------------------------------------------
# sync / async driver
# ---------------------------------------------------------------------------
ASYNC_NAMES = {"add": "async_add", "delete": "adelete", "delete_nodes": "adelete_nodes", "get_nodes": "aget_nodes",
               "clear": "aclear", "query": "aquery"}


class Driver:
    def __init__(self, use_async: bool) -> None:
        self.use_async = use_async

    async def __call__(self, vs: T4DMVectorStore, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.use_async:
            return await getattr(vs, ASYNC_NAMES[name])(*args, **kwargs)
        return getattr(vs, name)(*args, **kwargs)


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Driver:
    return Driver(request.param == "async")


@pytest.fixture
def vs(tmp_path) -> Iterator[T4DMVectorStore]:
    store = T4DMVectorStore(tmp_path / "vs")
    yield store
    store.close()


@pytest.fixture(scope="module", params=["memtable", "segment"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[T4DMVectorStore]:
    store = T4DMVectorStore(tmp_path_factory.mktemp("loaded") / "vs")
    store.add(make_nodes())
    if request.param == "segment":
        engine = store.client
        assert engine is not None
        engine.flush()
        assert engine.stats()["memtable_rows"] == 0 and engine.stats()["segment_rows"] == len(SPECS)
    yield store
    store.close()


# ---------------------------------------------------------------------------
# filters: every operator, strict types, missing keys, conditions, nesting
# ---------------------------------------------------------------------------
def test_every_operator_on_every_key_matches_the_reference(loaded: T4DMVectorStore) -> None:
    simple = reference_store()
    ranking = reference_ranking(simple)
    leaves = direct = 0
    for op, values in OPERANDS.items():
        for value in values:
            for key in KEYS:
                leaf = MetadataFilter(key=key, value=value, operator=op)
                filters = MetadataFilters(filters=[leaf])
                case = f"{key} {op.value} {value!r}"
                if refused(op, value):
                    with pytest.raises(InvalidInputError):
                        query(loaded, filters)
                    holders = [simple.data.metadata_dict[i] for i in IDS
                               if simple.data.metadata_dict[i].get(key) is not None]
                    for metadata in holders:  # the reference can never compare this operand either
                        with pytest.raises(TypeError):
                            build_metadata_filter_fn(lambda _, m=metadata: m, filters)("x")
                    continue
                expected = [i for i in ranking if leaf_holds(simple.data.metadata_dict[i], leaf)]
                ours = query(loaded, filters)
                assert ours.ids == expected, case
                leaves += 1
                try:
                    ref = simple.query(VectorStoreQuery(query_embedding=Q, similarity_top_k=10, filters=filters))
                except TypeError:
                    continue  # the reference fails on some record; the leaf check above covers it
                assert_same_result(ours, ref)
                direct += 1
    assert leaves > 1400 and direct > 900


def _leaves() -> list[MetadataFilter]:
    return [MetadataFilter(key=key, value=value, operator=op) for op, values in OPERANDS.items()
            for value in values if not refused(op, value) for key in KEYS]


def _random_tree(rng: random.Random, leaves: list[MetadataFilter], depth: int) -> MetadataFilters:
    children: list[MetadataFilter | MetadataFilters] = []
    for _ in range(rng.randint(1, 3)):
        children.append(_random_tree(rng, leaves, depth - 1) if depth > 1 and rng.random() < 0.4
                        else rng.choice(leaves))
    return MetadataFilters(filters=children, condition=rng.choice(list(FilterCondition)))


def test_and_or_not_and_nested_groups_match_the_reference(loaded: T4DMVectorStore) -> None:
    simple = reference_store()
    ranking = reference_ranking(simple)
    rng = random.Random(7)
    leaves = _leaves()
    for n in range(300):
        filters = _random_tree(rng, leaves, depth=1 if n < 150 else 3)
        expected = [i for i in ranking if i in reference_ids(simple, filters)]
        ours = query(loaded, filters)
        assert ours.ids == expected, filters
        assert query(loaded, filters, top_k=1).ids == expected[:1], filters  # top_k applies after filtering
        assert [x.node_id for x in loaded.get_nodes(filters=filters)] == [i for i in IDS if i in expected]
        if n < 150:
            try:
                ref = simple.query(VectorStoreQuery(query_embedding=Q, similarity_top_k=10, filters=filters))
            except TypeError:
                continue
            assert_same_result(ours, ref)


def test_strict_types_and_missing_keys(loaded: T4DMVectorStore) -> None:
    def ids(key: str, value: Any, op: str = "==") -> set[str]:
        return set(query(loaded, MetadataFilters(filters=[MetadataFilter(key=key, value=value, operator=op)])).ids)

    assert ids("num", 3) == {"a", "f"}  # 3 == 3.0, "3" is not 3
    assert ids("num", "3") == {"b"}
    assert ids("num", [3], "nin") == {"b", "c", "d", "e"}  # missing keys match nin
    assert ids("rank", "a", "!=") == set(IDS) - {"a"}  # ... and !=
    assert ids("missing", 1, ">") == set() and ids("missing", "x", "text_match") == set()
    assert ids("maybe", "x", "!=") == set(IDS)  # null is treated as missing
    assert ids("flag", 1) == {"a", "f"}  # Python's True == 1, as in the reference
    assert ids("identifier", None, "is_empty") == {"d", "e", "f"}


def test_empty_filters_match_everything(loaded: T4DMVectorStore) -> None:
    for condition in FilterCondition:
        assert query(loaded, MetadataFilters(filters=[], condition=condition)).ids == reference_ranking(
            reference_store())


# ---------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------
async def test_query_matches_simple_vector_store(vs: T4DMVectorStore, call: Driver) -> None:
    simple = reference_store()
    assert await call(vs, "add", make_nodes()) == IDS
    for top_k in (1, 2, 3, 6, 0, 20_000):
        q = VectorStoreQuery(query_embedding=Q, similarity_top_k=top_k)
        assert_same_result(await call(vs, "query", q), simple.query(q))
    q = VectorStoreQuery(query_embedding=[0.0, -2.0], similarity_top_k=6)  # negative cosines, higher = better
    ours = await call(vs, "query", q)
    assert_same_result(ours, simple.query(q))
    assert min(ours.similarities) < 0 and ours.similarities == sorted(ours.similarities, reverse=True)


async def test_node_ids_restriction(vs: T4DMVectorStore, call: Driver) -> None:
    simple = reference_store()
    await call(vs, "add", make_nodes())
    flt = MetadataFilters(filters=[MetadataFilter(key="rank", value="c", operator="!=")])
    for node_ids, filters in ((["b", "c", "e", "zz"], None), (["b", "c", "e"], flt), (["f"], flt)):
        for top_k in (1, 2, 10):
            q = VectorStoreQuery(query_embedding=Q, similarity_top_k=top_k, node_ids=node_ids, filters=filters)
            assert_same_result(await call(vs, "query", q), simple.query(q))
    # Deviation: [] restricts nothing (VectorStoreIndex.as_retriever passes node_ids=[] to text-keeping stores)
    q = VectorStoreQuery(query_embedding=Q, similarity_top_k=10, node_ids=[])
    assert (await call(vs, "query", q)).ids == reference_ranking(simple)


async def test_doc_ids_restriction(vs: T4DMVectorStore, call: Driver) -> None:
    await call(vs, "add", make_nodes())
    q = VectorStoreQuery(query_embedding=Q, similarity_top_k=10, doc_ids=["doc-2", "doc-3"])
    assert (await call(vs, "query", q)).ids == ["d", "c", "f"]
    q.node_ids = ["c", "f", "a"]
    assert (await call(vs, "query", q)).ids == ["c", "f"]
    everything = await call(vs, "query", VectorStoreQuery(query_embedding=Q, similarity_top_k=10, doc_ids=[]))
    assert everything.ids == reference_ranking(reference_store())  # [] restricts nothing


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.8, 1.0])
async def test_mmr_matches_simple_vector_store(vs: T4DMVectorStore, call: Driver, threshold: float) -> None:
    simple = reference_store()
    await call(vs, "add", make_nodes())
    for top_k in (1, 3, 6):
        q = VectorStoreQuery(query_embedding=Q, similarity_top_k=top_k, mode=VectorStoreQueryMode.MMR)
        ref = simple.query(q, mmr_threshold=threshold)
        assert_same_result(await call(vs, "query", q, mmr_threshold=threshold), ref)
        q.mmr_threshold = threshold  # the field works as well as the kwarg
        assert_same_result(await call(vs, "query", q), ref)


async def test_mmr_default_lambda_and_lambda_one(vs: T4DMVectorStore, call: Driver) -> None:
    simple = reference_store()
    await call(vs, "add", make_nodes())
    mmr = VectorStoreQuery(query_embedding=Q, similarity_top_k=4, mode=VectorStoreQueryMode.MMR)
    assert_same_result(await call(vs, "query", mmr), simple.query(mmr))  # λ defaults to 0.5
    plain = await call(vs, "query", VectorStoreQuery(query_embedding=Q, similarity_top_k=4))
    assert_same_result(await call(vs, "query", mmr, mmr_threshold=1.0), plain)  # λ=1: pure relevance


async def test_mmr_prefetch_limits_the_candidates(vs: T4DMVectorStore) -> None:
    await vs.async_add(make_nodes())
    q = VectorStoreQuery(query_embedding=Q, similarity_top_k=2, mode=VectorStoreQueryMode.MMR)
    narrow = vs.query(q, mmr_threshold=0.0, mmr_prefetch_k=2)  # only the two nearest are candidates
    assert sorted(narrow.ids) == ["a", "d"]
    wide = vs.query(q, mmr_threshold=0.0, mmr_prefetch_factor=3)
    assert wide.ids == reference_store().query(q, mmr_threshold=0.0).ids
    with pytest.raises(InvalidInputError):
        vs.query(q, mmr_prefetch_k=2, mmr_prefetch_factor=2.0)


def test_only_queries_returning_what_they_fetch_learn(vs: T4DMVectorStore) -> None:
    """A plain query records the engine's learning on read for its results; an MMR query that
    over-fetches records nothing (its unreturned candidates must not count as retrieved)."""
    vs.add(make_nodes())
    engine = vs.client
    assert engine is not None

    def counts() -> dict[str, int]:
        return {m.id: m.access_count for m in engine.get_many(IDS, namespace=vs.namespace)
                if m is not None and m.id is not None}

    def co_retrieved() -> set[tuple[str, str]]:
        return {(e.src, e.dst) for i in IDS for e in engine.edges(i, namespace=vs.namespace)
                if e.type == "co_retrieved"}

    assert set(counts().values()) == {0} and co_retrieved() == set()
    plain = query(vs, top_k=2)
    learnt = {i: int(i in plain.ids) for i in IDS}
    assert counts() == learnt and co_retrieved() and {i for pair in co_retrieved() for i in pair} == set(plain.ids)
    edges = co_retrieved()
    mmr = VectorStoreQuery(query_embedding=Q, similarity_top_k=2, mode=VectorStoreQueryMode.MMR)
    wide = vs.query(mmr, mmr_threshold=0.0, mmr_prefetch_factor=3)  # 6 candidates, 2 returned
    assert len(wide.ids) == 2 and counts() == learnt and co_retrieved() == edges
    exact = vs.query(mmr, mmr_threshold=0.0, mmr_prefetch_k=2)  # returns every candidate it fetched
    assert counts() == {i: learnt[i] + int(i in exact.ids) for i in IDS}
    vs.query(VectorStoreQuery(query_embedding=Q, similarity_top_k=2, node_ids=["b", "c"]))  # Python-side scan
    assert counts() == {i: learnt[i] + int(i in exact.ids) for i in IDS}
    vs.delete_nodes(node_ids=list(plain.ids))  # deleting a node removes its edges too
    assert co_retrieved() == set()


async def test_unembedded_records_never_appear(vs: T4DMVectorStore, call: Driver) -> None:
    await call(vs, "add", make_nodes())
    ghost = TextNode(text="ghost", id_="ghost", metadata={"rank": "a"})
    metadata = {**node_to_metadata_dict(ghost, remove_text=True), "_t4dm_unembedded": True}
    store = vs.client
    assert store is not None
    store.put(Memory(text="ghost", id="ghost", vector=[1.0, 0.15], metadata=metadata))  # exactly the query direction
    flt = MetadataFilters(filters=[MetadataFilter(key="rank", value="a")])
    for fields in ({}, {"filters": flt}, {"node_ids": ["ghost", "a"]}, {"similarity_top_k": 0},
                   {"mode": VectorStoreQueryMode.MMR}, {"filters": MetadataFilters(filters=[MetadataFilter(
                       key="title", value="HELLO", operator="text_match_insensitive")])}):
        q = VectorStoreQuery(**{"query_embedding": Q, "similarity_top_k": 10, **fields})  # type: ignore[arg-type]
        assert "ghost" not in (await call(vs, "query", q)).ids, fields


# ---------------------------------------------------------------------------
# writes, reads, deletes
# ---------------------------------------------------------------------------
async def test_nodes_round_trip_exactly(vs: T4DMVectorStore, call: Driver) -> None:
    nodes: list[Any] = make_nodes()
    nodes[0].excluded_embed_metadata_keys = ["rank"]
    nodes[0].relationships[NodeRelationship.NEXT] = RelatedNodeInfo(node_id="b", metadata={"x": [1, {"y": None}]})
    nodes.append(IndexNode(text="an index node", id_="idx", index_id="child-index", embedding=[0.5, 0.5],
                           metadata={"kind": "index"}))
    await call(vs, "add", nodes)
    got = await call(vs, "get_nodes")
    assert [n.node_id for n in got] == [n.node_id for n in nodes]
    for original, back in zip(nodes, got, strict=True):
        assert type(back) is type(original)
        expected_embedding = np.asarray(original.embedding) / np.linalg.norm(original.embedding)
        assert back.embedding == pytest.approx(expected_embedding.tolist(), abs=1e-6)  # stored unit-normalised
        back.embedding = original.embedding
        assert back == original
    result = await call(vs, "query", VectorStoreQuery(query_embedding=Q, similarity_top_k=10))
    for node in result.nodes:
        original = next(n for n in nodes if n.node_id == node.node_id)
        assert node.embedding is None
        assert node.model_copy(update={"embedding": original.embedding}) == original


async def test_add_is_an_upsert_and_returns_ids_in_input_order(vs: T4DMVectorStore, call: Driver) -> None:
    simple = SimpleVectorStore()
    first = [TextNode(text="old", id_="x", embedding=[1.0, 0.0]), TextNode(text="y", id_="y", embedding=[0.0, 1.0])]
    again = [TextNode(text="dup-1", id_="x", embedding=[0.0, 1.0]), TextNode(text="z", id_="z", embedding=[1.0, 1.0]),
             TextNode(text="dup-2", id_="x", embedding=[1.0, 0.1])]
    for batch in (first, again):
        assert await call(vs, "add", batch) == simple.add(batch) == [n.node_id for n in batch]
    q = VectorStoreQuery(query_embedding=Q, similarity_top_k=10)
    assert_same_result(await call(vs, "query", q), simple.query(q))
    texts = {n.node_id: n.get_content() for n in await call(vs, "get_nodes")}
    assert texts == {"x": "dup-2", "y": "y", "z": "z"}  # the last duplicate wins
    assert await call(vs, "add", []) == []


async def test_delete_by_ref_doc_id(vs: T4DMVectorStore, call: Driver) -> None:
    simple = reference_store()
    await call(vs, "add", make_nodes())
    q = VectorStoreQuery(query_embedding=Q, similarity_top_k=10)
    for ref_doc_id in ("doc-2", "no-such-doc", "None", "doc-1"):  # "None": nodes without a source document
        simple.delete(ref_doc_id)
        await call(vs, "delete", ref_doc_id)
        assert_same_result(await call(vs, "query", q), simple.query(q))
    assert [n.node_id for n in await call(vs, "get_nodes")] == ["f"]


async def test_delete_nodes_matches_simple_vector_store(vs: T4DMVectorStore, call: Driver) -> None:
    simple = reference_store()
    await call(vs, "add", make_nodes())
    q = VectorStoreQuery(query_embedding=Q, similarity_top_k=10)
    steps: list[tuple[list[str] | None, MetadataFilters | None]] = [
        (["zz"], None),
        (["a", "b"], MetadataFilters(filters=[MetadataFilter(key="rank", value="b")])),
        (None, MetadataFilters(filters=[MetadataFilter(key="quality", value="high", operator="contains")])),
        ([], None),
        (None, None),  # neither: everything, as in SimpleVectorStore
    ]
    for node_ids, filters in steps:
        simple.delete_nodes(node_ids=node_ids, filters=filters)
        await call(vs, "delete_nodes", node_ids=node_ids, filters=filters)
        assert_same_result(await call(vs, "query", q), simple.query(q))
        assert [n.node_id for n in await call(vs, "get_nodes")] == list(simple.data.embedding_dict)
    assert (await call(vs, "query", q)).ids == []


async def test_get_nodes_by_ids_and_filters(vs: T4DMVectorStore, call: Driver) -> None:
    await call(vs, "add", make_nodes())
    assert [n.node_id for n in await call(vs, "get_nodes", node_ids=["e", "zz", "a", "e"])] == ["e", "a"]
    flt = MetadataFilters(filters=[MetadataFilter(key="weight", value=2, operator=">=")])
    assert [n.node_id for n in await call(vs, "get_nodes", filters=flt)] == ["b", "c", "e"]
    assert [n.node_id for n in await call(vs, "get_nodes", node_ids=["e", "a", "c"], filters=flt)] == ["e", "c"]
    assert await call(vs, "get_nodes", node_ids=[]) == []


async def test_clear(vs: T4DMVectorStore, call: Driver, tmp_path) -> None:
    await call(vs, "add", make_nodes())
    other = T4DMVectorStore(store=vs.client, namespace="other")
    other.add(make_nodes()[:2])
    await call(vs, "clear")
    assert await call(vs, "get_nodes") == []
    assert (await call(vs, "query", VectorStoreQuery(query_embedding=Q, similarity_top_k=5))).ids == []
    assert [n.node_id for n in other.get_nodes()] == ["a", "b"]  # other namespaces are untouched
    await call(vs, "add", make_nodes()[:1])
    assert [n.node_id for n in await call(vs, "get_nodes")] == ["a"]


# ---------------------------------------------------------------------------
# opening, dimension, persistence, sharing
# ---------------------------------------------------------------------------
def test_lazy_store_takes_the_first_embedding_dimension(tmp_path) -> None:
    path = tmp_path / "lazy"
    vs = T4DMVectorStore(path)
    assert vs.client is None and not path.exists()
    assert vs.get_nodes() == [] and query(vs).ids == []
    vs.delete("doc-1")
    vs.delete_nodes(node_ids=["a"])
    vs.clear()
    assert not path.exists()  # reads and deletes on a store that does not exist yet create nothing
    vs.add([TextNode(text="t", id_="n", embedding=[0.1, 0.2, 0.3])])
    assert vs.client is not None and vs.client.dim == 3 and path.exists()
    vs.close()


async def test_concurrent_first_writes_open_one_store(tmp_path) -> None:
    vs = T4DMVectorStore(tmp_path / "concurrent")  # lazy: the first adds race to create the store
    nodes = [TextNode(text=f"n{i}", id_=f"n{i}", embedding=[1.0, i / 10]) for i in range(16)]
    q = VectorStoreQuery(query_embedding=Q, similarity_top_k=3)
    results = await asyncio.gather(*(vs.async_add([node]) for node in nodes), *(vs.aquery(q) for _ in range(4)))
    assert results[:16] == [[f"n{i}"] for i in range(16)]
    assert sorted(n.node_id for n in await vs.aget_nodes()) == sorted(f"n{i}" for i in range(16))
    assert os.listdir(tmp_path) == ["concurrent"]
    vs.close()


def test_persistence_across_reopen(tmp_path) -> None:
    path = tmp_path / "persist"
    with T4DMVectorStore(path) as vs:
        vs.add(make_nodes())
        vs.delete("doc-2")
        before = query(vs)
    with T4DMVectorStore(path) as again:  # an existing store opens with its recorded dimension
        assert again.client is not None and again.client.dim == 2
        after = query(again)
        assert after.ids == before.ids == ["a", "e", "b", "f"]
        assert after.similarities == pytest.approx(before.similarities)
        assert [n.node_id for n in again.get_nodes()] == ["a", "b", "e", "f"]
    with pytest.raises(t4dm_core.EmbedderMismatchError):
        T4DMVectorStore(path, dim=3)


def test_detecting_an_existing_store_opens_it_once_and_creates_nothing(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with T4DMVectorStore(empty) as vs:  # a directory without a store: still lazy
        assert vs.client is None
    assert os.listdir(empty) == []
    path = tmp_path / "existing"
    with T4DMVectorStore(path) as vs:
        vs.add(make_nodes())
    with T4DMVectorStore(path) as again:
        assert again.client is not None and len(again.get_nodes()) == len(SPECS)
    assert not (path / "readers").exists()  # no read-only probe left reader pins behind


def test_explicit_dim_and_shared_store(tmp_path) -> None:
    vs = T4DMVectorStore(tmp_path / "d", dim=2)
    assert vs.client is not None and vs.client.dim == 2
    with pytest.raises(DimensionMismatchError):
        vs.add([TextNode(text="t", id_="n", embedding=[1.0, 0.0, 0.0])])
    vs.close()
    with t4dm_core.open(tmp_path / "shared", dim=2) as store:
        first = T4DMVectorStore(store=store, namespace="one")
        second = T4DMVectorStore(store=store, namespace="two")
        first.add(make_nodes())
        assert query(second).ids == [] and second.namespace == "two"
        first.close()
        assert not store.closed  # a shared store stays open
        assert len(store.ids(namespace="one")) == len(SPECS)
        with pytest.raises(StoreClosedError):
            query(first)
        with pytest.raises(DimensionMismatchError):
            T4DMVectorStore(store=store, dim=5)


def test_temporary_store_is_removed_on_close() -> None:
    vs = T4DMVectorStore()
    vs.add(make_nodes())
    assert vs.client is not None
    path = vs.client.path
    assert os.path.isdir(path)
    vs.close()
    assert not os.path.exists(path)


# ---------------------------------------------------------------------------
# bad input: typed errors, nothing written
# ---------------------------------------------------------------------------
def test_bad_writes_raise_and_write_nothing(vs: T4DMVectorStore) -> None:
    vs.add(make_nodes()[:1])
    good = TextNode(text="good", id_="good", embedding=[1.0, 1.0])
    bad_batches: list[tuple[list[Any], type[Exception]]] = [
        ([good, TextNode(text="no embedding", id_="ne")], InvalidInputError),
        ([good, TextNode(text="r", id_="r", embedding=[1.0, 0.0], metadata={"_t4dm_kind": "x"})], InvalidInputError),
        ([good, TextNode(text="w", id_="w", embedding=[1.0, 0.0, 0.0])], DimensionMismatchError),
        ([good, TextNode(text="nan", id_="nan", embedding=[math.nan, 1.0])], InvalidVectorError),
        ([good, TextNode(text="zero", id_="zero", embedding=[0.0, 0.0])], InvalidVectorError),
        ([good, TextNode(text="long id", id_="x" * 600, embedding=[1.0, 0.0])], InvalidInputError),
        ([good, "not a node"], InvalidInputError),
    ]
    for batch, error in bad_batches:
        with pytest.raises(error):
            vs.add(batch)
        assert [n.node_id for n in vs.get_nodes()] == ["a"]


def test_text_search_and_hybrid_modes_use_the_engine_ranking(vs: T4DMVectorStore) -> None:
    nodes = [TextNode(text="kubernetes cluster upgrade", id_="k", embedding=[0.0, 1.0], metadata={"team": "ops"}),
             TextNode(text="garden hose repair", id_="g", embedding=[1.0, 0.0], metadata={"team": "home"}),
             TextNode(text="database upgrade window", id_="d", embedding=[0.7, 0.7], metadata={"team": "ops"})]
    vs.add(nodes)
    text = vs.query(VectorStoreQuery(query_str="kubernetes upgrade", similarity_top_k=3,
                                     mode=VectorStoreQueryMode.TEXT_SEARCH))
    assert text.ids == ["k", "d"] and text.similarities[0] > text.similarities[1] > 0  # BM25; "g" shares no word
    assert text.nodes[0].get_content() == "kubernetes cluster upgrade"
    hybrid = vs.query(VectorStoreQuery(query_str="kubernetes upgrade", query_embedding=[1.0, 0.0], similarity_top_k=2,
                                       mode=VectorStoreQueryMode.HYBRID,
                                       filters=MetadataFilters(filters=[MetadataFilter(key="team", value="ops")])))
    assert set(hybrid.ids) == {"k", "d"}  # the vector alone would rank "g" first; the filter removes it


def test_bad_queries_raise_typed_errors(vs: T4DMVectorStore) -> None:
    vs.add(make_nodes())

    def bad(**fields: Any) -> VectorStoreQuery:
        return VectorStoreQuery(**{"query_embedding": Q, "similarity_top_k": 2, **fields})  # type: ignore[arg-type]

    for mode in (VectorStoreQueryMode.SPARSE, VectorStoreQueryMode.SEMANTIC_HYBRID, VectorStoreQueryMode.SVM):
        with pytest.raises(UnsupportedQueryModeError, match="not supported") as info:
            vs.query(bad(mode=mode))
        assert isinstance(info.value, NotImplementedError) and isinstance(info.value, T4DMError)
    with pytest.raises(InvalidInputError, match="query_str"):
        vs.query(bad(mode=VectorStoreQueryMode.TEXT_SEARCH))
    with pytest.raises(UnsupportedQueryModeError, match="inside the engine"):
        vs.query(bad(mode=VectorStoreQueryMode.HYBRID, query_str="text", node_ids=["a"]))
    cases: list[tuple[VectorStoreQuery, type[Exception]]] = [
        (bad(query_embedding=None), InvalidInputError),
        (bad(query_embedding=[1.0, 0.0, 0.0]), DimensionMismatchError),
        (bad(query_embedding=[0.0, 0.0]), InvalidVectorError),
        (bad(query_embedding=[math.inf, 0.0]), InvalidVectorError),
        (bad(similarity_top_k=-1), InvalidInputError),
        (bad(mode=VectorStoreQueryMode.MMR, mmr_threshold=1.5), InvalidInputError),
        (bad(node_ids="a"), InvalidInputError),
        (bad(filters=MetadataFilters(filters=[MetadataFilter(key="_t4dm_unembedded", value=1)])), InvalidInputError),
        (bad(filters=MetadataFilters(filters=[MetadataFilter.model_construct(key="flag", value=True,
                                                                             operator=FilterOperator.EQ)])),
         InvalidInputError),
        (bad(filters=MetadataFilters(filters=[MetadataFilter.model_construct(key="w", value=math.nan,
                                                                             operator=FilterOperator.GT)])),
         InvalidInputError),
    ]
    for q, error in cases:
        with pytest.raises(error):
            vs.query(q)
    with pytest.raises(InvalidInputError):
        vs.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="w", value=None, operator=">")]))
    with pytest.raises(InvalidInputError):
        vs.delete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="w", value=3, operator="in")]))
    assert len(vs.get_nodes()) == len(SPECS)


def test_bad_construction(tmp_path) -> None:
    with pytest.raises(InvalidNamespaceError):
        T4DMVectorStore(tmp_path / "x", namespace="")
    with pytest.raises(InvalidNamespaceError):
        T4DMVectorStore(tmp_path / "x", namespace="a\nb")
    with pytest.raises(InvalidInputError):
        T4DMVectorStore(tmp_path / "x", dim=0)
    with t4dm_core.open(tmp_path / "s", dim=2) as store, pytest.raises(InvalidInputError):
        T4DMVectorStore(tmp_path / "x", store=store)
    assert not (tmp_path / "x").exists()

