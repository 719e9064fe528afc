"""The packaged default embedder loads offline, and the demo runs end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import t4dm_core

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.embedder


def test_default_embedder_offline(tmp_path) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    with t4dm_core.open(tmp_path / "s") as store:
        assert store.dim == 384
        store.put_many([t4dm_core.Memory(text=t, id=str(i)) for i, t in enumerate(
            ["The user prefers dark mode in every editor.", "Paris is the capital of France.",
             "The quarterly report is due on Friday."])])
        assert store.search("which colour theme does the user like?", k=1)[0].memory.id == "0"
        vec = store.get("1").vector
        assert vec is not None and vec.shape == (384,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5
    with t4dm_core.open(tmp_path / "s") as store:  # reopen picks the recorded default embedder
        assert store.stats()["embedder"] == t4dm_core.MiniLMEmbedder.name
        assert store.search("capital city of France", k=1)[0].memory.id == "1"


def test_demo_runs(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), "--store", str(tmp_path / "demo"),
                          "--limit", "400"], capture_output=True, text=True, env=env, timeout=600, check=True)
    text = out.stdout
    for section in ("hybrid search", "vector only", "filtered search", "graph: first members", "as-of:", "sleep:"):
        assert section in text, text
    assert "400 memories" in text
    assert "bm25" in text and "replayed" in text
    again = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), "--store", str(tmp_path / "demo")],
                           capture_output=True, text=True, env=env, timeout=600, check=True).stdout
    assert "versions:  2" in again  # a second run reuses the store and does not annotate twice
