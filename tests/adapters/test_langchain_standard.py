"""LangChain's own conformance suites (langchain-tests) against the T4DM adapters.

``VectorStoreIntegrationTests`` (sync and async) runs on an empty temporary store per test;
``RetrieversIntegrationTests`` runs ``T4DMRetriever`` over one temporary store per class
holding five documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

from protocol_adapters.langchain import T4DMRetriever, T4DMVectorStore

RETRIEVER_TEXTS = ["the cat sat on the mat", "dogs chase cats", "a bird in the hand",
                   "fish swim in the sea", "cats sleep all day"]


class TestT4DMVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[T4DMVectorStore]:
        store = T4DMVectorStore(self.get_embeddings())
        try:
            yield store
        finally:
            store.close()


class TestT4DMRetrieverStandard(RetrieversIntegrationTests):
    shared: T4DMVectorStore | None = None

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _store(cls) -> Iterator[None]:
        vectorstore = T4DMVectorStore(DeterministicFakeEmbedding(size=8))
        vectorstore.add_documents([Document(text, metadata={"n": i}) for i, text in enumerate(RETRIEVER_TEXTS)])
        cls.shared = vectorstore
        try:
            yield
        finally:
            cls.shared = None
            vectorstore.close()

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return T4DMRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        assert self.shared is not None
        return {"vectorstore": self.shared}

    @property
    def retriever_query_example(self) -> str:
        return "where do cats sleep?"
