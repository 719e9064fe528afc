"""A LlamaIndex retrieval pipeline over T4DM: index → retriever → postprocessor → response synthesizer.

Everything runs offline: embeddings come from the packaged all-MiniLM-L6-v2 (wrapped below as
a LlamaIndex ``BaseEmbedding``), answers from LlamaIndex's ``MockLLM`` (it echoes its prompt,
so the printed "response" shows the context the retriever handed to the LLM).

    python examples/llama_index_pipeline.py [--store DIR]

Without ``--store`` the store is temporary. With it, the nodes persist; rerunning replaces
them (each document is deleted by its id before it is inserted again).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers import get_response_synthesizer
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import t4dm_core
from protocol_adapters.llama_index import T4DMVectorStore

CORPUS = [
    ("pref-theme", "The user prefers dark mode in every editor and terminal.", "preferences"),
    ("pref-coffee", "The user drinks their coffee black, without sugar.", "preferences"),
    ("trip-lisbon", "Next spring the user travels to Lisbon to see the tiled facades.", "travel"),
    ("trip-alps", "Last winter the user went skiing in the Swiss Alps.", "travel"),
    ("work-report", "The quarterly report is due on Friday afternoon.", "work"),
    ("work-standup", "The team standup happens every weekday at 9:30.", "work"),
    ("fact-paris", "Paris is the capital of France.", "facts"),
    ("fact-rhine", "The Rhine flows from the Alps into the North Sea.", "facts"),
]


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex ``BaseEmbedding`` over :class:`t4dm_core.MiniLMEmbedder` (384 dimensions, offline)."""

    model_name: str = t4dm_core.MiniLMEmbedder.name
    _embedder: t4dm_core.MiniLMEmbedder = PrivateAttr(default_factory=t4dm_core.MiniLMEmbedder)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)


def build_index(vector_store: T4DMVectorStore, embed_model: BaseEmbedding) -> VectorStoreIndex:
    index = VectorStoreIndex.from_vector_store(vector_store, embed_model=embed_model)
    for doc_id, text, topic in CORPUS:
        vector_store.delete(doc_id)  # idempotent reruns on a persistent store
        index.insert(Document(text=text, id_=doc_id, metadata={"topic": topic}))
    return index


def show(title: str, results: list) -> None:
    print(title)
    for hit in results:
        print(f"  {hit.score:.3f}  [{hit.node.metadata['topic']}] {hit.node.get_content()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store directory (default: a temporary store)")
    args = parser.parse_args()

    embed_model = MiniLMEmbedding()
    with T4DMVectorStore(args.store) as vector_store:
        index = build_index(vector_store, embed_model)
        store = vector_store.client
        assert store is not None
        print(f"indexed {len(store.ids(namespace=vector_store.namespace))} nodes (dimension {store.dim})")

        question = "Which colour theme does the user like?"
        retriever = index.as_retriever(similarity_top_k=3)
        show(f"retrieved for: {question}", retriever.retrieve(question))

        travel = MetadataFilters(filters=[MetadataFilter(key="topic", value="travel")])
        trip = "Which city will the user visit next spring?"
        show(f"filtered (topic == travel) for: {trip}",
             index.as_retriever(similarity_top_k=1, filters=travel).retrieve(trip))

        engine = RetrieverQueryEngine(
            retriever=retriever,
            node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=0.3)],  # cosine, higher = better
            response_synthesizer=get_response_synthesizer(llm=MockLLM(), response_mode="compact"),
        )
        response = engine.query(question)
        show("kept after the similarity cutoff:", response.source_nodes)
        print("response:")
        print(str(response)[:600])


if __name__ == "__main__":
    main()
