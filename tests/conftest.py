"""Shared fixtures: stores on tmp_path, deterministic vectors, Hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import t4dm_core
from t4dm_core import Options
from tests.helpers import DIM

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests run only with T4DM_SLOW=1 or when selected with ``-m slow``."""
    if os.environ.get("T4DM_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: set T4DM_SLOW=1 or run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def store(tmp_path) -> Iterator[t4dm_core.Store]:
    opts = Options(memtable_max_records=10_000, learn_on_read=False)  # storage tests: reads write nothing
    with t4dm_core.open(tmp_path / "store", dim=DIM, options=opts) as s:
        yield s
