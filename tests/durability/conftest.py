"""Durability suite configuration: ``slow`` tests run only with T4DM_SLOW=1 or ``-m slow``."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip slow-marked durability tests unless opted in (the default run stays short)."""
    if os.environ.get("T4DM_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    here = os.path.dirname(__file__)
    skip = pytest.mark.skip(reason="slow durability loop: set T4DM_SLOW=1 or run with -m slow")
    for item in items:
        if "slow" in item.keywords and str(item.path).startswith(here) and not item.get_closest_marker("skip"):
            item.add_marker(skip)
