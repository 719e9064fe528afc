"""Replay queue + CA2-style scheduler on a real store: priority terms, determinism, bad input, training rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import t4dm_core
from t4dm_core import InvalidInputError, InvalidNamespaceError, Memory, Options, Store
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.replay import (
    ReplayItem,
    ReplayScheduler,
    ReplayWeights,
    replay_rows,
    split_cue_answer,
    vector_centroid_overlap,
)
from t4dm_core.learning.llm.spiking import SpikingAdapter
from t4dm_core.learning.llm.training import train_steps

DIM = 8
ONLY_SALIENCE = ReplayWeights(salience=1.0, recency=0.0, overlap=0.0, diversity=0.0)


def axis(i: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Unit vector along axis ``i``, optionally tilted by a little seeded noise (a near-duplicate)."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    v += noise * np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(learn_on_read=False)) as s:
        yield s


def put(store: Store, text: str, vector: np.ndarray, **fields: Any) -> str:
    return store.put(Memory(text=text, vector=vector, **fields))


def ids_of(items: list[ReplayItem]) -> list[str]:
    return [item.memory_id for item in items]


def test_more_important_ranks_first_and_a_stored_gate_score_overrides_importance(store: Store) -> None:
    low = put(store, "low fact", axis(0), importance=0.1)
    high = put(store, "high fact", axis(1), importance=0.9)
    mid = put(store, "mid fact", axis(2), importance=0.5)
    items = ReplayScheduler(store, weights=ONLY_SALIENCE).schedule(3)
    assert ids_of(items) == [high, mid, low]
    assert [i.salience for i in items] == pytest.approx([1.0, 0.5, 0.0])  # min-max over the candidates
    gated = put(store, "gated fact", axis(3), importance=0.0, metadata={"gate_score": 2.5})
    assert ids_of(ReplayScheduler(store, weights=ONLY_SALIENCE).schedule(1)) == [gated]


def test_more_recent_ranks_first_with_a_half_life_decay(store: Store) -> None:
    ids = [put(store, f"fact {i}", axis(i)) for i in range(4)]
    recorded = [float(m.recorded_at or 0.0) for m in store.get_many(ids) if m is not None]
    assert len(set(recorded)) == 4, "precondition: distinct transaction times"
    weights = ReplayWeights(salience=0.0, recency=1.0, overlap=0.0, diversity=0.0, half_life_seconds=10.0)
    now = max(recorded) + 10.0
    items = ReplayScheduler(store, weights=weights).schedule(4, now=now)
    assert ids_of(items) == list(reversed(ids))
    by_id = {i.memory_id: i for i in items}
    assert by_id[ids[-1]].recency == pytest.approx(0.5)  # exactly one half-life old
    assert all(0.0 < i.recency <= 0.5 for i in items)


def test_diversity_spreads_near_duplicates(store: Store) -> None:
    dups = [put(store, f"dup {i}", axis(0, 0.05, seed=i), importance=0.9 + 0.01 * i) for i in range(3)]
    others = [put(store, f"other {i}", axis(i + 1), importance=0.8) for i in range(2)]
    plain = ReplayScheduler(store, weights=ONLY_SALIENCE).schedule(3)
    assert set(ids_of(plain)) == set(dups)
    diverse = ReplayScheduler(store, weights=ReplayWeights(salience=1.0, recency=0.0, overlap=0.0,
                                                           diversity=1.0)).schedule(3)
    assert ids_of(diverse)[0] == dups[2]  # nothing selected yet: the most salient
    assert set(ids_of(diverse)[1:]) == set(others)  # near-duplicates of the first pick are pushed back
    assert diverse[0].redundancy == 0.0 and all(i.redundancy == pytest.approx(0.0, abs=1e-6) for i in diverse[1:])
    rest = ReplayScheduler(store, weights=ReplayWeights(salience=1.0, recency=0.0, overlap=0.0,
                                                        diversity=1.0)).schedule(5)
    assert all(i.redundancy > 0.9 for i in rest[3:])  # the duplicates come last, carrying their redundancy


def test_overlap_prefers_items_near_consolidated_memories_and_can_be_switched_off(store: Store) -> None:
    put(store, "consolidated", axis(0), kappa=1.0)
    near = put(store, "near", axis(0, 0.3, seed=1))
    far = put(store, "far", axis(5))
    only_overlap = ReplayWeights(salience=0.0, recency=0.0, overlap=1.0, diversity=0.0)
    items = ReplayScheduler(store, weights=only_overlap).schedule(5)
    assert ids_of(items) == [near, far]  # consolidated memories are the reference, not candidates
    assert items[0].overlap > 0.9 and items[1].overlap == pytest.approx(0.5)  # cos 0 -> 0.5
    off = ReplayWeights(salience=0.0, recency=0.0, overlap=0.0, diversity=0.0)
    assert all(i.priority == 0.0 for i in ReplayScheduler(store, weights=off).schedule(5))
    inverted = ReplayScheduler(store, weights=only_overlap,
                               overlap=lambda c, r: 1.0 - vector_centroid_overlap(c, r)).schedule(5)
    assert ids_of(inverted) == [far, near]  # a swapped-in proxy is what ranks


def test_no_reference_gives_zero_overlap() -> None:
    assert vector_centroid_overlap(np.eye(3), np.zeros((0, 3))).tolist() == [0.0, 0.0, 0.0]


def test_same_seed_same_queue_and_seed_breaks_exact_ties(store: Store) -> None:
    for i in range(8):
        put(store, f"tied fact {i}", axis(i))
    off = ReplayWeights(salience=0.0, recency=0.0, overlap=0.0, diversity=0.0)
    first = ReplayScheduler(store, weights=off, seed=7).schedule(8)
    assert first == ReplayScheduler(store, weights=off, seed=7).schedule(8)
    orders = {tuple(ids_of(ReplayScheduler(store, weights=off, seed=s).schedule(8))) for s in range(5)}
    assert len(orders) > 1  # the tie-break really comes from the seed
    default = ReplayScheduler(store, seed=3)
    assert default.schedule(8) == default.schedule(8)


def test_batches_cut_the_queue(store: Store) -> None:
    for i in range(5):
        put(store, f"fact number {i}", axis(i))
    scheduler = ReplayScheduler(store)
    batches = scheduler.batches(5, 2)
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [i for b in batches for i in b] == scheduler.schedule(5)


def test_filter_and_namespace_select_the_pool(store: Store) -> None:
    a = put(store, "tagged fact", axis(0), metadata={"topic": "a"})
    put(store, "other fact", axis(1), metadata={"topic": "b"})
    put(store, "elsewhere fact", axis(2), namespace="other")
    assert ids_of(ReplayScheduler(store).schedule(5, filter={"topic": "a"})) == [a]
    assert [i.namespace for i in ReplayScheduler(store).schedule(5, namespace="other")] == ["other"]
    assert ReplayScheduler(store).schedule(5, namespace="never-written") == []


def test_bad_input_raises_typed_errors(store: Store) -> None:
    put(store, "a fact", axis(0))
    scheduler = ReplayScheduler(store)
    for k in (0, -1, True, 1.5, "3"):
        with pytest.raises(InvalidInputError, match="k must be an integer >= 1"):
            scheduler.schedule(k)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="batch_size"):
        scheduler.batches(3, 0)
    with pytest.raises(InvalidInputError, match="now"):
        scheduler.schedule(1, now=float("nan"))
    with pytest.raises(InvalidNamespaceError):
        scheduler.schedule(1, namespace="")
    bad: dict[str, Any]
    for bad in ({"salience": -1.0}, {"recency": float("nan")}, {"overlap": "1"}, {"diversity": True},
                {"half_life_seconds": float("inf")}):
        with pytest.raises(InvalidInputError, match="ReplayWeights"):
            ReplayWeights(**bad)
    with pytest.raises(InvalidInputError, match="half_life_seconds must be > 0"):
        ReplayWeights(half_life_seconds=0.0)
    with pytest.raises(InvalidInputError, match="consolidated_kappa"):
        ReplayScheduler(store, consolidated_kappa=0.0)
    with pytest.raises(InvalidInputError, match="Store"):
        ReplayScheduler("not a store")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="overlap proxy returned"):
        ReplayScheduler(store, overlap=lambda c, r: np.zeros(3)).schedule(1)
    assert store.get(store.ids()[0]) is not None  # nothing was lost


def test_cue_answer_from_metadata_else_a_deterministic_split(store: Store) -> None:
    assert split_cue_answer("The lab door code is 4512.") == ("The lab door code is", "4512")
    assert split_cue_answer("single") is None and split_cue_answer("ends with ?!") is None
    put(store, "Mara keeps the spare key under the blue pot.", axis(0), importance=0.9,
        metadata={"cue": "Question: Where is the spare key?\nAnswer:", "answer": "under the blue pot"})
    put(store, "The lab door code is 4512.", axis(1), importance=0.5)
    put(store, "hello", axis(2), importance=0.1)
    rows = replay_rows(ReplayScheduler(store, weights=ONLY_SALIENCE).schedule(3))
    assert rows.lm_texts == ("Mara keeps the spare key under the blue pot.", "The lab door code is 4512.", "hello")
    assert rows.prompts == ("Question: Where is the spare key?\nAnswer:", "The lab door code is")
    assert rows.answers == ("under the blue pot", "4512")
    assert len(rows.memory_ids) == 3


def test_replay_rows_train_the_tiny_model(store: Store, tiny: BaseModel, heldout_texts: list[str]) -> None:
    for i, text in enumerate(heldout_texts[:6]):
        put(store, text, axis(i % DIM, 0.1, seed=i), importance=0.1 * i)
    items = ReplayScheduler(store).schedule(6)
    rows = replay_rows(items)
    assert len(rows.prompts) == 6
    lm, qa = rows.lm_batch(tiny.tokenizer, 64), rows.answer_batch(tiny.tokenizer)
    torch.manual_seed(0)
    adapter = SpikingAdapter(tiny.model, rank=8)
    try:
        losses = train_steps(lambda _s: tiny.model(**lm).loss + tiny.model(**qa).loss,
                             list(adapter.parameters()), 8, 1e-2)
    finally:
        adapter.remove()
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
