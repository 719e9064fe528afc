"""LangChain and LangGraph adapters over a T4DM store.

Names resolve lazily, so importing one adapter needs only its own framework installed:
``T4DMStore`` needs ``langgraph``; ``T4DMGraphStore`` needs ``langchain-community``; the
rest need ``langchain-core``.
"""

from __future__ import annotations

from protocol_adapters._common import lazy_exports

__all__ = ["T4DMChatMessageHistory", "T4DMGraphStore", "T4DMRetriever", "T4DMStore", "T4DMVectorStore"]

_HOMES = {
    "T4DMVectorStore": "protocol_adapters.langchain.vectorstore",
    "T4DMRetriever": "protocol_adapters.langchain.retriever",
    "T4DMChatMessageHistory": "protocol_adapters.langchain.chat_history",
    "T4DMGraphStore": "protocol_adapters.langchain.graph_store",
    "T4DMStore": "protocol_adapters.langgraph",
}


__getattr__ = lazy_exports(__name__, _HOMES)
