"""Bad input gets a clear typed error and nothing is partially applied."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

import t4dm_core
from t4dm_core import Memory
from tests.helpers import DIM, memories, unit


def _snapshot(store: t4dm_core.Store) -> tuple[list[str], int]:
    return sorted(store.ids()), store.stats()["next_lsn"]


@pytest.mark.parametrize(("vector", "error"), [
    (np.zeros(DIM), t4dm_core.InvalidVectorError),
    (np.full(DIM, math.nan), t4dm_core.InvalidVectorError),
    (np.full(DIM, math.inf), t4dm_core.InvalidVectorError),
    (np.ones(DIM + 1), t4dm_core.DimensionMismatchError),
    (np.ones((2, DIM)), t4dm_core.InvalidVectorError),
    (["a"] * DIM, t4dm_core.InvalidVectorError),
])
def test_bad_vectors_rejected_whole_batch(store, rng, vector, error) -> None:
    store.put_many(memories(rng, 3))
    before = _snapshot(store)
    batch = [Memory(text="ok", id="ok", vector=unit(rng)), Memory(text="bad", id="bad", vector=vector)]
    with pytest.raises(error):
        store.put_many(batch)
    assert _snapshot(store) == before
    assert store.get("ok") is None


@pytest.mark.parametrize("metadata", [
    {"t": (1, 2)}, {"s": {1, 2}}, {"d": dt.datetime(2026, 1, 1)}, {"x": math.nan}, {1: "non-str key"},
    {"b": b"bytes"}, "not a dict",
])
def test_non_json_metadata_rejected(store, rng, metadata) -> None:
    with pytest.raises(t4dm_core.MetadataError):
        store.put(Memory(text="x", id="x", vector=unit(rng), metadata=metadata))
    assert store.get("x") is None


def test_duplicate_ids_in_batch(store, rng) -> None:
    with pytest.raises(t4dm_core.DuplicateIdError, match="appears twice"):
        store.put_many([Memory(text="a", id="same", vector=unit(rng)), Memory(text="b", id="same", vector=unit(rng))])
    assert store.ids() == []
    # the same id in two namespaces is fine
    store.put_many([Memory(text="a", id="same", vector=unit(rng)),
                    Memory(text="b", id="same", namespace="other", vector=unit(rng))])


@pytest.mark.parametrize("namespace", ["", "a" * 129, "bad\nname", None, 7, ["list"]])
def test_bad_namespace(store, rng, namespace) -> None:
    with pytest.raises(t4dm_core.InvalidNamespaceError):
        store.put(Memory(text="x", id="x", namespace=namespace, vector=unit(rng)))
    with pytest.raises(t4dm_core.InvalidNamespaceError):
        store.search(unit(rng), namespace=namespace)


@pytest.mark.parametrize("flt", [
    {"a": {"$regex": "x"}}, {"$nor": [{"a": 1}]}, {"a": {"$in": 3}}, {"a": {"$exists": "yes"}},
    {"$and": []}, {"$or": {"a": 1}}, {"a": {"$gt": [1]}}, {"a": {"$eq": 1, "b": 2}}, {"a": {"$and": [{"b": 1}]}},
    {"": 1}, {"a..b": 1}, "a = 1",
])
def test_bad_filters(store, rng, flt) -> None:
    store.put_many(memories(rng, 3))
    with pytest.raises(t4dm_core.FilterError):
        store.search(unit(rng), filter=flt)


def test_filter_error_names_operator(store, rng) -> None:
    with pytest.raises(t4dm_core.FilterError, match=r"\$regex"):
        store.search(unit(rng), filter={"a": {"$regex": "x"}})


def test_other_bad_arguments(store, rng) -> None:
    store.put_many(memories(rng, 2))
    with pytest.raises(t4dm_core.InvalidInputError):
        store.search(unit(rng), k=0)
    with pytest.raises(t4dm_core.InvalidInputError):
        store.put(Memory(id="novec"))  # neither text nor vector
    with pytest.raises(t4dm_core.InvalidInputError):
        store.put(Memory(text="x", id="x", vector=unit(rng), valid_from=10.0, valid_to=5.0))
    with pytest.raises(t4dm_core.InvalidInputError):
        store.bump("m0", "text", 1)
    with pytest.raises(t4dm_core.MemoryNotFoundError):
        store.bump("nope", "kappa", 0.1)
    with pytest.raises(t4dm_core.MemoryNotFoundError):
        store.link("m0", "nope")
    with pytest.raises(t4dm_core.InvalidInputError):
        store.neighbors("m0", hops=0)
    with pytest.raises(t4dm_core.InvalidInputError):
        store.put(Memory(text=5, id="t", vector=unit(rng)))  # type: ignore[arg-type]


def test_text_without_embedder_is_clear_error(store) -> None:
    with pytest.raises(t4dm_core.EmbedderMismatchError, match="embedder"):
        store.put("text only, no vector and no embedder")
    with pytest.raises(t4dm_core.EmbedderMismatchError):
        store.search("a text query")


def test_reopen_with_other_dimension_or_embedder(tmp_path, rng) -> None:
    path = tmp_path / "s"
    with t4dm_core.open(path, dim=DIM) as s:
        s.put(Memory(text="x", id="x", vector=unit(rng)))
    with pytest.raises(t4dm_core.EmbedderMismatchError, match="dimension"):
        t4dm_core.open(path, dim=DIM * 2)
    emb = t4dm_core.CallableEmbedder(lambda texts: np.ones((len(texts), DIM)), name="ones")
    with t4dm_core.open(path, embedder=emb) as s:  # a vectors-only store adopts its first embedder
        assert s.stats()["embedder"] == "ones"
    other = t4dm_core.CallableEmbedder(lambda texts: np.ones((len(texts), DIM)), name="other-model")
    with pytest.raises(t4dm_core.EmbedderMismatchError, match="ones"):
        t4dm_core.open(path, embedder=other)


def test_closed_store_refuses(tmp_path, rng) -> None:
    s = t4dm_core.open(tmp_path / "s", dim=DIM)
    s.close()
    s.close()  # idempotent
    with pytest.raises(t4dm_core.StoreClosedError):
        s.search(unit(rng))
    with pytest.raises(t4dm_core.StoreClosedError):
        s.put(Memory(text="x", vector=unit(rng)))


def test_read_only_refuses_writes(tmp_path, rng) -> None:
    with t4dm_core.open(tmp_path / "s", dim=DIM) as s:
        s.put(Memory(text="x", id="x", vector=unit(rng)))
    with t4dm_core.open(tmp_path / "s", read_only=True) as r:
        assert r.get("x") is not None
        with pytest.raises(t4dm_core.ReadOnlyError):
            r.put(Memory(text="y", vector=unit(rng)))
    with pytest.raises(t4dm_core.InvalidInputError, match="no store"):
        t4dm_core.open(tmp_path / "missing", read_only=True)
