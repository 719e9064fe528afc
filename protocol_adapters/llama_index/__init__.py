"""LlamaIndex adapters over a T4DM store (need ``llama-index-core``); names resolve lazily."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["T4DMAsyncChatStore", "T4DMChatStore", "T4DMPropertyGraphStore", "T4DMVectorStore"]

_HOMES = {
    "T4DMVectorStore": "protocol_adapters.llama_index.vector_store",
    "T4DMPropertyGraphStore": "protocol_adapters.llama_index.property_graph",
    "T4DMChatStore": "protocol_adapters.llama_index.chat_store",
    "T4DMAsyncChatStore": "protocol_adapters.llama_index.chat_store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
