"""LlamaIndex adapters over a T4DM store (need ``llama-index-core``); names resolve lazily."""

from __future__ import annotations

from protocol_adapters._common import lazy_exports

__all__ = ["T4DMAsyncChatStore", "T4DMChatStore", "T4DMPropertyGraphStore", "T4DMVectorStore"]

_HOMES = {
    "T4DMVectorStore": "protocol_adapters.llama_index.vector_store",
    "T4DMPropertyGraphStore": "protocol_adapters.llama_index.property_graph",
    "T4DMChatStore": "protocol_adapters.llama_index.chat_store",
    "T4DMAsyncChatStore": "protocol_adapters.llama_index.chat_store",
}


__getattr__ = lazy_exports(__name__, _HOMES)
