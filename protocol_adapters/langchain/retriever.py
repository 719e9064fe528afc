"""LangChain retriever over :class:`~protocol_adapters.langchain.T4DMVectorStore`: :class:`T4DMRetriever`.

``T4DMRetriever`` is a ``VectorStoreRetriever`` (so ``vectorstore.as_retriever(...)`` code
and ``isinstance`` checks keep working) with the search options as first-class pydantic
fields, which the LangChain retriever conventions expect (``T4DMRetriever(vectorstore=vs,
k=3)``; ``retriever.invoke(query, k=2)``).

Options are merged in this order, later wins: the fields (``k``, ``filter``,
``score_threshold``, ``fetch_k``, ``lambda_mult``, ``as_of``), then ``search_kwargs``, then
the keyword arguments of ``invoke``. Setting the same option both as a field and in
``search_kwargs`` is refused as ambiguous.

Search types:

* ``"similarity"``: the ``k`` most similar documents.
* ``"similarity_score_threshold"``: the same, keeping relevances ``>= score_threshold``
  (relevance = ``(1 + cosine) / 2`` in [0, 1]).
* ``"mmr"``: maximal marginal relevance among the ``fetch_k`` most similar.
* ``"graph"``: graph-expanded retrieval. The ``k`` most similar documents are the seeds;
  every memory one edge away from a seed (any edge type, either direction) is a candidate
  scored ``seed relevance x edge weight`` (its best score over seeds). Seeds (scored by
  their relevance) and candidates are ranked together, de-duplicated, and the best ``k``
  returned. Expanded documents obey ``filter`` too (a dict filter is checked with an exact
  metadata scan of the namespace, so its cost grows with the namespace) and carry only
  their user metadata. The engine's graph has no history, so ``as_of`` is refused for
  this type.
* ``"hybrid"``: the engine's hybrid ranking (:meth:`T4DMVectorStore.hybrid_search`): vector
  and BM25 candidates scored by both signals, graph expansion and recency/importance/κ
  priors. Dict filters only; with ``as_of`` the graph signal is skipped.

Thread-safety: as the vector store; ``ainvoke`` runs the whole retrieval in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStoreRetriever
from pydantic import Field, model_validator

from protocol_adapters._common import run_in_thread
from protocol_adapters.langchain._filters import is_unembedded, vector_query_filter
from protocol_adapters.langchain.vectorstore import T4DMVectorStore, document_from_memory
from t4dm_core import InvalidInputError, MemoryNotFoundError

__all__ = ["T4DMRetriever"]

_OPTIONS = ("k", "filter", "score_threshold", "fetch_k", "lambda_mult", "as_of")


class T4DMRetriever(VectorStoreRetriever):
    """Retrieve documents from a :class:`T4DMVectorStore` (see the module docstring for the search types)."""

    vectorstore: T4DMVectorStore
    search_type: str = "similarity"
    k: int = Field(default=4, ge=1)
    filter: dict[str, Any] | Callable[[Document], bool] | None = None
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    fetch_k: int = Field(default=20, ge=1)
    lambda_mult: float = Field(default=0.5, ge=0.0, le=1.0)
    as_of: Any = None

    allowed_search_types: ClassVar[Collection[str]] = ("similarity", "similarity_score_threshold", "mmr", "graph",
                                                       "hybrid")

    @model_validator(mode="before")
    @classmethod
    def validate_search_type(cls, values: Any) -> Any:
        """Check the search type, option conflicts, and that a threshold search has a threshold."""
        if not isinstance(values, dict):
            return values
        search_type = values.get("search_type", "similarity")
        if search_type not in cls.allowed_search_types:
            raise ValueError(f"search_type {search_type!r} is not one of {', '.join(cls.allowed_search_types)}")
        search_kwargs = values.get("search_kwargs") or {}
        both = sorted(name for name in _OPTIONS if name in values and name in search_kwargs)
        if both:
            raise ValueError(f"{', '.join(both)} given both as a field and in search_kwargs; give each once")
        if search_type == "similarity_score_threshold":
            threshold = values.get("score_threshold", search_kwargs.get("score_threshold"))
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                raise ValueError("search_type 'similarity_score_threshold' needs score_threshold, a number in [0, 1]")
        return values

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in _OPTIONS}
        return fields | self.search_kwargs | overrides

    def _retrieve(self, query: str, options: dict[str, Any]) -> list[Document]:
        vs, k, flt, as_of = self.vectorstore, options.pop("k"), options.pop("filter"), options.pop("as_of")
        if self.search_type == "similarity":
            return vs.similarity_search(query, k, flt, as_of=as_of)
        if self.search_type == "similarity_score_threshold":
            scored = vs.similarity_search_with_relevance_scores(
                query, k, filter=flt, as_of=as_of, score_threshold=options["score_threshold"])
            return [doc for doc, _ in scored]
        if self.search_type == "mmr":
            return vs.max_marginal_relevance_search(query, k, options["fetch_k"], options["lambda_mult"], flt,
                                                    as_of=as_of)
        if self.search_type == "hybrid":
            return vs.hybrid_search(query, k, flt, as_of=as_of)
        if as_of is not None:
            raise InvalidInputError("search_type 'graph' reads the current graph; as_of is not supported with it")
        return _graph_retrieve(vs, query, k, flt)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        return self._retrieve(query, self._options(kwargs))

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        return await run_in_thread(self._retrieve, query, self._options(kwargs))


def _graph_retrieve(vs: T4DMVectorStore, query: str, k: int, flt: Any) -> list[Document]:
    """Seeds by similarity, expanded one hop through the graph; see the module docstring."""
    store, namespace = vs.store, vs.namespace
    seeds = vs.similarity_search_with_score(query, k, flt)
    allowed = None
    if flt and not callable(flt):
        allowed = {memory.id for memory in store.find(vector_query_filter(flt), namespace=namespace)}
    best: dict[str, tuple[float, Document]] = {doc.id: (score, doc) for doc, score in seeds if doc.id is not None}
    for seed, relevance in seeds:
        if seed.id is None:
            continue
        try:
            reached = store.neighbors(seed.id, hops=1, direction="both", namespace=namespace)
        except MemoryNotFoundError:  # deleted since the search
            continue
        for neighbor in reached:
            memory = neighbor.memory
            score = relevance * neighbor.edge.weight
            if memory.id is None or (memory.id in best and best[memory.id][0] >= score):
                continue
            if is_unembedded(memory.metadata) or (allowed is not None and memory.id not in allowed):
                continue
            doc = document_from_memory(memory)
            if callable(flt) and not flt(doc):
                continue
            best[memory.id] = (score, doc)
    ranked = sorted(best.values(), key=lambda pair: -pair[0])
    return [doc for _, doc in ranked[:k]]
