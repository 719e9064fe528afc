"""Fixtures of the adapter-stack tests: the cached tiny LM (session), CPU threads, training texts.

The tiny model is built on first use (about a minute on 2 idle cores) into the model cache
(``$T4DM_MODEL_CACHE`` or ``~/.cache/t4dm/models``) and reused by later runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub is imported (it reads this once)
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from seeds.lm_corpus import lm_corpus  # noqa: E402
from t4dm_core.learning.llm.models import BaseModel, load_base_model  # noqa: E402
from t4dm_core.learning.llm.tiny_lm import TinyLMConfig  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def cpu_threads() -> Iterator[None]:
    """Two torch threads at most (the machine is shared); restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(min(2, previous))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny() -> BaseModel:
    """The frozen tiny LM; tests that attach adapters must remove them again."""
    return load_base_model("tiny")


@pytest.fixture(scope="session")
def heldout_texts() -> list[str]:
    """Sentences the tiny LM never saw in training (new facts to learn)."""
    return list(lm_corpus(TinyLMConfig().seed).heldout_sentences[:8])
