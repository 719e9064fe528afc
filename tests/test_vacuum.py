"""Store.vacuum / Options.history_retention: history past the horizon is reclaimed, and every
answer at or after the horizon stays the same (checked against the unvacuumed store)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import t4dm_core
from t4dm_core import HistoryUnavailableError, InvalidInputError, Memory, Options

DIM = 8
IDS = ["a", "b", "c"]
VALID = [None, 0.0, 50.0, 100.0]  # valid_from choices (None = recorded time)
PROBE_VALID = [None, 10.0, 60.0, 150.0, 4e9]

op_strategy = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(IDS), st.sampled_from(VALID), st.sampled_from([None, 80.0, 200.0])),
    st.tuples(st.just("delete"), st.sampled_from(IDS), st.none(), st.none()),
    st.tuples(st.just("flush"), st.none(), st.none(), st.none()),
)


def _vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _answers(store: t4dm_core.Store, probes: list[float]) -> dict:
    out = {}
    for tx in probes:
        for vt in PROBE_VALID:
            for mid in IDS:
                m = store.get(mid, as_of=(vt, tx))
                out[tx, vt, mid] = None if m is None else (m.text, m.valid_from, m.valid_to)
            out[tx, vt, "find"] = sorted(str(m.id) for m in store.find(as_of=(vt, tx)))
    out["now"] = {mid: (m.text if (m := store.get(mid)) else None) for mid in IDS}
    out["ids"] = sorted(store.ids())
    return out


def _apply(store: t4dm_core.Store, ops: list, probes: list[float]) -> None:
    for n, (kind, mid, valid_from, valid_to) in enumerate(ops):
        if kind == "put":
            ordered = valid_to is None or valid_from is None or valid_to > valid_from
            store.put(Memory(id=mid, text=f"{mid} v{n}", vector=_vec(n), valid_from=valid_from,
                             valid_to=valid_to if ordered else None))
        elif kind == "delete":
            store.delete(mid)
        else:
            store.flush()
        time.sleep(0.002)
        probes.append(time.time())
        time.sleep(0.002)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op_strategy, min_size=1, max_size=14), cut=st.integers(0, 13))
def test_answers_at_or_after_the_horizon_survive_vacuum_and_reopen(tmp_path_factory, ops, cut) -> None:
    path = tmp_path_factory.mktemp("vac")
    probes: list[float] = []
    opts = Options(learn_on_read=False)
    with t4dm_core.open(path, dim=DIM, options=opts) as store:
        _apply(store, ops, probes)
        horizon = probes[min(cut, len(probes) - 1)]
        kept_probes = [t for t in probes if t >= horizon]
        expected = _answers(store, kept_probes)
        versions_before = store.stats()["versions"]
        dropped = store.vacuum(before=horizon)
        assert store.stats()["versions"] == versions_before - dropped
        assert _answers(store, kept_probes) == expected
        if horizon > probes[0]:
            with pytest.raises(HistoryUnavailableError):
                store.get("a", as_of=probes[0])
    with t4dm_core.open(path, dim=DIM, options=opts) as store:
        assert _answers(store, kept_probes) == expected


def _dir_bytes(path) -> int:
    return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))


def _churn(store: t4dm_core.Store, n: int = 200, rounds: int = 4) -> None:
    for r in range(rounds):
        store.put_many([Memory(id=f"m{i}", text=f"memory {i} round {r}", vector=_vec(1000 * r + i),
                               valid_from=0.0) for i in range(n)])
        store.flush()
    store.delete([f"m{i}" for i in range(n // 2)])
    store.flush()


def test_vacuum_reclaims_disk_and_keeps_the_present(tmp_path) -> None:
    opts = Options(learn_on_read=False)
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as store:
        _churn(store)
        store.compact(full=True)
        store.flush()
        store.compact(full=True)  # rotate the spare generation so disk = the live files
        before_bytes = _dir_bytes(store.path)
        current = {mid: store.get(mid).text for mid in store.ids()}
        dropped = store.vacuum()
        assert dropped == 200 * 4  # 3 superseded versions x 200 + 100 deleted chains x (1 + tombstone)
        store.put(Memory(id="x", text="after", vector=_vec(9)))
        store.flush()  # the next commit lets the old generation go
        after_bytes = _dir_bytes(store.path)
        assert {mid: store.get(mid).text for mid in store.ids() if mid != "x"} == current
        assert all(len(store.history(mid)) == 1 for mid in current)
        assert store.get("m0") is None and store.history("m0") == []
    assert after_bytes < 0.5 * before_bytes


def test_history_retention_option_vacuums_during_compaction(tmp_path) -> None:
    opts = Options(learn_on_read=False, history_retention=0.0, auto_compact=False)
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as store:
        _churn(store, n=20, rounds=3)
        assert store.stats()["versions"] == 20 * 3 + 10
        assert store.compact(full=True)
        assert store.stats()["versions"] == 10
        with pytest.raises(HistoryUnavailableError, match="history horizon"):
            store.search(_vec(1), k=3, as_of=time.time() - 3600)


def test_horizon_survives_reopen_and_bad_input_is_refused(tmp_path) -> None:
    opts = Options(learn_on_read=False)
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as store:
        store.put(Memory(id="a", text="one", vector=_vec(1)))
        early = time.time()
        time.sleep(0.01)
        store.put(Memory(id="a", text="two", vector=_vec(2)))
        for bad in ("yesterday", float("nan"), time.time() + 3600):
            with pytest.raises(InvalidInputError):
                store.vacuum(before=bad)
        assert store.get("a", as_of=early).text == "one"  # nothing vacuumed by the refused calls
        store.vacuum()
    with t4dm_core.open(tmp_path / "s", dim=DIM, options=opts) as store:
        assert store.get("a").text == "two"
        with pytest.raises(HistoryUnavailableError):
            store.find(as_of=early)
        # v2 is valid only from its own write time, so v1 still describes `early` today: kept
        assert store.get("a", as_of=(early, None)).text == "one"
        assert [m.text for m in store.history("a")] == ["one", "two"]


def test_negative_retention_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="history_retention"):
        Options(history_retention=-1.0)


@pytest.mark.parametrize("op,nth", [("write", 1), ("write", 3), ("sync", 2), ("create", 2), ("rename", 1)])
def test_a_failed_vacuum_loses_nothing(tmp_path, op, nth) -> None:
    """An I/O error during vacuum leaves the store as it was (old history included) or, if the
    manifest commit itself failed, sticky-failed; a reopen always finds every current memory."""
    path = tmp_path / "s"
    ffs = t4dm_core.FaultInjectingFS()
    store = t4dm_core.open(path, dim=DIM, fs=ffs, options=Options(learn_on_read=False, sync="full", auto_compact=False))
    _churn(store, n=30, rounds=3)
    early = time.time()
    store.put(Memory(id="m29", text="newest", vector=_vec(7)))
    current = {mid: store.get(mid).text for mid in store.ids()}
    old = store.get("m29", as_of=early).text
    ffs.fail(op, nth)
    with pytest.raises(t4dm_core.StorageError) as failure:
        store.vacuum()
    if not isinstance(failure.value, t4dm_core.StoreFailedError):
        assert store.get("m29", as_of=early).text == old  # nothing vacuumed
        assert store.vacuum() > 0  # a retry works once the fault has passed
    store.close()
    with t4dm_core.open(path, dim=DIM, options=Options(learn_on_read=False)) as reopened:
        assert {mid: reopened.get(mid).text for mid in reopened.ids()} == current
