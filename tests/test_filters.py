"""Filter semantics, and the vectorised Arrow evaluator against the reference evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import t4dm_core
from t4dm_core import Memory
from t4dm_core.filters import compile_filter

DOCS = [
    {"a": 1, "s": "x", "b": True},
    {"a": 2.5, "s": "y", "b": False, "n": {"k": 1}},
    {"a": True, "s": "x"},
    {"s": None, "l": [1, 2]},
    {"a": 10, "s": "z", "n": {"k": 2}},
    {},
]


@pytest.mark.parametrize(("flt", "expected"), [
    ({"a": 1}, [0]),  # True is not 1
    ({"a": {"$ne": 1}}, [1, 2, 3, 4, 5]),  # missing keys match $ne
    ({"a": {"$gt": 1}}, [1, 4]),  # bools are not numbers
    ({"a": {"$gte": 1, "$lt": 10}}, [0, 1]),
    ({"s": {"$in": ["x", "z"]}}, [0, 2, 4]),
    ({"s": {"$nin": ["x"]}}, [1, 3, 4, 5]),
    ({"s": None}, [3]),  # null equals only a present null
    ({"s": {"$exists": False}}, [5]),
    ({"n.k": 2}, [4]),
    ({"l": [1, 2]}, [3]),
    ({"$or": [{"a": 1}, {"s": "y"}]}, [0, 1]),
    ({"$not": {"s": "x"}}, [1, 3, 4, 5]),
    ({"$and": [{"s": "x"}, {"b": True}]}, [0]),
    ({"s": {"$gt": "x"}}, [1, 4]),
    ({"a": {"$lt": "z"}}, []),  # number vs string never orders
    ({"a": {"$between": [1, 2.5]}}, [0, 1]),  # inclusive; True is not a number
    ({"s": {"$like": "_"}}, [0, 1, 2, 4]),
    ({"s": {"$like": "X"}}, []),
    ({"s": {"$ilike": "X"}}, [0, 2]),
    ({"s": {"$like": "%"}}, [0, 1, 2, 4]),  # null and missing values are not strings
    ({"l": {"$contains": 2}}, [3]),
    ({"l": {"$contains": 2.0}}, [3]),  # JSON equality: 2 == 2.0
    ({"l": {"$all": [2, 1]}}, [3]),
    ({"l": {"$all": [1, 3]}}, []),
    ({"s": {"$contains": "x"}}, []),  # strings are not arrays
])
def test_reference_semantics(flt, expected) -> None:
    f = compile_filter(flt)
    assert f is not None
    assert [i for i, d in enumerate(DOCS) if f.matches(d)] == expected


@pytest.mark.parametrize(("pattern", "text", "ok"), [
    ("100\\%", "100%", True), ("100\\%", "1000", False), ("a\\_c", "a_c", True), ("a\\_c", "abc", False),
    ("a.c", "abc", False), ("%(x)%", "1(x)2", True), ("line%", "line1\nline2", True),
])
def test_like_escapes_and_regex_metacharacters(pattern, text, ok) -> None:
    f = compile_filter({"t": {"$like": pattern}})
    assert f is not None and f.matches({"t": text}) is ok


@pytest.mark.parametrize("bad", [{"a": {"$between": [1]}}, {"a": {"$like": 3}}, {"a": {"$all": []}},
                                 {"a": {"$all": 1}}, {"a": {"$contains": float("nan")}}])
def test_new_operators_reject_bad_operands(bad) -> None:
    with pytest.raises(t4dm_core.FilterError):
        compile_filter(bad)


scalars = st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False), st.sampled_from(["a", "b", "c"]),
                    st.booleans(), st.none())
keys = st.sampled_from(["x", "y", "z", "w"])
docs = st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=4)
field_ops = st.one_of(
    st.builds(lambda v: {"$eq": v}, scalars), st.builds(lambda v: {"$ne": v}, scalars),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
              st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False), st.sampled_from(["a", "b"]))),
    st.builds(lambda v: {"$in": v}, st.lists(scalars, max_size=3)),
    st.builds(lambda v: {"$nin": v}, st.lists(scalars, max_size=3)),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
    st.builds(lambda v: {"$between": v}, st.lists(st.integers(-5, 5), min_size=2, max_size=2)),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$like", "$ilike"]), st.sampled_from(["a", "A", "%", "_", "b%"])),
    st.builds(lambda v: {"$contains": v}, scalars),
    st.builds(lambda v: {"$all": v}, st.lists(scalars, min_size=1, max_size=2)),
)
leaf = st.builds(lambda k, op: {k: op}, keys, field_ops)
filters = st.recursive(leaf, lambda inner: st.one_of(
    st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda x: {"$not": x}, inner)), max_leaves=6)


@given(rows=st.lists(docs, min_size=1, max_size=25), flts=st.lists(filters, min_size=1, max_size=5))
def test_segment_filter_equals_reference(tmp_path_factory, rows, flts) -> None:
    """Filtering in a flushed segment (typed Arrow columns) gives the reference answer."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("f")
    with t4dm_core.open(path, dim=4) as store:
        store.put_many([Memory(text=str(i), id=str(i), vector=rng.normal(size=4) + 0.1, metadata=m)
                        for i, m in enumerate(rows)])
        q = np.ones(4)
        before = [{h.memory.id for h in store.search(q, k=len(rows), filter=f)} for f in flts]
        store.flush()
        after = [{h.memory.id for h in store.search(q, k=len(rows), filter=f)} for f in flts]
    for flt, got_mem, got_seg in zip(flts, before, after, strict=True):
        compiled = compile_filter(flt)
        assert compiled is not None
        expected = {str(i) for i, m in enumerate(rows) if compiled.matches(m)}
        assert got_mem == expected, flt
        assert got_seg == expected, flt


