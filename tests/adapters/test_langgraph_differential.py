"""Differential test: T4DMStore against LangGraph's reference InMemoryStore.

Seeded random sequences of batches (puts incl. overwrites and deletes, gets, searches with
and without a query, filters with every supported operator and nested dicts, limit/offset,
list_namespaces with prefix/suffix/wildcards/max_depth/limit/offset, and invalid input
through the public sync and async methods) run against both stores, each batch through
``batch`` or ``abatch``. Results must match: keys, values, namespaces and order exactly,
scores within 1e-5, order free only among tied scores, identical exception types.
A second generator aims filters at values where the engine's prefilter dialect and
LangGraph's rules part ways (``True == 1``, numeric strings, ``None`` vs missing, numbers
beyond 2**53, long strings, dotted keys, nested dicts) and compares results and the first
exception raised.

The generator steers clear of the reference's documented quirks (see
``protocol_adapters.langgraph.store``) instead of papering over them:

* an item keeps one index mode for its whole life (the reference keeps stale vectors when
  an overwrite embeds fewer texts);
* gets and deletes touch a namespace only once a put created it, or the never-written
  ``GHOST`` namespace (the reference orders namespaces by the first op of any kind);
* ``list_namespaces`` is compared with the reference's own listing over the namespaces
  that hold items (the reference also lists namespaces whose items were all deleted).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.embeddings.fake import DeterministicFakeEmbedding
from langgraph.store.base import (
    BaseStore,
    GetOp,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    SearchItem,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

import t4dm_core
from protocol_adapters.langgraph import T4DMStore

SEEDS = range(45)
OPS_PER_SEQUENCE = 30
DIMS = 6
NAMESPACES = [("docs",), ("docs", "a"), ("docs", "b"), ("users", "u1"), ("users", "u2", "notes"), ("misc",)]
GHOST = ("ghost",)
KEYS = ["k0", "k1", "k2", "k3", "u0", "u1", "m0", "m1"]  # k: default fields, u: index=False, m: [*] paths
WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "orbit", "lemon", "frost", "delta"]
COLORS = ["red", "green", "blue"]
TAGS = ["x", "y", "z", "w"]
NUMBERS = [1, 2.5, 4, 6, 8]
PREFIXES = [(), ("docs",), ("docs", "a"), ("users",), ("users", "u2"), ("nomatch",), GHOST]
SCORE_TOLERANCE = 1e-5
BIG = 10**6


def index_config() -> dict[str, Any]:
    return {"dims": DIMS, "embed": DeterministicFakeEmbedding(size=DIMS), "fields": ["text"]}


def index_mode(key: str) -> Any:
    if key.startswith("u"):
        return False
    if key.startswith("m"):
        return ["text", "notes[*]"]
    return None


@dataclass
class Call:
    """A public-API call expected to raise (run as ``name`` or ``"a" + name``)."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.established: list[tuple[str, ...]] = []
        self.written: list[tuple[tuple[str, ...], str]] = []
        self.texts: list[str] = []
        self.batch_texts: set[str] = set()

    def phrase(self) -> str:
        """A text, sometimes one used before (exact score ties), never twice in one batch's puts:
        the reference fails such a batch ("Number of embeddings ... does not match")."""
        reusable = [t for t in self.texts if t not in self.batch_texts]
        if reusable and self.rng.random() < 0.3:
            text = self.rng.choice(reusable)
        else:
            text = " ".join(self.rng.sample(WORDS, 2))
            while text in self.batch_texts:
                text = " ".join(self.rng.sample(WORDS, 2))
            self.texts.append(text)
        self.batch_texts.add(text)
        return text

    def value(self, key: str) -> dict[str, Any]:
        r = self.rng
        value: dict[str, Any] = {
            "text": self.phrase(), "n": r.choice(NUMBERS),
            "color": r.choice(COLORS), "meta": {"level": r.randint(0, 3), "tag": r.choice(TAGS)},
            "tags": r.sample(TAGS, 2),
        }
        if key.startswith("m"):
            value["notes"] = [self.phrase() for _ in range(3)]  # fixed length: no stale reference vectors
        return value

    def op(self, pending: set[tuple[str, ...]]) -> Op:
        r = self.rng
        kind = r.choices(["put", "delete", "get", "search", "list"], weights=[10, 2, 3, 7, 3])[0]
        if kind == "put" or (kind in ("delete", "get") and not self.established):
            namespace, key = r.choice(NAMESPACES), r.choice(KEYS)
            pending.add(namespace)
            return PutOp(namespace, key, self.value(key), index=index_mode(key))
        if kind == "delete":  # only namespaces created by an earlier batch (see the module docstring)
            return PutOp(r.choice(self.established), r.choice(KEYS), None)
        if kind == "get":
            if self.written and r.random() < 0.7:
                return GetOp(*r.choice(self.written))
            return GetOp(r.choice([*self.established, GHOST]), r.choice(KEYS))
        if kind == "search":
            query = self.phrase() if r.random() < 0.6 else None
            prefix = r.choice([(), (), ("docs",), ("users",), *PREFIXES])
            return SearchOp(prefix, self.filter(), r.choice([0, 1, 3, 5, 10]), r.choice([0, 0, 1, 2, 4]), query)
        return self.list_op()

    def filter(self) -> dict[str, Any] | None:
        r = self.rng
        x = r.choice(NUMBERS)  # same domain as the values: comparisons often hit the boundary
        if r.random() < 0.4:
            return None
        return r.choice([
            {"color": r.choice(COLORS)},
            {"n": {"$gt": x}}, {"n": {"$gte": x}}, {"n": {"$lt": x}}, {"n": {"$lte": x}},
            {"n": {"$gte": x, "$lt": x + 4}},
            {"n": {"$ne": x}}, {"n": {"$eq": x}}, {"color": {"$eq": r.choice(COLORS)}, "n": {"$lt": 5}},
            {"meta": {"tag": r.choice(TAGS)}},
            {"meta": {"level": {"$lte": 1}}},
            {"color": {"shade": "red"}},
            {"tags": r.sample(TAGS, 2)},
            {"missing": None},
        ])

    def list_op(self) -> ListNamespacesOp:
        r = self.rng
        conditions = []
        if r.random() < 0.5:
            conditions.append(MatchCondition("prefix", r.choice([("docs",), ("users", "*"), ("*", "a"), ("misc",)])))
        if r.random() < 0.4:
            conditions.append(MatchCondition("suffix", r.choice([("a",), ("notes",), ("*",), ("u2", "*")])))
        return ListNamespacesOp(tuple(conditions), r.choice([None, None, 1, 2, 3]), r.choice([100, 2, 3]),
                                r.choice([0, 0, 1, 2]))

    def error_step(self) -> list[Op] | Call:
        r = self.rng
        return r.choice([
            Call("put", (("bad.label",), "k", {"text": "t"})),
            Call("put", ((), "k", {"text": "t"})),
            Call("put", (("langgraph", "x"), "k", {"text": "t"})),
            Call("get", (("",), "k")),
            Call("search", (("a.b",),)),
            Call("list_namespaces", (), {"prefix": ("x.y",)}),
            Call("delete", (("ok", "bad.label"), "k")),
            [SearchOp(r.choice(PREFIXES), {"n": {"$in": [1, 2]}}, 5, 0, r.choice([None, "apple"]))],
            [SearchOp(r.choice(PREFIXES), {"missing": {"$gt": 1}}, 5, 0, None)],
        ])

    def steps(self, n_ops: int) -> Iterator[list[Op] | Call]:
        made = 0
        while made < n_ops:
            if self.rng.random() < 0.15:
                yield self.error_step()
                continue
            pending: set[tuple[str, ...]] = set()
            self.batch_texts = set()
            batch = [self.op(pending) for _ in range(self.rng.randint(1, 4))]
            made += len(batch)
            yield batch
            self.established += [ns for ns in pending if ns not in self.established]
            self.written += [(op.namespace, op.key) for op in batch if isinstance(op, PutOp) and op.value is not None]


