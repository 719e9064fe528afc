"""A LangGraph agent with long-term memory in T4DM: what one conversation learns, the next recalls.

The graph has three nodes: ``recall`` searches the user's memories (semantic search with
the packaged all-MiniLM-L6-v2 embedder, wrapped as LangChain ``Embeddings``), ``respond``
asks the chat model (LangChain's ``GenericFakeChatModel``, so it runs offline) with the
recalled memories as a system message, and ``remember`` stores facts the user asks it to
remember. Conversations (threads) keep their short-term history in LangGraph's in-memory
checkpointer; long-term memories live in a :class:`protocol_adapters.langgraph.T4DMStore`,
which is closed after the first conversation and reopened from disk for the second.

Run: ``HF_HUB_OFFLINE=1 python examples/langgraph_agent.py [--store DIR]``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import IndexConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import t4dm_core
from protocol_adapters.langgraph import T4DMStore

REMEMBER = re.compile(r"^remember that (?P<fact>.+?)\.?$", re.IGNORECASE)


class MiniLMEmbeddings(Embeddings):
    """The packaged all-MiniLM-L6-v2 embedder (384 dimensions) as LangChain ``Embeddings``."""

    def __init__(self) -> None:
        self._model = t4dm_core.MiniLMEmbedder()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._model.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._model.embed_query(text).tolist()


@dataclass
class Context:
    user_id: str


class State(MessagesState):
    memories: list[str]


def last_user_text(state: State) -> str:
    return str(next(m.content for m in reversed(state["messages"]) if isinstance(m, HumanMessage)))


def build_graph(store: T4DMStore, model: GenericFakeChatModel) -> Any:
    def recall(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        assert runtime.store is not None
        hits = runtime.store.search(("memories", runtime.context.user_id), query=last_user_text(state), limit=3)
        for hit in hits:
            print(f"retrieved: [{hit.score:.3f}] {hit.value['text']}")
        if not hits:
            print("retrieved: nothing yet")
        return {"memories": [hit.value["text"] for hit in hits]}

    def respond(state: State) -> dict[str, Any]:
        known = "; ".join(state["memories"]) or "nothing"
        reply = model.invoke([SystemMessage(f"What you know about the user: {known}"), *state["messages"]])
        print(f"assistant: {reply.content}")
        return {"messages": [reply]}

    def remember(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        assert runtime.store is not None
        match = REMEMBER.match(last_user_text(state))
        if match:
            runtime.store.put(("memories", runtime.context.user_id), uuid.uuid4().hex, {"text": match["fact"]})
            print(f"stored memory: {match['fact']}")
        return {}

    graph = StateGraph(State, context_schema=Context)
    graph.add_node("recall", recall)
    graph.add_node("respond", respond)
    graph.add_node("remember", remember)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "respond")
    graph.add_edge("respond", "remember")
    graph.add_edge("remember", END)
    return graph.compile(checkpointer=InMemorySaver(), store=store)


def converse(store: T4DMStore, thread: str, user: str, turns: list[tuple[str, str]]) -> None:
    """Run one conversation: each turn is (user message, the fake model's scripted reply)."""
    model = GenericFakeChatModel(messages=iter([AIMessage(reply) for _, reply in turns]))
    graph = build_graph(store, model)
    config = {"configurable": {"thread_id": thread}}
    for text, _ in turns:
        print(f"user: {text}")
        graph.invoke({"messages": [HumanMessage(text)], "memories": []}, config, context=Context(user))
    history = graph.get_state(config).values["messages"]
    print(f"({len(history)} messages in {thread}'s short-term history)")


def run(path: Path) -> None:
    index = IndexConfig(dims=384, embed=MiniLMEmbeddings(), fields=["text"])

    print("== thread 1 (user alice)")
    with T4DMStore(path=path, index=index) as store:
        converse(store, "thread-1", "alice", [
            ("Remember that my favourite colour is teal.", "Got it, I'll remember that."),
            ("Remember that I work as a marine biologist.", "Noted: marine biologist."),
        ])

    print(f"\n== thread 2 (user alice, a new conversation; memories reopened from {path})")
    with T4DMStore(path=path, index=index) as store:
        converse(store, "thread-2", "alice", [
            ("What is my favourite colour?", "Your favourite colour is teal."),
        ])
        print(f"namespaces in the store: {store.list_namespaces()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store directory (default: a temporary directory, removed afterwards)")
    args = parser.parse_args()
    if args.store:
        run(Path(args.store) / "memories")
    else:
        with tempfile.TemporaryDirectory(prefix="t4dm-langgraph-") as scratch:
            run(Path(scratch) / "memories")


if __name__ == "__main__":
    main()
