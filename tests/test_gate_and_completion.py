"""Write gate decisions and telemetry; DG keyer and Hopfield completion of partial cues."""

from __future__ import annotations

import numpy as np
import pytest

import t4dm_core
from t4dm_core import Memory, Options, WriteGate
from t4dm_core.learning.completion import DGKeyer, HopfieldCompleter

DIM = 32


def basis(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


@pytest.fixture
def store(tmp_path):
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=Options(learn_on_read=False, lability_window=0)) as s:
        yield s


def test_gate_writes_novel_and_rewarded_memories_only(store) -> None:
    first = store.offer(Memory(text="the sky is blue", vector=basis(0)), label=True)
    assert first.written and first.novelty == 1.0 and store.get(first.id).text == "the sky is blue"
    repeat = store.offer(Memory(text="the sky is blue again", vector=basis(0)), label=False)
    assert not repeat.written and repeat.novelty == pytest.approx(0.0) and repeat.id is None
    rewarded = store.offer(Memory(text="sky blue, and it matters", vector=basis(0)), reward=1.0, label=True)
    assert rewarded.written and rewarded.score == pytest.approx(0.5)
    pinned = store.offer(Memory(text="pinned repeat", vector=basis(0), pinned=True), label=True)
    assert pinned.written and pinned.pinned
    missed = store.offer(Memory(text="a fact worth keeping", vector=basis(0)), label=True)
    assert not missed.written
    stats = store.gate_stats()
    assert stats["offered"] == 5 and stats["written"] == 3
    assert stats["precision"] == 1.0 and stats["recall"] == pytest.approx(3 / 4)
    assert stats["writes_per_1k_tokens"] == pytest.approx(1000 * 3 / stats["tokens"])
    assert len(store.ids()) == 3


def test_gate_threshold_and_weights_are_configurable(store) -> None:
    store.put(Memory(text="x", id="x", vector=basis(0)))
    strict = WriteGate(tau=2.0)
    assert not store.offer(Memory(text="novel", vector=basis(1)), gate=strict).written
    assert store.offer(Memory(text="novel", vector=basis(1)), surprise=1.0, reward=1.0,
                       gate=WriteGate(alpha=1.0, gamma=1.0, tau=2.0)).written


@pytest.mark.parametrize("kwargs", [{"surprise": 1.5}, {"reward": -0.1}, {"surprise": True}, {"reward": float("nan")}])
def test_gate_rejects_bad_signals_and_writes_nothing(store, kwargs) -> None:
    with pytest.raises(t4dm_core.InvalidInputError):
        store.offer(Memory(text="t", vector=basis(0)), **kwargs)
    assert store.ids() == [] and store.gate_stats()["offered"] == 0


def test_dg_keys_are_sparse_and_separate_similar_inputs() -> None:
    keyer = DGKeyer(DIM, expansion=4, sparsity=0.05, seed=3)
    rng = np.random.default_rng(0)
    a = rng.normal(size=DIM)
    b = a + 0.3 * rng.normal(size=DIM)
    keys = keyer.keys(np.stack([a, b]))
    assert (np.count_nonzero(keys, axis=1) <= keyer.active).all()
    np.testing.assert_allclose(np.linalg.norm(keys, axis=1), 1.0, rtol=1e-5)
    dense_cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert float(keys[0] @ keys[1]) < dense_cos  # pattern separation
    np.testing.assert_array_equal(DGKeyer(DIM, seed=3).keys(a), DGKeyer(DIM, seed=3).keys(a))  # deterministic


def unit_patterns(n: int, seed: int) -> np.ndarray:
    patterns = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return patterns / np.linalg.norm(patterns, axis=1, keepdims=True)


def test_hopfield_in_key_space_recalls_whole_patterns() -> None:
    patterns = unit_patterns(50, 2)
    completer = HopfieldCompleter(patterns, beta=20.0, keyer=DGKeyer(DIM, seed=1))
    recalled = sum(int(np.argmax(patterns @ completer.complete(p)) == i) for i, p in enumerate(patterns))
    assert recalled >= 48


def test_hopfield_completes_a_partial_cue_to_its_pattern() -> None:
    patterns = unit_patterns(50, 1)
    completer = HopfieldCompleter(patterns, beta=20.0)
    hits = 0
    for i in range(50):
        cue = patterns[i].copy()
        cue[DIM // 2:] = 0.0  # half the features missing
        out = completer.complete(cue / np.linalg.norm(cue))
        hits += int(np.argmax(patterns @ out) == i and float(patterns[i] @ out) > float(patterns[i] @ cue))
    assert hits >= 40
    assert np.array_equal(HopfieldCompleter(np.zeros((0, DIM), np.float32)).complete(patterns[0]), patterns[0])


def test_search_with_completion_finds_the_stored_pattern_from_a_partial_cue(store) -> None:
    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(200, DIM)).astype(np.float32)
    store.put_many([Memory(text=f"m{i}", id=f"m{i}", vector=v) for i, v in enumerate(vecs)])
    closer = 0
    for i in range(0, 200, 5):
        cue = vecs[i].copy()
        cue[rng.permutation(DIM)[: DIM // 2]] = 0.0  # half the cue missing
        plain, completed = store.search(cue, k=1)[0], store.search(cue, k=1, complete=True)[0]
        assert completed.id == plain.id  # completion settles on the cue's nearest pattern...
        closer += completed.score > plain.score  # ...and the completed query is closer to it
    assert closer >= 35
    with pytest.raises(t4dm_core.InvalidInputError):
        store.search("text", mode="lexical", complete=True)