async def run(store: BaseStore, step: list[Op] | Call, use_async: bool) -> tuple[Any, BaseException | None]:
    try:
        if isinstance(step, Call):
            fn = getattr(store, ("a" + step.name) if use_async else step.name)
            out = fn(*step.args, **step.kwargs)
            return (await out if use_async else out), None
        return (await store.abatch(step) if use_async else store.batch(step)), None
    except Exception as exc:  # compared with the reference's outcome below
        return None, exc


def listed_by_reference(ref: InMemoryStore, op: ListNamespacesOp) -> list[tuple[str, ...]]:
    """The reference's own listing over the namespaces that hold items."""
    live = InMemoryStore()
    for namespace, items in ref._data.items():
        if items:
            live._data[namespace].update(items)
    return live.batch([op])[0]


def assert_same_page(ref_page: list[SearchItem], mine: list[SearchItem], ranking: list[SearchItem]) -> None:
    assert len(mine) == len(ref_page), (ref_page, mine)
    assert len({(m.namespace, m.key) for m in mine}) == len(mine)
    truth = {(t.namespace, t.key): t for t in ranking}
    for r, m in zip(ref_page, mine, strict=True):
        if r.score is None:
            assert m.score is None
            assert (m.namespace, m.key, m.value) == (r.namespace, r.key, r.value)
            continue
        assert m.score is not None and abs(m.score - r.score) <= SCORE_TOLERANCE, (r, m)
        t = truth[(m.namespace, m.key)]  # a different key is allowed only at a tied score
        assert t.score is not None and abs(t.score - m.score) <= SCORE_TOLERANCE, (t, m)
        assert m.value == t.value