def test_filter_fuzz_never_crashes() -> None:
    """Random junk filters raise FilterError or compile; never anything else."""
    rng = np.random.default_rng(5)
    atoms: list[object] = ["$eq", "$in", "$and", "$or", "$not", "$gt", "$bogus", "a", "b.c", 1, None, [], {}, [1],
                           {"$eq": 1}, True, 2.5, "$exists"]

    def junk(depth: int) -> object:
        if depth > 3 or rng.random() < 0.3:
            return atoms[rng.integers(len(atoms))]
        if rng.random() < 0.5:
            return [junk(depth + 1) for _ in range(rng.integers(0, 3))]
        return {str(atoms[rng.integers(len(atoms))]): junk(depth + 1) for _ in range(rng.integers(0, 3))}

    for _ in range(5000):
        spec = junk(0)
        try:
            compiled = compile_filter(spec)  # type: ignore[arg-type]
        except t4dm_core.FilterError:
            continue
        if compiled is not None:
            for doc in DOCS:
                compiled.matches(doc)


def test_in_uses_json_equality_with_hashing() -> None:
    f = compile_filter({"v": {"$in": [1, "a", None, [1, 2], {"k": 1}, 2**60]}})
    assert f is not None
    for value, ok in [(1, True), (1.0, True), (True, False), ("a", True), (None, True), ([1, 2], True),
                      ([2, 1], False), ({"k": 1}, True), (2**60, True), (2**60 + 1, False), (float(2**60), True),
                      ("1", False), (0, False)]:
        assert f.matches({"v": value}) is ok, value
    assert compile_filter({"v": {"$nin": [1]}}).matches({"v": 1.0}) is False


def test_like_is_linear_time_and_huge_integers_never_crash() -> None:
    import time as _time

    f = compile_filter({"t": {"$like": "%a%a%a%a%a%a%a%a%a%a%b"}})
    assert f is not None
    start = _time.perf_counter()
    assert f.matches({"t": "a" * 2000}) is False
    assert _time.perf_counter() - start < 1.0  # a backtracking regex takes minutes here
    assert f.matches({"t": "a" * 10 + "b"}) is True
    big = compile_filter({"n": {"$in": [1, 10**400]}})
    assert big is not None
    assert big.matches({"n": 10**400}) and big.matches({"n": 1.0}) and not big.matches({"n": 10**400 + 1})
    assert compile_filter({"n": {"$nin": [1]}}).matches({"n": 10**400})
