"""LlamaIndex end to end over T4DM: VectorStoreIndex, query engine with MockLLM, Memory with VectorMemoryBlock.

``embed_model`` is always passed explicitly (``Settings.embed_model`` would resolve to OpenAI).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from llama_index.core import Document, MockEmbedding, VectorStoreIndex
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.memory import Memory, VectorMemoryBlock
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

from protocol_adapters.llama_index import T4DMVectorStore
from protocol_adapters.llama_index.chat_store import T4DMAsyncChatStore

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    Document(text="Cats sleep for most of the day.", id_="doc-cats", metadata={"topic": "pets", "year": 2020}),
    Document(text="Dogs enjoy long walks in the park.", id_="doc-dogs", metadata={"topic": "pets", "year": 2022}),
    Document(text="The Rhine flows into the North Sea.", id_="doc-rhine", metadata={"topic": "geography"}),
]


def embed_model() -> MockEmbedding:
    return MockEmbedding(embed_dim=8)


def test_index_insert_retrieve_delete_and_reopen(tmp_path) -> None:
    path = tmp_path / "index"
    vs = T4DMVectorStore(path)
    index = VectorStoreIndex.from_vector_store(vs, embed_model=embed_model())
    for doc in DOCS:
        index.insert(doc)
    found = index.as_retriever(similarity_top_k=5).retrieve("animals")
    assert sorted(n.node.ref_doc_id for n in found) == ["doc-cats", "doc-dogs", "doc-rhine"]  # type: ignore[misc]
    assert all(n.score == pytest.approx(1.0) for n in found)  # MockEmbedding: every vector is the same
    pets = MetadataFilters(filters=[MetadataFilter(key="topic", value="pets"),
                                    MetadataFilter(key="year", value=2021, operator=">")])
    (dogs,) = index.as_retriever(similarity_top_k=5, filters=pets).retrieve("animals")
    assert dogs.node.get_content() == "Dogs enjoy long walks in the park."
    assert dogs.node.metadata == {"topic": "pets", "year": 2022}

    index.delete_ref_doc("doc-cats")
    left = index.as_retriever(similarity_top_k=5).retrieve("animals")
    assert sorted(n.node.ref_doc_id for n in left) == ["doc-dogs", "doc-rhine"]  # type: ignore[misc]

    response = index.as_query_engine(llm=MockLLM(), similarity_top_k=1, filters=pets).query("Who likes walks?")
    assert [n.node.ref_doc_id for n in response.source_nodes] == ["doc-dogs"]
    assert "Dogs enjoy long walks" in str(response)  # MockLLM echoes the prompt holding the retrieved context
    vs.close()

    reopened = T4DMVectorStore(path)  # stores_text: the index needs no docstore to come back
    again = VectorStoreIndex.from_vector_store(reopened, embed_model=embed_model())
    texts = sorted(n.node.get_content() for n in again.as_retriever(similarity_top_k=5).retrieve("x"))
    assert texts == ["Dogs enjoy long walks in the park.", "The Rhine flows into the North Sea."]
    reopened.close()


async def test_async_index_paths(tmp_path) -> None:
    vs = T4DMVectorStore(tmp_path / "async")
    index = VectorStoreIndex.from_vector_store(vs, embed_model=embed_model(), use_async=True)
    for doc in DOCS:
        await index.ainsert(doc)
    found = await index.as_retriever(similarity_top_k=2).aretrieve("animals")
    assert len(found) == 2
    await index.adelete_ref_doc("doc-rhine")
    assert sorted(n.node.ref_doc_id for n in await index.as_retriever(similarity_top_k=5).aretrieve("x")) == [
        "doc-cats", "doc-dogs"]
    vs.close()


async def test_memory_with_vector_memory_block(tmp_path) -> None:
    vectors = T4DMVectorStore(tmp_path / "long-term")
    short_term = T4DMAsyncChatStore(tmp_path / "short-term", dim=8)
    block = VectorMemoryBlock(vector_store=vectors, embed_model=embed_model(), similarity_top_k=2)
    memory = Memory.from_defaults(session_id="session-7", chat_store=short_term, memory_blocks=[block],
                                  token_limit=80, token_flush_size=20)
    for n in range(12):
        role = "user" if n % 2 == 0 else "assistant"
        await memory.aput(ChatMessage(role=role, content=f"turn {n}: the secret word is word{n}"))
    stored = vectors.get_nodes()
    assert stored and {node.metadata["session_id"] for node in stored} == {"session-7"}
    assert "turn 0" in stored[0].get_content()  # the oldest messages waterfalled into the vector store
    messages = await memory.aget()
    recalled = "\n".join(m.content or "" for m in messages if m.role == "system")
    assert "<message role='user'>turn 0" in recalled  # VectorMemoryBlock retrieved them through aquery
    assert messages[-1].content == "turn 11: the secret word is word11"
    other = await VectorMemoryBlock(vector_store=vectors, embed_model=embed_model()).aget(
        [ChatMessage(role="user", content="secret")], session_id="another-session")
    assert other == ""  # the session_id filter keeps sessions apart
    short_term.close()
    vectors.close()


@pytest.mark.embedder
def test_llama_index_pipeline_example_runs(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "llama_index_pipeline.py"),
                          "--store", str(tmp_path / "pipeline")],
                         capture_output=True, text=True, env=env, timeout=600, check=True)
    text = out.stdout
    hits = _section(text, "retrieved for: Which colour theme does the user like?")
    assert len(hits) == 3 and "dark mode" in hits[0], text
    (trip_hit,) = _section(text, "filtered (topic == travel)")
    assert "[travel]" in trip_hit and "Lisbon" in trip_hit, text
    kept = _section(text, "kept after the similarity cutoff:")
    assert kept and all(float(line.split()[0]) >= 0.3 for line in kept), text
    assert "response:" in text and "dark mode" in text.split("response:")[1], text


def _section(text: str, header: str) -> list[str]:
    """The indented result lines printed under the line starting with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        block.append(line.strip())
    return block