def compare(ref: InMemoryStore, step: list[Op], ref_out: list[Any], mine_out: list[Any],
            listings: dict[int, list[tuple[str, ...]]]) -> None:
    rankings = iter(ref_out[len(step):])
    for i, op in enumerate(step):
        r, m = ref_out[i], mine_out[i]
        if isinstance(op, GetOp):
            assert (r is None) == (m is None), (op, r, m)
            if r is not None:
                assert (m.namespace, m.key, m.value) == (r.namespace, r.key, r.value)
                assert m.created_at <= m.updated_at
        elif isinstance(op, SearchOp):
            if op.query:
                assert_same_page(r, m, next(rankings))
            else:
                assert [(x.namespace, x.key, x.value, x.score) for x in m] == \
                    [(x.namespace, x.key, x.value, x.score) for x in r], op
        elif isinstance(op, ListNamespacesOp):
            assert m == listings[i], op
        else:
            assert r is None and m is None


def with_rankings(step: list[Op]) -> list[Op]:
    """The step plus, per query search, the full ranking (read before the step's writes)."""
    extra = [SearchOp(op.namespace_prefix, op.filter, BIG, 0, op.query) for op in step
             if isinstance(op, SearchOp) and op.query]
    return [*step, *extra]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[t4dm_core.Store]:
    with t4dm_core.open(tmp_path_factory.mktemp("lg-diff") / "store", dim=DIMS) as store:
        yield store


@pytest.mark.parametrize("seed", SEEDS)
async def test_matches_in_memory_store(seed: int, engine: t4dm_core.Store) -> None:
    mode = ("sync", "async", "mixed")[seed % 3]
    gen = Generator(seed)
    ref = InMemoryStore(index=index_config())
    mine = T4DMStore(store=engine, namespace=f"diff-{seed}", index=index_config())
    try:
        for step in gen.steps(OPS_PER_SEQUENCE):
            use_async = mode == "async" or (mode == "mixed" and gen.rng.random() < 0.5)
            if isinstance(step, Call):
                _, ref_err = await run(ref, step, use_async)
                _, mine_err = await run(mine, step, use_async)
                assert ref_err is not None and mine_err is not None, step
                assert isinstance(mine_err, type(ref_err)), (step, ref_err, mine_err)
                continue
            listings = {i: listed_by_reference(ref, op) for i, op in enumerate(step)
                        if isinstance(op, ListNamespacesOp)}
            ref_out, ref_err = await run(ref, with_rankings(step), use_async)
            mine_out, mine_err = await run(mine, step, use_async)
            if ref_err is not None or mine_err is not None:
                assert mine_err is not None, (step, ref_err)
                if ref_err is None:  # documented: unsupported operators fail even when nothing is evaluated
                    assert isinstance(mine_err, ValueError) and "Unsupported operator" in str(mine_err)
                    assert all(r == [] for r in ref_out), step
                else:
                    assert isinstance(mine_err, type(ref_err)), (step, ref_err, mine_err)
                continue
            compare(ref, step, ref_out, mine_out, listings)
        final = [ListNamespacesOp(None, None, BIG, 0), *(SearchOp(ns, None, BIG, 0, None) for ns in PREFIXES)]
        ref_final, mine_final = ref.batch(final), mine.batch(final)
        assert mine_final[0] == listed_by_reference(ref, final[0])
        for r, m in zip(ref_final[1:], mine_final[1:], strict=True):
            assert [(x.namespace, x.key, x.value) for x in m] == [(x.namespace, x.key, x.value) for x in r]
    finally:
        mine.close()


def test_generator_covers_the_interesting_cases() -> None:
    """Guards the generator itself: the sequences really exercise what the docstring claims."""
    seen: set[str] = set()
    for seed in SEEDS:
        for step in Generator(seed).steps(OPS_PER_SEQUENCE):
            if isinstance(step, Call):
                seen.add(f"call:{step.name}")
                continue
            for op in step:
                seen.update(features(op))
    wanted = {"delete", "put:None", "put:False", "put:['text', 'notes[*]']", "query", "listing", "offset",
              "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "nested", "max_depth", "list", "prefix*",
              "suffix*", "get", "call:put", "call:get", "call:search", "call:list_namespaces", "call:delete"}
    assert wanted <= seen, wanted - seen


def features(op: Op) -> set[str]:
    if isinstance(op, PutOp):
        return {"delete" if op.value is None else f"put:{index_mode(op.key)}"}
    if isinstance(op, GetOp):
        return {"get"}
    if isinstance(op, SearchOp):
        out = {"query" if op.query else "listing", *(["offset"] if op.offset else [])}
        for value in (op.filter or {}).values():
            if isinstance(value, dict):
                out.update(k if k.startswith("$") else "nested" for k in value)
        return out
    assert isinstance(op, ListNamespacesOp)
    return {"max_depth" if op.max_depth else "list",
            *(f"{c.match_type}*" for c in op.match_conditions or () if "*" in c.path)}


# ------------------------------------------------------- filters on awkward values
# The adapter prefilters in the engine, whose dialect never coerces (True != 1, "5" is not
# a number) while LangGraph compares with == and float(). These values sit on every seam.
AWKWARD = [0, 1, 1.0, True, False, 2, 2.5, -3, "5", " 2.5 ", "abc", "1e3", None, 2**53, 2**53 + 1,
           -(2**53) - 3, 1e300, [1], {"v": 1}, "L" * 200, "L" * 200 + "x"]
NUMBERS_ONLY = [0, 1, 1.0, True, False, 2, 2.5, -3, 2**53, 2**53 + 1, 1e300]
OPERANDS = [0, 1, 1.0, True, False, 2, 2.5, "5", "abc", "2.5", None, 2**53, 2**53 + 1, 1e300, "L" * 200, [1],
            {"v": 1}]
FILTER_KEYS = ["x", "x", "x", "y", "gone", "a.b"]


def awkward_value(rng: random.Random, i: int, round_: int) -> dict[str, Any]:
    value: dict[str, Any] = {"text": f"{' '.join(rng.sample(WORDS, 2))} {round_}{i}", "i": i}
    value["x"] = rng.choice(NUMBERS_ONLY if rng.random() < 0.95 else AWKWARD)  # x: mostly numbers
    for key in ("y", "a.b"):
        if rng.random() < 0.85:
            value[key] = rng.choice(AWKWARD)
    if rng.random() < 0.7:
        value["meta"] = {"x": rng.choice(AWKWARD)} if rng.random() < 0.8 else rng.choice(AWKWARD)
    return value


def awkward_condition(rng: random.Random) -> Any:
    operand = rng.choice(OPERANDS)
    shape = rng.random()
    if shape < 0.25:
        return operand
    if shape < 0.85:
        return {rng.choice(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]): operand}
    return {"$gt": rng.choice([0, 1, "5"]), "$lte": rng.choice([2, 2.5, 2**53])}


def awkward_filter(rng: random.Random) -> dict[str, Any]:
    flt: dict[str, Any] = {}
    for _ in range(rng.choice([1, 1, 2, 3])):
        if rng.random() < 0.2:
            flt["meta"] = {"x": awkward_condition(rng)}
        else:
            flt[rng.choice(FILTER_KEYS)] = awkward_condition(rng)
    return flt


def exact(items: list[Any]) -> list[tuple[Any, ...]]:
    """Items with type-exact values (``True == 1`` must not hide a difference)."""
    return [(x.namespace, x.key, json.dumps(x.value, sort_keys=True)) for x in items]


@pytest.mark.parametrize("seed", range(12))
async def test_filters_on_awkward_values_match_in_memory_store(seed: int, engine: t4dm_core.Store) -> None:
    rng = random.Random(1000 + seed)
    ref = InMemoryStore(index=index_config())
    mine = T4DMStore(store=engine, namespace=f"awkward-{seed}", index=index_config())
    try:
        for round_ in range(2):  # the second round overwrites and deletes
            puts: list[Op] = []
            for i in range(14):
                namespace = ("docs", "a") if i % 3 else ("docs", "b")
                key = f"k{i}"
                if round_ and rng.random() < 0.2:
                    puts.append(PutOp(namespace, key, None))
                elif not round_ or rng.random() < 0.5:
                    mode = False if i % 5 == 0 else None  # some items are never ranked
                    puts.append(PutOp(namespace, key, awkward_value(rng, i, round_), index=mode))
            ref.batch(puts)
            mine.batch(puts)
            for _ in range(20):
                query = " ".join(rng.sample(WORDS, 2)) if rng.random() < 0.5 else None
                op = SearchOp(rng.choice([(), ("docs",), ("docs", "a")]), awkward_filter(rng),
                              rng.choice([3, 10, 20]), rng.choice([0, 0, 2]), query)
                step = [op]
                ref_out, ref_err = await run(ref, with_rankings(step), use_async=False)
                mine_out, mine_err = await run(mine, step, use_async=bool(rng.random() < 0.5))
                assert type(mine_err) is type(ref_err), (op, ref_err, mine_err)
                if ref_err is not None:
                    continue
                if query:
                    assert_same_page(ref_out[0], mine_out[0], ref_out[1])
                else:
                    assert exact(mine_out[0]) == exact(ref_out[0]), op
    finally:
        mine.close()
